package zoo_test

import (
	"bytes"
	"errors"
	"path/filepath"
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

// A byte changed in a stored log entry (same length, so only its checksum
// can tell) stops that replica when it replays the entry: it serves neither
// the altered data nor anything after it, and says which entry of which file
// is corrupt; the other replicas carry on.
func TestFlippedLogEntryStopsTheReplica(t *testing.T) {
	c := newCluster(t, 3, zootest.Options{})
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
	// The others still serve the original data, and take writes.
	data, _, err := s.Get(ctx, "/victim")
	if err != nil || !bytes.Equal(data, original) {
		t.Fatalf("the leader's /victim = %q, %v", data, err)
	}
	mustCreate(t, ctx, s, "/still-writable", nil, zoo.ModePersistent)
}
