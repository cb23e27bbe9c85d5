package recipe

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/zooraft/zoo"
)

// How every recipe treats the errors of an embedded session: which ones are
// transient and retried, the pause between retries, what a call returns when
// its session ends, and how cleanup outlives a call's context.

// transient reports whether err is one an embedded session sees while its
// replica is out of quorum or the raft leader changes: zoo.ErrNotServing
// (nothing was done), zoo.ErrConnectionLoss (a write's outcome is unknown) or
// zoo.ErrOperationTimeout (not enqueued: nothing was done). Retrying is right
// until the context or the session ends, provided the caller treats an
// unknown write as unknown.
func transient(err error) bool {
	return errors.Is(err, zoo.ErrNotServing) || errors.Is(err, zoo.ErrConnectionLoss) ||
		errors.Is(err, zoo.ErrOperationTimeout)
}

// ctxEnded reports whether err is a context's end. A write cut short by it
// has an unknown outcome, as after zoo.ErrConnectionLoss.
func ctxEnded(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// sessionEnded reports whether err says the session is over.
func sessionEnded(err error) bool {
	return errors.Is(err, zoo.ErrSessionExpired) || errors.Is(err, zoo.ErrClosed)
}

// sessionErr is the error of an ended session.
func sessionErr(s *zoo.Session) error {
	if err := s.Err(); err != nil {
		return err
	}
	return zoo.ErrClosed
}

// lostWith tells, when an ephemeral node of s vanished, whether it went with
// the end of s (it returns the session's error) or was deleted by someone
// else (nil). The ensemble deletes a session's ephemerals, firing their
// watches, just before the session's replica reports the session ended; so
// if the replica no longer knows the session (or cannot tell), lostWith
// waits for that report, at most the session timeout.
func lostWith(ctx context.Context, s *zoo.Session) error {
	if err := s.Err(); err != nil {
		return err
	}
	if _, err := s.GetEphemerals(ctx, "/"); err == nil {
		return nil // the session lives on
	}
	t := time.NewTimer(s.Timeout())
	defer t.Stop()
	select {
	case <-s.Done():
		return sessionErr(s)
	case <-t.C:
	case <-ctx.Done():
	}
	return nil
}

// backoff waits before retry number attempt (0-based): exponential from 5ms,
// at most 250ms. It returns ctx's error or the session's if either ends
// first.
func backoff(ctx context.Context, s *zoo.Session, attempt int) error {
	d := min(5*time.Millisecond<<min(attempt, 6), 250*time.Millisecond)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-s.Done():
		return sessionErr(s)
	}
}

// errRetryNow asks retry to run its function again at once.
var errRetryNow = errors.New("recipe: retry")

// retry runs fn until it returns nil or an error that is neither transient
// nor errRetryNow, backing off between transient failures. Use it only for
// work that is safe to repeat after an unknown outcome (reads, idempotent or
// checked writes).
func retry(ctx context.Context, s *zoo.Session, fn func() error) error {
	for attempt := 0; ; {
		err := fn()
		switch {
		case err == nil:
			return nil
		case errors.Is(err, errRetryNow):
			if cerr := ctx.Err(); cerr != nil {
				return cerr
			}
			continue
		case !transient(err):
			return err
		}
		if berr := backoff(ctx, s, attempt); berr != nil {
			return fmt.Errorf("%w (while retrying after: %v)", berr, err)
		}
		attempt++
	}
}

// waitEvent waits for a one-shot watch to fire, the context to end or the
// session to end.
func waitEvent(ctx context.Context, s *zoo.Session, ev <-chan zoo.Event) error {
	select {
	case <-ev:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-s.Done():
		return sessionErr(s)
	}
}

// sessionCtx returns a context that ends with the session.
func sessionCtx(s *zoo.Session) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		select {
		case <-s.Done():
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// cleanupCtx returns the context for cleanup a call does itself after its
// context ended or it failed (deleting the node it created, settling a
// claim): ctx's values without its cancellation, bounded by the session
// timeout (at least a second, at most five). What does not finish in that
// time is left to the background or to the session's end.
func cleanupCtx(ctx context.Context, s *zoo.Session) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), min(max(s.Timeout(), time.Second), 5*time.Second))
}

// sweep runs clean in the background until it succeeds, pausing a quarter of
// the session timeout before each try; it stops when the session ends (which
// takes ephemeral nodes with it). With linger it goes on after a success for
// twice the session timeout: a write whose outcome was unknown may still
// commit that long after (it was in flight at a raft leader that is being
// replaced), leaving a node to clean up late.
func sweep(s *zoo.Session, linger bool, clean func(ctx context.Context) error) {
	go func() {
		ctx, cancel := sessionCtx(s)
		defer cancel()
		until := time.Now().Add(2 * s.Timeout())
		pause := max(s.Timeout()/4, 50*time.Millisecond)
		done := false
		for !done || (linger && time.Now().Before(until)) {
			t := time.NewTimer(pause)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return
			}
			done = clean(ctx) == nil || done
		}
	}()
}
