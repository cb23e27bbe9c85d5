package recipe

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/zooraft/zoo"
)

// Contenders: what Election, Mutex, RWMutex and Semaphore share. Each
// acquisition is a claim, an ephemeral sequential node under the recipe's
// path; claims are served in sequence order, each waiting only for the node
// that blocks it. This file creates claims (finding them again after an
// unknown outcome), waits for their turn and releases them; the hold that
// follows a granted claim is in sequential_hold.go.

// ErrNotReentrant: a Lock, TryLock, Campaign (or similar) call on a value
// that already holds, or is already acquiring in another goroutine. A
// recipe value is one participant: it is not reentrant (unlike Curator's
// per-thread reentrancy) and a second acquire fails rather than deadlocks.
// Use one value per goroutine that contends.
var ErrNotReentrant = errors.New("recipe: already held or being acquired through this value (recipe values are not reentrant)")

// HoldOption tunes how an Election, Mutex, RWMutex or Semaphore holds what it
// acquired.
type HoldOption func(*seqConfig)

// seqConfig is what HoldOptions set.
type seqConfig struct {
	grace time.Duration // 0: default (a third of the session timeout); <0: never
	data  []byte        // payload of lock and lease nodes
}

// WithSuspendGrace sets how long a holder tolerates its replica not serving
// (out of quorum: every call fails with zoo.ErrNotServing) before it treats
// what it holds as lost: its Lost channel closes with ErrSuspended and the
// recipe deletes its node as soon as it can. While the replica cannot reach
// the quorum nobody can tell whether the ensemble has already expired the
// session (and let the next contender in), so the holder must stop trusting
// its hold before the session timeout runs out.
//
// Default: a third of the session timeout, which keeps the holder's view safe
// for session timeouts of at least 3 ticks (the ensemble expires a session no
// sooner than its timeout after the last report of its replica; reports go
// every half tick and a replica notices a lost leader within about a tick).
// Zero means the default. A negative d disables the check: only the
// session's end or the node's deletion then count as a loss. Fencing with
// the hold's token is the only protection that needs no timing assumption at
// all.
func WithSuspendGrace(d time.Duration) HoldOption {
	return func(c *seqConfig) { c.grace = d }
}

// WithNodeData sets the payload of the lock or lease nodes a Mutex, RWMutex or
// Semaphore creates: who holds them, for operators reading the tree (Curator
// stores the holder's address there). Ignored by Election, whose node holds
// the Campaign value. Default: no data.
func WithNodeData(data []byte) HoldOption {
	return func(c *seqConfig) { c.data = slices.Clone(data) }
}

func seqOptions(opts []HoldOption) seqConfig {
	var c seqConfig
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	return c
}

// graceFor returns the suspend grace for s (negative: disabled).
func (c seqConfig) graceFor(s *zoo.Session) time.Duration {
	if c.grace != 0 {
		return c.grace
	}
	return s.Timeout() / 3
}

// seqMarkers are the markers of the contender recipes, for parsing other
// contenders' names.
var seqMarkers = [...]string{"__READ__", "__WRIT__", "lock-", "latch-", "lease-"}

// errSeqBlocked is wait's answer to a try that would have to wait.
var errSeqBlocked = errors.New("recipe: would block")

// seqClaim is one contender's ephemeral-sequential node under dir, named
// "_c_<uuid>-<marker><sequence>" as Curator's protected mode names them. The
// UUID is fresh for every claim (every Lock, Campaign or Acquire call), so a
// create whose outcome is unknown (zoo.ErrConnectionLoss, or the caller's
// context ending while the write was in flight) can be found again among the
// session's ephemerals, and every node carrying it is known to be this
// claim's: a duplicate is deleted, never waited for.
//
// A claim is driven by one goroutine at a time: create and wait by the
// acquiring call, release by the releasing one (and possibly, concurrently,
// by the hold monitor's loss handler: both only delete nodes).
type seqClaim struct {
	s      *zoo.Session
	dir    string
	id     string // "_c_<uuid>-"
	marker string // "lock-", "latch-", "__READ__", ...
	data   []byte

	path    string // full path once created
	name    string // last element of path
	seq     int64
	czxid   int64
	unknown bool // some create's outcome was unknown: a duplicate may still appear
}

func seqNewClaim(s *zoo.Session, dir, marker string, data []byte) *seqClaim {
	return &seqClaim{s: s, dir: dir, id: "_c_" + newUUID() + "-", marker: marker, data: data}
}

func (c *seqClaim) set(path string, st zoo.Stat) {
	c.path, c.name = path, baseName(path)
	c.seq, _ = seqParse(c.name, c.marker)
	c.czxid = st.Czxid
}

// seqDefinite reports whether a failed create certainly wrote nothing.
func seqDefinite(err error) bool {
	for _, e := range []error{zoo.ErrSessionExpired, zoo.ErrClosed, zoo.ErrNotServing, zoo.ErrNodeExists,
		zoo.ErrNoNode, zoo.ErrBadArguments, zoo.ErrNoAuth, zoo.ErrInvalidACL, zoo.ErrNoChildrenForEphemerals,
		zoo.ErrOperationTimeout} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// create creates the claim's node (and dir, if missing). After an unknown
// outcome it looks for the node by the claim's id (after a Sync, among the
// session's ephemerals) and creates again only if it is not there.
func (c *seqClaim) create(ctx context.Context) error {
	c.path, c.name = "", ""
	for attempt := 0; ; attempt++ {
		p, st, err := c.s.CreateWithStat(ctx, zoo.CreateOp{
			Path: c.dir + "/" + c.id + c.marker, Data: c.data, Mode: zoo.ModeEphemeralSequential,
		})
		switch {
		case err == nil:
			c.set(p, st)
			return nil
		case errors.Is(err, zoo.ErrNoNode):
			if err := ensurePath(ctx, c.s, c.dir); err != nil {
				return err
			}
			continue
		case errors.Is(err, zoo.ErrNotServing), errors.Is(err, zoo.ErrOperationTimeout):
			// Nothing was written: try again.
		case seqDefinite(err):
			return err
		default:
			c.unknown = true
			found, ferr := c.find(ctx)
			if found {
				return nil
			}
			if ferr != nil && !transient(ferr) {
				return ferr
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
		}
		if err := backoff(ctx, c.s, attempt); err != nil {
			return err
		}
	}
}

// find looks for nodes of this claim after a create with an unknown outcome:
// it keeps the earliest (deleting any other) and reports whether there was one.
func (c *seqClaim) find(ctx context.Context) (bool, error) {
	paths, err := c.own(ctx) // with a Sync: c.unknown is set
	if err != nil || len(paths) == 0 {
		return false, err
	}
	sortBySeq(paths, func(p string) (int64, bool) { return seqParse(p, c.marker) })
	for _, p := range paths[1:] {
		if err := deleteNode(ctx, c.s, p); err != nil {
			return false, err
		}
	}
	ok, st, err := c.s.Exists(ctx, paths[0])
	if err != nil || !ok {
		return false, err
	}
	c.set(paths[0], st)
	return true, nil
}

// contenders lists the claim's dir once tidy has nothing left to change
// there, with a child watch (set by the last listing) if watch.
func (c *seqClaim) contenders(ctx context.Context, watch bool) ([]string, <-chan zoo.Event, error) {
	for {
		names, ch, err := listChildren(ctx, c.s, c.dir, watch)
		if errors.Is(err, zoo.ErrNoNode) {
			names, ch, err = nil, nil, nil // tidy creates it again
		}
		if err != nil {
			return nil, nil, err
		}
		again, err := c.tidy(ctx, names)
		if err != nil {
			return nil, nil, err
		}
		if !again {
			return names, ch, nil
		}
	}
}

// tidy makes names, the children of the claim's dir, fit to decide on: it
// deletes the duplicates of the claim's node (left by a create whose outcome
// was unknown: they must neither hold anyone up nor take a place) and, if
// the node itself is gone (someone deleted it), creates a new one at the end
// of the line. again reports that it changed something: list again.
func (c *seqClaim) tidy(ctx context.Context, names []string) (again bool, err error) {
	ours := false
	for _, n := range names {
		switch {
		case n == c.name:
			ours = true
		case strings.HasPrefix(n, c.id):
			if err := deleteNode(ctx, c.s, c.dir+"/"+n); err != nil {
				return false, err
			}
			again = true
		}
	}
	if !ours {
		if err := c.s.Err(); err != nil {
			return false, err
		}
		if err := c.create(ctx); err != nil {
			return false, err
		}
		again = true
	}
	return again, nil
}

// wait blocks until the claim's node may proceed: blocker, given the
// contenders in sequence order (those matching match, plus ours) and our
// index, returns the index of the contender to wait for, or -1. It waits for
// that node's deletion (watching it alone: no herd) and looks again. With try
// it returns errSeqBlocked instead of waiting.
func (c *seqClaim) wait(ctx context.Context, match func(string) bool, blocker func([]string, int) int, try bool) error {
	for {
		names, _, err := c.contenders(ctx, false)
		if err != nil {
			return err
		}
		var cands []string
		for _, n := range names {
			if n == c.name || match(n) {
				if _, ok := seqParse(n, c.markerOf(n)); ok {
					cands = append(cands, n)
				}
			}
		}
		sortBySeq(cands, func(n string) (int64, bool) { return seqParse(n, c.markerOf(n)) })
		b := blocker(cands, slices.Index(cands, c.name))
		if b < 0 {
			return nil
		}
		if try {
			return errSeqBlocked
		}
		if err := waitDeleted(ctx, c.s, c.dir+"/"+cands[b]); err != nil {
			return err
		}
	}
}

// markerOf returns the marker to parse a contender's sequence with: ours, or
// for RWMutex nodes whichever of the two markers the name carries.
func (c *seqClaim) markerOf(name string) string {
	if strings.Contains(name, c.marker) {
		return c.marker
	}
	for _, m := range seqMarkers {
		if strings.Contains(name, m) {
			return m
		}
	}
	return c.marker
}

// cleanup deletes the claim's node and every other node carrying its id (after
// a Sync if a create's outcome was unknown, so that a committed one shows).
func (c *seqClaim) cleanup(ctx context.Context) error {
	if c.path != "" {
		if err := deleteNode(ctx, c.s, c.path); err != nil {
			return err
		}
	}
	return retry(ctx, c.s, func() error {
		paths, err := c.own(ctx)
		if err != nil {
			return err
		}
		for _, p := range paths {
			if err := deleteNode(ctx, c.s, p); err != nil {
				return err
			}
		}
		return nil
	})
}

// own lists the session's nodes carrying the claim's id, after a Sync if a
// create's outcome was unknown (so that one committed but not yet applied
// here shows).
func (c *seqClaim) own(ctx context.Context) ([]string, error) {
	if c.unknown {
		if err := c.s.Sync(ctx, c.dir); err != nil {
			return nil, err
		}
	}
	return c.s.GetEphemerals(ctx, c.dir+"/"+c.id)
}

// release gives the claim's node up: it deletes it (and any duplicate) under
// ctx; whatever ctx does not allow to finish goes on in the background until
// done or the session ends (its ephemerals then go anyway). After a create
// with an unknown outcome the background goes on looking for a late
// duplicate for a while (see sweep). It returns nil once the node is gone (or
// the session with it), else the error that stopped it.
func (c *seqClaim) release(ctx context.Context) error {
	err := c.cleanup(ctx)
	if err != nil && sessionEnded(err) {
		err = nil
	}
	if err != nil || c.unknown {
		sweep(c.s, c.unknown, c.cleanup)
	}
	return err
}

// releaseDetached releases the claim even if ctx has ended (a failed or
// cancelled acquisition must not leave its node behind): under cleanupCtx,
// the rest in the background.
func (c *seqClaim) releaseDetached(ctx context.Context) error {
	cctx, cancel := cleanupCtx(ctx, c.s)
	defer cancel()
	return c.release(cctx)
}

// releaseLost releases the claim of a hold that was lost: it retries until
// the node is gone or the session ends, so that a holder that gave up (its
// replica was out of quorum, but its session survived) does not keep others
// waiting.
func (c *seqClaim) releaseLost() {
	ctx, cancel := sessionCtx(c.s)
	defer cancel()
	_ = c.release(ctx)
}

// seqAcquire creates a claim under dir and waits until blocker lets it
// proceed. On failure (or errSeqBlocked for try) it deletes what it created
// before returning.
func seqAcquire(ctx context.Context, s *zoo.Session, dir, marker string, data []byte,
	match func(string) bool, blocker func([]string, int) int, try bool) (*seqClaim, error) {
	c := seqNewClaim(s, dir, marker, data)
	err := c.create(ctx)
	if err == nil {
		err = c.wait(ctx, match, blocker, try)
	}
	if err != nil {
		_ = c.releaseDetached(ctx)
		return nil, err
	}
	return c, nil
}

// seqPredecessor is the blocker of exclusive contenders: wait for the node
// just before ours.
func seqPredecessor(_ []string, ours int) int { return ours - 1 }
