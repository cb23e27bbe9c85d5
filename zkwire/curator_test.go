package zkwire

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zooraft/zoo/internal/realzk"
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
