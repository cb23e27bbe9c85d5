package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zooraft/zoo"
)

// The commands zoo cli gained with zkclient (addWatch, removewatches,
// getEphemerals, getAllChildrenNumber, whoami, a chroot), each script run
// three ways: zkCli.sh against a real Apache ZooKeeper 3.8 (the reference),
// zoo cli against the same ZooKeeper, and zoo cli against zoo
// (TestCliCommands). The first must print the case's zkCli transcript, the
// second the case's zoo cli transcript; TestCliCommandsMatchZkCli closes the
// square with zkCli.sh against zoo.
func TestCliNewCommandsMatchZooKeeper(t *testing.T) {
	cli := needTool(t, zkCli, "zookeeper")
	s := startRealZooKeeper(t)
	newCommands := []string{"addWatch", "removewatches", "getEphemerals and getAllChildrenNumber", "whoami", "chroot"}
	ran := 0
	for _, c := range cliCases() {
		if !slices.Contains(newCommands, c.name) {
			continue
		}
		ran++
		t.Run(c.name, func(t *testing.T) {
			zkWant, zkExit := c.want, c.exit
			if c.zk != nil {
				zkWant, zkExit = c.zk.out, c.zk.exit
			}
			for _, run := range []struct {
				who  string
				want string
				exit int
				cmd  func() (string, int)
			}{
				{"zkCli.sh", zkWant, zkExit, func() (string, int) { return runZkCli(t, cli, s.addr+c.chroot, c.script) }},
				{"zoo cli", c.want, c.exit, func() (string, int) { return runZooCli(s.addr+c.chroot, c.script) }},
			} {
				s.reset(t)
				s.create(t, c.setup...)
				out, code := run.cmd()
				// Events are compared apart: zkCli.sh prints them from a
				// thread of its own, and ZooKeeper may order the events of
				// one change differently from zoo.
				got, gotEvents := splitEvents(sortPathLists(normalizeCliOutput(out)))
				want, wantEvents := splitEvents(syncConnectedEvent + run.want)
				if got != want || gotEvents != wantEvents {
					t.Errorf("%s against ZooKeeper, without events:\n%s\n--- want\n%s\n--- events\n%s\n--- want\n%s\n--- raw\n%s",
						run.who, got, want, gotEvents, wantEvents, out)
				}
				if code != run.exit {
					t.Errorf("%s against ZooKeeper: exit code %d, want %d", run.who, code, run.exit)
				}
			}
		})
	}
	if ran != len(newCommands) {
		t.Fatalf("ran %d cases of %d: a case was renamed", ran, len(newCommands))
	}
}

// sortPathLists sorts the paths of getEphemerals lists ("[/b, /a]"), which
// both clients print in the server's order: ZooKeeper's is a hash set's,
// zoo's sorted.
func sortPathLists(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "[/") && strings.HasSuffix(l, "]") {
			paths := strings.Split(l[1:len(l)-1], ", ")
			slices.Sort(paths)
			lines[i] = "[" + strings.Join(paths, ", ") + "]"
		}
	}
	return strings.Join(lines, "\n")
}

// runZkCli runs zkCli.sh -server server with script on stdin, returning
// stdout and stderr interleaved, and the exit code.
func runZkCli(t *testing.T, cli, server, script string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(cli, append([]string{"-server", server}, args...)...)
	cmd.Stdin = strings.NewReader(script)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(120 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("zkCli.sh did not finish:\n%s", out.String())
	}
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		return out.String(), exitErr.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), 0
}

// startRealZooKeeper runs a standalone Apache ZooKeeper (Debian's package,
// 3.8) with TTL nodes enabled and zoo's test super user ("super:secret"),
// killed with the test, and returns it with an admin session.
func startRealZooKeeper(t *testing.T) *cliServer {
	t.Helper()
	java := needTool(t, "/usr/bin/java", "zookeeper")
	needTool(t, "/usr/share/java/zookeeper.jar", "zookeeper")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "zoo.cfg")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("tickTime=200\ndataDir=%s\nclientPort=%d\nclientPortAddress=127.0.0.1\n"+
		"admin.enableServer=false\n4lw.commands.whitelist=*\n", filepath.Join(dir, "data"), port)), 0o644); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "zookeeper.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(java, "-Xmx256m", "-Dzookeeper.extendedTypesEnabled=true",
		"-Dzookeeper.DigestAuthenticationProvider.superDigest="+zoo.DigestID("super", "secret"),
		"-cp", "/usr/share/java/*", "org.apache.zookeeper.server.ZooKeeperServerMain", cfg)
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
	for fourLetters(addr, "ruok") != "imok" {
		if time.Now().After(deadline) {
			t.Fatal("ZooKeeper does not answer ruok")
		}
		time.Sleep(100 * time.Millisecond)
	}
	return &cliServer{addr: addr, admin: adminConn(t, addr)}
}
