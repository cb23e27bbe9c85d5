package zoo

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/hashicorp/raft"
	wal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/verifier"
)

// This file is how the log verifier reads the WAL back (integrity_verifier.go).
//
// The verifier reads every entry of a range back with GetLog, and raft-wal's
// GetLog reads 64 KiB from the file for each entry of a few hundred bytes:
// at 256 writing callers that was an eighth of the process's CPU. Here the
// verifier's reads walk the segment file in order instead, a chunk at a
// time, and fall back to raft-wal's GetLog whenever the walk cannot go on
// (a new segment, a frame it does not expect, an entry not yet synced).
//
// Only the verifier reads through this: raft's own reads go to the WAL
// (ensemble.go's readSplit), so a walk that went wrong could cost a false
// report of a range read back with another checksum, never an entry served
// to raft. Every entry it returns has the index asked for, it reads only
// bytes of entries the WAL had synced when the chunk was read (they do not
// change after), and raft deleting entries ends the walk.

// readBackChunk is how much of a segment file one read takes.
const readBackChunk = 256 << 10

// walReadBack is the WAL as the verifier reads it.
type walReadBack struct {
	*walLog

	mu     sync.Mutex // guards the walk; DeleteRange takes it too
	file   *os.File   // the segment file being walked; nil: none
	next   uint64     // the index of the entry at off
	limit  uint64     // the first index of a newer segment: the walk ends there
	off    int64      // file offset of the next frame
	chunk  []byte     // bytes of the file from chunkAt
	at     int64
	synced uint64 // the WAL's last index when chunk was read
}

// GetLog reads entry index, walking the segment file when it can.
func (w *walReadBack) GetLog(index uint64, l *raft.Log) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.file == nil || index != w.next || index >= w.limit {
		if err := w.start(index); err != nil {
			w.stop()
			return w.walLog.GetLog(index, l)
		}
	}
	if err := w.step(l); err != nil || l.Index != index {
		w.stop()
		return w.walLog.GetLog(index, l)
	}
	w.next++
	return nil
}

// DeleteRange ends the walk before raft-wal deletes the end of the log
// (entries that may be written again, differently); deleting its head
// leaves the entries after it as they are.
func (w *walReadBack) DeleteRange(min, max uint64) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	last, err := w.walLog.LastIndex()
	if err != nil || max >= last {
		w.stop()
	}
	return w.walLog.DeleteRange(min, max)
}

// Close ends the walk and closes the WAL.
func (w *walReadBack) Close() error {
	w.mu.Lock()
	w.stop()
	w.mu.Unlock()
	return w.walLog.Close()
}

func (w *walReadBack) stop() {
	if w.file != nil {
		w.file.Close()
	}
	w.file, w.chunk = nil, nil
}

// start opens the segment that holds index (of the segments whose first
// index is at most index, the newest: raft-wal numbers segments in the
// order it makes them) and walks to the entry. A segment made after the
// walk starts comes after the end of the log it walks (the walk then meets
// an index frame or unsynced bytes and ends), or after raft deleted the end
// of the log (DeleteRange ends the walk).
func (w *walReadBack) start(index uint64) error {
	w.stop()
	names, err := filepath.Glob(filepath.Join(w.path, "*.wal"))
	if err != nil {
		return err
	}
	type segmentFile struct {
		name     string
		base, id uint64
	}
	var files []segmentFile
	for _, name := range names {
		var f segmentFile
		if _, err := fmt.Sscanf(strings.TrimSuffix(filepath.Base(name), ".wal"), "%020d-%016x", &f.base, &f.id); err == nil {
			f.name = name
			files = append(files, f)
		}
	}
	var best *segmentFile
	for i, f := range files {
		if f.base <= index && (best == nil || f.id > best.id) {
			best = &files[i]
		}
	}
	if best == nil {
		return errors.New("no segment")
	}
	// A segment ends where a newer one begins (raft-wal seals a segment
	// when the end of the log is deleted, and it keeps the deleted entries).
	w.limit = ^uint64(0)
	for _, f := range files {
		if f.id > best.id {
			w.limit = min(w.limit, f.base)
		}
	}
	name, bestBase := best.name, best.base
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	w.file, w.next, w.off = f, bestBase, walFileHeaderLen
	var l raft.Log
	for w.next < index {
		if err := w.step(&l); err != nil {
			return err
		}
		w.next++
	}
	return nil
}

// step decodes the next entry of the walk into l, past commit frames.
func (w *walReadBack) step(l *raft.Log) error {
	for {
		h, err := w.bytes(w.off, walFrameHeaderLen)
		if err != nil {
			return err
		}
		typ, n := h[0], int64(binary.LittleEndian.Uint32(h[4:]))
		switch typ {
		case walFrameCommit:
			w.off += walFrameHeaderLen
			continue
		case walFrameEntry:
		default:
			return errors.New("not an entry")
		}
		if w.next > w.synced {
			if w.refill(w.off); w.next > w.synced {
				return errors.New("not synced")
			}
			continue
		}
		data, err := w.bytes(w.off+walFrameHeaderLen, n)
		if err != nil {
			return err
		}
		if err := (&wal.BinaryCodec{}).Decode(data, l); err != nil {
			return err
		}
		w.off += walFrameSize(n)
		return nil
	}
}

// bytes returns n bytes of the file at off, reading a chunk when they are
// not in the one held.
func (w *walReadBack) bytes(off, n int64) ([]byte, error) {
	if n > readBackChunk {
		return nil, errors.New("frame larger than a chunk")
	}
	if off < w.at || off+n > w.at+int64(len(w.chunk)) {
		if err := w.refill(off); err != nil {
			return nil, err
		}
		if off+n > w.at+int64(len(w.chunk)) {
			return nil, errors.New("past the end of the file")
		}
	}
	return w.chunk[off-w.at : off-w.at+n], nil
}

// refill reads a chunk at off, noting first which entries were synced.
func (w *walReadBack) refill(off int64) error {
	last, err := w.walLog.LastIndex()
	if err != nil {
		return err
	}
	if cap(w.chunk) < readBackChunk {
		w.chunk = make([]byte, readBackChunk)
	}
	n, err := w.file.ReadAt(w.chunk[:readBackChunk], off)
	if n == 0 && err != nil {
		return err
	}
	w.chunk, w.at, w.synced = w.chunk[:n], off, last
	return nil
}

// readSplit is the log store raft's cache reads through: every write goes
// through the verifier (which checksums what is stored), reads go straight
// to the WAL, never through the verifier's walk.
type readSplit struct {
	*verifier.LogStore
	read raft.LogStore
}

// GetLog reads from the WAL.
func (s readSplit) GetLog(index uint64, l *raft.Log) error { return s.read.GetLog(index, l) }
