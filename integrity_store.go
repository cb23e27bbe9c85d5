package zoo

import (
	"fmt"
	"io"
	"path/filepath"
	"runtime/debug"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"
)

// This file is what a replica does, when it starts, with stores that are
// damaged: a raft.db bbolt cannot open, and a snapshot that does not open or
// restore.

// openBoltStore opens raft.db and reads its last entry back. bbolt panics on
// some damaged files (a truncated one: "invalid freelist page"), or reads a
// page its memory map places past the end of a truncated file, which faults;
// here both are an error naming the file, and the replica does not start.
func openBoltStore(path string) (store *raftboltdb.BoltStore, err error) {
	// A fault in the memory-mapped file panics this goroutine instead of
	// killing the process, so the recover below sees it.
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if p := recover(); p != nil {
			if store != nil {
				store.Close()
			}
			store, err = nil, fmt.Errorf("%w: the file is damaged (%v): move the data dir aside and rebuild this replica from the others", errCorrupt, p)
		}
	}()
	store, err = raftboltdb.New(raftboltdb.Options{Path: path, BoltOptions: &bbolt.Options{Timeout: time.Second}})
	if err != nil {
		return nil, err
	}
	last, err := store.LastIndex()
	if err == nil && last > 0 {
		var l raft.Log
		err = store.GetLog(last, &l)
	}
	if err != nil {
		store.Close()
		return nil, err
	}
	return store, nil
}

// snapshotGuard wraps the snapshot store raft restores from when it starts.
// raft tries the snapshots newest first and, when one does not open (its CRC
// fails) or does not restore (our own checks fail), the next older one; it
// then replays the log from that snapshot on, and if the log was compacted
// past it raft panics ("log not found"). The guard lists only the older
// snapshots the log still reaches back to, so raft either falls back to one
// that rebuilds the whole state or fails to start; and it remembers which
// snapshot failed and why, so Open can say it.
type snapshotGuard struct {
	raft.SnapshotStore
	logs raft.LogStore
	dir  string // the data dir, for errors

	mu     sync.Mutex
	opened *raft.SnapshotMeta // the snapshot raft last opened
	failed *CorruptionError   // the first snapshot that did not open or restore
}

// List returns the newest snapshot and the older ones the log reaches back
// to: falling back to any other would leave a gap between it and the log.
func (g *snapshotGuard) List() ([]*raft.SnapshotMeta, error) {
	list, err := g.SnapshotStore.List()
	if err != nil || len(list) < 2 {
		return list, err
	}
	first, err := g.logs.FirstIndex()
	if err != nil {
		return nil, err
	}
	keep := list[:1]
	for _, m := range list[1:] {
		if first != 0 && m.Index+1 >= first {
			keep = append(keep, m)
		}
	}
	return keep, nil
}

// Open opens a snapshot, noting why it failed if it does.
func (g *snapshotGuard) Open(id string) (*raft.SnapshotMeta, io.ReadCloser, error) {
	meta, rc, err := g.SnapshotStore.Open(id)
	g.mu.Lock()
	defer g.mu.Unlock()
	g.opened = meta
	if meta == nil {
		g.opened = &raft.SnapshotMeta{ID: id}
	}
	if err != nil {
		g.noteLocked(err)
	}
	return meta, rc, err
}

// restoreFailed is the FSM's report that the snapshot raft opened last did
// not restore.
func (g *snapshotGuard) restoreFailed(err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.noteLocked(err)
}

func (g *snapshotGuard) noteLocked(err error) {
	if g.failed != nil || g.opened == nil {
		return
	}
	g.failed = &CorruptionError{What: "snapshot " + g.opened.ID, Index: g.opened.Index,
		Store: filepath.Join(g.dir, "snapshots", g.opened.ID), Err: err}
}

// failure returns the first snapshot that did not open or restore, or nil.
func (g *snapshotGuard) failure() *CorruptionError {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.failed
}

// checkStart turns raft's start into what the operator needs to hear: a
// corrupt snapshot it could not fall back from is the error, and one it
// fell back from is a warning.
func (e *Ensemble) checkStart(g *snapshotGuard, startErr error) error {
	var c *CorruptionError
	if g != nil {
		c = g.failure()
	}
	switch {
	case startErr != nil && c != nil:
		return c
	case startErr != nil:
		return fmt.Errorf("zoo: start raft: %w", startErr)
	case c != nil:
		e.logger.Warn("zoo: a snapshot is corrupt; restored from an older one and replayed the log",
			"snapshot", c.Store, "err", c.Err)
	}
	return nil
}
