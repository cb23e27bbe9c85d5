package recipe

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/zooraft/zoo"
)

// Barrier is a distributed barrier (Curator's DistributedBarrier): while its
// node exists, [Barrier.Wait] blocks; removing the node releases every waiter.
//
// The node is persistent: it outlives the session that set it, so a barrier
// whose setter dies stays set until someone calls [Barrier.Remove]. Session
// expiry of a waiter ends its Wait with [zoo.ErrSessionExpired].
// [zoo.ErrNotServing] and [zoo.ErrConnectionLoss] are retried until the
// context ends: every operation of a Barrier is idempotent.
type Barrier struct {
	s    *zoo.Session
	path string
}

// NewBarrier returns the barrier at path. Nothing is written until
// [Barrier.Set]. A malformed path is a [*zoo.PathError] wrapping
// [zoo.ErrBadArguments].
func NewBarrier(s *zoo.Session, path string) (*Barrier, error) {
	if err := checkArgs("recipe.NewBarrier", s, path, false); err != nil {
		return nil, err
	}
	return &Barrier{s: s, path: path}, nil
}

// Path returns the barrier node's path.
func (b *Barrier) Path() string { return b.path }

// Set sets the barrier, creating its node (and missing parents). Setting a
// barrier that is already set is not an error.
func (b *Barrier) Set(ctx context.Context) error {
	return createNode(ctx, b.s, b.path, nil)
}

// Remove removes the barrier, releasing every waiter. Removing a barrier that
// is not set is not an error; a barrier node with children is
// [zoo.ErrNotEmpty].
func (b *Barrier) Remove(ctx context.Context) error {
	return deleteNode(ctx, b.s, b.path)
}

// IsSet reports whether the barrier is set, as the session's replica sees it.
func (b *Barrier) IsSet(ctx context.Context) (bool, error) {
	var ok bool
	err := retry(ctx, b.s, func() error {
		var err error
		ok, _, err = b.s.Exists(ctx, b.path)
		return err
	})
	return ok, err
}

// Wait blocks until the barrier is not set (it returns at once if it is not
// set now), the context ends, or the session ends.
func (b *Barrier) Wait(ctx context.Context) error {
	return waitDeleted(ctx, b.s, b.path)
}

// DoubleBarrier lets N participants start and finish a computation together
// (ZooKeeper's double barrier recipe, Curator's DistributedDoubleBarrier):
// [DoubleBarrier.Enter] blocks until N participants have entered,
// [DoubleBarrier.Leave] until all of them have left. Each participant uses its
// own DoubleBarrier value, on its own session or a shared one.
//
// Layout under the barrier path: one ephemeral sequential node per
// participant ("p-<token>-<sequence>") and a persistent "ready" node created
// by whoever counts N participants first. Participants are counted by their
// token, so a participant node duplicated by a retried create (after
// [zoo.ErrConnectionLoss]) never counts twice.
//
// Dead participants: a participant whose session ends before the barrier
// opens stops counting (its ephemeral node vanishes, after the session timeout
// if its process died), so the others keep waiting until N live participants
// are in. One that dies after the barrier opened does not block Leave: the
// others stop waiting for it when its node vanishes. A "ready" node left by a
// round whose participants all died is recognised as stale (no participant
// that entered before it is left) and removed by the next Enter.
//
// One round at a time: the last participant to leave deletes "ready" in the
// same transaction as its own node, which resets the barrier for the next
// round. A participant that enters while an earlier round is still leaving
// joins that round and passes at once, as in Curator.
//
// Session expiry ends a blocked Enter or Leave with [zoo.ErrSessionExpired];
// the participant's node is then gone. [zoo.ErrNotServing] and
// [zoo.ErrConnectionLoss] are retried until the context ends (creates are
// resolved by token, deletes are idempotent). If Enter's context ends, Enter
// removes this participant's node before returning the context's error; the
// others may already have counted it. A create whose outcome was unknown may
// still commit a little later: such a late copy is deleted in the background
// (after a failed Enter, and after Leave), so it never counts in a later round.
type DoubleBarrier struct {
	s    *zoo.Session
	path string
	n    int

	mu     sync.Mutex // guards state, token, node, ready, unsure
	state  barrierState
	token  string // names this participant's node(s) for the current round
	node   string // this participant's node (full path) while entered
	ready  int64  // czxid of the "ready" node of the round entered
	unsure bool   // a create of this round had an unknown outcome: a copy may appear late
}

type barrierState int

const (
	barrierIdle barrierState = iota
	barrierBusy              // an Enter or Leave call is running
	barrierIn                // entered, not yet left
)

// ErrBarrierNotEntered: Leave on a DoubleBarrier that has not entered. (Enter
// on one that has entered and not left, or Enter or Leave while another call
// on the same value runs, is [ErrNotReentrant].)
var ErrBarrierNotEntered = errors.New("recipe: double barrier not entered")

const (
	barrierReady  = "ready"
	barrierPrefix = "p-"
)

// NewDoubleBarrier returns a participant of the double barrier at path for n
// participants. n < 1 or a malformed path wrap [zoo.ErrBadArguments].
func NewDoubleBarrier(s *zoo.Session, path string, n int) (*DoubleBarrier, error) {
	if err := checkArgs("recipe.NewDoubleBarrier", s, path, false); err != nil {
		return nil, err
	}
	if n < 1 {
		return nil, fmt.Errorf("recipe: double barrier of %d participants: %w", n, zoo.ErrBadArguments)
	}
	return &DoubleBarrier{s: s, path: path, n: n}, nil
}

// Enter registers this participant and blocks until n participants have
// entered (or the barrier is already open for the current round).
func (b *DoubleBarrier) Enter(ctx context.Context) error {
	b.mu.Lock()
	if b.state != barrierIdle {
		b.mu.Unlock()
		return ErrNotReentrant
	}
	b.state = barrierBusy
	b.token = newToken()
	token := b.token
	b.mu.Unlock()

	ready, err := b.enter(ctx, token)
	if err != nil && b.s.Err() == nil {
		// Take our node(s) back so that we do not count for others. With a
		// fresh context: ours may be the one that ended. A create cut short
		// may still commit after that: the background looks again.
		clean := func(ctx context.Context) error { return b.deleteOurs(ctx, token, "") }
		cctx, cancel := cleanupCtx(ctx, b.s)
		_ = clean(cctx)
		cancel()
		sweep(b.s, true, clean)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if err != nil {
		b.state, b.node, b.token, b.unsure = barrierIdle, "", "", false
		return err
	}
	b.state, b.ready = barrierIn, ready
	return nil
}

func (b *DoubleBarrier) enter(ctx context.Context, token string) (int64, error) {
	readyPath := b.path + "/" + barrierReady
	if err := ensurePath(ctx, b.s, b.path); err != nil {
		return 0, err
	}
	node, unsure, err := createTokened(ctx, b.s, b.path, barrierPrefix+token+"-", nil, zoo.ModeEphemeralSequential, false)
	if err != nil {
		return 0, err
	}
	b.mu.Lock()
	b.node, b.unsure = node, unsure
	b.mu.Unlock()
	for {
		ok, st, readyEv, err := b.readyW(ctx, readyPath)
		if err != nil {
			return 0, err
		}
		names, childEv, err := listChildren(ctx, b.s, b.path, true)
		if err != nil {
			return 0, err
		}
		parts := barrierParse(names)
		if ok {
			stale, err := b.readyStale(ctx, parts, st.Czxid)
			if err != nil {
				return 0, err
			}
			if !stale {
				return st.Czxid, nil
			}
			// Left by a round whose participants are all gone. (Both
			// incarnations of "ready" have version 0, so should another
			// entrant delete it and a new round open in between, this
			// deletes the new one; the late ones of that round then see
			// a different "ready" on Leave and stop waiting early. It
			// takes a stale "ready" and a narrow race.)
			err = retry(ctx, b.s, func() error {
				err := b.s.Delete(ctx, readyPath, st.Version)
				if errors.Is(err, zoo.ErrNoNode) || errors.Is(err, zoo.ErrBadVersion) {
					return nil
				}
				return err
			})
			if err != nil {
				return 0, err
			}
			continue
		}
		tokens := map[string]bool{}
		for _, p := range parts {
			tokens[p.token] = true
		}
		if !tokens[token] {
			// Our node is gone: only the end of our session does that (or
			// someone deleting it by hand).
			if err := lostWith(ctx, b.s); err != nil {
				return 0, err
			}
			return 0, fmt.Errorf("recipe: double barrier %s: participant node %s was deleted", b.path, node)
		}
		if len(tokens) >= b.n {
			err := retry(ctx, b.s, func() error {
				_, err := b.s.Create(ctx, readyPath, nil, zoo.ModePersistent, nil)
				if errors.Is(err, zoo.ErrNodeExists) {
					return nil
				}
				return err
			})
			if err != nil {
				return 0, err
			}
			continue // read its czxid
		}
		select {
		case <-readyEv:
		case <-childEv:
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-b.s.Done():
			return 0, sessionErr(b.s)
		}
	}
}

// readyStale reports whether the ready node created at czxid was left by a
// round whose participants are all gone: no participant that entered before
// it is left (the lowest participant of a round leaves last, together with
// "ready"). All participants are read in one consistent view.
func (b *DoubleBarrier) readyStale(ctx context.Context, parts []barrierPart, czxid int64) (bool, error) {
	paths := make([]string, len(parts))
	for i, p := range parts {
		paths[i] = b.path + "/" + p.name
	}
	res, err := multiRead(ctx, b.s, dataOps(paths...)...)
	if err != nil {
		return false, err
	}
	for _, r := range res {
		if r.Err == nil && r.Stat.Czxid < czxid {
			return false, nil
		}
	}
	return true, nil
}

func (b *DoubleBarrier) readyW(ctx context.Context, readyPath string) (bool, zoo.Stat, <-chan zoo.Event, error) {
	var ok bool
	var st zoo.Stat
	var ev <-chan zoo.Event
	err := retry(ctx, b.s, func() error {
		var err error
		ok, st, ev, err = b.s.ExistsW(ctx, readyPath)
		return err
	})
	return ok, st, ev, err
}

// Leave removes this participant and blocks until every participant of the
// round has left (or died). If the context ends first, Leave returns its
// error and may be called again; this participant's node may already be gone.
func (b *DoubleBarrier) Leave(ctx context.Context) error {
	b.mu.Lock()
	switch b.state {
	case barrierIdle:
		b.mu.Unlock()
		return ErrBarrierNotEntered
	case barrierBusy:
		b.mu.Unlock()
		return ErrNotReentrant
	}
	b.state = barrierBusy
	token, node, ready := b.token, b.node, b.ready
	b.mu.Unlock()

	err := b.leave(ctx, token, node, ready)
	b.mu.Lock()
	defer b.mu.Unlock()
	if err != nil && b.s.Err() == nil {
		b.state = barrierIn // may be retried
		return err
	}
	if b.unsure && err == nil {
		// A copy of our node committed late would count in the next round.
		sweep(b.s, true, func(ctx context.Context) error { return b.deleteOurs(ctx, token, "") })
	}
	b.state, b.node, b.token, b.unsure = barrierIdle, "", "", false
	return err
}

func (b *DoubleBarrier) leave(ctx context.Context, token, node string, readyCzxid int64) error {
	readyPath := b.path + "/" + barrierReady
	ourName := baseName(node)
	for {
		// "ready" and the participants, in one view.
		res, err := multiRead(ctx, b.s, zoo.GetDataOp{Path: readyPath}, zoo.GetChildrenOp{Path: b.path})
		if err != nil {
			return err
		}
		rst := res[0].Stat
		if res[0].Err != nil || rst.Czxid != readyCzxid {
			// The round is over: its last participant deleted "ready".
			return b.deleteOurs(ctx, token, "")
		}
		parts := barrierParse(res[1].Children)
		var others []barrierPart
		mine, dup := false, false
		for _, p := range parts {
			switch {
			case p.name == ourName:
				mine = true
			case p.token == token:
				dup = true
			default:
				others = append(others, p)
			}
		}
		if dup {
			// A duplicate of our node (left by a retried create) must not
			// hold anyone up.
			if err := b.deleteOurs(ctx, token, ourName); err != nil {
				return err
			}
			continue
		}
		var watch string
		switch {
		case len(others) == 0:
			// Last one out: our node and "ready" go in one transaction,
			// which ends the round for everyone waiting.
			ops := []zoo.Op{zoo.DeleteOp{Path: readyPath, Version: rst.Version}}
			if mine {
				ops = append(ops, zoo.DeleteOp{Path: node, Version: -1})
			}
			_, err := b.s.Multi(ctx, ops...)
			switch {
			case err == nil:
				return nil
			case errors.Is(err, zoo.ErrNoNode), errors.Is(err, zoo.ErrBadVersion), transient(err):
				if transient(err) {
					if perr := backoff(ctx, b.s, 0); perr != nil {
						return perr
					}
				}
				continue // look again
			default:
				return err
			}
		case mine && parts[0].name == ourName:
			// Lowest: leave last; wait for the highest of the others.
			watch = others[len(others)-1].name
		default:
			if mine {
				if err := deleteNode(ctx, b.s, node); err != nil {
					return err
				}
			}
			watch = others[0].name
		}
		if err := waitDeleted(ctx, b.s, b.path+"/"+watch); err != nil {
			return err
		}
	}
}

// deleteOurs deletes the participant nodes carrying token, except keep.
func (b *DoubleBarrier) deleteOurs(ctx context.Context, token, keep string) error {
	return retry(ctx, b.s, func() error {
		names, _, err := b.s.Children(ctx, b.path)
		if errors.Is(err, zoo.ErrNoNode) {
			return nil
		}
		if err != nil {
			return err
		}
		for _, p := range barrierParse(names) {
			if p.token != token || p.name == keep {
				continue
			}
			if err := b.s.Delete(ctx, b.path+"/"+p.name, -1); err != nil && !errors.Is(err, zoo.ErrNoNode) {
				return err
			}
		}
		return nil
	})
}

// barrierPart is one participant node: "p-<token>-<sequence>".
type barrierPart struct {
	name  string
	token string
	seq   int64
}

// barrierParse returns the participant nodes among names, by sequence.
func barrierParse(names []string) []barrierPart {
	var out []barrierPart
	for _, n := range names {
		token, seq, ok := parseTokened(n, barrierPrefix)
		if ok {
			out = append(out, barrierPart{name: n, token: token, seq: seq})
		}
	}
	sortBySeq(out, func(p barrierPart) (int64, bool) { return p.seq, true })
	return out
}
