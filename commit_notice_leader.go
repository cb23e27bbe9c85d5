package zoo

import (
	"time"

	"github.com/hashicorp/raft"
)

// commitBroadcaster is the leader's half of commit notices (commit_notice_follower.go
// explains them):
// after every batch its FSM applies, each follower is told "applied up to N,
// of my term" over the peer RPC, as ZooKeeper's leader sends COMMIT. One
// notice is in flight per follower at a time; commits made meanwhile coalesce
// into the next. Without it a follower would apply a write (and fire its
// watches) only at raft's next replication round, tens of milliseconds later
// on an idle ensemble.
type commitBroadcaster struct {
	e       *Ensemble
	kick    chan struct{}
	senders map[raft.ServerAddress]*noticeSender // owned by run
}

// noticeSender sends notices to one follower.
type noticeSender struct {
	kick chan struct{}
	stop chan struct{}
}

func newCommitBroadcaster(e *Ensemble) *commitBroadcaster {
	return &commitBroadcaster{e: e, kick: make(chan struct{}, 1), senders: map[raft.ServerAddress]*noticeSender{}}
}

// applied is the FSM's hook after each batch; it never blocks.
func (b *commitBroadcaster) applied() { poke(b.kick) }

func poke(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// run wakes the sender of every follower in the current configuration after
// each applied batch, while this replica leads.
func (b *commitBroadcaster) run() {
	e := b.e
	for {
		select {
		case <-e.ctx.Done():
			return
		case <-b.kick:
		}
		if e.raft.State() != raft.Leader {
			continue
		}
		cfg := e.raft.GetConfiguration()
		if cfg.Error() != nil {
			continue
		}
		current := map[raft.ServerAddress]bool{}
		for _, srv := range cfg.Configuration().Servers {
			if srv.ID == raft.ServerID(e.cfg.ID) {
				continue
			}
			current[srv.Address] = true
			s := b.senders[srv.Address]
			if s == nil {
				s = &noticeSender{kick: make(chan struct{}, 1), stop: make(chan struct{})}
				b.senders[srv.Address] = s
				addr := srv.Address
				e.goRun(func() { b.send(addr, s) })
			}
			poke(s.kick)
		}
		for addr, s := range b.senders {
			if !current[addr] {
				close(s.stop)
				delete(b.senders, addr)
			}
		}
	}
}

// send delivers notices to the follower at addr, one at a time, each with
// the newest applied index of this leader's term.
func (b *commitBroadcaster) send(addr raft.ServerAddress, s *noticeSender) {
	e := b.e
	var sent uint64
	for {
		select {
		case <-e.ctx.Done():
			return
		case <-s.stop:
			return
		case <-s.kick:
		}
		// Only an entry of this leader's own term: the notice speaks as the
		// leader of that term (commit_notice_follower.go). The term is read before and
		// after the state, so this replica did lead in it.
		term0 := e.raft.CurrentTerm()
		leads := e.raft.State() == raft.Leader
		index, term := e.fsm.lastApplied()
		if !leads || index <= sent || term == 0 || term != term0 || e.raft.CurrentTerm() != term0 {
			continue
		}
		n := commitNotice{index: index, term: term, leaderID: raft.ServerID(e.cfg.ID), leaderAddr: raft.ServerAddress(e.Addr())}
		if err := e.sendCommitNotice(addr, n); err == nil {
			sent = index
			continue
		}
		// The follower is down or cut off: raft's own replication will tell it
		// when it is back. Do not dial it on every commit meanwhile.
		t := time.NewTimer(max(e.cfg.TickTime/2, 10*time.Millisecond))
		select {
		case <-t.C:
		case <-s.stop:
			t.Stop()
			return
		case <-e.ctx.Done():
			t.Stop()
			return
		}
		poke(s.kick)
	}
}
