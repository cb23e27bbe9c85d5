package zoo

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft-wal/metadb"
	"github.com/hashicorp/raft-wal/segment"
	"github.com/hashicorp/raft-wal/types"
)

// This file checks the WAL's segment files before raft-wal opens them.
//
// raft-wal reads entries back without checking them, and when it starts it
// checks only the last batch of the open (tail) segment: a batch there that
// fails its checksum, or a frame header that will not parse, it takes for a
// torn write and drops, with everything after it, silently. Bytes that
// changed on disk after they were synced are then served, or lost. So every
// batch is checked here against the CRC-32C its commit frame carries:
//
//   - a sealed segment must hold every entry its metadata gives it, in
//     batches that pass;
//   - in the tail, a batch that fails is corruption when a batch that
//     passes follows it; the last batch failing is a torn write (never
//     synced, so never acknowledged), dropped as raft-wal drops it, and
//     logged. A header that does not parse ends the scan as it ends
//     raft-wal's: after a torn write the file holds what it left.
//
// Entries a corrupt tail loses this way (the rest of the tail after a bad
// header) are caught by the durable floor (logstore_wal.go).
//
// The format (raft-wal's segment/format.go): a 32-byte file header, then
// frames of an 8-byte header (type, 3 reserved bytes, a little-endian
// length, or for a commit the CRC) and a payload padded to 8 bytes. Each
// commit's CRC covers the bytes since the previous commit frame (the first,
// from the file's start); a sealed segment ends with an index frame and a
// commit.

// WAL frame types, as raft-wal writes them.
const (
	walFrameZero   = 0
	walFrameEntry  = 1
	walFrameCommit = 3

	walFileHeaderLen  = 32
	walFrameHeaderLen = 8
)

var walCRCTable = crc32.MakeTable(crc32.Castagnoli)

// walFrameSize is the size of a frame whose payload is n bytes: its header
// and the payload padded to 8 bytes.
func walFrameSize(n int64) int64 {
	return walFrameHeaderLen + n + (walFrameHeaderLen-n%walFrameHeaderLen)%walFrameHeaderLen
}

// checkWAL checks every segment the WAL's metadata lists in dir, and logs a
// torn tail it finds (raft-wal then drops it).
func checkWAL(dir string, hlog hclog.Logger) error {
	if _, err := os.Stat(filepath.Join(dir, metadb.FileName)); errors.Is(err, os.ErrNotExist) {
		return nil // a new WAL
	}
	var meta metadb.BoltMetaDB
	state, err := meta.Load(dir)
	meta.Close()
	if err != nil {
		return &CorruptionError{What: "the raft log's metadata", Store: filepath.Join(dir, metadb.FileName), Err: err}
	}
	for i, info := range state.Segments {
		path := filepath.Join(dir, segment.FileName(info))
		tail := i == len(state.Segments)-1 && info.SealTime.IsZero()
		scan, err := scanSegment(path, info, tail)
		if errors.Is(err, os.ErrNotExist) && tail {
			continue // created in metadata, crashed before the file: raft-wal creates it
		}
		if err != nil {
			return &CorruptionError{What: fmt.Sprintf("WAL segment %d (entries from %d)", info.ID, info.BaseIndex),
				Index: info.BaseIndex + scan.entries, Store: path, Err: err}
		}
		if scan.torn > 0 {
			hlog.Warn("the raft log's tail holds frames after its last synced batch (a torn write): they are dropped",
				"segment", path, "entries dropped", scan.torn, "last entry kept", info.BaseIndex+scan.entries-1)
		}
	}
	return nil
}

// segmentScan is what scanSegment found.
type segmentScan struct {
	entries uint64 // entries in batches that passed their checksum
	torn    uint64 // entries after the last batch that passed: a torn write
}

// scanSegment checks one segment file; tail says it is the open one, whose
// end may be torn.
func scanSegment(path string, info types.SegmentInfo, tail bool) (segmentScan, error) {
	var scan segmentScan
	b, err := os.ReadFile(path)
	if err != nil {
		return scan, err
	}
	need := uint64(0) // entries a sealed segment must hold
	if !tail {
		need = info.MaxIndex - info.BaseIndex + 1
	}
	if len(b) < walFileHeaderLen || binary.LittleEndian.Uint64(b[8:]) != info.BaseIndex ||
		binary.LittleEndian.Uint64(b[16:]) != info.ID {
		if tail && allZero(b[:min(len(b), walFileHeaderLen)]) {
			return scan, nil // its first batch never made it to disk: raft-wal starts it afresh
		}
		return scan, fmt.Errorf("%w: the file header does not name segment %d from index %d", errCorrupt, info.ID, info.BaseIndex)
	}
	batchStart, pending := 0, uint64(0) // where the open batch starts; its entries
	failed := -1                        // where a tail batch that failed its checksum starts
	for off := walFileHeaderLen; off+walFrameHeaderLen <= len(b) && (tail || scan.entries < need); {
		h := b[off : off+walFrameHeaderLen]
		typ, n := h[0], binary.LittleEndian.Uint32(h[4:])
		if typ == walFrameZero || typ > walFrameCommit || h[1]|h[2]|h[3] != 0 {
			break // the end of what was written, or what a torn write left
		}
		if typ == walFrameCommit {
			ok := crc32.Checksum(b[batchStart:off], walCRCTable) == n
			switch {
			case ok && failed >= 0:
				return scan, fmt.Errorf("%w: the batch at offset %d fails its CRC-32C, and later ones pass", errCorrupt, failed)
			case ok:
				scan.entries += pending
			case !tail:
				return scan, fmt.Errorf("%w: the batch at offset %d fails its CRC-32C", errCorrupt, batchStart)
			case failed < 0:
				failed = batchStart
			}
			pending = 0
			off += walFrameHeaderLen
			batchStart = off
			continue
		}
		size := int(walFrameSize(int64(n)))
		if size > len(b)-off {
			break
		}
		if typ == walFrameEntry {
			pending++
		}
		off += size
	}
	if !tail && scan.entries < need {
		return scan, fmt.Errorf("%w: the sealed segment holds %d of the %d entries its metadata gives it in batches that pass their CRC-32C",
			errCorrupt, scan.entries, need)
	}
	if tail {
		scan.torn = pending
		if failed >= 0 {
			scan.torn = 1 // at least; what a torn batch held cannot be counted
		}
	}
	return scan, nil
}

func allZero(b []byte) bool {
	return len(bytes.TrimLeft(b, "\x00")) == 0
}
