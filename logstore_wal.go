package zoo

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	wal "github.com/hashicorp/raft-wal"
)

// This file is the WAL as raft sees it: with a durable floor, and with the
// entries raft deleted from its head gone.
//
// The floor is an index the WAL is known to have synced, kept in raft.db,
// that its last index must never fall below.
//
// A replica that comes back with fewer entries than it synced may have
// acknowledged the ones it lost, and its vote could then elect a leader
// without them. raft-wal drops the end of its tail when a frame header there
// does not parse, which bytes changed on disk look like as much as a torn
// write does (logstore_check.go). So a second of the WAL's growth at a time,
// zoo records the last index in raft.db (off the write path: one bbolt
// commit a second, and one at Close), and lowers it, before raft deletes a
// suffix of the log, to what remains. At Open, a WAL that ends below its
// floor is corrupt: entries it had synced more than a second before it
// crashed, or any before a clean stop, are gone.

// raft-wal keeps serving entries deleted from the head of its open segment
// until the segment goes; raft would then send a lagging follower entries it
// compacted into a snapshot, where raft.db would say they are gone. GetLog
// says they are gone too.

// keyLogFloor is the stable store key of the floor.
var keyLogFloor = []byte("zoo.logfloor")

// floorInterval is how often the floor follows the WAL's last index.
const floorInterval = time.Second

// walLog is the WAL with its floor.
type walLog struct {
	*wal.WAL
	stable *raftboltdb.BoltStore
	path   string // the WAL's dir, for errors

	mu    sync.Mutex   // orders floor writes with suffix deletes
	floor uint64       // as stored
	asked atomic.Int64 // when a raise was last asked for (unix nanoseconds)
	raise chan struct{}
	done  chan struct{}
}

// newWALLog starts following the WAL's floor.
func newWALLog(w *wal.WAL, stable *raftboltdb.BoltStore, path string) (*walLog, error) {
	floor, err := stable.GetUint64(keyLogFloor)
	if err != nil && !errors.Is(err, raftboltdb.ErrKeyNotFound) {
		return nil, err
	}
	f := &walLog{WAL: w, stable: stable, path: path, floor: floor, raise: make(chan struct{}, 1), done: make(chan struct{})}
	go f.follow()
	return f, nil
}

// checkFloor says whether the WAL lost entries it had synced.
func (f *walLog) checkFloor() error {
	last, err := f.WAL.LastIndex()
	if err != nil {
		return err
	}
	if last < f.floor {
		return &CorruptionError{What: fmt.Sprintf("log entries %d-%d", last+1, f.floor), Index: last + 1, Store: f.path,
			Err: fmt.Errorf("%w: the log ends at entry %d, but it had synced up to entry %d: the end of the log was lost", errCorrupt, last, f.floor)}
	}
	return nil
}

// GetLog reads an entry, if raft has not deleted it.
func (f *walLog) GetLog(index uint64, l *raft.Log) error {
	first, err := f.WAL.FirstIndex()
	if err != nil {
		return err
	}
	if index < first {
		return raft.ErrLogNotFound
	}
	return f.WAL.GetLog(index, l)
}

// StoreLogs appends, and asks for the floor to follow once a floorInterval.
func (f *walLog) StoreLogs(logs []*raft.Log) error {
	if err := f.WAL.StoreLogs(logs); err != nil {
		return err
	}
	if now := time.Now().UnixNano(); now-f.asked.Load() >= int64(floorInterval) {
		f.asked.Store(now)
		select {
		case f.raise <- struct{}{}:
		default:
		}
	}
	return nil
}

// StoreLog appends one entry.
func (f *walLog) StoreLog(l *raft.Log) error { return f.StoreLogs([]*raft.Log{l}) }

// DeleteRange lowers the floor first when raft removes the end of the log
// (a conflicting suffix, or everything for a snapshot installed).
func (f *walLog) DeleteRange(min, max uint64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	first, err := f.WAL.FirstIndex()
	if err != nil {
		return err
	}
	last, err := f.WAL.LastIndex()
	if err != nil {
		return err
	}
	if max >= last && min <= f.floor {
		floor := min - 1
		if min <= first {
			floor = 0 // nothing left: the next append may start anywhere
		}
		if err := f.stable.SetUint64(keyLogFloor, floor); err != nil {
			return err
		}
		f.floor = floor
	}
	return f.WAL.DeleteRange(min, max)
}

// follow raises the floor to the WAL's last index when asked.
func (f *walLog) follow() {
	for {
		select {
		case <-f.done:
			return
		case <-f.raise:
		}
		f.raiseFloor()
	}
}

// raiseFloor sets the floor to the WAL's last index.
func (f *walLog) raiseFloor() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	last, err := f.WAL.LastIndex()
	if err != nil || last <= f.floor {
		return err
	}
	if err := f.stable.SetUint64(keyLogFloor, last); err != nil {
		return err
	}
	f.floor = last
	return nil
}

// Close stops following, raises the floor to the end of the log (after a
// clean stop nothing may go missing), then closes the WAL.
func (f *walLog) Close() error {
	close(f.done)
	return errors.Join(f.raiseFloor(), f.WAL.Close())
}
