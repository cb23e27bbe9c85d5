package zoo

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	wal "github.com/hashicorp/raft-wal"
)

// This file is where a data dir keeps its raft log. raft.db (bbolt) always
// holds raft's stable store (term, vote) and zoo's identity keys; the log
// itself is in segment files under wal/ (hashicorp/raft-wal) or in raft.db.
//
// The WAL is the default because it writes a batch of entries with one
// fdatasync where a bbolt commit takes two (its pages, then its meta page),
// and every write waits for the leader's sync and then a follower's in turn:
// with the WAL a write at one outstanding takes about half as long. Both
// sync every append before raft counts it.

// LogStore names where a replica keeps its raft log.
type LogStore string

const (
	// LogStoreWAL keeps the log in segment files under Dir/wal
	// (hashicorp/raft-wal): one fdatasync per batch of entries.
	LogStoreWAL LogStore = "wal"
	// LogStoreBolt keeps the log in Dir/raft.db (hashicorp/raft-boltdb):
	// two fdatasyncs per batch. Dirs from before the WAL keep it.
	LogStoreBolt LogStore = "bolt"
)

// keyLogStore is the stable store key naming the dir's log store, written
// before the first entry so that a dir never changes stores under raft.
var keyLogStore = []byte("zoo.logstore")

// walDirName is the WAL's directory inside the data dir.
const walDirName = "wal"

// chooseLogStore returns the dir's log store: the one it records, or for a
// dir that records none, raft.db for a dir that already has raft state
// (written before zoo recorded the choice) and the requested one (default
// the WAL) for a fresh dir, recording it.
func chooseLogStore(stable *raftboltdb.BoltStore, dir string, requested LogStore) (LogStore, error) {
	have, err := stable.Get(keyLogStore)
	if err != nil && !errors.Is(err, raftboltdb.ErrKeyNotFound) {
		return "", err
	}
	kind := LogStore(have)
	if kind == "" {
		last, err := stable.LastIndex()
		if err != nil {
			return "", err
		}
		term, err := stable.GetUint64([]byte("CurrentTerm"))
		if err != nil && !errors.Is(err, raftboltdb.ErrKeyNotFound) {
			return "", err
		}
		switch {
		case last > 0 || term > 0:
			kind = LogStoreBolt
		case requested != "":
			kind = requested
		default:
			kind = LogStoreWAL
		}
		if err := stable.Set(keyLogStore, []byte(kind)); err != nil {
			return "", err
		}
	}
	switch {
	case kind != LogStoreWAL && kind != LogStoreBolt:
		return "", fmt.Errorf("zoo: data dir %s keeps its raft log in an unknown store %q: "+
			"it was written by a newer zoo; run that version", dir, kind)
	case requested != "" && requested != kind:
		return "", &ConfigError{"LogStore", fmt.Sprintf("%q asked, but data dir %s keeps its raft log in %q; "+
			"a dir keeps the store it was created with: leave LogStore empty, or rebuild this replica "+
			"with a fresh dir (remove it, move the dir aside, add it back)", requested, dir, kind)}
	}
	return kind, nil
}

// openWAL opens the WAL under dir after checking every segment file
// (checkWAL).
func openWAL(dir string, hlog hclog.Logger) (w *wal.WAL, err error) {
	path := filepath.Join(dir, walDirName)
	if err := os.MkdirAll(path, 0o755); err != nil {
		return nil, fmt.Errorf("zoo: create %s: %w", path, err)
	}
	// Damaged metadata (bbolt) may panic or fault, as openBoltStore explains.
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if p := recover(); p != nil {
			if w != nil {
				w.Close()
			}
			w, err = nil, &CorruptionError{What: "the raft log", Store: path, Err: fmt.Errorf("%w: %v", errCorrupt, p)}
		}
	}()
	if err := checkWAL(path, hlog); err != nil {
		return nil, err
	}
	w, err = wal.Open(path, wal.WithLogger(hlog.Named("wal")))
	if err != nil {
		return nil, &CorruptionError{What: "the raft log", Store: path, Err: err}
	}
	return w, nil
}

// claimWAL ties the WAL to the data dir's instance id, in the small stable
// store raft-wal keeps beside its segments. A WAL that holds no
// id is either new (nothing in it, and raft.db remembers no term) or was
// wiped apart from raft.db: a replica that lost its log must not vote.
func claimWAL(w *wal.WAL, stable *raftboltdb.BoltStore, member, dir string, instance []byte) error {
	have, err := w.Get(keyInstance)
	if err != nil {
		return err
	}
	switch {
	case bytes.Equal(have, instance):
		return nil
	case len(have) > 0:
		return &IdentityError{member, dir, fmt.Sprintf("its raft log (%s) belongs to another data dir than raft.db",
			filepath.Join(dir, walDirName))}
	}
	last, err := w.LastIndex()
	if err != nil {
		return err
	}
	term, err := stable.GetUint64([]byte("CurrentTerm"))
	if err != nil && !errors.Is(err, raftboltdb.ErrKeyNotFound) {
		return err
	}
	if last > 0 || term > 0 {
		return &IdentityError{member, dir, fmt.Sprintf("raft.db remembers term %d but its raft log (%s) holds no "+
			"record of this dir: the log was lost or wiped", term, filepath.Join(dir, walDirName))}
	}
	return w.Set(keyInstance, instance)
}

// openLogStore opens the dir's log store: the WAL with its floor
// (logstore_wal.go), or raft.db itself.
// path names it in errors.
func (e *Ensemble) openLogStore(stable *raftboltdb.BoltStore, hlog hclog.Logger) (logs raft.LogStore, path string, err error) {
	kind, err := chooseLogStore(stable, e.cfg.Dir, e.cfg.LogStore)
	if err != nil {
		return nil, "", err
	}
	if kind == LogStoreBolt {
		return stable, filepath.Join(e.cfg.Dir, "raft.db"), nil
	}
	path = filepath.Join(e.cfg.Dir, walDirName)
	w, err := openWAL(e.cfg.Dir, hlog)
	if err != nil {
		return nil, "", err
	}
	f, err := newWALLog(w, stable, path)
	if err != nil {
		w.Close()
		return nil, "", err
	}
	return f, path, nil
}
