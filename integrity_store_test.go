package zoo

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// snapshotDirs lists a data dir's raft snapshots, newest first.
func snapshotDirs(t *testing.T, dir string) []string {
	t.Helper()
	store, err := raft.NewFileSnapshotStore(dir, 2, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	list, err := store.List()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range list {
		out = append(out, filepath.Join(dir, "snapshots", m.ID))
	}
	return out
}

// openWithSnapshots opens a lone replica in dir whose raft keeps only
// trailing entries after a snapshot, writes, and takes two snapshots with
// between writes in between; then closes it.
func openWithSnapshots(t *testing.T, dir string, between, trailing int) {
	t.Helper()
	cfg := Config{Dir: dir, TickTime: 50 * time.Millisecond, SnapshotThreshold: 1 << 20,
		hooks: &testHooks{tuneRaft: func(rc *raft.Config) { rc.TrailingLogs = uint64(trailing) }}}
	e, s, ctx := loneSession(t, cfg)
	n := 0
	write := func(k int) {
		for range k {
			n++
			if _, err := s.Create(ctx, fmt.Sprintf("/n%04d", n), nil, ModePersistent, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	write(10)
	if err := e.raft.Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	write(between)
	if err := e.raft.Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	write(5)
	s.Close(ctx)
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if got := len(snapshotDirs(t, dir)); got != 2 {
		t.Fatalf("%d snapshots, want 2", got)
	}
}

// flipSnapshotByte changes one byte in the middle of a snapshot's state.
func flipSnapshotByte(t *testing.T, snap string) {
	t.Helper()
	p := filepath.Join(snap, "state.bin")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x40
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// A corrupt newest snapshot whose older sibling the log no longer reaches
// back to: the replica cannot rebuild its state from its own data, and Open
// says so with a CorruptionError naming the snapshot, never a panic.
func TestCorruptSnapshotWithoutFallbackRefusesToOpen(t *testing.T) {
	dir := t.TempDir()
	openWithSnapshots(t, dir, 100, 4)
	newest := snapshotDirs(t, dir)[0]
	flipSnapshotByte(t, newest)
	e, err := Open(Config{Dir: dir, TickTime: 50 * time.Millisecond})
	if err == nil {
		e.Close()
		t.Fatal("opened a replica whose newest snapshot is corrupt and whose log does not reach the older one")
	}
	var ce *CorruptionError
	if !errors.As(err, &ce) || ce.Store != newest {
		t.Fatalf("Open: %v, want a CorruptionError naming %s", err, newest)
	}
}

// With the log reaching back to the older snapshot, the replica falls back
// to it and replays the log: every node is there.
func TestCorruptSnapshotFallsBackToTheOlderOneAndTheLog(t *testing.T) {
	dir := t.TempDir()
	openWithSnapshots(t, dir, 20, 1000)
	newest := snapshotDirs(t, dir)[0]
	flipSnapshotByte(t, newest)
	var logs syncBuffer
	e, err := Open(Config{Dir: dir, TickTime: 50 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if !strings.Contains(logs.String(), "a snapshot is corrupt") || !strings.Contains(logs.String(), newest) {
		t.Fatalf("no warning naming the corrupt snapshot %s; logs:\n%s", newest, logs.String())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.WaitServing(ctx); err != nil {
		t.Fatal(err)
	}
	s, err := e.NewSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := s.AllChildrenNumber(ctx, "/"); err != nil || n < 35 {
		t.Fatalf("nodes after falling back: %d, %v; want the 35 written", n, err)
	}
}

// syncBuffer is a bytes.Buffer safe for a logger's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// A raft.db that is garbage, or cut short, is an error from Open naming the
// file, never a panic.
// truncateTo cuts a file to the size that cut returns for its current size.
func truncateTo(cut func(size int64) int64) func(t *testing.T, path string) {
	return func(t *testing.T, path string) {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(path, cut(fi.Size())); err != nil {
			t.Fatal(err)
		}
	}
}

// A raft.db that is garbage or truncated anywhere is refused with an error
// naming it: never a panic, and never a fault in its memory map that kills
// the process.
func TestDamagedRaftDBRefusesToOpen(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, path string)
	}{
		{"garbage", func(t *testing.T, path string) {
			if err := os.WriteFile(path, bytes.Repeat([]byte("not a bolt database "), 4096), 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"truncated to a third", truncateTo(func(size int64) int64 { return size / 3 })},
		{"truncated after its meta pages", truncateTo(func(int64) int64 { return 3 * 4096 })},
		{"truncated before its freelist page", func(t *testing.T, path string) {
			// The newer of the two meta pages names the freelist page: a file
			// that ends before it has bbolt read past the end of its map.
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			pageSize := int64(binary.LittleEndian.Uint32(b[16+8:]))
			meta := func(i int64) (txid, freelist uint64) {
				m := b[i*pageSize+16:]
				return binary.LittleEndian.Uint64(m[48:]), binary.LittleEndian.Uint64(m[32:])
			}
			tx0, fl0 := meta(0)
			tx1, fl1 := meta(1)
			freelist := fl0
			if tx1 > tx0 {
				freelist = fl1
			}
			if freelist < 2 || int64(freelist)*pageSize >= int64(len(b)) {
				t.Fatalf("freelist page %d in a file of %d pages", freelist, int64(len(b))/pageSize)
			}
			if err := os.Truncate(path, int64(freelist)*pageSize); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			openWithSnapshots(t, dir, 10, 1000)
			path := filepath.Join(dir, "raft.db")
			tc.damage(t, path)
			e, err := Open(Config{Dir: dir, TickTime: 50 * time.Millisecond})
			if err == nil {
				e.Close()
				t.Fatal("opened a damaged raft.db")
			}
			if !strings.Contains(err.Error(), path) {
				t.Fatalf("Open: %v, want an error naming %s", err, path)
			}
		})
	}
}

// Durability never rests on the OS page cache: the one place zoo builds its
// log store leaves bbolt's fsync on (raft-boltdb's NoSync, bbolt's NoSync),
// read from the open database itself.
func TestLogStoreSyncsEveryCommit(t *testing.T) {
	store, err := openBoltStore(filepath.Join(t.TempDir(), "raft.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	conn := reflect.ValueOf(store).Elem().FieldByName("conn")
	if !conn.IsValid() || conn.IsNil() {
		t.Fatal("raft-boltdb's BoltStore has no conn field any more: check NoSync another way")
	}
	db := conn.Elem()
	for _, field := range []string{"NoSync", "NoGrowSync"} {
		if f := db.FieldByName(field); !f.IsValid() || f.Bool() {
			t.Errorf("bbolt %s = %v, want false", field, f)
		}
	}
}
