package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zooraft/zoo"
	"github.com/zooraft/zoo/internal/testkit"
	"github.com/zooraft/zoo/internal/zkclient"
)

// registered is the log line of a member whose data dir the ensemble records.
const registered = "data dir is the one the ensemble records"

// The wiped-data-dir defect with real zoo server processes and SIGKILL:
// follower B down; a write acknowledged by the leader A and follower C; A
// and C killed; C's data dir wiped (myid kept); B and C started. C must not
// help elect B, whose log lacks the write: it exits, saying its data dir is
// not the one the ensemble recorded, and B does not serve. When A returns,
// the write is there.
func TestWipedMemberProcessExitsInsteadOfVoting(t *testing.T) {
	e := startEnsemble(t, 3)
	testkit.Eventually(t, 30*time.Second, "every member registered its data dir", func() bool {
		for _, m := range e.members {
			if b, _ := os.ReadFile(m.log); !strings.Contains(string(b), registered) {
				return false
			}
		}
		return true
	})
	a := e.leader()
	if a == nil {
		t.Fatal("no leader")
	}
	var f []*member
	for _, m := range e.members {
		if m != a {
			f = append(f, m)
		}
	}
	b, c := f[0], f[1]

	e.stop(b, syscall.SIGKILL)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn, err := zkclient.Connect([]string{a.clientAddr}, zkclient.Options{SessionTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Create(ctx, "/acked", []byte("by A and C"), zoo.ModePersistent, zoo.OpenACL); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	e.stop(a, syscall.SIGKILL)
	e.stop(c, syscall.SIGKILL)
	wipe(t, filepath.Join(e.dir, strconv.Itoa(c.id)))

	e.start(b)
	e.start(c)
	exited := make(chan error, 1)
	go func() { exited <- c.cmd.Wait() }()
	select {
	case err := <-exited:
		c.cmd = nil
		if code := exitCode(err); code != 1 {
			t.Fatalf("the wiped member exited with %v, want code 1", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the wiped member did not exit")
	}
	if log, _ := os.ReadFile(c.log); !strings.Contains(string(log), "recorded another data dir for this replica") {
		t.Fatalf("the wiped member's output does not say why it stopped:\n%s", log)
	}
	if m := mode(b); m == "leader" || m == "follower" {
		t.Fatalf("B serves as %s without A: it was elected with the wiped member's vote", m)
	}

	e.start(a)
	conn, err = zkclient.Connect([]string{b.clientAddr}, zkclient.Options{SessionTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	testkit.Eventually(t, 60*time.Second, "the acknowledged write through B", func() bool {
		if conn.Sync(ctx, "/") != nil {
			return false
		}
		data, _, err := conn.Get(ctx, "/acked", false)
		return err == nil && string(data) == "by A and C"
	})
}

// wipe empties a data dir but for its myid, as an operator who "starts
// fresh" would.
func wipe(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, en := range entries {
		if en.Name() != "myid" {
			if err := os.RemoveAll(filepath.Join(dir, en.Name())); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// exitCode is a finished process's exit code (-1 if it did not exit normally).
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	return -1
}
