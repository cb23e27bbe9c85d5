package recipe

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/zooraft/zoo"
)

// Errors of Semaphore.
var (
	// ErrNoLease: TryAcquire found every lease taken (or being waited for).
	ErrNoLease = errors.New("recipe: no lease available")
	// ErrLeaseCountMismatch: this Semaphore's number of leases differs from
	// the one recorded at the semaphore's path by its first participant.
	ErrLeaseCountMismatch = errors.New("recipe: semaphore participants disagree on the number of leases")
)

// Semaphore is a distributed counting semaphore: at most N leases are held
// at once across all participants. It follows Curator's
// InterProcessSemaphoreV2 layout and algorithm:
//
//	<path>          data: N, written by the first participant, checked by all
//	<path>/locks    a Mutex ("_c_<uuid>-lock-<seq>") that orders acquirers
//	<path>/leases   one ephemeral sequential node per lease ("_c_<uuid>-lease-<seq>")
//
// Acquire takes the inner lock, creates its lease node, and waits (watching
// the lease children) until there are at most N lease nodes, then releases the
// inner lock. Only the head of the line watches the leases, so a Release
// wakes one acquirer (no herd effect), and acquirers are served in order.
// Safety does not depend on the inner lock: an acquirer proceeds only after
// seeing at most N lease nodes, its own included, and of any N+1 concurrent
// ones the last created sees all the others. TryAcquire therefore skips the
// lock.
//
// Every participant must agree on N: the first writes it into the path's
// data; one that disagrees gets [ErrLeaseCountMismatch] from Acquire and
// TryAcquire (Curator leaves a mismatch undetected). To change N, stop all
// participants and clear the path's data.
//
// # Session expiry, connection loss
//
// A lease lives in the session that acquired it: if the session expires or is
// closed, the lease node is gone and the next acquirer gets a lease; the
// holder is told by [Lease.Lost], and [Lease.Release] returns an error
// wrapping [ErrLost]. As for [Mutex], a lease is also lost when its replica
// cannot serve for longer than the suspend grace ([WithSuspendGrace]) or its
// node is deleted by someone else. zoo.ErrConnectionLoss and
// zoo.ErrNotServing are retried until the context or the session ends; a
// lease create with an unknown outcome is found again by its UUID; an Acquire
// that fails or is cancelled deletes its nodes.
//
// A Semaphore value may hold any number of leases at once (each Acquire is
// independent); it is safe for concurrent use.
type Semaphore struct {
	s    *zoo.Session
	path string
	max  int
	cfg  seqConfig
}

const (
	semaphoreLocks  = "locks"
	semaphoreLeases = "leases"
	semaphoreMarker = "lease-"
)

// NewSemaphore returns a participant of the semaphore at path with maxLeases
// leases. It does no I/O. A nil session, a bad path or maxLeases < 1 is an
// error wrapping zoo.ErrBadArguments (a bad path as a *zoo.PathError).
func NewSemaphore(s *zoo.Session, path string, maxLeases int, opts ...HoldOption) (*Semaphore, error) {
	if err := checkArgs("recipe.NewSemaphore", s, path, false); err != nil {
		return nil, err
	}
	if maxLeases < 1 {
		return nil, fmt.Errorf("recipe.NewSemaphore: %d leases: %w", maxLeases, zoo.ErrBadArguments)
	}
	return &Semaphore{s: s, path: path, max: maxLeases, cfg: seqOptions(opts)}, nil
}

// Path returns the semaphore's path.
func (sem *Semaphore) Path() string { return sem.path }

// MaxLeases returns the number of leases.
func (sem *Semaphore) MaxLeases() int { return sem.max }

// Acquire blocks until it holds a lease, ctx ends (its error is returned) or
// the session ends (its error).
func (sem *Semaphore) Acquire(ctx context.Context) (*Lease, error) {
	return sem.acquire(ctx, false)
}

// TryAcquire takes a lease if one is free and nobody is waiting for one, else
// returns [ErrNoLease]. It is a round trip: it creates a lease node and
// deletes it again if there are too many.
func (sem *Semaphore) TryAcquire(ctx context.Context) (*Lease, error) {
	return sem.acquire(ctx, true)
}

func (sem *Semaphore) acquire(ctx context.Context, try bool) (*Lease, error) {
	if err := sem.checkMax(ctx); err != nil {
		return nil, err
	}
	if !try {
		lock, err := seqAcquire(ctx, sem.s, sem.path+"/"+semaphoreLocks, mutexMarker, nil,
			mutexExclusive.match, seqPredecessor, false)
		if err != nil {
			return nil, err
		}
		defer func() { _ = lock.releaseDetached(ctx) }()
	}
	c := seqNewClaim(sem.s, sem.path+"/"+semaphoreLeases, semaphoreMarker, sem.cfg.data)
	err := c.create(ctx)
	if err == nil {
		err = sem.wait(ctx, c, try)
	}
	if err != nil {
		_ = c.releaseDetached(ctx)
		if errors.Is(err, errSeqBlocked) {
			return nil, ErrNoLease
		}
		return nil, err
	}
	l := &Lease{claim: c, hold: seqNewHold()}
	l.hold.start(sem.s, c.path, sem.cfg.graceFor(sem.s), func(error) { c.releaseLost() })
	return l, nil
}

// wait blocks until there are at most max lease nodes, ours among them.
func (sem *Semaphore) wait(ctx context.Context, c *seqClaim, try bool) error {
	for {
		names, ch, err := c.contenders(ctx, !try)
		if err != nil {
			return err
		}
		if len(names) <= sem.max {
			return nil
		}
		if try {
			return errSeqBlocked
		}
		select {
		case <-ch:
		case <-ctx.Done():
			// Only the inner lock's holder watches the leases, so this is
			// the session's only child watch there.
			_ = sem.s.RemoveWatches(context.WithoutCancel(ctx), c.dir, zoo.WatcherChildren)
			return ctx.Err()
		case <-sem.s.Done():
			return sessionErr(sem.s)
		}
	}
}

// checkMax records the number of leases in the path's data if nobody has,
// else checks it.
func (sem *Semaphore) checkMax(ctx context.Context) error {
	if err := ensurePath(ctx, sem.s, sem.path); err != nil {
		return err
	}
	want := strconv.Itoa(sem.max)
	for attempt := 0; ; attempt++ {
		data, st, err := sem.s.Get(ctx, sem.path)
		if err == nil {
			switch {
			case string(data) == want:
				return nil
			case len(data) != 0:
				return fmt.Errorf("%w: %s records %q leases, this Semaphore has %d",
					ErrLeaseCountMismatch, sem.path, data, sem.max)
			}
			_, err = sem.s.Set(ctx, sem.path, []byte(want), st.Version)
			if err == nil {
				return nil
			}
			if errors.Is(err, zoo.ErrBadVersion) {
				// Someone wrote first (maybe we, through a lost reply):
				// catch up and read again.
				if err = sem.s.Sync(ctx, sem.path); err == nil {
					continue
				}
			}
		}
		if !transient(err) {
			return err
		}
		if err := backoff(ctx, sem.s, attempt); err != nil {
			return err
		}
	}
}

// Lease is one lease of a Semaphore, held until [Lease.Release] or until it
// is lost with its session (see [Semaphore]).
type Lease struct {
	claim *seqClaim
	hold  *seqHold

	mu       sync.Mutex // guards released
	released bool
}

// Release gives the lease back: [Lease.Lost] closes, then its node is
// deleted and the next acquirer is woken. It returns an error wrapping
// [ErrLost] if the lease had been lost before. If ctx ends before the node is
// deleted, Release returns ctx's error and the deletion goes on in the
// background. Releasing twice does nothing.
func (l *Lease) Release(ctx context.Context) error {
	l.mu.Lock()
	if l.released {
		l.mu.Unlock()
		return nil
	}
	l.released = true
	l.mu.Unlock()
	lost := l.hold.release()
	err := l.claim.release(ctx)
	if lost != nil {
		return lost
	}
	return err
}

// Lost returns a channel that is closed when the lease ends: released, or
// lost (session expired or closed, replica suspended, node deleted).
func (l *Lease) Lost() <-chan struct{} { return l.hold.lost }

// Held reports whether the lease is held and has not been lost.
func (l *Lease) Held() bool { return l.hold.held() }

// Token returns the zxid of the lease node's creation, unique to this lease.
// Leases are held N at a time, so tokens do not fence one holder from the
// next the way a Mutex's do.
func (l *Lease) Token() int64 { return l.claim.czxid }

// Sequence returns the sequence number of the lease node.
func (l *Lease) Sequence() int64 { return l.claim.seq }

// Node returns the path of the lease node.
func (l *Lease) Node() string { return l.claim.path }
