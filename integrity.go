package zoo

import (
	"errors"
	"fmt"
)

// This file is what a replica does when it finds data it cannot vouch for:
// it stops serving, says what is wrong and how to recover, and never skips
// ahead. Every log entry zoo writes carries a CRC-32C of its bytes
// (command.go, sealCommand), checked before it is applied (fsm.go).

// ErrDiverged is the cause of a [CorruptionError] when this replica's tree
// is not the leader's at the same index (the tree digest differs).
var ErrDiverged = errors.New("zoo: the tree diverged from the leader's")

// CorruptionError says this replica found data it cannot vouch for and
// stopped serving, or refused to start: a log entry whose checksum does not
// match or that cannot be decoded, or a snapshot it cannot restore with no
// older one and log to fall back on. A replica that stopped applies nothing
// after the corrupt entry: its state stays at the last good one. It matches
// [ErrConnectionLoss] with errors.Is: a write that met it may have committed
// on the other replicas.
type CorruptionError struct {
	What  string // "log entry 42", "snapshot 3-120-1700000000000"
	Index uint64 // the raft index of the entry, or of the last entry the snapshot holds
	Store string // the file it was read from
	Err   error  // what is wrong with it
}

func (e *CorruptionError) Error() string {
	store := e.Store
	if store == "" {
		store = "the raft log"
	}
	return fmt.Sprintf("zoo: %s in %s is corrupt (%v): this replica stops serving rather than use or skip "+
		"it; rebuild it from the other replicas: remove it from the ensemble, move its data dir aside, "+
		"and add it back as a new member", e.What, store, e.Err)
}

// Unwrap gives the cause and ErrConnectionLoss.
func (e *CorruptionError) Unwrap() []error { return []error{e.Err, ErrConnectionLoss} }

// stopServing takes this replica out of service for good: it leaves the
// ensemble's quorum (its raft stops, so it neither votes nor acknowledges
// entries), and every call, Failure and Stopped report err, which says what
// is wrong and how to recover (a *CorruptionError, an *IdentityError).
func (e *Ensemble) stopServing(err error) {
	if !e.failed.CompareAndSwap(nil, &err) {
		return
	}
	e.logger.Error("zoo: replica stopped serving", "err", err)
	close(e.stopped)
}

// leaveOnFailure stops raft once the replica stopped serving (it cannot from
// inside the FSM, which raft's shutdown waits for).
func (e *Ensemble) leaveOnFailure() {
	select {
	case <-e.stopped:
		if err := e.raft.Shutdown().Error(); err != nil {
			e.logger.Warn("zoo: raft shutdown after a failure", "err", err)
		}
	case <-e.ctx.Done():
	}
}

// failure returns what stopped this replica, or nil.
func (e *Ensemble) failure() error {
	if p := e.failed.Load(); p != nil {
		return *p
	}
	return nil
}

// Stopped is closed when this replica stops serving on its own, because it
// found data it cannot vouch for; [Ensemble.Failure] then says what. A
// process that hosts a replica should watch it and report the error (zoo
// server exits with it). Close does not close it.
func (e *Ensemble) Stopped() <-chan struct{} { return e.stopped }

// Failure returns what stopped this replica ([*CorruptionError],
// [*IdentityError]), or nil.
func (e *Ensemble) Failure() error { return e.failure() }
