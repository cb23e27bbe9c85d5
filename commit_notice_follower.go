package zoo

import (
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"
)

// This file is the follower's half of commit notices; the leader's is
// commit_notice_leader.go, their encoding peer_rpc.go.
//
// Commit notices let a follower apply a committed entry as soon as it hears
// that it committed, instead of at raft's next replication round.
//
// hashicorp/raft tells followers the commit index only inside its next
// AppendEntries, which an idle leader sends after CommitTimeout (tens of
// milliseconds; heartbeats do not carry it). A follower that forwarded a
// write, or that watches a node another replica changed, would wait that long.
// ZooKeeper's leader sends COMMIT at once.
//
// "Index N of term T committed", from the leader of term T, is exactly what an
// AppendEntries from that leader with PrevLogEntry N, PrevLogTerm T, no entries
// and LeaderCommitIndex N says. So the follower hands itself such a request
// through its transport's consumer channel, in order with the real ones, and
// raft's own checks decide: a notice of an older term is ignored, and one whose
// entry N is not in the follower's log (or differs from the leader's) changes
// nothing. By log matching, an accepted one commits only entries the leader of
// term T holds up to N, which are committed.
type commitNotice struct {
	index, term uint64 // a committed entry and its term (the leader's term then)
	leaderID    raft.ServerID
	leaderAddr  raft.ServerAddress
}

// noticeTransport wraps a raft transport: its consumer channel carries the
// inner transport's RPCs plus the commit notices given to notify.
type noticeTransport struct {
	raft.Transport
	in      <-chan raft.RPC
	out     chan raft.RPC
	notices chan commitNotice
	done    chan struct{}
	stop    sync.Once

	// lastIndex reports the last index in the local raft log, once raft runs.
	lastIndex atomic.Pointer[func() uint64]

	// hold, if set, sees every RPC first and may keep one to hand over
	// later with send, or answer it itself: the identity guard holds back
	// the vote requests of a replica not yet known to be itself
	// (identity.go).
	hold func(rpc raft.RPC, send func(raft.RPC) bool) bool
}

// noticeTransportPreVote keeps raft's pre-vote for inner transports that
// support it (raft checks for the interface).
type noticeTransportPreVote struct{ *noticeTransport }

func (t noticeTransportPreVote) RequestPreVote(id raft.ServerID, target raft.ServerAddress, args *raft.RequestPreVoteRequest, resp *raft.RequestPreVoteResponse) error {
	return t.Transport.(raft.WithPreVote).RequestPreVote(id, target, args, resp)
}

// newNoticeTransport wraps inner. It returns the transport to give raft and
// the wrapper to send notices to.
func newNoticeTransport(inner raft.Transport, hold func(rpc raft.RPC, send func(raft.RPC) bool) bool) (raft.Transport, *noticeTransport) {
	t := &noticeTransport{
		Transport: inner,
		hold:      hold,
		in:        inner.Consumer(),
		out:       make(chan raft.RPC),
		notices:   make(chan commitNotice, 64),
		done:      make(chan struct{}),
	}
	go t.run()
	if _, ok := inner.(raft.WithPreVote); ok {
		return noticeTransportPreVote{t}, t
	}
	return t, t
}

// Consumer returns the channel raft reads its RPCs from.
func (t *noticeTransport) Consumer() <-chan raft.RPC { return t.out }

// Close stops the wrapper and closes the inner transport if it can be closed
// (raft closes its transport when it shuts down).
func (t *noticeTransport) Close() error {
	t.shutdown()
	if c, ok := t.Transport.(raft.WithClose); ok {
		return c.Close()
	}
	return nil
}

// shutdown stops moving RPCs; the inner transport stays open.
func (t *noticeTransport) shutdown() { t.stop.Do(func() { close(t.done) }) }

// setLastIndex tells the wrapper how to read the local raft log's last index.
func (t *noticeTransport) setLastIndex(f func() uint64) { t.lastIndex.Store(&f) }

// stored reports whether the local raft log is known to reach index.
func (t *noticeTransport) stored(index uint64) bool {
	f := t.lastIndex.Load()
	return f != nil && (*f)() >= index
}

// notify hands raft a commit notice, without blocking: notices are hints, and
// one dropped only means the follower learns the commit at raft's own pace.
func (t *noticeTransport) notify(n commitNotice) {
	select {
	case t.notices <- n:
	default:
	}
}

// run moves RPCs from the inner transport to raft and slips notices in. A
// notice whose entry raft may not hold yet waits for the AppendEntries that
// brings it, and follows it.
func (t *noticeTransport) run() {
	var pending commitNotice // the highest notice not yet handed over
	var sent commitNotice    // the last notice handed over: lower ones add nothing
	var forwarded struct{ index, term uint64 }
	for {
		select {
		case <-t.done:
			return
		case rpc := <-t.in:
			// Read the request before raft answers it: with an in-memory
			// transport the sender may reuse it once answered.
			ae, isAE := rpc.Command.(*raft.AppendEntriesRequest)
			var aeTerm, aeCommit uint64
			if isAE {
				aeTerm, aeCommit = ae.Term, ae.LeaderCommitIndex
				if n := len(ae.Entries); n > 0 {
					last := ae.Entries[n-1]
					forwarded.index, forwarded.term = last.Index, last.Term
				}
			}
			if t.hold != nil && t.hold(rpc, t.send) {
				continue
			}
			if !t.send(rpc) {
				return
			}
			if !isAE || pending.index == 0 {
				continue
			}
			switch {
			case aeTerm > pending.term || aeCommit >= pending.index:
				pending = commitNotice{} // a newer leader, or raft knows already
			case aeTerm == pending.term && forwarded.term == pending.term && forwarded.index >= pending.index:
				if !t.send(pending.rpc(t)) {
					return
				}
				sent, pending = pending, commitNotice{}
			}
		case n := <-t.notices:
			if n.term < pending.term || (n.term == pending.term && n.index <= pending.index) {
				continue // the pending one says more
			}
			if n.term == sent.term && n.index <= sent.index {
				continue // one raft already has says more (a forwarded write's reply and the broadcast both tell)
			}
			if t.stored(n.index) || (forwarded.term == n.term && forwarded.index >= n.index) {
				if !t.send(n.rpc(t)) {
					return
				}
				sent = n
				if n.index >= pending.index {
					pending = commitNotice{}
				}
				continue
			}
			pending = n
		}
	}
}

// send gives raft one RPC; false once the transport is closed.
func (t *noticeTransport) send(rpc raft.RPC) bool {
	select {
	case t.out <- rpc:
		return true
	case <-t.done:
		return false
	}
}

// rpc builds the AppendEntries request a notice stands for. Its response goes
// to a buffered channel nobody reads: raft's verdict changes nothing here.
func (n commitNotice) rpc(t *noticeTransport) raft.RPC {
	return raft.RPC{
		Command: &raft.AppendEntriesRequest{
			RPCHeader: raft.RPCHeader{
				ProtocolVersion: raft.ProtocolVersionMax,
				ID:              []byte(n.leaderID),
				Addr:            t.EncodePeer(n.leaderID, n.leaderAddr),
			},
			Term:              n.term,
			PrevLogEntry:      n.index,
			PrevLogTerm:       n.term,
			LeaderCommitIndex: n.index,
		},
		RespChan: make(chan raft.RPCResponse, 1),
	}
}

// noticeCommit hands raft a notice of a commit it does not know of yet.
// Notices without a term (unknown, after a restore) are dropped.
func (e *Ensemble) noticeCommit(n commitNotice) {
	if n.term == 0 || n.index == 0 || e.notices == nil || e.raft.CommitIndex() >= n.index {
		return
	}
	// A leader learns commits itself; a notice in its own term could only be
	// a mistake, and raft would make it step down for it.
	if n.leaderID == raft.ServerID(e.cfg.ID) || e.raft.State() == raft.Leader {
		return
	}
	e.notices.notify(n)
}
