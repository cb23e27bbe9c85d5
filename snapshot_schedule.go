package zoo

import (
	"errors"
	"time"

	"github.com/hashicorp/raft"
)

// This file is how often a replica snapshots: every SnapshotThreshold log
// entries for a small tree, and every eighth of the tree's size for a large
// one.
//
// A snapshot costs time in proportion to the tree (it writes every znode),
// and replaying the log after a restart costs time in proportion to the
// entries since the last snapshot. A fixed threshold of 8192 entries makes a
// tree of a million znodes write its ~150 MB every 8192 writes, a snapshot
// every second under load, competing with the writes for the disk and the
// CPU. Scaling the threshold with the tree keeps a snapshot's cost per write
// constant and bounds the replay to an eighth of the tree's size in entries
// (ZooKeeper snapshots every 50,000-100,000 transactions at any size).

// snapshotTreeShare is the fraction of the tree's size, in log entries,
// between snapshots of a large tree.
const snapshotTreeShare = 8

// maxSnapshotThreshold caps the threshold, so that a restart never replays
// more than this many entries.
const maxSnapshotThreshold = 1 << 20

// snapshotThresholdFor returns the threshold for a tree of n znodes, given
// the configured one.
func snapshotThresholdFor(configured uint64, n int) uint64 {
	return max(configured, min(uint64(n)/snapshotTreeShare, maxSnapshotThreshold))
}

// snapshotLoop follows the tree's size with raft's snapshot threshold,
// moving it when it is off by more than a quarter. raft keeps
// TrailingLogs as configured: they serve followers that fall behind.
func (e *Ensemble) snapshotLoop() {
	t := time.NewTicker(max(e.cfg.TickTime*5, time.Second))
	defer t.Stop()
	for {
		select {
		case <-e.ctx.Done():
			return
		case <-t.C:
		}
		e.fsm.mu.RLock()
		n := e.fsm.tree.nodes.Len()
		e.fsm.mu.RUnlock()
		want := snapshotThresholdFor(e.cfg.SnapshotThreshold, n)
		if have := e.raft.ReloadableConfig().SnapshotThreshold; want == have || (want > have && want-have < have/4) || (want < have && have-want < have/4) {
			continue
		}
		if err := e.reloadRaft(func(rc *raft.ReloadableConfig) { rc.SnapshotThreshold = want }); err != nil && !errors.Is(err, raft.ErrRaftShutdown) {
			e.logger.Warn("zoo: could not move the snapshot threshold", "threshold", want, "err", err)
		}
	}
}
