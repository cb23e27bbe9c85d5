package recipe

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/zooraft/zoo"
)

// Errors of Election.
var (
	// ErrNoLeader: nobody campaigns in the election.
	ErrNoLeader = errors.New("recipe: election has no leader")
	// ErrNotLeader: Proclaim by a value that is not the leader.
	ErrNotLeader = errors.New("recipe: not the leader")
	// ErrResigned: a Campaign ended by Resign from another goroutine.
	ErrResigned = errors.New("recipe: campaign stopped by Resign")
)

// LeaderInfo describes an election's leader.
type LeaderInfo struct {
	Node    string // full path of the leader's node
	Value   []byte // what the leader campaigned (or last proclaimed) with
	Session int64  // the leader's session id
	// Token is the zxid of the leader node's creation: it strictly increases
	// from one leadership term to the next, so it fences a deposed leader.
	Token   int64
	Version int32 // the node's data version: increases with each Proclaim
}

// Election is leader election: ZooKeeper's recipe, as Curator's LeaderLatch
// and LeaderSelector and etcd's concurrency.Election.
//
// Each campaigner creates an ephemeral sequential node under the election's
// path holding its value, named "_c_<uuid>-latch-<sequence>" (Curator's
// LeaderLatch names; its participants interoperate through zkwire). The lowest
// sequence leads; every other campaigner watches only the node just before
// its own, so a leader's end wakes exactly one successor, and leadership
// passes in campaign order.
//
// Two styles:
//
//   - Latch: [Election.Campaign] blocks until elected; the value then leads
//     until [Election.Resign] or until leadership is lost. Select on
//     [Election.Lost] to learn of a loss.
//   - Selector: [Election.Lead] campaigns, runs a function with a context
//     that is cancelled the moment leadership is lost, then resigns so that the
//     next campaigner takes over. [Election.LeadLoop] requeues after each term
//     (Curator's autoRequeue).
//
// Anyone can follow the election without campaigning: [Election.Leader] and
// [Election.Observe].
//
// One Election value is one campaigner, not reentrant: Campaign or Lead while
// it campaigns or leads returns [ErrNotReentrant].
//
// # Session expiry, connection loss
//
// Leadership lives in the session. It is lost the moment the session is:
// closed, expired, or (since nobody can tell from a replica cut off from the
// quorum whether the ensemble has expired the session) the replica not
// serving for longer than the suspend grace ([WithSuspendGrace]); also when
// someone deletes the leader's node. The leader is told: [Election.Lost]
// closes, [Election.IsLeader] turns false, Lead's context is cancelled; the
// election then deletes the node itself as soon as it can, so that a leader
// that gave up while its session survived does not block the others.
// [LeaderInfo.Token] fences a deposed leader that has not noticed yet.
//
// zoo.ErrConnectionLoss and zoo.ErrNotServing are transient: every method
// retries them until its context or the session ends. A campaign node whose
// create had an unknown outcome is found again by the UUID in its name; a
// Campaign that fails or is cancelled deletes its node.
type Election struct {
	s   *zoo.Session
	dir string
	cfg seqConfig

	mu     sync.Mutex              // guards busy, cancel, claim, hold
	busy   bool                    // campaigning or leading
	cancel context.CancelCauseFunc // of the running Campaign
	claim  *seqClaim               // the leader node, while leading
	hold   *seqHold
}

const electionMarker = "latch-"

func electionMatch(n string) bool { return strings.Contains(n, electionMarker) }

// NewElection returns a campaigner in the election at path. It does no I/O.
// A nil session or a bad path is an error wrapping zoo.ErrBadArguments (a bad
// path as a *zoo.PathError). Of the options only [WithSuspendGrace] applies.
func NewElection(s *zoo.Session, path string, opts ...HoldOption) (*Election, error) {
	if err := checkArgs("recipe.NewElection", s, path, false); err != nil {
		return nil, err
	}
	return &Election{s: s, dir: path, cfg: seqOptions(opts)}, nil
}

// Path returns the election's path.
func (e *Election) Path() string { return e.dir }

// Campaign blocks until this campaigner leads with value, ctx ends (its error
// is returned), the session ends (its error), or Resign is called from
// another goroutine ([ErrResigned]). Whatever ends it, a failed Campaign
// deletes its node.
func (e *Election) Campaign(ctx context.Context, value []byte) error {
	_, err := e.campaign(ctx, value)
	return err
}

func (e *Election) campaign(ctx context.Context, value []byte) (*seqHold, error) {
	e.mu.Lock()
	if e.busy && e.hold != nil && !e.hold.held() {
		// The last term ended (Lost is closed, IsLeader false) and its
		// clean-up has not run yet: it runs on its own, and this is a new
		// campaign, not a second one.
		e.busy, e.claim, e.hold = false, nil, nil
	}
	if e.busy {
		e.mu.Unlock()
		return nil, ErrNotReentrant
	}
	cctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	e.busy, e.cancel, e.claim, e.hold = true, cancel, nil, nil
	e.mu.Unlock()

	c, err := seqAcquire(cctx, e.s, e.dir, electionMarker, value, electionMatch, seqPredecessor, false)
	e.mu.Lock()
	e.cancel = nil
	if err == nil && cctx.Err() != nil {
		// Resign (or ctx) raced the election: hand over at once.
		e.busy = false
		e.mu.Unlock()
		_ = c.releaseDetached(ctx)
		return nil, electionCause(cctx, ctx.Err())
	}
	if err != nil {
		e.busy = false
		e.mu.Unlock()
		return nil, electionCause(cctx, err)
	}
	h := seqNewHold()
	e.claim, e.hold = c, h
	e.mu.Unlock()
	h.start(e.s, c.path, e.cfg.graceFor(e.s), func(error) {
		e.mu.Lock()
		if e.hold == h {
			e.busy, e.claim, e.hold = false, nil, nil
		}
		e.mu.Unlock()
		c.releaseLost()
	})
	return h, nil
}

// electionCause returns ErrResigned if Resign stopped the campaign, else err.
func electionCause(cctx context.Context, err error) error {
	if errors.Is(context.Cause(cctx), ErrResigned) {
		return ErrResigned
	}
	return err
}

// Resign gives up leadership: [Election.Lost] closes, then the node is
// deleted and the next campaigner takes over. A Campaign running in another
// goroutine is stopped instead (it returns [ErrResigned] and deletes its
// node). Resigning when neither leading nor campaigning does nothing. If ctx
// ends before the node is deleted, Resign returns ctx's error and the deletion
// goes on in the background; the value no longer leads either way.
func (e *Election) Resign(ctx context.Context) error {
	return e.resign(ctx, nil)
}

// resign resigns the term h (any term if h is nil).
func (e *Election) resign(ctx context.Context, h *seqHold) error {
	e.mu.Lock()
	if e.hold == nil || (h != nil && e.hold != h) {
		if h == nil && e.cancel != nil {
			e.cancel(ErrResigned)
		}
		e.mu.Unlock()
		return nil
	}
	c, held := e.claim, e.hold
	e.busy, e.claim, e.hold = false, nil, nil
	e.mu.Unlock()
	_ = held.release()
	return c.release(ctx)
}

// IsLeader reports whether this campaigner leads and has not lost it.
func (e *Election) IsLeader() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.hold != nil && e.hold.held()
}

// Lost returns a channel that is closed when the current term ends: Resign,
// or a loss (session expired or closed, replica suspended, node deleted).
// While the value does not lead it returns a closed channel.
func (e *Election) Lost() <-chan struct{} {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.hold == nil {
		return seqClosed
	}
	return e.hold.lost
}

// Token returns the fencing token of the current term (the zxid of the
// leader node's creation), or 0 if the value does not lead.
func (e *Election) Token() int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.claim == nil {
		return 0
	}
	return e.claim.czxid
}

// Node returns the path of this leader's node, or "" if it does not lead.
func (e *Election) Node() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.claim == nil {
		return ""
	}
	return e.claim.path
}

// Proclaim replaces the leader's value without an election (etcd's
// Proclaim); observers see the new value. [ErrNotLeader] if this value does
// not lead.
func (e *Election) Proclaim(ctx context.Context, value []byte) error {
	e.mu.Lock()
	c, h := e.claim, e.hold
	e.mu.Unlock()
	if h == nil || !h.held() {
		return ErrNotLeader
	}
	return retry(ctx, e.s, func() error {
		_, err := e.s.Set(ctx, c.path, value, -1)
		if errors.Is(err, zoo.ErrNoNode) {
			return fmt.Errorf("%w: %w", ErrNotLeader, err)
		}
		return err
	})
}

// Leader returns the current leader as this session's replica sees it (call
// the session's Sync first for the latest word), or [ErrNoLeader].
func (e *Election) Leader(ctx context.Context) (LeaderInfo, error) {
	var info LeaderInfo
	err := retry(ctx, e.s, func() error {
		var err error
		info, _, err = e.leader(ctx, false)
		return err
	})
	return info, err
}

// leader reads the leader; with watch it also returns a one-shot watch that
// fires when that may change: on the leader's node, or on the election's
// children when there is no leader.
func (e *Election) leader(ctx context.Context, watch bool) (LeaderInfo, <-chan zoo.Event, error) {
	for {
		names, err := e.contenders(ctx)
		if err != nil {
			return LeaderInfo{}, nil, err
		}
		var ch <-chan zoo.Event
		if len(names) == 0 {
			if !watch {
				return LeaderInfo{}, nil, ErrNoLeader
			}
			_, _, ch, err = e.s.ChildrenW(ctx, e.dir)
			if errors.Is(err, zoo.ErrNoNode) {
				_, _, ch, err = e.s.ExistsW(ctx, e.dir)
			}
			if err != nil {
				return LeaderInfo{}, nil, err
			}
			// A campaigner may have come between the two reads: look again.
			if names, err = e.contenders(ctx); err != nil {
				return LeaderInfo{}, nil, err
			}
			if len(names) == 0 {
				return LeaderInfo{}, ch, ErrNoLeader
			}
		}
		p := e.dir + "/" + names[0]
		var data []byte
		var st zoo.Stat
		if watch {
			data, st, ch, err = e.s.GetW(ctx, p)
		} else {
			data, st, err = e.s.Get(ctx, p)
		}
		if errors.Is(err, zoo.ErrNoNode) {
			continue // it just went: look again
		}
		if err != nil {
			return LeaderInfo{}, nil, err
		}
		return LeaderInfo{Node: p, Value: data, Session: st.EphemeralOwner, Token: st.Czxid, Version: st.Version}, ch, nil
	}
}

// contenders lists the campaign nodes in sequence order (none if the
// election's node does not exist).
func (e *Election) contenders(ctx context.Context) ([]string, error) {
	names, _, err := e.s.Children(ctx, e.dir)
	if errors.Is(err, zoo.ErrNoNode) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	names = slices.DeleteFunc(names, func(n string) bool {
		_, ok := seqParse(n, electionMarker)
		return !ok || !electionMatch(n)
	})
	sortBySeq(names, func(n string) (int64, bool) { return seqParse(n, electionMarker) })
	return names, nil
}

// Observe returns a channel that receives the election's leader each time it
// changes (a new leader, or a new value proclaimed), starting with the
// current one if there is one. A leader that comes and goes between two looks
// may be skipped; the last one is never. The channel is closed when ctx ends
// or the session ends. Observing needs no campaign and watches only the
// leader's node (or, while there is no leader, the election's children).
func (e *Election) Observe(ctx context.Context) <-chan LeaderInfo {
	out := make(chan LeaderInfo)
	go e.observe(ctx, out)
	return out
}

func (e *Election) observe(ctx context.Context, out chan<- LeaderInfo) {
	defer close(out)
	last := LeaderInfo{Version: -1}
	for attempt := 0; ; {
		info, ch, err := e.leader(ctx, true)
		switch {
		case err == nil:
			attempt = 0
			if info.Node != last.Node || info.Version != last.Version {
				select {
				case out <- info:
					last = info
				case <-ctx.Done():
					return
				case <-e.s.Done():
					return
				}
			}
		case errors.Is(err, ErrNoLeader):
			attempt = 0
		case transient(err):
			if backoff(ctx, e.s, attempt) != nil {
				return
			}
			attempt++
			continue
		default:
			return
		}
		if ch == nil {
			continue
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return
		case <-e.s.Done():
			return
		}
	}
}

// Lead is the selector style: it campaigns with value, runs fn as the leader,
// then resigns (even if ctx has ended, with a fresh bounded context) so that
// the next campaigner takes over. fn's context is cancelled the moment
// leadership is lost, with an error wrapping [ErrLost] as its cause
// (context.Cause), or when ctx ends. fn should return promptly then: until it
// does, it runs without the leadership.
//
// Lead returns Campaign's error if it never led; otherwise fn's error, or an
// error wrapping [ErrLost] if leadership was lost while fn ran.
func (e *Election) Lead(ctx context.Context, value []byte, fn func(ctx context.Context) error) error {
	h, err := e.campaign(ctx, value)
	if err != nil {
		return err
	}
	wctx, cancel := context.WithCancelCause(ctx)
	go func() {
		select {
		case <-h.lost:
			cancel(h.err())
		case <-wctx.Done():
		}
	}()
	ferr := fn(wctx)
	cancel(nil)
	lost := h.err()
	rctx, rcancel := cleanupCtx(ctx, e.s)
	rerr := e.resign(rctx, h)
	rcancel()
	switch {
	case lost != nil && ferr != nil && !errors.Is(ferr, context.Canceled):
		return errors.Join(lost, ferr)
	case lost != nil:
		return lost
	case ferr != nil:
		return ferr
	}
	return rerr
}

// LeadLoop leads again and again (Curator's LeaderSelector with
// autoRequeue): each term as [Election.Lead], then back in line behind the
// other campaigners. It returns when ctx ends (ctx's error), the session ends
// (its error), or fn returns an error while still leading (that error). A
// term that ends by a loss of leadership is simply followed by a new campaign.
func (e *Election) LeadLoop(ctx context.Context, value []byte, fn func(ctx context.Context) error) error {
	for {
		err := e.Lead(ctx, value, fn)
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		if serr := e.s.Err(); serr != nil {
			return serr
		}
		if err != nil && !errors.Is(err, ErrLost) {
			return err
		}
	}
}
