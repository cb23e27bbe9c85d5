package recipe

import (
	"context"
	"errors"
	"strings"
	"sync"

	"github.com/zooraft/zoo"
)

// Errors of the locks (Mutex, RWMutex).
var (
	// ErrLocked: TryLock (or TryRLock) found the lock held, or waited for,
	// by another participant.
	ErrLocked = errors.New("recipe: lock is held by another participant")
	// ErrNotLocked: Unlock (or RUnlock, Downgrade) on a value that does not
	// hold the lock in that mode.
	ErrNotLocked = errors.New("recipe: not locked by this value")
)

// Mutex is a distributed exclusive lock: ZooKeeper's lock recipe, as
// Curator's InterProcessMutex and etcd's concurrency.Mutex.
//
// Each Lock creates an ephemeral sequential node under the lock's path, named
// "_c_<uuid>-lock-<sequence>" as Curator's protected mode names them (Curator
// clients connected through zkwire share the lock). The node with the lowest
// sequence holds the lock; every other one watches only the node just before
// its own, so an Unlock wakes exactly one waiter (no herd effect), and waiters
// are served in arrival order (no starvation).
//
// # Participants and reentrancy
//
// A Mutex value is one participant: it is not reentrant. Lock on a value that
// holds the lock, or while another goroutine's Lock on it is running, returns
// [ErrNotReentrant] instead of deadlocking (Curator's lock is reentrant per
// thread; Go has no goroutine identity to key that on). Goroutines that
// contend use a value each; values are cheap, NewMutex does no I/O, and any
// number can share a session.
//
// # Fencing
//
// [Mutex.Token] is the zxid of the lock node's creation: it strictly
// increases from one holder to the next, so a resource that remembers the
// highest token it has seen can refuse a stale holder (one that lost the lock
// without knowing yet). Inside the same ensemble, a write can be made
// conditional on still holding the lock: put zoo.CheckOp{Path: m.Node(),
// Version: -1} in its Multi.
//
// # Session expiry, connection loss
//
// The lock lives in the session: if the session expires or is closed, the
// lock node is gone and the next waiter gets the lock. The holder is told by
// [Mutex.Lost], which closes the moment the hold ends; Unlock then returns an
// error wrapping [ErrLost]. If the holder's replica cannot serve for longer
// than the suspend grace (see [WithSuspendGrace]) the holder cannot know
// whether the ensemble already expired its session, so Lost closes then
// too, with [ErrSuspended], and the node is deleted as soon as the replica
// serves again. The same goes if someone else deletes the node
// ([ErrNodeDeleted]).
//
// zoo.ErrConnectionLoss and zoo.ErrNotServing are transient: Lock, TryLock
// and Unlock retry them until their context or the session ends. A create
// whose outcome is unknown is found again by the UUID in its name, never
// assumed to have failed; a Lock that fails or is cancelled deletes its node
// (with a fresh, bounded context: cleanup goes on in the background if the
// ensemble cannot be reached), so it leaves no contender behind.
type Mutex struct {
	core mutexCore
}

// NewMutex returns a participant of the lock at path. It does no I/O: path
// and its parents are created by the first Lock. A nil session or a bad path
// is an error wrapping zoo.ErrBadArguments (a bad path as a *zoo.PathError).
func NewMutex(s *zoo.Session, path string, opts ...HoldOption) (*Mutex, error) {
	if err := checkArgs("recipe.NewMutex", s, path, false); err != nil {
		return nil, err
	}
	return &Mutex{core: mutexCore{s: s, dir: path, cfg: seqOptions(opts)}}, nil
}

// Path returns the lock's path.
func (m *Mutex) Path() string { return m.core.dir }

// Lock blocks until this participant holds the lock, ctx ends (its error is
// returned) or the session ends (zoo.ErrSessionExpired or zoo.ErrClosed). It
// returns [ErrNotReentrant] if the value holds the lock or is acquiring it
// already.
func (m *Mutex) Lock(ctx context.Context) error {
	return m.core.lock(ctx, mutexExclusive, false)
}

// TryLock takes the lock if nobody holds it or waits for it, else returns
// [ErrLocked] at once. It is a round trip to the ensemble, not a local check:
// it creates a node and deletes it again if the lock is taken.
func (m *Mutex) TryLock(ctx context.Context) error {
	return m.core.lock(ctx, mutexExclusive, true)
}

// Unlock releases the lock: [Mutex.Lost] closes, then the node is deleted and
// the next waiter is woken. It returns [ErrNotLocked] if the value does not
// hold the lock, and an error wrapping [ErrLost] if the lock had been lost
// before (the critical section was not protected to the end). If ctx ends
// before the node is deleted, Unlock returns ctx's error and the deletion goes
// on in the background; the value may Lock again at once either way.
func (m *Mutex) Unlock(ctx context.Context) error {
	return m.core.unlock(ctx, mutexExclusive)
}

// Lost returns a channel that is closed when the current hold ends: released
// by Unlock, or lost (session expired or closed, replica suspended, node
// deleted). While the value does not hold the lock it returns a closed channel.
// After a loss the value still counts as locked until Unlock, which reports
// the loss and makes the value usable again.
func (m *Mutex) Lost() <-chan struct{} { return m.core.lost() }

// Held reports whether the value holds the lock and has not lost it.
func (m *Mutex) Held() bool { return m.core.held() }

// Token returns the fencing token of the current hold (the zxid of the lock
// node's creation), or 0 if the value does not hold the lock.
func (m *Mutex) Token() int64 { return m.core.token() }

// Sequence returns the sequence number of the current hold's node (its place
// in line), or -1 if the value does not hold the lock.
func (m *Mutex) Sequence() int64 { return m.core.sequence() }

// Node returns the path of the current hold's node, or "".
func (m *Mutex) Node() string { return m.core.node() }

// mutexKind is a kind of lock node: its marker, which siblings contend with
// it, and which of them it waits for.
type mutexKind struct {
	marker  string
	match   func(name string) bool
	blocker func(sorted []string, ours int) int
}

const mutexMarker = "lock-"

// mutexExclusive is the Mutex's node kind (also the Semaphore's inner lock).
var mutexExclusive = &mutexKind{
	marker:  mutexMarker,
	match:   func(n string) bool { return strings.Contains(n, mutexMarker) },
	blocker: seqPredecessor,
}

// mutexCore is the state of one lock participant, shared by Mutex and RWMutex.
type mutexCore struct {
	s   *zoo.Session
	dir string
	cfg seqConfig

	mu    sync.Mutex // guards busy, kind, claim, hold
	busy  bool       // acquiring or holding
	kind  *mutexKind // of the hold
	claim *seqClaim  // the held node
	hold  *seqHold
}

func (m *mutexCore) lock(ctx context.Context, k *mutexKind, try bool) error {
	m.mu.Lock()
	if m.busy {
		m.mu.Unlock()
		return ErrNotReentrant
	}
	m.busy = true
	m.mu.Unlock()
	c, err := seqAcquire(ctx, m.s, m.dir, k.marker, m.cfg.data, k.match, k.blocker, try)
	if err != nil {
		m.mu.Lock()
		m.busy = false
		m.mu.Unlock()
		if errors.Is(err, errSeqBlocked) {
			return ErrLocked
		}
		return err
	}
	m.start(k, c, nil)
	return nil
}

// start records c as held and starts watching it. With expect non-nil, it
// only does so if the value still holds expect (a Downgrade replacing its
// write node), and reports whether it did.
func (m *mutexCore) start(k *mutexKind, c, expect *seqClaim) bool {
	h := seqNewHold()
	m.mu.Lock()
	if expect != nil && m.claim != expect {
		m.mu.Unlock()
		return false
	}
	m.busy, m.kind, m.claim, m.hold = true, k, c, h
	m.mu.Unlock()
	h.start(m.s, c.path, m.cfg.graceFor(m.s), func(error) { c.releaseLost() })
	return true
}

func (m *mutexCore) unlock(ctx context.Context, k *mutexKind) error {
	m.mu.Lock()
	if m.hold == nil || m.kind != k {
		m.mu.Unlock()
		return ErrNotLocked
	}
	c, h := m.claim, m.hold
	m.busy, m.kind, m.claim, m.hold = false, nil, nil, nil
	m.mu.Unlock()
	lost := h.release()
	err := c.release(ctx)
	if lost != nil {
		return lost
	}
	return err
}

func (m *mutexCore) lost() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.hold == nil {
		return seqClosed
	}
	return m.hold.lost
}

func (m *mutexCore) held() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.hold != nil && m.hold.held()
}

func (m *mutexCore) token() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.claim == nil {
		return 0
	}
	return m.claim.czxid
}

func (m *mutexCore) sequence() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.claim == nil {
		return -1
	}
	return m.claim.seq
}

func (m *mutexCore) node() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.claim == nil {
		return ""
	}
	return m.claim.path
}
