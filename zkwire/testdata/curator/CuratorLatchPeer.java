// CuratorLatchPeer campaigns with Curator's LeaderLatch (participant id
// "curator") for a Go test whose zoo recipe.Election campaigns on the same
// path. Arguments: connect string, election path. It prints "leader" when its
// latch leads; each line on stdin makes it take the next step: close the
// latch ("closed"), start a new one and report whom it sees leading ("sees
// <id>", then "leader" once it leads), close it and exit ("done").
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.util.concurrent.TimeUnit;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.leader.LeaderLatch;
import org.apache.curator.retry.ExponentialBackoffRetry;

public class CuratorLatchPeer {
    static void say(String s) {
        System.out.println(s);
        System.out.flush();
    }

    public static void main(String[] args) throws Exception {
        CuratorFramework c = CuratorFrameworkFactory.newClient(args[0], 10000, 5000, new ExponentialBackoffRetry(100, 5));
        c.start();
        if (!c.blockUntilConnected(20, TimeUnit.SECONDS)) {
            throw new AssertionError("not connected");
        }
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in));
        LeaderLatch first = new LeaderLatch(c, args[1], "curator");
        first.start();
        first.await();
        say("leader");
        in.readLine();
        first.close();
        say("closed");
        in.readLine();
        LeaderLatch second = new LeaderLatch(c, args[1], "curator");
        second.start();
        while (second.getParticipants().size() < 2) {
            Thread.sleep(10);
        }
        say("sees " + second.getLeader().getId());
        second.await();
        say("leader");
        in.readLine();
        second.close();
        c.close();
        say("done");
    }
}
