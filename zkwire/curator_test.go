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
	cp := needCurator(t)
	c := newCluster(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/usr/bin/java", "-cp", strings.Join(cp, ":"),
		filepath.Join("testdata", "curator", "CuratorLockPeer.java"), strings.Join(c.addrs, ","), "/shared/lock")
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
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("Java stderr:\n%s", stderr.String())
		}
	}()
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	expect := func(want string) {
		t.Helper()
		select {
		case got, ok := <-lines:
			if !ok || got != want {
				t.Fatalf("Curator said %q (open %v), want %q", got, ok, want)
			}
		case <-time.After(60 * time.Second):
			t.Fatalf("Curator did not say %q", want)
		}
	}
	step := func() {
		t.Helper()
		if _, err := io.WriteString(stdin, "next\n"); err != nil {
			t.Fatal(err)
		}
	}

	expect("locked")
	m, err := recipe.NewMutex(c.Session(0), "/shared/lock")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.TryLock(ctx); !errors.Is(err, recipe.ErrLocked) {
		t.Fatalf("zoo's TryLock while Curator holds the lock: %v, want ErrLocked", err)
	}
	step()
	expect("released")
	if err := m.Lock(ctx); err != nil {
		t.Fatalf("zoo's Lock after Curator released: %v", err)
	}
	step()
	expect("waiting")
	select {
	case l := <-lines:
		t.Fatalf("Curator said %q while zoo holds the lock", l)
	case <-time.After(500 * time.Millisecond): // it must still be waiting
	}
	if err := m.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	expect("locked")
	step()
	expect("released")
	expect("done")
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
