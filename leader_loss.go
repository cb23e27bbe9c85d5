package zoo

import (
	"errors"
	"net"
	"syscall"
	"time"

	"github.com/hashicorp/raft"
)

// This file makes followers elect a new leader soon after the leader's
// process dies, instead of at raft's heartbeat timeout.
//
// A follower of hashicorp/raft starts an election only after HeartbeatTimeout
// (TickTime/2, randomised up to twice that) without word from its leader,
// and its vote goes to no candidate while it still has one: when a leader
// is killed, the first follower to time out is refused, and the election
// ends at the other's timeout, 1.5 to 2 s after the kill at the default
// tick. ZooKeeper's followers see the dead leader's connections close and
// elect at once.
//
// Here a follower that has not heard from its leader for its lease
// (LeaderLeaseTimeout, a few heartbeat rounds) dials the leader's port; when
// the connection is refused, the leader's process is gone (a partition or a
// paused process drops packets instead, and is left to the timeout), and the
// follower lowers its heartbeat timeout to the lease, which makes raft
// start an election at once. The timeout goes back once a leader is known.
// This only shortens a wait: who may be elected is raft's decision as
// before.

// leaderProbeTimeout bounds the dial to a silent leader's port.
const leaderProbeTimeout = 100 * time.Millisecond

// leaderLossLoop watches for a dead leader while this replica follows.
func (e *Ensemble) leaderLossLoop() {
	rc := e.raft.ReloadableConfig()
	normal, election, lease := rc.HeartbeatTimeout, rc.ElectionTimeout, e.raftLease
	if e.cfg.Transport != nil || e.cfg.BindAddr == "" || lease >= normal {
		return // no port to probe, or no shorter timeout raft would take
	}
	t := time.NewTicker(max(lease/10, 10*time.Millisecond))
	defer t.Stop()
	var gone raft.ServerAddress // the dead leader, while the timeout is lowered
	var since time.Time
	for {
		select {
		case <-e.ctx.Done():
			return
		case <-t.C:
		}
		state := e.raft.State()
		leader, _ := e.raft.LeaderWithID()
		if gone != "" {
			if state == raft.Leader || (leader != "" && leader != gone) || time.Since(since) > 4*election {
				if err := e.reloadRaft(func(rc *raft.ReloadableConfig) { rc.HeartbeatTimeout = normal }); err != nil && !errors.Is(err, raft.ErrRaftShutdown) {
					e.logger.Warn("zoo: could not restore raft's heartbeat timeout", "err", err)
				}
				gone = ""
			}
			continue
		}
		if state != raft.Follower || leader == "" || time.Since(e.raft.LastContact()) < lease || !portRefuses(string(leader)) {
			continue
		}
		if err := e.reloadRaft(func(rc *raft.ReloadableConfig) { rc.HeartbeatTimeout = lease }); err != nil {
			if !errors.Is(err, raft.ErrRaftShutdown) {
				e.logger.Warn("zoo: could not lower raft's heartbeat timeout", "err", err)
			}
			continue
		}
		e.logger.Info("zoo: the leader's port refuses connections: electing a new leader now", "leader", leader)
		gone, since = leader, time.Now()
	}
}

// portRefuses reports whether a TCP connection to addr is refused: nothing
// listens there.
func portRefuses(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, leaderProbeTimeout)
	if err == nil {
		c.Close()
		return false
	}
	return errors.Is(err, syscall.ECONNREFUSED)
}
