// CuratorSeed runs Apache Curator's framework and recipes against the
// ZooKeeper ensemble given as its argument (a connect string). Each check
// prints "ok <name>"; any failure throws, and the JVM exits non-zero.
// Run with the JDK's single-file launcher: java -cp <jars> CuratorSeed.java host:port,...
import java.nio.charset.StandardCharsets;
import java.util.Collection;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.api.transaction.CuratorTransactionResult;
import org.apache.curator.framework.recipes.atomic.AtomicValue;
import org.apache.curator.framework.recipes.atomic.DistributedAtomicLong;
import org.apache.curator.framework.recipes.barriers.DistributedBarrier;
import org.apache.curator.framework.recipes.cache.CuratorCache;
import org.apache.curator.framework.recipes.leader.LeaderLatch;
import org.apache.curator.framework.recipes.locks.InterProcessMutex;
import org.apache.curator.framework.recipes.locks.InterProcessSemaphoreV2;
import org.apache.curator.framework.recipes.locks.Lease;
import org.apache.curator.framework.recipes.nodes.PersistentNode;
import org.apache.curator.framework.recipes.shared.SharedCount;
import org.apache.curator.framework.recipes.shared.VersionedValue;
import org.apache.curator.retry.ExponentialBackoffRetry;
import org.apache.curator.retry.RetryNTimes;
import org.apache.zookeeper.CreateMode;
import org.apache.zookeeper.KeeperException;
import org.apache.zookeeper.data.Stat;

public class CuratorSeed {
    static void check(boolean cond, String what) {
        if (!cond) {
            throw new AssertionError(what);
        }
    }

    static void ok(String what) {
        System.out.println("ok " + what);
        System.out.flush();
    }

    static byte[] bytes(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    static CuratorFramework client(String connect) throws InterruptedException {
        CuratorFramework c = CuratorFrameworkFactory.newClient(connect, 10000, 5000, new ExponentialBackoffRetry(100, 5));
        c.start();
        check(c.blockUntilConnected(20, TimeUnit.SECONDS), "connected");
        return c;
    }

    public static void main(String[] args) throws Exception {
        CuratorFramework a = client(args[0]);
        CuratorFramework b = client(args[0]);

        // Create with parents, read with Stat, conditional set, exists.
        a.create().creatingParentsIfNeeded().forPath("/curator/crud/x", bytes("v1"));
        Stat st = new Stat();
        check(new String(a.getData().storingStatIn(st).forPath("/curator/crud/x"), StandardCharsets.UTF_8).equals("v1"), "getData");
        a.setData().withVersion(st.getVersion()).forPath("/curator/crud/x", bytes("v2"));
        try {
            a.setData().withVersion(st.getVersion()).forPath("/curator/crud/x", bytes("v3"));
            throw new AssertionError("a stale version was accepted");
        } catch (KeeperException.BadVersionException expected) {
        }
        check(a.checkExists().forPath("/curator/crud/nope") == null, "checkExists of a missing node");
        ok("crud");

        // Parents as containers.
        a.create().creatingParentContainersIfNeeded().forPath("/curator/containers/p/child");
        check(a.checkExists().forPath("/curator/containers/p") != null, "container parent");
        ok("containers");

        // Protected ephemeral sequential names (Curator's "_c_<uuid>-").
        String p = a.create().creatingParentsIfNeeded().withProtection().withMode(CreateMode.EPHEMERAL_SEQUENTIAL).forPath("/curator/prot/n-");
        check(p.contains("_c_") && p.matches(".*n-\\d{10}$"), "protected name " + p);
        ok("protection");

        // Transactions: all or nothing.
        Collection<CuratorTransactionResult> res = a.transaction().forOperations(
                a.transactionOp().create().forPath("/curator/tx", bytes("1")),
                a.transactionOp().setData().forPath("/curator/tx", bytes("2")),
                a.transactionOp().check().forPath("/curator"));
        check(res.size() == 3, "transaction results");
        try {
            a.transaction().forOperations(
                    a.transactionOp().create().forPath("/curator/tx2"),
                    a.transactionOp().delete().forPath("/curator/nope"));
            throw new AssertionError("a failing transaction committed");
        } catch (KeeperException.NoNodeException expected) {
        }
        check(a.checkExists().forPath("/curator/tx2") == null, "a failed transaction left a node");
        ok("transaction");

        // InterProcessMutex: the second client waits for the first.
        InterProcessMutex ma = new InterProcessMutex(a, "/curator/lock");
        InterProcessMutex mb = new InterProcessMutex(b, "/curator/lock");
        check(ma.acquire(10, TimeUnit.SECONDS), "a acquires the mutex");
        check(!mb.acquire(300, TimeUnit.MILLISECONDS), "b acquired a held mutex");
        ma.release();
        check(mb.acquire(10, TimeUnit.SECONDS), "b acquires after a released");
        mb.release();
        ok("mutex");

        // LeaderLatch: one leader; the other takes over when it leaves.
        LeaderLatch la = new LeaderLatch(a, "/curator/leader", "a");
        la.start();
        check(la.await(10, TimeUnit.SECONDS), "a leads");
        LeaderLatch lb = new LeaderLatch(b, "/curator/leader", "b");
        lb.start();
        check(!lb.await(300, TimeUnit.MILLISECONDS), "two leaders");
        check(lb.getLeader().getId().equals("a"), "b sees a as leader");
        la.close();
        check(lb.await(10, TimeUnit.SECONDS), "b leads after a left");
        lb.close();
        ok("leaderlatch");

        // InterProcessSemaphoreV2 with two leases.
        InterProcessSemaphoreV2 sa = new InterProcessSemaphoreV2(a, "/curator/sem", 2);
        InterProcessSemaphoreV2 sb = new InterProcessSemaphoreV2(b, "/curator/sem", 2);
        Lease l1 = sa.acquire(10, TimeUnit.SECONDS);
        Lease l2 = sb.acquire(10, TimeUnit.SECONDS);
        check(l1 != null && l2 != null, "two leases");
        check(sb.acquire(300, TimeUnit.MILLISECONDS) == null, "a third lease");
        sa.returnLease(l1);
        Lease l3 = sb.acquire(10, TimeUnit.SECONDS);
        check(l3 != null, "a lease after one was returned");
        sb.returnLease(l2);
        sb.returnLease(l3);
        ok("semaphore");

        // SharedCount: compare-and-set on the node's version.
        SharedCount count = new SharedCount(a, "/curator/count", 0);
        count.start();
        VersionedValue<Integer> vv = count.getVersionedValue();
        check(count.trySetCount(vv, 5), "first CAS");
        check(!count.trySetCount(vv, 6), "a stale CAS succeeded");
        check(count.getCount() == 5, "count after CAS");
        count.close();
        ok("sharedcount");

        // DistributedAtomicLong from both clients.
        DistributedAtomicLong al = new DistributedAtomicLong(a, "/curator/long", new RetryNTimes(20, 10));
        DistributedAtomicLong bl = new DistributedAtomicLong(b, "/curator/long", new RetryNTimes(20, 10));
        for (int i = 0; i < 5; i++) {
            check(al.increment().succeeded(), "a increments");
            check(bl.increment().succeeded(), "b increments");
        }
        // b made the last increment, so b's server has applied all ten; a's
        // may lag (reads are sequentially consistent, not linearizable).
        AtomicValue<Long> v = bl.get();
        check(v.succeeded() && v.postValue() == 10, "atomic long is " + v.postValue());
        ok("atomiclong");

        // CuratorCache (persistent recursive watches) sees b's changes.
        a.create().creatingParentsIfNeeded().forPath("/curator/cache");
        BlockingQueue<String> events = new LinkedBlockingQueue<>();
        CuratorCache cache = CuratorCache.build(a, "/curator/cache");
        cache.listenable().addListener((type, oldData, data) ->
                events.add(type + " " + (data != null ? data.getPath() : oldData.getPath())));
        cache.start();
        check(("NODE_CREATED /curator/cache").equals(events.poll(10, TimeUnit.SECONDS)), "cache sees its root");
        b.create().forPath("/curator/cache/k", bytes("1"));
        check(("NODE_CREATED /curator/cache/k").equals(events.poll(10, TimeUnit.SECONDS)), "cache sees a create");
        b.setData().forPath("/curator/cache/k", bytes("2"));
        check(("NODE_CHANGED /curator/cache/k").equals(events.poll(10, TimeUnit.SECONDS)), "cache sees a change");
        b.delete().forPath("/curator/cache/k");
        check(("NODE_DELETED /curator/cache/k").equals(events.poll(10, TimeUnit.SECONDS)), "cache sees a delete");
        cache.close();
        ok("curatorcache");

        // DistributedBarrier: b waits until a removes it.
        DistributedBarrier barrier = new DistributedBarrier(a, "/curator/barrier");
        barrier.setBarrier();
        BlockingQueue<Boolean> passed = new LinkedBlockingQueue<>();
        Thread waiter = new Thread(() -> {
            try {
                passed.add(new DistributedBarrier(b, "/curator/barrier").waitOnBarrier(20, TimeUnit.SECONDS));
            } catch (Exception e) {
                passed.add(false);
            }
        });
        waiter.start();
        check(passed.poll(300, TimeUnit.MILLISECONDS) == null, "passed a set barrier");
        barrier.removeBarrier();
        check(Boolean.TRUE.equals(passed.poll(20, TimeUnit.SECONDS)), "passes a removed barrier");
        ok("barrier");

        // PersistentNode (ephemeral) and an ephemeral that goes with its session.
        PersistentNode pn = new PersistentNode(a, CreateMode.EPHEMERAL, false, "/curator/pn", bytes("here"));
        pn.start();
        check(pn.waitForInitialCreate(10, TimeUnit.SECONDS), "persistent node created");
        b.sync().forPath("/curator/pn"); // b's server may not have applied a's create yet
        check(b.checkExists().forPath("/curator/pn") != null, "b sees the persistent node");
        a.create().withMode(CreateMode.EPHEMERAL).forPath("/curator/eph");
        pn.close();
        a.close();
        b.sync().forPath("/curator");
        check(b.checkExists().forPath("/curator/eph") == null, "an ephemeral outlived its session");
        check(b.checkExists().forPath("/curator/pn") == null, "a closed PersistentNode's node stayed");
        ok("ephemerals");

        b.close();
        System.out.println("done");
    }
}
