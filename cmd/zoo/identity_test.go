package main

import (
	"bytes"
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

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	wal "github.com/hashicorp/raft-wal"
	"go.etcd.io/bbolt"

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

// belongs is the log line of a member that stored its ensemble's id.
const belongs = "this replica belongs to ensemble"

// An operator starts a member of ensemble A on the data dir of a member of
// ensemble B (same myid, wrong dir). Its peers and it refuse each other's
// links, naming the other ensemble: A keeps serving without it, and B's data
// dir is not overwritten with A's log, as raft alone would do.
func TestMemberOnAnotherEnsemblesDirIsRefused(t *testing.T) {
	a, b := startEnsemble(t, 3), startEnsemble(t, 3)
	for _, e := range []*ensemble{a, b} {
		testkit.Eventually(t, 30*time.Second, "every member stored its ensemble's id", func() bool {
			for _, m := range e.members {
				if log, _ := os.ReadFile(m.log); !strings.Contains(string(log), belongs) {
					return false
				}
			}
			return true
		})
	}
	for _, e := range b.members {
		b.stop(e, syscall.SIGTERM)
	}
	imposter := a.members[2]
	if imposter == a.leader() {
		a.stop(imposter, syscall.SIGTERM) // a leader that is not member 3
		imposter = a.members[1]
		a.start(a.members[2])
	}
	a.stop(imposter, syscall.SIGTERM)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	write := func(path string) {
		t.Helper()
		var addrs []string
		for _, m := range a.members {
			if m != imposter {
				addrs = append(addrs, m.clientAddr)
			}
		}
		conn, err := zkclient.Connect(addrs, zkclient.Options{SessionTimeout: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := conn.Create(ctx, path, []byte("A's"), zoo.ModePersistent, zoo.OpenACL); err != nil {
			t.Fatalf("A without the imposter: create %s: %v", path, err)
		}
	}
	write("/written-by-a")

	theirDir := filepath.Join(b.dir, strconv.Itoa(imposter.id))
	cfg, err := os.ReadFile(imposter.cfg)
	if err != nil {
		t.Fatal(err)
	}
	ourDir := filepath.Join(a.dir, strconv.Itoa(imposter.id))
	imposter.cfg = filepath.Join(a.dir, "imposter.cfg")
	imposter.log = filepath.Join(a.dir, "imposter.log")
	if err := os.WriteFile(imposter.cfg, []byte(strings.ReplaceAll(string(cfg), "dataDir="+ourDir, "dataDir="+theirDir)), 0o644); err != nil {
		t.Fatal(err)
	}
	a.start(imposter)
	testkit.Eventually(t, 30*time.Second, "the imposter says it met another ensemble", func() bool {
		log, _ := os.ReadFile(imposter.log)
		return strings.Contains(string(log), "another ensemble")
	})
	for range 5 { // A serves throughout, with its own two members
		write("/written-by-a-" + strconv.FormatInt(time.Now().UnixNano(), 36))
		time.Sleep(time.Second)
	}
	a.stop(imposter, syscall.SIGTERM)

	entries := logEntries(t, theirDir)
	if len(entries) == 0 {
		t.Fatalf("B's member's log in %s holds no entries: the check below would not check", theirDir)
	}
	for _, l := range entries {
		if bytes.Contains(l.Data, []byte("/written-by-a")) {
			t.Fatalf("B's member's log holds A's entry %d: A's leader overwrote it", l.Index)
		}
	}
}

// logEntries reads a stopped replica's raft log: from its WAL, or from
// raft.db in a dir that keeps it there.
func logEntries(t *testing.T, dir string) []raft.Log {
	t.Helper()
	var store raft.LogStore
	if _, err := os.Stat(filepath.Join(dir, "wal")); err == nil {
		w, err := wal.Open(filepath.Join(dir, "wal"))
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		store = w
	} else {
		db, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(dir, "raft.db"), BoltOptions: &bbolt.Options{ReadOnly: true, Timeout: time.Second}})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		store = db
	}
	first, _ := store.FirstIndex()
	last, _ := store.LastIndex()
	var out []raft.Log
	for i := first; i <= last && i > 0; i++ {
		var l raft.Log
		if err := store.GetLog(i, &l); err != nil {
			t.Fatal(err)
		}
		out = append(out, l)
	}
	return out
}
