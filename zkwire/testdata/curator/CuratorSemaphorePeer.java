// CuratorSemaphorePeer holds leases of Curator's InterProcessSemaphoreV2 (two
// leases) for a Go test whose zoo recipe.Semaphore uses the same path.
// Arguments: connect string, semaphore path. It prints "two" holding both
// leases; each line on stdin makes it take the next step: return one
// ("returned one"), wait for another ("waiting", then "acquired"), return all
// and exit ("done").
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.util.concurrent.TimeUnit;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.locks.InterProcessSemaphoreV2;
import org.apache.curator.framework.recipes.locks.Lease;
import org.apache.curator.retry.ExponentialBackoffRetry;

public class CuratorSemaphorePeer {
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
        InterProcessSemaphoreV2 sem = new InterProcessSemaphoreV2(c, args[1], 2);
        Lease one = sem.acquire();
        Lease two = sem.acquire();
        say("two");
        in.readLine();
        sem.returnLease(one);
        say("returned one");
        in.readLine();
        say("waiting");
        Lease three = sem.acquire();
        say("acquired");
        in.readLine();
        sem.returnLease(two);
        sem.returnLease(three);
        c.close();
        say("done");
    }
}
