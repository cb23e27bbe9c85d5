// Package realzk starts a real Apache ZooKeeper (Debian's zookeeper package,
// 3.8) for tests that compare zoo with the real thing. Without the package a
// test is skipped, except in CI, where .ci/run installs it and its absence
// fails the test.
package realzk

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Java and Jar are what a real ZooKeeper needs on this machine.
const (
	Java = "/usr/bin/java"
	Jar  = "/usr/share/java/zookeeper.jar"
)

// Need skips t (fails it in CI) unless Java and ZooKeeper are installed.
func Need(t testing.TB) {
	t.Helper()
	for _, p := range []string{Java, Jar} {
		if _, err := os.Stat(p); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s missing in CI: .ci/run must install default-jre-headless and zookeeper", p)
			}
			t.Skipf("%s not installed (apt-get install default-jre-headless zookeeper): no real ZooKeeper to test against", p)
		}
	}
}

// Standalone runs a standalone ZooKeeper on a free loopback port with the
// given tickTime and Java system properties ("zookeeper.x=y"), and returns
// its client address once it answers ruok. It is killed with the test; if
// the test failed, the tail of its log is logged.
func Standalone(t testing.TB, tick time.Duration, props ...string) string {
	t.Helper()
	return StandaloneWith(t, tick, "", props...)
}

// StandaloneWith is Standalone with extra zoo.cfg lines (secureClientPort
// and ssl.* keys, say: the server then uses Netty, whose jars Debian
// installs with it).
func StandaloneWith(t testing.TB, tick time.Duration, extraCfg string, props ...string) string {
	t.Helper()
	Need(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "zoo.cfg")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("tickTime=%d\ndataDir=%s\nclientPort=%d\nclientPortAddress=127.0.0.1\n"+
		"admin.enableServer=false\n4lw.commands.whitelist=*\n%s", tick.Milliseconds(), filepath.Join(dir, "data"), port, netty(extraCfg))), 0o644); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "zookeeper.log"))
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"-Xmx256m"}
	for _, p := range props {
		args = append(args, "-D"+p)
	}
	args = append(args, "-cp", "/usr/share/java/*", "org.apache.zookeeper.server.ZooKeeperServerMain", cfg)
	cmd := exec.Command(Java, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("ZooKeeper log (tail):\n%s", b[max(0, len(b)-4000):])
		}
	})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	deadline := time.Now().Add(90 * time.Second)
	for FourLetter(addr, "ruok") != "imok" {
		if time.Now().After(deadline) {
			t.Fatal("ZooKeeper does not answer ruok")
		}
		time.Sleep(100 * time.Millisecond)
	}
	return addr
}

// FourLetter sends a four-letter word and returns the answer ("" if none).
func FourLetter(addr, word string) string {
	nc, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return ""
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	nc.Write([]byte(word))
	b, _ := io.ReadAll(nc)
	return string(b)
}

// netty adds the Netty connection factory to a config that serves TLS:
// ZooKeeper's NIO factory serves no secure port.
func netty(extraCfg string) string {
	if extraCfg != "" && !strings.HasSuffix(extraCfg, "\n") {
		extraCfg += "\n"
	}
	if strings.Contains(extraCfg, "secureClientPort") && !strings.Contains(extraCfg, "serverCnxnFactory") {
		extraCfg += "serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory\n"
	}
	return extraCfg
}
