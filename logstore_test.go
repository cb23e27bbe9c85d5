package zoo

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	wal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"
	"github.com/hashicorp/raft-wal/segment"
	"github.com/hashicorp/raft-wal/types"
	"go.etcd.io/bbolt"
)

// openLone opens a lone replica in dir with the given LogStore, writes n
// nodes under prefix, and closes it.
func openLone(t *testing.T, dir string, store LogStore, prefix string, n int) {
	t.Helper()
	e, s, ctx := loneSession(t, Config{Dir: dir, LogStore: store, TickTime: 50 * time.Millisecond})
	defer e.Close()
	for i := range n {
		if _, err := s.Create(ctx, fmt.Sprintf("%s%04d", prefix, i), []byte("data"), ModePersistent, nil); err != nil {
			t.Fatal(err)
		}
	}
}

// childrenOf opens dir, counts the children of path, and closes it.
func childrenOf(t *testing.T, dir, path string) int {
	t.Helper()
	e, s, ctx := loneSession(t, Config{Dir: dir, TickTime: 50 * time.Millisecond})
	defer e.Close()
	kids, _, err := s.Children(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	return len(kids)
}

func storedLogStore(t *testing.T, dir string) string {
	t.Helper()
	db, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(dir, "raft.db"), BoltOptions: &bbolt.Options{ReadOnly: true, Timeout: time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	v, err := db.Get(keyLogStore)
	if err != nil {
		t.Fatal(err)
	}
	return string(v)
}

func TestFreshDirKeepsItsLogInTheWAL(t *testing.T) {
	dir := t.TempDir()
	openLone(t, dir, "", "/a", 20)
	if got := storedLogStore(t, dir); got != string(LogStoreWAL) {
		t.Fatalf("raft.db records log store %q, want %q", got, LogStoreWAL)
	}
	segs, _ := filepath.Glob(filepath.Join(dir, walDirName, "*.wal"))
	if len(segs) == 0 {
		t.Fatal("no WAL segment in the data dir")
	}
	// raft.db holds no entries: the log is in the WAL.
	db, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(dir, "raft.db"), BoltOptions: &bbolt.Options{ReadOnly: true, Timeout: time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	last, err := db.LastIndex()
	db.Close()
	if err != nil || last != 0 {
		t.Fatalf("raft.db's log ends at %d (%v), want empty", last, err)
	}
	_, err = Open(Config{Dir: dir, LogStore: LogStoreBolt})
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Field != "LogStore" || !strings.Contains(err.Error(), dir) {
		t.Fatalf("Open asking raft.db of a WAL dir: %v, want a LogStore ConfigError naming the dir", err)
	}
	if n := childrenOf(t, dir, "/"); n < 20 {
		t.Fatalf("after reopening, / has %d children, want at least 20", n)
	}
}

// A data dir written before zoo recorded its log store (raft.db holds the
// log, no zoo.logstore key) keeps its log in raft.db.
func TestDirFromBeforeTheWALKeepsRaftDB(t *testing.T) {
	dir := t.TempDir()
	openLone(t, dir, LogStoreBolt, "/old", 15)
	db, err := bbolt.Open(filepath.Join(dir, "raft.db"), 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bbolt.Tx) error { return tx.Bucket([]byte("conf")).Delete(keyLogStore) })
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	if n := childrenOf(t, dir, "/"); n < 15 {
		t.Fatalf("/ has %d children, want at least 15", n)
	}
	if got := storedLogStore(t, dir); got != string(LogStoreBolt) {
		t.Fatalf("raft.db records log store %q, want %q", got, LogStoreBolt)
	}
	if _, err := os.Stat(filepath.Join(dir, walDirName)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a WAL dir appeared in a raft.db dir: %v", err)
	}
}

func TestUnknownLogStoreIsAConfigError(t *testing.T) {
	_, err := Open(Config{Dir: t.TempDir(), LogStore: "rocks"})
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Field != "LogStore" {
		t.Fatalf("Open: %v, want a LogStore ConfigError", err)
	}
}

// A WAL lost or replaced while raft.db remains is a replica that lost its
// log: it must not vote, so it does not start.
func TestWALLostOrReplacedIsRefused(t *testing.T) {
	dir, other := t.TempDir(), t.TempDir()
	openLone(t, dir, "", "/a", 5)
	openLone(t, other, "", "/b", 5)
	wdir := filepath.Join(dir, walDirName)
	if err := os.Rename(wdir, wdir+".moved"); err != nil {
		t.Fatal(err)
	}
	_, err := Open(Config{Dir: dir})
	var ie *IdentityError
	if !errors.As(err, &ie) || !strings.Contains(err.Error(), "lost or wiped") {
		t.Fatalf("Open without its WAL: %v, want an IdentityError", err)
	}
	if err := os.RemoveAll(wdir); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(other, walDirName), wdir); err != nil {
		t.Fatal(err)
	}
	_, err = Open(Config{Dir: dir})
	if !errors.As(err, &ie) || !strings.Contains(err.Error(), "another data dir") {
		t.Fatalf("Open with another dir's WAL: %v, want an IdentityError", err)
	}
}

// tailSegment returns the path of the WAL's open segment in dir.
func tailSegment(t *testing.T, dir string) (string, types.SegmentInfo) {
	t.Helper()
	var meta metadb.BoltMetaDB
	state, err := meta.Load(filepath.Join(dir, walDirName))
	meta.Close()
	if err != nil || len(state.Segments) == 0 {
		t.Fatalf("WAL metadata: %v, %d segments", err, len(state.Segments))
	}
	info := state.Segments[len(state.Segments)-1]
	return filepath.Join(dir, walDirName, segment.FileName(info)), info
}

// batchOffsets returns the offsets of the commit frames in a segment file.
func commitOffsets(t *testing.T, path string) []int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for off := walFileHeaderLen; off+walFrameHeaderLen <= len(b); {
		typ, n := b[off], int(b[off+4])|int(b[off+5])<<8|int(b[off+6])<<16|int(b[off+7])<<24
		switch typ {
		case walFrameZero:
			return out
		case walFrameCommit:
			out = append(out, off)
			off += walFrameHeaderLen
		default:
			off += int(walFrameSize(int64(n)))
		}
	}
	return out
}

// zeroFrom zeroes a file from off to its end, as a write that never reached
// the disk leaves a preallocated file.
func zeroFrom(t *testing.T, path string, off int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	clear(b[off:])
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// After a clean stop, nothing may be missing from the WAL: losing its last
// batch is corruption, though raft-wal alone would drop it as a torn write.
func TestEndOfWALLostAfterACleanStopIsCorruption(t *testing.T) {
	dir := t.TempDir()
	openLone(t, dir, "", "/a", 30)
	path, _ := tailSegment(t, dir)
	commits := commitOffsets(t, path)
	zeroFrom(t, path, commits[len(commits)-2]+walFrameHeaderLen+8) // inside the last batch
	_, err := Open(Config{Dir: dir})
	var ce *CorruptionError
	if !errors.As(err, &ce) || ce.Store != filepath.Join(dir, walDirName) || !strings.Contains(err.Error(), "end of the log was lost") {
		t.Fatalf("Open: %v, want a CorruptionError for the lost end of the log", err)
	}
}

// A torn last batch beyond the floor (written, never synced, when the
// replica crashed) is dropped, and the replica starts with what it synced.
func TestTornTailBeyondTheFloorIsDropped(t *testing.T) {
	dir := t.TempDir()
	openLone(t, dir, "", "/a", 30)
	path, _ := tailSegment(t, dir)
	commits := commitOffsets(t, path)
	zeroFrom(t, path, commits[len(commits)-2]+walFrameHeaderLen+8)
	// A crash before the floor caught up: the floor one batch back.
	setFloor(t, dir, func(floor uint64) uint64 { return floor - 1 })
	if n := childrenOf(t, dir, "/"); n < 29 {
		t.Fatalf("/ has %d children after dropping the torn batch, want at least 29", n)
	}
}

func setFloor(t *testing.T, dir string, f func(uint64) uint64) {
	t.Helper()
	db, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(dir, "raft.db"), BoltOptions: &bbolt.Options{Timeout: time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	floor, err := db.GetUint64(keyLogFloor)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.SetUint64(keyLogFloor, f(floor)); err != nil {
		t.Fatal(err)
	}
}

// writeWAL writes batches of entries into a WAL in dir with small segments,
// so that some are sealed, and closes it.
func writeWAL(t *testing.T, dir string, batches, per int) {
	t.Helper()
	w, err := wal.Open(dir, wal.WithSegmentSize(8<<10))
	if err != nil {
		t.Fatal(err)
	}
	idx := uint64(1)
	for range batches {
		var logs []*raft.Log
		for range per {
			logs = append(logs, &raft.Log{Index: idx, Term: 1, Type: raft.LogCommand, Data: []byte(fmt.Sprintf("entry-%06d-payload", idx))})
			idx++
		}
		if err := w.StoreLogs(logs); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// segments lists a WAL's segments from its metadata.
func segments(t *testing.T, dir string) []types.SegmentInfo {
	t.Helper()
	var meta metadb.BoltMetaDB
	state, err := meta.Load(dir)
	meta.Close()
	if err != nil {
		t.Fatal(err)
	}
	return state.Segments
}

// checkWAL finds every changed byte of a synced batch, in sealed segments
// and in the tail, and lets a torn last batch of the tail through.
func TestCheckWAL(t *testing.T) {
	fresh := func(t *testing.T) (string, []types.SegmentInfo) {
		dir := t.TempDir()
		writeWAL(t, dir, 200, 3)
		segs := segments(t, dir)
		if len(segs) < 3 || !segs[len(segs)-1].SealTime.IsZero() {
			t.Fatalf("%d segments, the last sealed: want some sealed and an open tail", len(segs))
		}
		return dir, segs
	}
	flip := func(t *testing.T, path string, off int) {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		b[off] ^= 0x20
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	hlog := newHCLogger(slog.New(slog.DiscardHandler), "test")
	t.Run("intact", func(t *testing.T) {
		dir, _ := fresh(t)
		if err := checkWAL(dir, hlog); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("a byte changed in a sealed segment", func(t *testing.T) {
		dir, segs := fresh(t)
		path := filepath.Join(dir, segment.FileName(segs[1]))
		flip(t, path, commitOffsets(t, path)[2]-5) // inside the third batch's last entry
		var ce *CorruptionError
		if err := checkWAL(dir, hlog); !errors.As(err, &ce) || ce.Store != path || !strings.Contains(err.Error(), "CRC-32C") {
			t.Fatalf("checkWAL: %v, want a CorruptionError naming %s", err, path)
		}
	})
	t.Run("a byte changed before the tail's last batch", func(t *testing.T) {
		dir, segs := fresh(t)
		path := filepath.Join(dir, segment.FileName(segs[len(segs)-1]))
		commits := commitOffsets(t, path)
		flip(t, path, commits[len(commits)-2]-5)
		var ce *CorruptionError
		if err := checkWAL(dir, hlog); !errors.As(err, &ce) || ce.Store != path || !strings.Contains(err.Error(), "later ones pass") {
			t.Fatalf("checkWAL: %v, want a CorruptionError naming %s", err, path)
		}
	})
	t.Run("a sealed segment cut short", func(t *testing.T) {
		dir, segs := fresh(t)
		path := filepath.Join(dir, segment.FileName(segs[0]))
		zeroFrom(t, path, commitOffsets(t, path)[1])
		var ce *CorruptionError
		if err := checkWAL(dir, hlog); !errors.As(err, &ce) || ce.Store != path {
			t.Fatalf("checkWAL: %v, want a CorruptionError naming %s", err, path)
		}
	})
	t.Run("the tail's last batch torn", func(t *testing.T) {
		dir, segs := fresh(t)
		path := filepath.Join(dir, segment.FileName(segs[len(segs)-1]))
		commits := commitOffsets(t, path)
		zeroFrom(t, path, commits[len(commits)-2]+walFrameHeaderLen+8)
		if err := checkWAL(dir, hlog); err != nil {
			t.Fatalf("checkWAL of a torn tail: %v", err)
		}
		w, err := wal.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		if last, _ := w.LastIndex(); last != 597 {
			t.Fatalf("the WAL ends at %d, want 597 (the torn batch of 3 dropped)", last)
		}
	})
}

// The verifier's walk through the WAL returns what raft-wal's GetLog does,
// in order, out of order, across segments, for entries not yet synced when
// a chunk was read, and after the end of the log was deleted and written
// again differently.
func TestReadBackMatchesTheWAL(t *testing.T) {
	dir := t.TempDir()
	w, err := wal.Open(dir, wal.WithSegmentSize(64<<10))
	if err != nil {
		t.Fatal(err)
	}
	stable, err := raftboltdb.NewBoltStore(filepath.Join(t.TempDir(), "raft.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer stable.Close()
	wl, err := newWALLog(w, stable, dir)
	if err != nil {
		t.Fatal(err)
	}
	rb := &walReadBack{walLog: wl}
	defer rb.Close()
	next := uint64(1)
	appendBatch := func(n int, tag string) {
		var logs []*raft.Log
		for range n {
			logs = append(logs, &raft.Log{Index: next, Term: 1, Type: raft.LogCommand, Data: []byte(fmt.Sprintf("%s-%06d-%s", tag, next, strings.Repeat("x", int(next%300))))})
			next++
		}
		if err := rb.StoreLogs(logs); err != nil {
			t.Fatal(err)
		}
	}
	check := func(i uint64) {
		t.Helper()
		var got, want raft.Log
		if err := rb.GetLog(i, &got); err != nil {
			t.Fatalf("read back %d: %v", i, err)
		}
		if err := w.GetLog(i, &want); err != nil {
			t.Fatalf("raft-wal %d: %v", i, err)
		}
		if got.Index != want.Index || got.Term != want.Term || string(got.Data) != string(want.Data) {
			t.Fatalf("entry %d read back as %d/%d %q, raft-wal has %d/%d %q", i, got.Index, got.Term, got.Data, want.Index, want.Term, want.Data)
		}
	}
	for range 100 {
		appendBatch(7, "a")
	}
	for i := uint64(1); i < next; i++ { // in order, across segments
		check(i)
	}
	for _, i := range []uint64{500, 3, 699, 350, 351, 1} { // out of order
		check(i)
	}
	check(650)
	appendBatch(5, "b") // written after the walk's chunk was read
	for i := uint64(651); i < next; i++ {
		check(i)
	}
	if err := rb.DeleteRange(600, next-1); err != nil { // the end deleted, written again
		t.Fatal(err)
	}
	next = 600
	appendBatch(20, "c")
	for i := uint64(590); i < next; i++ {
		check(i)
	}
	var l raft.Log
	if err := rb.GetLog(605, &l); err != nil || !strings.HasPrefix(string(l.Data), "c-") {
		t.Fatalf("entry 605 after the rewrite: %q, %v", l.Data, err)
	}
}
