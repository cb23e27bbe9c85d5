# kazoo 2.8's recipes against a zoo ensemble.
#
#   python3 kazoo_recipes.py SUBCOMMAND host1:port,host2:port,host3:port
#
# Each sub-command exercises one recipe area with several KazooClients and
# prints deterministic lines (kazoo_recipes_test.go compares them); anything
# unexpected raises, and the script exits non-zero with the reason on stderr.
# A watchdog ends a sub-command that runs too long, after dumping every
# thread's stack, so a hung recipe never hangs CI.
#
# Every client is given all the ensemble's addresses. Where a check needs a
# change to cross members (a watch set on one member, fired by a write through
# another), the client's host list is rotated and not shuffled, so client(i)
# talks to member i while still knowing the others. A client that reads what
# another member's client wrote calls sync first: ZooKeeper only promises a
# client its own writes in order, and a follower may lag (real ZooKeeper too).

import faulthandler
import os
import queue
import subprocess
import sys
import threading
import time

from kazoo.client import KazooClient
from kazoo.recipe.cache import TreeCache, TreeEvent

WATCHDOG = 45  # seconds for one sub-command, whatever it does
WAIT = 15  # seconds for one expected event

HOSTS = []
CLIENTS = []


def out(*args):
    print(*args, flush=True)


def fail(msg):
    sys.stderr.write("FAIL: %s\n" % msg)
    sys.stderr.flush()
    os._exit(1)


def watchdog(seconds):
    def expire():
        sys.stderr.write("FAIL: still running after %ds; threads:\n" % seconds)
        faulthandler.dump_traceback(all_threads=True)
        sys.stderr.flush()
        os._exit(2)
    t = threading.Timer(seconds, expire)
    t.daemon = True
    t.start()


def client(first=0, timeout=4.0, **kwargs):
    """A started client whose host list starts at member `first`."""
    hosts = HOSTS[first % len(HOSTS):] + HOSTS[:first % len(HOSTS)]
    zk = KazooClient(hosts=",".join(hosts), randomize_hosts=False,
                     timeout=timeout, **kwargs)
    zk.start(timeout=WAIT)
    CLIENTS.append(zk)
    return zk


def stop(zk):
    zk.stop()
    zk.close()


def eventually(cond, what, within=WAIT):
    deadline = time.monotonic() + within
    while not cond():
        if time.monotonic() > deadline:
            fail("not within %ss: %s" % (within, what))
        time.sleep(0.02)


def start_thread(fn, *args):
    t = threading.Thread(target=fn, args=args, daemon=True)
    t.start()
    return t


def join(threads):
    for t in threads:
        t.join(WAIT * 2)
        if t.is_alive():
            fail("thread %s did not finish" % t.name)


def must_wait(event, what, within=WAIT):
    if not event.wait(within):
        fail("not within %ss: %s" % (within, what))


def still_not(cond, what, settle=0.4):
    """Checks that something has NOT happened after a short settle time.

    Only ever used for things that must not happen at all (a waiter passing a
    barrier that still stands): a slow machine can hide such a bug, never
    invent one.
    """
    time.sleep(settle)
    if cond():
        fail(what)


def names(children):
    return "[" + " ".join(sorted(children)) + "]"


# ---------------------------------------------------------------- Lock


def lock_exclusion():
    path, counter = "/recipes/lock/exclusive", "/recipes/lock/counter"
    contenders, rounds = 5, 4
    clients = [client(i) for i in range(contenders)]
    clients[0].create(counter, b"0", makepath=True)
    guard = threading.Lock()
    state = {"inside": 0, "most": 0, "sections": 0}
    errors = []

    def contend(i):
        zk = clients[i]
        lock = zk.Lock(path, "c%d" % i)
        for _ in range(rounds):
            if not lock.acquire(timeout=WAIT):
                errors.append("c%d: lock not acquired" % i)
                return
            try:
                with guard:
                    state["inside"] += 1
                    state["most"] = max(state["most"], state["inside"])
                # An unversioned read-modify-write: correct only under the
                # lock, and only if this member applied the previous holder's
                # write before telling us its lock node was gone.
                value, _ = zk.get(counter)
                time.sleep(0.005)
                zk.set(counter, b"%d" % (int(value) + 1))
                with guard:
                    state["inside"] -= 1
                    state["sections"] += 1
            finally:
                lock.release()

    join([start_thread(contend, i) for i in range(contenders)])
    if errors:
        fail("; ".join(errors))
    clients[0].sync(counter)
    value = int(clients[0].get(counter)[0])
    out("lock: %d contenders x %d rounds: %d critical sections, at most %d inside, counter %d"
        % (contenders, rounds, state["sections"], state["most"], value))
    for zk in clients:
        stop(zk)


def lock_client_stops():
    path = "/recipes/lock/stops"
    a, b, c, observer = client(0), client(1), client(2), client(0)
    held = {name: threading.Event() for name in "bc"}
    lock_a = a.Lock(path, "a")
    if not lock_a.acquire(timeout=WAIT):
        fail("a: lock not acquired")

    def contend(zk, name):
        lock = zk.Lock(path, name)
        if lock.acquire(timeout=WAIT * 2):
            held[name].set()

    def contenders():
        observer.sync(path)
        return observer.Lock(path).contenders()

    threads = [start_thread(contend, b, "b")]
    eventually(lambda: contenders() == ["a", "b"], "b queued behind a")
    threads.append(start_thread(contend, c, "c"))
    eventually(lambda: contenders() == ["a", "b", "c"], "c queued behind b")
    out("lock: contenders a b c")
    still_not(lambda: held["b"].is_set() or held["c"].is_set(), "b or c holds a lock that a holds")

    stop(a)  # no release: the lock node goes with a's session
    must_wait(held["b"], "b to take the lock after a's client stopped")
    if held["c"].is_set():
        fail("c took the lock while b holds it")
    out("lock: b acquired after a's client stopped")
    stop(b)
    must_wait(held["c"], "c to take the lock after b's client stopped")
    out("lock: c acquired after b's client stopped")
    join(threads)
    stop(c)
    eventually(lambda: contenders() == [], "no contenders left")
    out("lock: no contenders left")
    stop(observer)


def lock_holder_killed():
    path = "/recipes/lock/killed"
    holder = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "lock-holder", ",".join(HOSTS), path],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    lines = queue.Queue()
    start_thread(lambda: lines.put(holder.stdout.readline()))
    try:
        line = lines.get(timeout=WAIT)
    except queue.Empty:
        holder.kill()
        fail("lock-holder did not take the lock")
    if not line.startswith("held "):
        holder.kill()
        fail("lock-holder said %r" % line)
    timeout_ms = int(line.split()[1])

    waiter = client(1)
    acquired = threading.Event()

    def wait_for_lock():
        if waiter.Lock(path, "waiter").acquire(timeout=WAIT * 2):
            acquired.set()

    thread = start_thread(wait_for_lock)
    eventually(lambda: waiter.Lock(path).contenders() == ["holder", "waiter"], "waiter queued")
    holder.kill()  # SIGKILL: no close, the session has to expire
    holder.wait()
    killed = time.monotonic()
    must_wait(acquired, "the lock after its holder was killed")
    after = time.monotonic() - killed
    # A session outlives its TCP connection: the lock must not move before the
    # session could have timed out (the last ping may be up to a third of the
    # timeout old, so allow that much earlier).
    if after < timeout_ms / 1000 / 2:
        fail("lock moved %.2fs after the kill; the holder's session timeout is %dms" % (after, timeout_ms))
    sys.stderr.write("lock: holder's session timeout %dms, lock moved %.2fs after the kill\n" % (timeout_ms, after))
    out("lock: waiter acquired once the killed holder's session expired")
    join([thread])
    stop(waiter)


def cmd_lock():
    lock_exclusion()
    lock_client_stops()
    lock_holder_killed()


def cmd_lock_holder():
    # Runs as its own process for lock_holder_killed; killed by it.
    path = sys.argv[3]
    # Die with the parent: its end of our stdin closes when it exits.
    start_thread(lambda: (sys.stdin.read(), os._exit(0)))
    zk = KazooClient(hosts=",".join(HOSTS), timeout=2.0)
    zk.start(timeout=WAIT)
    if not zk.Lock(path, "holder").acquire(timeout=WAIT):
        fail("holder: lock not acquired")
    out("held %d" % zk._session_timeout)
    time.sleep(WATCHDOG)


# ---------------------------------------------------------------- Election


def cmd_election():
    path = "/recipes/election"
    ids = ["e1", "e2", "e3"]
    clients = {name: client(i) for i, name in enumerate(ids)}
    observer = client(0)
    elected = {name: threading.Event() for name in ids}
    resign = {name: threading.Event() for name in ids}
    guard = threading.Lock()
    current = [None]
    leaders = []
    errors = []

    def lead(name):
        with guard:
            if current[0] is not None:
                errors.append("%s elected while %s leads" % (name, current[0]))
            current[0] = name
            leaders.append(name)
        elected[name].set()
        resign[name].wait(WAIT * 2)
        with guard:
            if current[0] == name:
                current[0] = None

    def run(name):
        try:
            clients[name].Election(path, name).run(lead, name)
        except Exception:
            # e1's client is stopped while it leads, so giving the lock
            # back fails; its session already gave it back.
            if name != "e1":
                raise

    def contenders():
        observer.sync(path)
        return observer.Election(path).contenders()

    threads = [start_thread(run, "e1")]
    must_wait(elected["e1"], "e1 elected")
    threads.append(start_thread(run, "e2"))
    eventually(lambda: contenders() == ["e1", "e2"], "e2 contending")
    threads.append(start_thread(run, "e3"))
    eventually(lambda: contenders() == ids, "e3 contending")
    out("election: contenders " + " ".join(contenders()))
    out("election: leader e1")
    still_not(lambda: elected["e2"].is_set() or elected["e3"].is_set(), "a second leader while e1 leads")

    with guard:
        current[0] = None  # e1 stops being leader with its session
    stop(clients["e1"])
    must_wait(elected["e2"], "e2 elected after e1's client stopped")
    out("election: leader e2 after e1's client stopped")
    resign["e1"].set()
    still_not(lambda: elected["e3"].is_set(), "e3 elected while e2 leads", settle=0.2)

    resign["e2"].set()
    must_wait(elected["e3"], "e3 elected after e2 resigned")
    out("election: leader e3 after e2 resigned")
    resign["e3"].set()
    join(threads)
    if errors:
        fail("; ".join(errors))
    out("election: leaders in turn " + " ".join(leaders))
    eventually(lambda: contenders() == [], "no contenders left")
    for name in ("e2", "e3"):
        stop(clients[name])
    stop(observer)


# ---------------------------------------------------------------- Counter


def cmd_counter():
    path = "/recipes/counter"
    workers, increments = 4, 25
    # Contention retries quickly instead of kazoo's default backoff from 0.1s.
    retry = dict(max_tries=-1, delay=0.005, backoff=1.5, max_delay=0.1)
    clients = [client(i, command_retry=retry) for i in range(workers)]
    seen = []
    guard = threading.Lock()

    def work(zk):
        counter = zk.Counter(path)
        for _ in range(increments):
            counter += 1
            with guard:
                seen.append(counter.post_value)

    join([start_thread(work, zk) for zk in clients])
    observer = clients[0]
    observer.sync(path)
    total = observer.Counter(path).value
    unique = sorted(seen) == list(range(1, workers * increments + 1))
    out("counter: %d clients x %d increments = %d, each value from 1 to %d reached once: %s"
        % (workers, increments, total, workers * increments, unique))

    floats = observer.Counter(path + "-float", default=0.0)
    floats += 1.5
    floats += 1.5
    floats -= 0.5
    out("counter: float %r (data %r)" % (floats.value, observer.get(path + "-float")[0]))

    curator = observer.Counter(path + "-curator", support_curator=True)
    curator += 2
    curator -= 1
    out("counter: curator-compatible %d (data %r)" % (curator.value, observer.get(path + "-curator")[0]))
    for zk in clients:
        stop(zk)


# ---------------------------------------------------------------- Barrier


def cmd_barrier():
    path = "/recipes/barrier"
    coordinator = client(0)
    barrier = coordinator.Barrier(path)
    barrier.create()
    waiters = [client(i) for i in range(3)]
    results = {}

    def wait(i):
        waiters[i].sync(path)
        results[i] = waiters[i].Barrier(path).wait(timeout=WAIT)

    threads = [start_thread(wait, i) for i in range(3)]
    still_not(lambda: results, "a waiter passed a barrier that stands")
    out("barrier: 3 waiters blocked")
    out("barrier: removed %s" % barrier.remove())
    join(threads)
    out("barrier: waiters released %s" % [results[i] for i in range(3)])

    barrier.create()
    waiters[1].sync(path)
    out("barrier: wait with timeout on a standing barrier %s" % waiters[1].Barrier(path).wait(timeout=0.3))
    barrier.remove()
    waiters[1].sync(path)
    out("barrier: wait on an absent barrier %s" % waiters[1].Barrier(path).wait(timeout=WAIT))
    stop(coordinator)
    for zk in waiters:
        stop(zk)


def cmd_doublebarrier():
    path = "/recipes/doublebarrier"
    clients = [client(i) for i in range(3)]
    entered, left = [], []
    gates = [threading.Event() for _ in range(3)]
    guard = threading.Lock()
    errors = []

    def take_part(i):
        barrier = clients[i].DoubleBarrier(path, 3, identifier="p%d" % i)
        barrier.enter()
        if not barrier.participating:
            errors.append("p%d did not enter" % i)
            return
        with guard:
            entered.append(i)
        gates[i].wait(WAIT * 2)
        barrier.leave()
        with guard:
            left.append(i)

    threads = [start_thread(take_part, i) for i in range(2)]
    eventually(lambda: len(clients[0].get_children(path)) == 2 if clients[0].exists(path) else False,
               "two participants in the barrier", within=WAIT)
    still_not(lambda: entered, "a participant entered before all 3 arrived")
    out("doublebarrier: 2 of 3 wait to enter")
    threads.append(start_thread(take_part, 2))
    eventually(lambda: len(entered) == 3 or errors, "all 3 entered")
    if errors:
        fail("; ".join(errors))
    out("doublebarrier: all 3 entered")
    gates[0].set()
    gates[1].set()
    still_not(lambda: left, "a participant left while p2 is still inside")
    out("doublebarrier: 2 of 3 wait to leave")
    gates[2].set()
    join(threads)
    out("doublebarrier: all 3 left")
    clients[0].sync(path)
    out("doublebarrier: nodes left behind %s" % names(clients[0].get_children(path)))
    for zk in clients:
        stop(zk)


# ---------------------------------------------------------------- Queues


def cmd_queue():
    path = "/recipes/queue"
    producer, consumer = client(0), client(1)
    q = producer.Queue(path)
    for value, priority in [(b"a", 100), (b"b", 100), (b"x", 5), (b"c", 100), (b"z", 999), (b"y", 5)]:
        q.put(value, priority=priority)
    consumer.sync(path)
    cq = consumer.Queue(path)
    out("queue: length %d" % len(cq))
    got = []
    while True:
        item = cq.get()
        if item is None:
            break
        got.append(item.decode())
    out("queue: taken in order " + " ".join(got))

    # Three consumers on three members drain 30 entries: each exactly once.
    for i in range(30):
        q.put(b"%02d" % i)
    consumers = [client(i) for i in range(3)]
    taken = [[] for _ in consumers]

    def drain(i):
        consumers[i].sync(path)
        cq = consumers[i].Queue(path)
        while True:
            item = cq.get()
            if item is None:
                return
            taken[i].append(item)

    join([start_thread(drain, i) for i in range(3)])
    consumers[0].sync(path)
    rest = consumers[0].Queue(path)
    while True:
        item = rest.get()
        if item is None:
            break
        taken[0].append(item)
    everything = sorted(sum(taken, []))
    out("queue: 30 entries drained by 3 consumers, each once: %s"
        % (everything == [b"%02d" % i for i in range(30)]))
    for zk in [producer, consumer] + consumers:
        stop(zk)


def cmd_lockingqueue():
    path = "/recipes/lockingqueue"
    producer = client(0)
    q = producer.LockingQueue(path)
    q.put_all([b"a", b"b", b"c"])  # one multi of three sequential creates
    q.put(b"urgent", priority=1)
    c1, c2, c3, c4 = client(1), client(2), client(0), client(1)
    for zk in (c1, c2, c3, c4):
        zk.sync(path + "/entries")

    q1 = c1.LockingQueue(path)
    out("lockingqueue: c1 got %s" % q1.get(timeout=WAIT))
    q2 = c2.LockingQueue(path)
    out("lockingqueue: c2 got %s while c1 holds urgent" % q2.get(timeout=WAIT))
    out("lockingqueue: c1 consumed %s, c1 holds a lock %s" % (q1.consume(), q1.holds_lock()))
    out("lockingqueue: c2 released %s" % q2.release())
    c3.sync(path + "/taken")
    q3 = c3.LockingQueue(path)
    out("lockingqueue: c3 got %s, holds the lock %s" % (q3.get(timeout=WAIT), q3.holds_lock()))
    stop(c3)  # its lock on the entry goes with its session
    c4.sync(path + "/taken")
    q4 = c4.LockingQueue(path)
    got = []
    while True:
        item = q4.get(timeout=0.5)
        if item is None:
            break
        got.append(item.decode())
        if not q4.consume():
            fail("c4 could not consume %s" % item)
    out("lockingqueue: after c3's client stopped, c4 took in order " + " ".join(got))
    c4.sync(path + "/entries")
    out("lockingqueue: length %d" % len(q4))
    for zk in (producer, c1, c2, c4):
        stop(zk)


# ---------------------------------------------------------------- Party


def party(kind, path):
    observer = client(0)
    members = [client(i + 1) for i in range(3)]
    parties = [getattr(zk, kind)(path, "m%d" % i) for i, zk in enumerate(members)]

    def members_now():
        observer.sync(path)
        return "[" + " ".join(sorted(getattr(observer, kind)(path))) + "]"

    for p in parties:
        p.join()
        out("%s: %s" % (kind, members_now()))
    out("%s: length %d" % (kind, len(getattr(observer, kind)(path))))
    parties[0].leave()
    out("%s: %s after m0 left" % (kind, members_now()))
    stop(members[1])
    out("%s: %s after m1's client stopped" % (kind, members_now()))
    stop(members[2])
    out("%s: %s after m2's client stopped" % (kind, members_now()))
    stop(members[0])
    stop(observer)


def cmd_party():
    party("Party", "/recipes/party")
    party("ShallowParty", "/recipes/shallowparty")


# ---------------------------------------------------------------- Watchers


def cmd_watchers():
    # Watches are set through member 0; every change goes through member 1.
    path = "/recipes/watchers"
    watcher, writer = client(0), client(1)
    writer.ensure_path(path)
    watcher.sync(path)
    seen = queue.Queue()

    def next_call(what):
        try:
            return seen.get(timeout=WAIT)
        except queue.Empty:
            fail("no callback for " + what)

    def event_type(event):
        return event.type if event is not None else "-"

    @watcher.ChildrenWatch(path, send_event=True)
    def children(kids, event):
        seen.put("children %s %s" % (names(kids), event_type(event)))
        return "stop" not in kids  # returning False ends the watch

    out("watchers: " + next_call("the first children call"))
    for op, name in [("create", "a"), ("create", "b"), ("create", "c"), ("delete", "a"), ("create", "stop")]:
        getattr(writer, op)(path + "/" + name)
        out("watchers: %s %s -> %s" % (op, name, next_call(op + " " + name)))
    writer.create(path + "/after")
    still_not(lambda: not seen.empty(), "ChildrenWatch called after its function returned False")
    out("watchers: no children call after the function returned False")

    node = path + "/data"

    @watcher.DataWatch(node)
    def data(value, stat, event):
        seen.put("data %s version %s %s" % (value, stat.version if stat else "-", event_type(event)))

    out("watchers: " + next_call("the first data call"))
    steps = [("create", lambda: writer.create(node, b"v1")),
             ("set v2", lambda: writer.set(node, b"v2")),
             ("set v2 again", lambda: writer.set(node, b"v2")),
             ("delete", lambda: writer.delete(node)),
             ("create v3", lambda: writer.create(node, b"v3"))]
    for what, step in steps:
        step()
        out("watchers: %s -> %s" % (what, next_call(what)))
    stop(watcher)
    stop(writer)


# ---------------------------------------------------------------- TreeCache


def cmd_treecache():
    # The cache reads through member 0; the burst of changes goes through member 1.
    root = "/recipes/treecache"
    reader, writer = client(0), client(1)
    writer.create(root + "/a", b"1", makepath=True)
    writer.create(root + "/a/x", b"ax")
    writer.create(root + "/b", b"2")
    reader.sync(root)

    cache = TreeCache(reader, root)
    initialized = threading.Event()
    faults = []

    @cache.listen
    def on_event(event):
        if event.event_type == TreeEvent.INITIALIZED:
            initialized.set()

    cache.listen_fault(faults.append)
    cache.start()
    must_wait(initialized, "TreeCache INITIALIZED")

    def real(path):
        data, _ = writer.get(path)
        tree = {path: data}
        for kid in writer.get_children(path):
            tree.update(real(path + "/" + kid))
        return tree

    def cached(path):
        node = cache.get_data(path)
        if node is None:
            return {}
        tree = {path: node.data}
        for kid in cache.get_children(path) or ():
            tree.update(cached(path + "/" + kid))
        return tree

    eventually(lambda: cached(root) == real(root), "the cache to hold the initial subtree")
    out("treecache: initialized with %d nodes" % len(cached(root)))

    changes = 0
    for i in range(10):
        writer.create("%s/n%d" % (root, i), b"d%d" % i)
        changes += 1
        for j in range(3):
            writer.create("%s/n%d/c%d" % (root, i, j), b"c%d" % j)
            changes += 1
    for i in range(0, 10, 2):
        writer.set("%s/n%d" % (root, i), b"e%d" % i)
        changes += 1
    for i in range(0, 10, 3):
        writer.delete("%s/n%d" % (root, i), recursive=True)
        changes += 4
    writer.delete(root + "/a/x")
    writer.set(root + "/a", b"changed")
    writer.create(root + "/deep/1/2/3", b"bottom", makepath=True)
    changes += 6
    eventually(lambda: cached(root) == real(root), "the cache to converge after the burst")
    if faults:
        fail("TreeCache faults: %r" % faults)
    out("treecache: converged to %d nodes after %d changes" % (len(cached(root)), changes))
    cache.close()
    stop(reader)
    stop(writer)


COMMANDS = {
    "lock": cmd_lock,
    "lock-holder": cmd_lock_holder,
    "election": cmd_election,
    "counter": cmd_counter,
    "barrier": cmd_barrier,
    "doublebarrier": cmd_doublebarrier,
    "queue": cmd_queue,
    "lockingqueue": cmd_lockingqueue,
    "party": cmd_party,
    "watchers": cmd_watchers,
    "treecache": cmd_treecache,
}


def main():
    if len(sys.argv) < 3 or sys.argv[1] not in COMMANDS:
        fail("usage: kazoo_recipes.py {%s} HOSTS" % ",".join(COMMANDS))
    HOSTS.extend(sys.argv[2].split(","))
    watchdog(WATCHDOG + 15 if sys.argv[1] == "lock-holder" else WATCHDOG)
    try:
        COMMANDS[sys.argv[1]]()
    except BaseException:
        import traceback
        traceback.print_exc()
        fail("%s raised" % sys.argv[1])
    os._exit(0)  # don't wait for kazoo's threads of clients a failure left behind


if __name__ == "__main__":
    main()
