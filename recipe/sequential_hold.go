package recipe

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/zooraft/zoo"
)

// Holding: once a contender's claim is granted (a lock, a lease, the
// leadership), a monitor watches its node and tells the holder the moment the
// hold ends, whether released or lost.

// Why a hold was lost: ErrLost wraps one of these or the session's end.
var (
	// ErrLost: a lock, lease or leadership ended without its owner releasing
	// it. It is wrapped together with the cause: the session's end
	// (zoo.ErrSessionExpired, zoo.ErrClosed), ErrSuspended, or ErrNodeDeleted.
	ErrLost = errors.New("recipe: lost")

	// ErrSuspended: the session's replica could not serve (no quorum) for
	// longer than the suspend grace (see WithSuspendGrace). The ensemble may
	// be about to expire the session, so the holder gives up first.
	ErrSuspended = errors.New("recipe: replica out of quorum for longer than the suspend grace")

	// ErrNodeDeleted: someone else deleted the node that held the lock, lease
	// or leadership.
	ErrNodeDeleted = errors.New("recipe: node deleted by someone else")
)

// seqClosed is an always-closed channel: the Lost channel of nothing held.
var seqClosed = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

// seqHold watches a node while its owner holds it (a lock, a lease, the
// leadership) and closes lost the moment the hold ends: the owner released
// it, the node was deleted, the session ended, or the replica could not serve
// for longer than the suspend grace.
type seqHold struct {
	lost chan struct{}
	stop chan struct{}
	once sync.Once

	mu    sync.Mutex // guards cause
	cause error      // why the hold was lost; nil while held or after a release
}

func seqNewHold() *seqHold {
	return &seqHold{lost: make(chan struct{}), stop: make(chan struct{})}
}

// end closes lost once, recording cause (nil: the owner released). It
// reports whether this call ended the hold.
func (h *seqHold) end(cause error) bool {
	ended := false
	h.once.Do(func() {
		h.mu.Lock()
		h.cause = cause
		h.mu.Unlock()
		close(h.lost)
		ended = true
	})
	return ended
}

// release ends the hold on the owner's behalf and stops the monitor. It
// returns the loss (wrapping ErrLost) if the hold had been lost before.
func (h *seqHold) release() error {
	if h.end(nil) {
		close(h.stop)
		return nil
	}
	return h.err()
}

// err returns the loss, wrapping ErrLost and its cause; nil if not lost.
func (h *seqHold) err() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.cause == nil {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrLost, h.cause)
}

// held reports whether the hold has not ended.
func (h *seqHold) held() bool {
	select {
	case <-h.lost:
		return false
	default:
		return true
	}
}

// start runs the monitor of the node at path. onLost runs (in the monitor's
// goroutine) after lost closed for a loss, not for a release.
func (h *seqHold) start(s *zoo.Session, path string, grace time.Duration, onLost func(cause error)) {
	go h.monitor(s, path, grace, onLost)
}

// monitor keeps a data watch on the node and also looks at it every quarter
// of the grace: a replica out of quorum fires no watch, so only failing looks
// tell that the hold can no longer be trusted.
func (h *seqHold) monitor(s *zoo.Session, path string, grace time.Duration, onLost func(error)) {
	ctx, cancel := sessionCtx(s)
	defer cancel()
	lose := func(cause error) {
		if h.end(cause) && onLost != nil {
			onLost(cause)
		}
	}
	ended := func(err error) error {
		if serr := s.Err(); serr != nil {
			return serr
		}
		if errors.Is(err, ErrNodeDeleted) {
			if serr := lostWith(ctx, s); serr != nil {
				return serr
			}
		}
		return err
	}
	poll := s.Timeout() / 4
	if grace >= 0 {
		poll = grace / 4
	}
	tick := time.NewTicker(max(poll, 10*time.Millisecond))
	defer tick.Stop()
	lastOK := time.Now()
	// failed handles a failed look at the node and reports whether the
	// hold is over.
	failed := func(err error) bool {
		switch {
		case errors.Is(err, zoo.ErrNoNode):
			lose(ended(ErrNodeDeleted))
		case transient(err):
			if grace < 0 || time.Since(lastOK) <= grace {
				return false // look again
			}
			lose(ErrSuspended)
		case errors.Is(err, context.Canceled):
			return false // the session ended: reported by s.Done
		default:
			lose(ended(err))
		}
		return true
	}
	var events <-chan zoo.Event
	for {
		if events == nil {
			_, _, ch, err := s.GetW(ctx, path)
			if err == nil {
				events, lastOK = ch, time.Now()
			} else if failed(err) {
				return
			}
		}
		select {
		case ev := <-events:
			events = nil
			switch {
			case ev.Type == zoo.EventNodeDeleted:
				lose(ended(ErrNodeDeleted))
				return
			case ev.Type == zoo.EventNotWatching && s.Err() != nil:
				lose(s.Err())
				return
			}
			// Data changed or the watch was removed: watch again.
		case <-s.Done():
			lose(sessionErr(s))
			return
		case <-h.stop:
			return
		case <-tick.C:
			if events == nil {
				continue // GetW failed: try again
			}
			ok, _, err := s.Exists(ctx, path)
			switch {
			case err == nil && ok:
				lastOK = time.Now()
			case err == nil:
				lose(ended(ErrNodeDeleted))
				return
			case failed(err):
				return
			}
		}
	}
}
