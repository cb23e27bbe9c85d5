// CuratorRWLockPeer uses Curator's InterProcessReadWriteLock for a Go test
// whose zoo recipe.RWMutex uses the same path. Arguments: connect string,
// lock path. It prints "read-locked" holding the read lock; each line on
// stdin makes it take the next step: release it ("read-released"), wait for
// the write lock ("waiting-write", then "write-locked"), release it
// ("write-released"), wait for the read lock ("waiting-read", then
// "read-locked"), release and exit ("done").
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.util.concurrent.TimeUnit;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.locks.InterProcessReadWriteLock;
import org.apache.curator.retry.ExponentialBackoffRetry;

public class CuratorRWLockPeer {
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
        InterProcessReadWriteLock rw = new InterProcessReadWriteLock(c, args[1]);
        rw.readLock().acquire();
        say("read-locked");
        in.readLine();
        rw.readLock().release();
        say("read-released");
        in.readLine();
        say("waiting-write");
        rw.writeLock().acquire();
        say("write-locked");
        in.readLine();
        rw.writeLock().release();
        say("write-released");
        in.readLine();
        say("waiting-read");
        rw.readLock().acquire();
        say("read-locked");
        in.readLine();
        rw.readLock().release();
        c.close();
        say("done");
    }
}
