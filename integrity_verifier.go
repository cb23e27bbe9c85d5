package zoo

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	"github.com/hashicorp/raft-wal/metrics"
	"github.com/hashicorp/raft-wal/verifier"
)

// This file checks the raft log online, with hashicorp/raft-wal's verifier
// (what Consul runs for this) around raft.db: the leader appends a
// checkpoint command now and then; as each replica's log store writes it, the
// verifier stamps the running checksum of the entries since the previous
// checkpoint into it (the leader's is replicated with it), and every replica
// compares what the leader wrote, what it wrote itself (in-flight
// corruption) and what it reads back from disk (storage corruption). A
// mismatch stops the replica with a CorruptionError naming the range.

// checkpointEvery is how often the leader appends a checkpoint, in ticks:
// 10 s at the default TickTime, well inside the entries raft keeps after a
// snapshot at any write rate zoo sustains.
const checkpointEvery = 5

// isCheckpoint recognises a checkpoint command by its first two bytes,
// without decoding the entry: the verifier asks for every entry it stores.
func isCheckpoint(l *raft.Log) (bool, error) {
	return l.Type == raft.LogCommand && len(l.Data) >= 2 && l.Data[0] == commandVersion && l.Data[1] == byte(opCheckpoint), nil
}

// verifiedLog wraps store in the verifier, reporting to e.
func (e *Ensemble) verifiedLog(store raft.LogStore) *verifier.LogStore {
	return verifier.NewLogStore(store, isCheckpoint, e.verifyReport, &metrics.NoOpCollector{})
}

// verifyReport acts on one verified range. A range whose checksum differs
// is not proof by itself: under leader changes a follower's running sum can
// include entries a new leader then replaced, and a range read back can be
// rewritten meanwhile. So a storage mismatch sends the replica to read the
// range back entry by entry, and an entry that fails its own checksum stops
// it; an in-flight mismatch is logged (every entry's own checksum and the
// tree digest are checked before it is applied anyway).
func (e *Ensemble) verifyReport(r verifier.VerificationReport) {
	var mismatch verifier.ErrChecksumMismatch
	switch {
	case r.Err == nil:
		e.verifierCounts.verified.Add(1)
		e.logger.Debug("zoo: log range verified", "range", r.Range.String(), "elapsed", r.Elapsed)
	case errors.As(r.Err, &mismatch) && r.ReadSum != 0:
		e.verifierCounts.storage.Add(1)
		if c := e.recheckRange(r.Range); c != nil {
			e.stopServing(c)
			return
		}
		e.logger.Warn("zoo: a log range read back with another checksum than the leader's, but every entry "+
			"holds its own: the range was rewritten by a new leader, or a field outside the command changed",
			"range", r.Range.String(), "err", r.Err)
	case errors.As(r.Err, &mismatch):
		e.verifierCounts.inFlight.Add(1)
		e.logger.Warn("zoo: a log range arrived with another checksum than the leader's (entries a new leader "+
			"replaced count in it); each entry's own checksum is checked before it is applied",
			"range", r.Range.String(), "err", r.Err)
	case errors.Is(r.Err, verifier.ErrRangeMismatch):
		e.logger.Debug("zoo: log range not verified: no longer in the log", "range", r.Range.String())
	default:
		e.logger.Warn("zoo: log range not verified", "range", r.Range.String(), "err", r.Err)
	}
}

// verifierCounts count the log verifier's reports since Open (Status.LogVerifier).
type verifierCounts struct {
	verified, inFlight, storage atomic.Uint64
}

// LogVerifierCounts are the online log verifier's reports since Open: ranges
// read back as the leader wrote them, and ranges whose checksum differed in
// flight (as written) or in storage (as read back). A storage mismatch with
// an entry failing its own checksum stops the replica; the others are logged.
type LogVerifierCounts struct {
	Verified, InFlightMismatches, StorageMismatches uint64
}

func (c *verifierCounts) snapshot() LogVerifierCounts {
	return LogVerifierCounts{Verified: c.verified.Load(), InFlightMismatches: c.inFlight.Load(), StorageMismatches: c.storage.Load()}
}

// recheckRange reads the entries of rng back from raft.db and checks each
// command's own checksum: the first that fails is the corruption.
func (e *Ensemble) recheckRange(rng verifier.LogRange) *CorruptionError {
	for i := rng.Start; i < rng.End; i++ {
		var l raft.Log
		if err := e.verifier.GetLog(i, &l); err != nil {
			if errors.Is(err, raft.ErrLogNotFound) {
				continue // compacted meanwhile
			}
			return &CorruptionError{What: fmt.Sprintf("log entry %d", i), Index: i, Store: e.logPath, Err: err}
		}
		if l.Type != raft.LogCommand {
			continue
		}
		if _, err := decodeCommand(l.Data); err != nil {
			return &CorruptionError{What: fmt.Sprintf("log entry %d", i), Index: i, Store: e.logPath,
				Err: fmt.Errorf("%w (read back for the log verifier's range %s)", err, rng)}
		}
	}
	return nil
}

// checkpointLoop appends a checkpoint every checkpointEvery ticks while this
// replica leads.
func (e *Ensemble) checkpointLoop() {
	if e.verifier == nil || e.cfg.hooks != nil && e.cfg.hooks.noCheckpoints {
		return
	}
	tick := time.NewTicker(checkpointEvery * e.cfg.TickTime)
	defer tick.Stop()
	cp := encodeCommand(&command{op: opCheckpoint})
	for {
		select {
		case <-tick.C:
		case <-e.ctx.Done():
			return
		}
		if e.raft.State() != raft.Leader || e.failure() != nil {
			continue
		}
		if err := e.startApply(e.ctx, cp).Error(); err != nil {
			e.logger.Debug("zoo: checkpoint not appended", "err", err)
		}
	}
}
