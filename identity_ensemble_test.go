package zoo

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zooraft/zoo/internal/testkit"
)

// lonelyOnDisk opens a lone replica in dir, waits until it stored its
// ensemble's id, makes n znodes under prefix and a snapshot, and closes it.
func lonelyOnDisk(t *testing.T, dir, prefix string, n int) {
	t.Helper()
	e, s, ctx := loneSession(t, Config{Dir: dir, TickTime: 50 * time.Millisecond})
	defer e.Close()
	for i := range n {
		if _, err := s.Create(ctx, fmt.Sprintf("/%s%03d", prefix, i), nil, ModePersistent, nil); err != nil {
			t.Fatal(err)
		}
	}
	testkit.Eventually(t, 10*time.Second, "the ensemble id stored", func() bool { return e.storedEnsemble() != nil })
	s.Close(ctx)
	if err := e.raft.Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
}

// A snapshot copied in from another ensemble's data dir is refused at Open
// with an IdentityError, rather than served as this replica's state.
func TestSnapshotOfAnotherEnsembleIsRefused(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	lonelyOnDisk(t, a, "a", 3)
	lonelyOnDisk(t, b, "b", 30) // further on: its snapshot sorts as the newest
	theirs := snapshotDirs(t, b)[0]
	if err := os.CopyFS(filepath.Join(a, "snapshots", filepath.Base(theirs)), os.DirFS(theirs)); err != nil {
		t.Fatal(err)
	}
	if got := snapshotDirs(t, a)[0]; filepath.Base(got) != filepath.Base(theirs) {
		t.Fatalf("the copied snapshot is not the newest: %s", got)
	}
	e, err := Open(Config{Dir: a, TickTime: 50 * time.Millisecond})
	if err == nil {
		e.Close()
		t.Fatal("opened a dir whose newest snapshot is another ensemble's")
	}
	var ie *IdentityError
	if !errors.As(err, &ie) || !strings.Contains(err.Error(), "another ensemble") {
		t.Fatalf("Open: %v, want an IdentityError naming another ensemble", err)
	}
}

// The first opEnsemble names the ensemble for good, and snapshots carry the
// name.
func TestFirstEnsembleNameWins(t *testing.T) {
	h := newTestFSM(t)
	first, second := bytes.Repeat([]byte{1}, ensembleIDBytes), bytes.Repeat([]byte{2}, ensembleIDBytes)
	if r := h.apply(&command{op: opEnsemble, ensemble: []byte("short")}); r.err == nil {
		t.Fatal("an id of 5 bytes was taken")
	}
	if r := h.apply(&command{op: opEnsemble, ensemble: first}); r.err != nil {
		t.Fatal(r.err)
	}
	if r := h.apply(&command{op: opEnsemble, ensemble: first}); r.err != nil {
		t.Fatalf("the same id again: %v", r.err)
	}
	if r := h.apply(&command{op: opEnsemble, ensemble: second}); !errors.Is(r.err, errEnsembleNamed) {
		t.Fatalf("a second id: %v, want errEnsembleNamed", r.err)
	}
	dst := newTestFSM(t)
	if err := dst.f.Restore(readCloser(snapshotBytes(t, h.f))); err != nil {
		t.Fatal(err)
	}
	if got := dst.f.ensembleID(); !bytes.Equal(got, first) {
		t.Fatalf("restored ensemble id %x, want %x", got, first)
	}
}
