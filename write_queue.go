package zoo

import (
	"context"
	"sync"

	"github.com/hashicorp/raft"
)

// WriteQueue pipelines one session's writes, as a ZooKeeper server does for
// the requests a client sends without waiting for replies: each write started
// with a context from [WriteQueue.Next] is handed to the leader only after the
// previous one was, so they commit in the order they were started, while their
// replication and disk writes overlap. Calls are still made one per goroutine;
// the caller collects the results in order.
//
// Raft keeps the entries one leader appended in order (a later one commits only
// with every earlier one), so the queue only has to keep writes going to the
// same leader in the same term. When the leader changes between two writes, the
// later one waits for the earlier one's outcome, and fails with
// [ErrConnectionLoss] if that outcome is unknown: it must not commit while an
// earlier write might be lost. A write that was handed to the leader is never
// retried elsewhere; if the leader refuses it, it fails with ErrConnectionLoss.
// Like a ZooKeeper client after a connection loss, the caller should expect
// every later write in flight to fail too.
type WriteQueue struct {
	mu   sync.Mutex
	last *writeSlot
}

// writeSlot is one write's place in a WriteQueue.
type writeSlot struct {
	prev *writeSlot // nil once this slot no longer needs it

	submitted chan struct{} // closed once the write reached the leader in order (or never will)
	done      chan struct{} // closed once the outcome is settled

	// Set before done is closed.
	unknown bool // the write may or may not have committed

	submitOnce, doneOnce sync.Once

	// A leader that refuses a write did not apply it: the write may go
	// again, elsewhere, as long as the next write has not been sent yet.
	mu          sync.Mutex
	leader      raft.ServerID // who got it ("" if nobody: inherited from prev then)
	term        uint64
	nextSent    bool          // the next write was sent after this one: no retry now
	resubmitted chan struct{} // non-nil while this write is being sent again
}

type writeSlotKey struct{}

// Next returns a context for the next write and a release function that
// must be called when that write returned (it is harmless if the write never
// reached the ensemble, e.g. it was invalid).
func (q *WriteQueue) Next(ctx context.Context) (context.Context, func()) {
	q.mu.Lock()
	s := &writeSlot{prev: q.last, submitted: make(chan struct{}), done: make(chan struct{})}
	q.last = s
	q.mu.Unlock()
	return context.WithValue(ctx, writeSlotKey{}, s), s.release
}

func slotFrom(ctx context.Context) *writeSlot {
	s, _ := ctx.Value(writeSlotKey{}).(*writeSlot)
	return s
}

// awaitTurn waits until the previous write reached the leader.
func (s *writeSlot) awaitTurn(ctx context.Context) error {
	if s.prev == nil {
		return nil
	}
	select {
	case <-s.prev.submitted:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// admit decides whether the write may go to leader in term, and if so
// claims its turn: the previous write can no longer be sent again. It may go
// if the previous write went to the same leadership, else only once the
// previous write's outcome is known.
func (s *writeSlot) admit(ctx context.Context, leader raft.ServerID, term uint64) error {
	p := s.prev
	for p != nil {
		p.mu.Lock()
		if again := p.resubmitted; again != nil {
			p.mu.Unlock()
			select { // the previous write is being sent again: wait for it
			case <-again:
				continue
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		same := p.leader == "" || (p.leader == leader && p.term == term)
		if same {
			p.nextSent = true
		}
		p.mu.Unlock()
		if same {
			return nil
		}
		select {
		case <-p.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		if p.unknown {
			return ErrConnectionLoss
		}
		return nil
	}
	return nil
}

// markSubmitted records that the write reached leader, in order.
func (s *writeSlot) markSubmitted(leader raft.ServerID, term uint64) {
	s.mu.Lock()
	s.leader, s.term = leader, term
	if s.resubmitted != nil {
		close(s.resubmitted)
		s.resubmitted = nil
	}
	s.mu.Unlock()
	s.submitOnce.Do(func() { close(s.submitted) })
}

// retract takes back a write the leader refused, so that it can be sent
// again; false if the next write was already sent after it.
func (s *writeSlot) retract() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.nextSent {
		return false
	}
	if s.resubmitted == nil {
		s.resubmitted = make(chan struct{})
	}
	return true
}

// wasSubmitted reports whether the write reached a leader.
func (s *writeSlot) wasSubmitted() bool {
	select {
	case <-s.submitted:
	default:
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.leader != "" && s.resubmitted == nil
}

// finish settles the outcome.
func (s *writeSlot) finish(unknown bool) {
	s.doneOnce.Do(func() {
		s.unknown = unknown
		s.prev = nil
		close(s.done)
	})
}

// release ends a slot whatever happened to its write. A write that never
// reached the leader stands in for its predecessor, so that the next write
// still waits for it and learns its outcome.
func (s *writeSlot) release() {
	select {
	case <-s.done:
		return
	default:
	}
	if s.wasSubmitted() {
		s.finish(true) // not settled by propose: assume the worst
		return
	}
	p := s.prev
	if p == nil {
		s.markSubmitted("", 0)
		s.finish(false)
		return
	}
	<-p.submitted
	<-p.done
	p.mu.Lock()
	leader, term := p.leader, p.term
	p.mu.Unlock()
	s.markSubmitted(leader, term)
	s.finish(p.unknown)
}
