package main

import (
	"bytes"
	"errors"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zooraft/zoo"
	"github.com/zooraft/zoo/internal/realzk"
)

// The commands zoo cli gained with zkclient (addWatch, removewatches,
// getEphemerals, getAllChildrenNumber, whoami, a chroot), each script run
// three ways: zkCli.sh against a real Apache ZooKeeper 3.8 (the reference),
// zoo cli against the same ZooKeeper, and zoo cli against zoo
// (TestCliCommandsPrintTranscripts), for the transcripts in testdata/cli of
// those commands. The first must print the case's zkCli transcript, the
// second the case's zoo cli transcript; TestCliCommandsMatchZkCli closes the
// square with zkCli.sh against zoo.
func TestCliNewCommandsMatchZooKeeper(t *testing.T) {
	cli := needTool(t, zkCli, "zookeeper")
	s := startRealZooKeeper(t)
	newCommands := []string{"addWatch", "removewatches", "getEphemerals_and_getAllChildrenNumber", "whoami", "chroot"}
	ran := 0
	for _, tr := range loadTranscripts(t) {
		if !slices.Contains(newCommands, tr.name) {
			continue
		}
		ran++
		t.Run(tr.name, func(t *testing.T) {
			zkWant, zkExit := tr.zkWant()
			script := tr.script()
			for _, run := range []struct {
				who  string
				want string
				exit int
				cmd  func() (string, int)
			}{
				{"zkCli.sh", zkWant, zkExit, func() (string, int) { return runZkCli(t, cli, s.addr+tr.chroot, script) }},
				{"zoo cli", tr.want(), tr.exit, func() (string, int) { return runZooCli(s.addr+tr.chroot, script) }},
			} {
				s.reset(t)
				s.create(t, tr.setup...)
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
		t.Fatalf("ran %d cases of %d: a testdata/cli file was renamed", ran, len(newCommands))
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

// startRealZooKeeper runs a standalone Apache ZooKeeper with TTL nodes enabled
// and zoo's test super user ("super:secret"), killed with the test, and
// returns it with an admin session.
func startRealZooKeeper(t *testing.T) *cliServer {
	t.Helper()
	addr := realzk.Standalone(t, 200*time.Millisecond, "zookeeper.extendedTypesEnabled=true",
		"zookeeper.DigestAuthenticationProvider.superDigest="+zoo.DigestID("super", "secret"))
	return &cliServer{addr: addr, admin: adminConn(t, addr)}
}
