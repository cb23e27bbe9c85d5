// CuratorLockPeer holds an InterProcessMutex for a Go test that contends for
// the same lock with zoo's recipe.Mutex. Arguments: connect string, lock path.
// It prints "locked" when it holds the lock and "released" when it let go;
// each line on stdin makes it take the next step: release, then wait for the
// lock again ("waiting", then "locked"), then release and exit ("done").
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.util.concurrent.TimeUnit;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.locks.InterProcessMutex;
import org.apache.curator.retry.ExponentialBackoffRetry;

public class CuratorLockPeer {
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
        InterProcessMutex m = new InterProcessMutex(c, args[1]);
        m.acquire();
        say("locked");
        in.readLine();
        m.release();
        say("released");
        in.readLine();
        say("waiting");
        m.acquire();
        say("locked");
        in.readLine();
        m.release();
        say("released");
        c.close();
        say("done");
    }
}
