package zoo_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/zooraft/zoo"
	"github.com/zooraft/zoo/internal/testkit"
	"github.com/zooraft/zoo/zootest"
)

// rewriteLogEntry replaces want by repl (same length) inside the stored raft
// log entry that holds it, in a stopped replica's raft.db, as a flipped disk
// block would, and returns the entry's index.
func rewriteLogEntry(t *testing.T, dir string, want, repl []byte) uint64 {
	t.Helper()
	db, err := bbolt.Open(filepath.Join(dir, "raft.db"), 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var index uint64
	err = db.Update(func(tx *bbolt.Tx) error {
		logs := tx.Bucket([]byte("logs"))
		return logs.ForEach(func(k, v []byte) error {
			if i := bytes.Index(v, want); i >= 0 {
				nv := bytes.Clone(v)
				copy(nv[i:], repl)
				index = uint64(k[0])<<56 | uint64(k[1])<<48 | uint64(k[2])<<40 | uint64(k[3])<<32 |
					uint64(k[4])<<24 | uint64(k[5])<<16 | uint64(k[6])<<8 | uint64(k[7])
				return logs.Put(bytes.Clone(k), nv)
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if index == 0 {
		t.Fatalf("no log entry in %s holds %q", dir, want)
	}
	return index
}

// onRaftDB keeps every replica's log in raft.db.
var onRaftDB = zootest.Options{Configure: func(_ int, cfg *zoo.Config) { cfg.LogStore = zoo.LogStoreBolt }}

// othersCarryOn checks, through s on a healthy replica, that /victim still
// holds original and that writes still commit.
func othersCarryOn(t *testing.T, ctx context.Context, s *zoo.Session, original []byte) {
	t.Helper()
	data, _, err := s.Get(ctx, "/victim")
	if err != nil || !bytes.Equal(data, original) {
		t.Fatalf("the leader's /victim = %q, %v", data, err)
	}
	mustCreate(t, ctx, s, "/still-writable", nil, zoo.ModePersistent)
}

// A byte changed in a log entry stored in raft.db (same length, so only its
// checksum can tell) stops that replica when it replays the entry: it serves
// neither the altered data nor anything after it, and says which entry of
// which file is corrupt; the other replicas carry on.
func TestFlippedLogEntryStopsTheReplica(t *testing.T) {
	c := newCluster(t, 3, onRaftDB)
	ctx := testkit.Context(t)
	leader := c.WaitLeader()
	f := followers(c, leader)[0]
	s := sess(t, c, leader)
	original, altered := []byte("ORIGINAL-DATA-7f3a9c"), []byte("ALTERED!-DATA-7f3a9c")
	mustCreate(t, ctx, s, "/victim", original, zoo.ModePersistent)
	mustCreate(t, ctx, s, "/after", nil, zoo.ModePersistent)
	testkit.Eventually(t, 10*time.Second, "the follower applied both writes", func() bool {
		return existsOn(t, ctx, c, f, "/after")
	})

	c.Stop(f)
	index := rewriteLogEntry(t, c.Dir(f), original, altered)
	e := c.Restart(f)

	select {
	case <-e.Stopped():
	case <-time.After(30 * time.Second):
		t.Fatal("the replica did not stop at the corrupt entry")
	}
	var ce *zoo.CorruptionError
	if err := e.Failure(); !errors.As(err, &ce) || ce.Index != index ||
		ce.Store != filepath.Join(c.Dir(f), "raft.db") || !errors.Is(err, zoo.ErrConnectionLoss) {
		t.Fatalf("Failure() = %v, want a CorruptionError at entry %d of %s", err, index, filepath.Join(c.Dir(f), "raft.db"))
	}
	if e.Serving() {
		t.Fatal("the corrupt replica still reports serving")
	}
	if _, err := e.NewSession(ctx); err == nil {
		t.Fatal("the corrupt replica opened a session")
	}
	othersCarryOn(t, ctx, s, original)
}

// A byte changed in a log entry stored in the WAL keeps that replica from
// starting: its batch fails the checksum raft-wal wrote with it, and the
// error names the segment file. The other replicas carry on.
func TestFlippedWALEntryRefusesToStart(t *testing.T) {
	c := newCluster(t, 3, zootest.Options{})
	ctx := testkit.Context(t)
	leader := c.WaitLeader()
	f := followers(c, leader)[0]
	s := sess(t, c, leader)
	original, altered := []byte("ORIGINAL-DATA-5be21d"), []byte("ALTERED!-DATA-5be21d")
	mustCreate(t, ctx, s, "/victim", original, zoo.ModePersistent)
	testkit.Eventually(t, 10*time.Second, "the follower applied the write", func() bool {
		return existsOn(t, ctx, c, f, "/victim")
	})
	mustCreate(t, ctx, s, "/after", nil, zoo.ModePersistent) // a later batch
	testkit.Eventually(t, 10*time.Second, "the follower applied the later write", func() bool {
		return existsOn(t, ctx, c, f, "/after")
	})

	c.Stop(f)
	segments, _ := filepath.Glob(filepath.Join(c.Dir(f), "wal", "*.wal"))
	var changed string
	for _, path := range segments {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if i := bytes.Index(b, original); i >= 0 {
			copy(b[i:], altered)
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
			changed = path
		}
	}
	if changed == "" {
		t.Fatalf("no WAL segment of %s holds %q", c.Dir(f), original)
	}
	err := c.Start(f)
	var ce *zoo.CorruptionError
	if !errors.As(err, &ce) || ce.Store != changed || !strings.Contains(err.Error(), "CRC-32C") {
		t.Fatalf("Start: %v, want a CorruptionError naming %s", err, changed)
	}
	othersCarryOn(t, ctx, s, original)
}
