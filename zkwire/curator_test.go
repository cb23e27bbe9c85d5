package zkwire

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zooraft/zoo/internal/realzk"
	"github.com/zooraft/zoo/internal/testkit"
	"github.com/zooraft/zoo/recipe"
)

// curatorJars is Apache Curator 5.4 and what it needs, from Debian's
// libcurator-recipes-java and zookeeper packages.
var curatorJars = []string{"curator-framework", "curator-client", "curator-recipes", "zookeeper", "zookeeper-jute", "guava", "slf4j-api"}

// TestCuratorAgainstZoo runs Apache Curator's framework and recipes (CRUD
// with parents and containers, protected names, transactions, mutex, leader
// latch, semaphore, shared count, atomic long, CuratorCache on persistent
// recursive watches, barrier, persistent node, ephemerals) from two clients
// against a 3-replica zoo ensemble: the Java program checks each and prints
// "ok <name>". The same program runs against a real ZooKeeper first, so a
// failure on zoo is zoo's.
func TestCuratorAgainstZoo(t *testing.T) {
	cp := needCurator(t)
	t.Run("zookeeper", func(t *testing.T) {
		runCurator(t, cp, realzk.Standalone(t, 200*time.Millisecond))
	})
	t.Run("zoo", func(t *testing.T) {
		runCurator(t, cp, strings.Join(newCluster(t, Config{}).addrs, ","))
	})
}

// runCurator runs CuratorSeed against connect and requires every check.
func runCurator(t *testing.T, cp []string, connect string) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/usr/bin/java", "-cp", strings.Join(cp, ":"),
		filepath.Join("testdata", "curator", "CuratorSeed.java"), connect)
	out, err := cmd.CombinedOutput()
	var oks []string
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "ok ") {
			oks = append(oks, strings.TrimPrefix(line, "ok "))
		}
	}
	t.Logf("Curator checks passed: %v", oks)
	if err != nil || !strings.Contains(string(out), "\ndone\n") {
		t.Fatalf("CuratorSeed: %v\n%s", err, out)
	}
	want := "crud containers protection transaction mutex leaderlatch semaphore sharedcount atomiclong curatorcache barrier ephemerals"
	if strings.Join(oks, " ") != want {
		t.Fatalf("checks passed: %v, want %s", oks, want)
	}
}

// TestCuratorAndZooShareALock has Curator's InterProcessMutex (Java, through
// zkwire) and zoo's recipe.Mutex (embedded) contend for one lock path: each
// excludes the other, and each takes the lock when the other lets go, so the
// node layouts (protected "_c_<uuid>-lock-" names, lowest sequence holds)
// really are shared.
func TestCuratorAndZooShareALock(t *testing.T) {
	c := newCluster(t, Config{})
	peer := startCuratorPeer(t, "CuratorLockPeer.java", strings.Join(c.addrs, ","), "/shared/lock")
	ctx := testkit.Context(t)

	peer.expect("locked")
	m, err := recipe.NewMutex(c.Session(0), "/shared/lock")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.TryLock(ctx); !errors.Is(err, recipe.ErrLocked) {
		t.Fatalf("zoo's TryLock while Curator holds the lock: %v, want ErrLocked", err)
	}
	peer.next()
	peer.expect("released")
	if err := m.Lock(ctx); err != nil {
		t.Fatalf("zoo's Lock after Curator released: %v", err)
	}
	peer.next()
	peer.expect("waiting")
	peer.quiet(500 * time.Millisecond) // it must still be waiting
	if err := m.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	peer.expect("locked")
	peer.next()
	peer.expect("released")
	peer.expect("done")
}

// TestCuratorAndZooShareAnElection has Curator's LeaderLatch and zoo's
// recipe.Election campaign on one path: one leads at a time, each takes over
// when the other leaves, and each reads the other's participant value.
func TestCuratorAndZooShareAnElection(t *testing.T) {
	c := newCluster(t, Config{})
	peer := startCuratorPeer(t, "CuratorLatchPeer.java", strings.Join(c.addrs, ","), "/shared/election")
	ctx := testkit.Context(t)

	peer.expect("leader")
	e, err := recipe.NewElection(c.Session(0), "/shared/election")
	if err != nil {
		t.Fatal(err)
	}
	won := make(chan error, 1)
	go func() { won <- e.Campaign(ctx, []byte("zoo")) }()
	select {
	case err := <-won:
		t.Fatalf("zoo's Campaign returned %v while Curator leads", err)
	case <-time.After(500 * time.Millisecond):
	}
	if info, err := e.Leader(ctx); err != nil || string(info.Value) != "curator" {
		t.Fatalf("zoo sees leader %q (%v), want Curator's participant id", info.Value, err)
	}
	peer.next()
	peer.expect("closed")
	if err := <-won; err != nil || !e.IsLeader() {
		t.Fatalf("zoo's Campaign after Curator's latch closed: %v (leader %v)", err, e.IsLeader())
	}
	peer.next()
	peer.expect("sees zoo")
	peer.quiet(500 * time.Millisecond) // Curator's new latch must not lead
	if err := e.Resign(ctx); err != nil {
		t.Fatal(err)
	}
	peer.expect("leader")
	peer.next()
	peer.expect("done")
}

// TestCuratorAndZooShareASemaphore has Curator's InterProcessSemaphoreV2 and
// zoo's recipe.Semaphore share two leases on one path.
func TestCuratorAndZooShareASemaphore(t *testing.T) {
	c := newCluster(t, Config{})
	peer := startCuratorPeer(t, "CuratorSemaphorePeer.java", strings.Join(c.addrs, ","), "/shared/semaphore")
	ctx := testkit.Context(t)

	peer.expect("two")
	sem, err := recipe.NewSemaphore(c.Session(0), "/shared/semaphore", 2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sem.TryAcquire(ctx); !errors.Is(err, recipe.ErrNoLease) {
		t.Fatalf("zoo's TryAcquire while Curator holds both leases: %v, want ErrNoLease", err)
	}
	peer.next()
	peer.expect("returned one")
	lease, err := sem.Acquire(ctx)
	if err != nil {
		t.Fatalf("zoo's Acquire after Curator returned a lease: %v", err)
	}
	peer.next()
	peer.expect("waiting")
	peer.quiet(500 * time.Millisecond) // Curator holds one, zoo one: no third
	if err := lease.Release(ctx); err != nil {
		t.Fatal(err)
	}
	peer.expect("acquired")
	peer.next()
	peer.expect("done")
}

// TestCuratorAndZooShareARWLock has Curator's InterProcessReadWriteLock and
// zoo's recipe.RWMutex share one lock: readers together, a writer alone.
func TestCuratorAndZooShareARWLock(t *testing.T) {
	c := newCluster(t, Config{})
	peer := startCuratorPeer(t, "CuratorRWLockPeer.java", strings.Join(c.addrs, ","), "/shared/rwlock")
	ctx := testkit.Context(t)

	peer.expect("read-locked")
	reader, err := recipe.NewRWMutex(c.Session(0), "/shared/rwlock")
	if err != nil {
		t.Fatal(err)
	}
	writer, err := recipe.NewRWMutex(c.Session(1), "/shared/rwlock")
	if err != nil {
		t.Fatal(err)
	}
	if err := reader.TryRLock(ctx); err != nil {
		t.Fatalf("zoo's TryRLock beside Curator's reader: %v", err)
	}
	if err := writer.TryLock(ctx); !errors.Is(err, recipe.ErrLocked) {
		t.Fatalf("zoo's TryLock while readers hold the lock: %v, want ErrLocked", err)
	}
	peer.next()
	peer.expect("read-released")
	peer.next()
	peer.expect("waiting-write")
	peer.quiet(500 * time.Millisecond) // zoo still reads: Curator's writer waits
	if err := reader.RUnlock(ctx); err != nil {
		t.Fatal(err)
	}
	peer.expect("write-locked")
	if err := reader.TryRLock(ctx); !errors.Is(err, recipe.ErrLocked) {
		t.Fatalf("zoo's TryRLock while Curator writes: %v, want ErrLocked", err)
	}
	peer.next()
	peer.expect("write-released")
	if err := writer.Lock(ctx); err != nil {
		t.Fatalf("zoo's Lock once Curator's writer left: %v", err)
	}
	peer.next()
	peer.expect("waiting-read")
	peer.quiet(500 * time.Millisecond) // zoo writes: Curator's reader waits
	if err := writer.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	peer.expect("read-locked")
	peer.next()
	peer.expect("done")
}

// curatorPeer is a Java program of testdata/curator driven line by line.
type curatorPeer struct {
	t     *testing.T
	stdin io.Writer
	lines chan string
}

// startCuratorPeer runs testdata/curator/<file> with args; it is killed when
// the test ends (its stderr is logged if the test failed).
func startCuratorPeer(t *testing.T, file string, args ...string) *curatorPeer {
	t.Helper()
	cp := needCurator(t)
	cmd := exec.Command("/usr/bin/java", append([]string{"-cp", strings.Join(cp, ":"),
		filepath.Join("testdata", "curator", file)}, args...)...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &curatorPeer{t: t, stdin: stdin, lines: make(chan string, 16)}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("%s stderr:\n%s", file, stderr.String())
		}
	})
	return p
}

// expect waits for the peer's next line, which must be want.
func (p *curatorPeer) expect(want string) {
	p.t.Helper()
	select {
	case got, ok := <-p.lines:
		if !ok || got != want {
			p.t.Fatalf("Curator said %q (still running: %v), want %q", got, ok, want)
		}
	case <-time.After(60 * time.Second):
		p.t.Fatalf("Curator did not say %q", want)
	}
}

// quiet requires the peer to say nothing for d.
func (p *curatorPeer) quiet(d time.Duration) {
	p.t.Helper()
	select {
	case l := <-p.lines:
		p.t.Fatalf("Curator said %q, want it still waiting", l)
	case <-time.After(d):
	}
}

// next tells the peer to take its next step.
func (p *curatorPeer) next() {
	p.t.Helper()
	if _, err := io.WriteString(p.stdin, "next\n"); err != nil {
		p.t.Fatal(err)
	}
}

// needCurator returns the class path for Curator, skipping the test (failing
// it in CI) when Java or Curator is not installed.
func needCurator(t *testing.T) []string {
	t.Helper()
	var cp []string
	for _, j := range curatorJars {
		cp = append(cp, filepath.Join("/usr/share/java", j+".jar"))
	}
	for _, p := range append([]string{"/usr/bin/java", "/usr/bin/javac"}, cp...) {
		if _, err := os.Stat(p); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s missing in CI: .ci/run must install default-jdk-headless and libcurator-recipes-java", p)
			}
			t.Skipf("%s not installed (apt-get install default-jdk-headless libcurator-recipes-java)", p)
		}
	}
	return cp
}
