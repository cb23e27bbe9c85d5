package recipe

import (
	"context"
	"strings"

	"github.com/zooraft/zoo"
)

// RWMutex is a distributed readers-writer lock: ZooKeeper's shared-lock
// recipe, as Curator's InterProcessReadWriteLock. Any number of readers hold
// it together; a writer holds it alone.
//
// Readers and writers queue in one line of ephemeral sequential nodes under
// the lock's path ("_c_<uuid>-__READ__<seq>" and "_c_<uuid>-__WRIT__<seq>",
// Curator's names). A reader waits only for the nearest writer before it (and
// watches only that node); a writer waits for the node just before it, of
// either kind. Readers that arrive after a waiting writer queue behind it, so
// a stream of readers cannot starve writers, and a writer's Unlock wakes just
// the readers up to the next writer.
//
// One RWMutex value is one participant holding at most one mode at a time,
// not reentrant: RLock or Lock while it holds or is acquiring returns
// [ErrNotReentrant] (readers that run concurrently use a value each).
// [RWMutex.Downgrade] turns a write lock into a read lock without letting a
// writer in between (Curator allows the same); there is no upgrade, which
// deadlocks as soon as two readers try it.
//
// Tokens, Lost, session expiry and connection loss work as for [Mutex]: a
// lock node belongs to its session, and a hold that ends without Unlock or
// RUnlock closes [RWMutex.Lost]. Write-lock tokens increase from one writer
// to the next, and a read lock's token is greater than the token of every
// write lock released before it was granted.
type RWMutex struct {
	core mutexCore
}

const (
	rwmutexReadMarker  = "__READ__"
	rwmutexWriteMarker = "__WRIT__"
	// rwmutexDowngradeMarker tags the read node a Downgrade creates: it is
	// created behind any writer already queued, so such a writer must wait
	// for it although it comes later in line.
	rwmutexDowngradeMarker = "__DOWN" + rwmutexReadMarker
)

func rwmutexMatch(n string) bool {
	return strings.Contains(n, rwmutexReadMarker) || strings.Contains(n, rwmutexWriteMarker)
}

// rwmutexReadBlocker waits for the nearest writer before ours.
func rwmutexReadBlocker(names []string, ours int) int {
	for i := ours - 1; i >= 0; i-- {
		if strings.Contains(names[i], rwmutexWriteMarker) {
			return i
		}
	}
	return -1
}

// rwmutexWriteBlocker waits for the node just before ours; first in line, it
// still waits for a downgraded reader queued behind it.
func rwmutexWriteBlocker(names []string, ours int) int {
	if ours > 0 {
		return ours - 1
	}
	for i := ours + 1; i < len(names); i++ {
		if strings.Contains(names[i], rwmutexDowngradeMarker) {
			return i
		}
	}
	return -1
}

// rwmutexDowngradeBlocker lets a downgrading reader in at once while its
// write node (named write) still holds the lock; if that node is gone, the
// reader waits as any reader does.
func rwmutexDowngradeBlocker(write string) func([]string, int) int {
	return func(names []string, ours int) int {
		if len(names) > 0 && names[0] == write {
			return -1
		}
		return rwmutexReadBlocker(names, ours)
	}
}

var (
	rwmutexRead  = &mutexKind{marker: rwmutexReadMarker, match: rwmutexMatch, blocker: rwmutexReadBlocker}
	rwmutexWrite = &mutexKind{marker: rwmutexWriteMarker, match: rwmutexMatch, blocker: rwmutexWriteBlocker}
)

// NewRWMutex returns a participant of the readers-writer lock at path. It
// does no I/O. A nil session or a bad path is an error wrapping
// zoo.ErrBadArguments (a bad path as a *zoo.PathError).
func NewRWMutex(s *zoo.Session, path string, opts ...HoldOption) (*RWMutex, error) {
	if err := checkArgs("recipe.NewRWMutex", s, path, false); err != nil {
		return nil, err
	}
	return &RWMutex{core: mutexCore{s: s, dir: path, cfg: seqOptions(opts)}}, nil
}

// Path returns the lock's path.
func (rw *RWMutex) Path() string { return rw.core.dir }

// RLock blocks until this participant holds a read lock, ctx ends or the
// session ends (see [Mutex.Lock]).
func (rw *RWMutex) RLock(ctx context.Context) error {
	return rw.core.lock(ctx, rwmutexRead, false)
}

// TryRLock takes a read lock if no writer holds or waits for the lock, else
// returns [ErrLocked].
func (rw *RWMutex) TryRLock(ctx context.Context) error {
	return rw.core.lock(ctx, rwmutexRead, true)
}

// RUnlock releases a read lock (see [Mutex.Unlock]); [ErrNotLocked] if the
// value does not hold one.
func (rw *RWMutex) RUnlock(ctx context.Context) error {
	return rw.core.unlock(ctx, rwmutexRead)
}

// Lock blocks until this participant holds the write lock, ctx ends or the
// session ends (see [Mutex.Lock]).
func (rw *RWMutex) Lock(ctx context.Context) error {
	return rw.core.lock(ctx, rwmutexWrite, false)
}

// TryLock takes the write lock if nobody holds or waits for the lock, else
// returns [ErrLocked].
func (rw *RWMutex) TryLock(ctx context.Context) error {
	return rw.core.lock(ctx, rwmutexWrite, true)
}

// Unlock releases the write lock (see [Mutex.Unlock]); [ErrNotLocked] if the
// value does not hold it.
func (rw *RWMutex) Unlock(ctx context.Context) error {
	return rw.core.unlock(ctx, rwmutexWrite)
}

// Downgrade turns the write lock this value holds into a read lock, with no
// writer able to get in between: it takes a read lock granted at once while
// its write node still holds the lock, then releases the write lock (in the
// background if ctx ends first). Readers queued behind the write lock get in
// with it; writers queued behind it also wait for the downgraded read lock
// (Curator's downgrade lets such a writer in while the downgraded reader
// holds; Curator writers on the same lock do not know this rule).
// [ErrNotLocked] if the value does not hold the write lock; an error wrapping
// [ErrLost] if it was lost. On any other error the value still holds the
// write lock.
func (rw *RWMutex) Downgrade(ctx context.Context) error {
	m := &rw.core
	m.mu.Lock()
	if m.hold == nil || m.kind != rwmutexWrite {
		m.mu.Unlock()
		return ErrNotLocked
	}
	wc, wh := m.claim, m.hold
	m.mu.Unlock()
	if err := wh.err(); err != nil {
		return err
	}
	rc, err := seqAcquire(ctx, m.s, m.dir, rwmutexDowngradeMarker, m.cfg.data, rwmutexMatch,
		rwmutexDowngradeBlocker(wc.name), false)
	if err != nil {
		return err
	}
	if !m.start(rwmutexRead, rc, wc) { // unlocked meanwhile by another goroutine
		_ = rc.releaseDetached(ctx)
		return ErrNotLocked
	}
	_ = wh.release()
	_ = wc.releaseDetached(ctx)
	return nil
}

// Lost returns a channel that is closed when the current hold (read or
// write) ends; a closed channel while the value holds nothing. See
// [Mutex.Lost].
func (rw *RWMutex) Lost() <-chan struct{} { return rw.core.lost() }

// Held reports whether the value holds the lock in either mode and has not
// lost it.
func (rw *RWMutex) Held() bool { return rw.core.held() }

// Writing reports whether the value's hold is the write lock.
func (rw *RWMutex) Writing() bool {
	rw.core.mu.Lock()
	defer rw.core.mu.Unlock()
	return rw.core.hold != nil && rw.core.kind == rwmutexWrite
}

// Token returns the fencing token of the current hold (the zxid of its node's
// creation), or 0. See [Mutex.Token].
func (rw *RWMutex) Token() int64 { return rw.core.token() }

// Sequence returns the sequence number of the current hold's node, or -1.
func (rw *RWMutex) Sequence() int64 { return rw.core.sequence() }

// Node returns the path of the current hold's node, or "".
func (rw *RWMutex) Node() string { return rw.core.node() }
