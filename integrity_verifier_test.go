package zoo

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zooraft/zoo/internal/testkit"
)

// overwriteInFile replaces every occurrence of want by repl (same length) in
// a file another handle has open, as a disk that returns other bytes would.
func overwriteInFile(t *testing.T, path string, want, repl []byte) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	for off := 0; ; {
		i := bytes.Index(b[off:], want)
		if i < 0 {
			break
		}
		if _, err := f.WriteAt(repl, int64(off+i)); err != nil {
			t.Fatal(err)
		}
		off += i + len(want)
		n++
	}
	if n == 0 {
		t.Fatalf("%q not found in %s", want, path)
	}
}

// Bytes of the log changed under a running replica, after it applied them
// (in raft.db, or in a WAL segment): the next checkpoint's read-back sees the
// range's checksum differ, the replica reads the range back entry by entry,
// and stops with a CorruptionError naming the entry that fails its own
// checksum.
func TestVerifierCatchesStorageCorruptionOnline(t *testing.T) {
	for _, store := range []LogStore{LogStoreBolt, LogStoreWAL} {
		t.Run(string(store), func(t *testing.T) { testVerifierCatchesStorageCorruption(t, store) })
	}
}

func testVerifierCatchesStorageCorruption(t *testing.T, store LogStore) {
	dir := t.TempDir()
	e, s, ctx := loneSession(t, Config{Dir: dir, LogStore: store, TickTime: 200 * time.Millisecond, hooks: &testHooks{noCheckpoints: true}})
	defer e.Close()
	checkpoint := func() {
		t.Helper()
		if _, err := e.applyAsLeader(ctx, encodeCommand(&command{op: opCheckpoint})); err != nil {
			t.Fatal(err)
		}
	}
	checkpoint()
	original := []byte("STORED-BYTES-4d1c8e")
	if _, err := s.Create(ctx, "/stored", original, ModePersistent, nil); err != nil {
		t.Fatal(err)
	}
	checkpoint() // verifies [first, second): all still as written
	testkit.Eventually(t, 10*time.Second, "a verified range counted", func() bool {
		st, err := e.Status()
		return err == nil && st.LogVerifier.Verified >= 1 && st.LogVerifier.StorageMismatches == 0
	})
	if _, err := s.Create(ctx, "/later", original, ModePersistent, nil); err != nil {
		t.Fatal(err)
	}
	files := []string{filepath.Join(dir, "raft.db")}
	if store == LogStoreWAL {
		files, _ = filepath.Glob(filepath.Join(dir, walDirName, "*.wal"))
	}
	for _, path := range files {
		overwriteInFile(t, path, original, []byte("CHANGED-BYTES-4d1c8e"))
	}
	e.applyAsLeader(ctx, encodeCommand(&command{op: opCheckpoint})) // verifies [second, third)
	select {
	case <-e.Stopped():
	case <-time.After(20 * time.Second):
		t.Fatal("the corrupted range was not caught")
	}
	if n := e.verifierCounts.snapshot().StorageMismatches; n < 1 {
		t.Errorf("%d storage mismatches counted, want at least 1", n)
	}
	var ce *CorruptionError
	if err := e.Failure(); !errors.As(err, &ce) || !errors.Is(err, errChecksum) ||
		!strings.Contains(ce.What, "log entry ") || !strings.Contains(err.Error(), "read back for the log verifier") {
		t.Fatalf("Failure() = %v, want a CorruptionError for the entry read back", err)
	}
}
