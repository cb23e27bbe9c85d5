package recipe

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/zooraft/zoo"
)

// Queue is a distributed FIFO queue (ZooKeeper's queue recipe, Curator's
// DistributedQueue, kazoo's Queue) kept under one persistent directory node.
// Any number of producers and consumers, on any sessions and replicas, may
// share it: every item is delivered to exactly one Take, in the order the
// Puts were applied (so FIFO per producer).
//
// Each item is a persistent sequential node "qn-<token>-<sequence>" holding
// the item's data; the sequence orders items, the token (random per Put)
// lets a Put whose outcome is unknown find its node again. Items are
// persistent: they outlive the producer's session.
//
// Take claims an item with one transaction that deletes the item at the
// version just read and creates an ephemeral claim marker
// "tk-<item name>" holding a per-call token; the marker is then deleted.
// Only one transaction can delete an item, so two consumers never get the same
// item; and if the outcome of the claim is unknown ([zoo.ErrConnectionLoss]),
// the marker tells whether this call made it. A marker can be left behind
// only when its deletion keeps failing; it is ephemeral, so it goes with its
// session, and Queue ignores it.
//
// Errors: blocked calls end with the context's error or, when the session
// ends, [zoo.ErrSessionExpired] / [zoo.ErrClosed]. [zoo.ErrNotServing] (the
// session's replica is out of quorum) is retried until the context ends.
// [zoo.ErrConnectionLoss] on Take is resolved through the marker, so Take
// never loses nor duplicates an item. When Take's context ends while a claim
// is in flight, Take settles it with a short, fresh context: if the claim
// happened, Take returns the item (it is taken); if not, it fences the item
// (rewrites it at the version the claim names) so that the claim cannot
// commit later. Only if the ensemble cannot be reached for that either, or
// the session ends, does Take return an error saying that an item may have
// been taken and lost. On Put, after [zoo.ErrConnectionLoss] Put looks for its node (by
// token) and reports success if it finds it; if it does not, Put returns an
// error wrapping [zoo.ErrConnectionLoss]: the item may or may not have been
// enqueued (it may even have been taken already), as with Curator. The same
// goes for a Put whose context ends while its create is in flight (the error
// then wraps the context's). Retry the Put only if a duplicate is acceptable.
type Queue struct{ q queueCore }

// PriorityQueue is a [Queue] whose items come out by priority first (lower
// value first), then in Put order. The priority is part of each item's name,
// "pq-<priority>-<token>-<sequence>" with the priority as 8 hex digits
// (sign bit flipped, so names also sort by priority). Everything said about
// Queue applies.
type PriorityQueue struct{ q queueCore }

// NewQueue returns the queue kept under dir. The directory node is created
// on first use. A malformed path wraps [zoo.ErrBadArguments].
func NewQueue(s *zoo.Session, dir string) (*Queue, error) {
	if err := checkArgs("recipe.NewQueue", s, dir, false); err != nil {
		return nil, err
	}
	return &Queue{queueCore{s: s, dir: dir, prefix: queuePrefixFIFO}}, nil
}

// NewPriorityQueue returns the priority queue kept under dir.
func NewPriorityQueue(s *zoo.Session, dir string) (*PriorityQueue, error) {
	if err := checkArgs("recipe.NewPriorityQueue", s, dir, false); err != nil {
		return nil, err
	}
	return &PriorityQueue{queueCore{s: s, dir: dir, prefix: queuePrefixPriority}}, nil
}

// Put appends an item. See [Queue] for what an error means.
func (q *Queue) Put(ctx context.Context, data []byte) error {
	return q.q.put(ctx, "", data)
}

// Take removes and returns the item at the head of the queue, waiting for one
// if the queue is empty (with a child watch, not by polling).
func (q *Queue) Take(ctx context.Context) ([]byte, error) {
	data, _, err := q.q.take(ctx, true)
	return data, err
}

// TryTake is Take without waiting: ok is false if the queue is empty.
func (q *Queue) TryTake(ctx context.Context) (data []byte, ok bool, err error) {
	return q.q.take(ctx, false)
}

// Peek returns the item at the head of the queue without removing it; ok is
// false if the queue is empty.
func (q *Queue) Peek(ctx context.Context) (data []byte, ok bool, err error) {
	return q.q.peek(ctx)
}

// Len returns the number of items in the queue.
func (q *Queue) Len(ctx context.Context) (int, error) { return q.q.len(ctx) }

// Put adds an item with the given priority: lower values come out first.
func (q *PriorityQueue) Put(ctx context.Context, data []byte, priority int32) error {
	return q.q.put(ctx, fmt.Sprintf("%08x-", uint32(priority)^1<<31), data)
}

// Take removes and returns the first item (lowest priority value, then
// oldest), waiting for one if the queue is empty.
func (q *PriorityQueue) Take(ctx context.Context) ([]byte, error) {
	data, _, err := q.q.take(ctx, true)
	return data, err
}

// TryTake is Take without waiting: ok is false if the queue is empty.
func (q *PriorityQueue) TryTake(ctx context.Context) (data []byte, ok bool, err error) {
	return q.q.take(ctx, false)
}

// Peek returns the first item without removing it; ok is false if the queue
// is empty.
func (q *PriorityQueue) Peek(ctx context.Context) (data []byte, ok bool, err error) {
	return q.q.peek(ctx)
}

// Len returns the number of items in the queue.
func (q *PriorityQueue) Len(ctx context.Context) (int, error) { return q.q.len(ctx) }

const (
	queuePrefixFIFO     = "qn-"
	queuePrefixPriority = "pq-"
	queueMarkerPrefix   = "tk-"
)

// queueCore implements both queues; they differ only in names.
type queueCore struct {
	s      *zoo.Session
	dir    string
	prefix string
}

// queueItem is one parsed item name.
type queueItem struct {
	name     string
	priority int64 // 0 for FIFO items
	seq      int64
}

// items parses and orders the item nodes among names.
func (q *queueCore) items(names []string) []queueItem {
	var out []queueItem
	for _, n := range names {
		rest, ok := strings.CutPrefix(n, q.prefix)
		if !ok {
			continue
		}
		var it queueItem
		if q.prefix == queuePrefixPriority {
			if len(rest) < 9 || rest[8] != '-' {
				continue
			}
			p, err := strconv.ParseUint(rest[:8], 16, 32)
			if err != nil {
				continue
			}
			it.priority = int64(int32(uint32(p) ^ 1<<31))
			rest = rest[9:]
		}
		_, seq, ok := parseTokened(rest, "")
		if !ok {
			continue
		}
		it.name, it.seq = n, seq
		out = append(out, it)
	}
	// By sequence, then (stably) by priority: (priority, sequence) order.
	sortBySeq(out, func(it queueItem) (int64, bool) { return it.seq, true })
	if q.prefix == queuePrefixPriority {
		slices.SortStableFunc(out, func(a, b queueItem) int { return cmp.Compare(a.priority, b.priority) })
	}
	return out
}

func (q *queueCore) put(ctx context.Context, infix string, data []byte) error {
	// Once: a second create after an unknown outcome could enqueue the
	// item twice.
	_, _, err := createTokened(ctx, q.s, q.dir, q.prefix+infix+newToken()+"-", data, zoo.ModePersistentSequential, true)
	if errors.Is(err, zoo.ErrConnectionLoss) {
		return fmt.Errorf("recipe: queue %s: put: the item may or may not have been enqueued: %w", q.dir, err)
	}
	return err
}

// list returns the queue's items in order, with a child watch if watch.
func (q *queueCore) list(ctx context.Context, watch bool) ([]queueItem, <-chan zoo.Event, error) {
	for {
		names, ev, err := listChildren(ctx, q.s, q.dir, watch)
		if errors.Is(err, zoo.ErrNoNode) {
			if !watch {
				return nil, nil, nil
			}
			if err := ensurePath(ctx, q.s, q.dir); err != nil {
				return nil, nil, err
			}
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		return q.items(names), ev, nil
	}
}

func (q *queueCore) take(ctx context.Context, block bool) ([]byte, bool, error) {
	for {
		items, ev, err := q.list(ctx, block)
		if err != nil {
			return nil, false, err
		}
		for _, it := range items {
			data, ok, err := q.claim(ctx, it.name)
			if err != nil {
				return nil, false, err
			}
			if ok {
				return data, true, nil
			}
		}
		if !block {
			return nil, false, nil
		}
		if err := waitEvent(ctx, q.s, ev); err != nil {
			return nil, false, err
		}
	}
}

// claim tries to take one item: ok is false if someone else took it first.
func (q *queueCore) claim(ctx context.Context, name string) ([]byte, bool, error) {
	c := queueClaim{item: q.dir + "/" + name, marker: q.dir + "/" + queueMarkerPrefix + name, token: []byte(newToken())}
	err := retry(ctx, q.s, func() error {
		var err error
		var st zoo.Stat
		c.data, st, err = q.s.Get(ctx, c.item)
		c.version = st.Version
		return err
	})
	if errors.Is(err, zoo.ErrNoNode) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	ops := []zoo.Op{
		zoo.DeleteOp{Path: c.item, Version: c.version},
		zoo.CreateOp{Path: c.marker, Data: c.token, Mode: zoo.ModeEphemeral},
	}
	unknown := false // an attempt's outcome is unknown
	for attempt := 0; ; attempt++ {
		_, err := q.s.Multi(ctx, ops...)
		if err == nil {
			q.dropMarker(ctx, c.marker)
			return c.data, true, nil
		}
		switch {
		case ctxEnded(err):
			// Cut short in flight: it may still happen.
			return q.giveUp(ctx, &c, true, err)
		case transient(err):
			unknown = unknown || errors.Is(err, zoo.ErrConnectionLoss)
			if perr := backoff(ctx, q.s, attempt); perr != nil {
				return q.giveUp(ctx, &c, unknown, perr)
			}
			if !unknown {
				continue // nothing was written: try again
			}
		case errors.Is(err, zoo.ErrNoNode), errors.Is(err, zoo.ErrBadVersion), errors.Is(err, zoo.ErrNodeExists):
			// Taken (or changed) by someone else, unless by an earlier
			// attempt of ours whose reply got lost.
			if !unknown {
				return nil, false, nil
			}
		default:
			return nil, false, err
		}
		mine, present, _, rerr := q.resolve(ctx, &c)
		switch {
		case rerr != nil:
			return q.giveUp(ctx, &c, unknown, rerr)
		case mine:
			q.dropMarker(ctx, c.marker)
			return c.data, true, nil
		case !present:
			return nil, false, nil
		}
		// Neither taken by us nor by anyone yet: try again, with the same
		// ops, so that a lost earlier attempt and this one cannot both
		// succeed.
	}
}

// queueClaim is one Take's attempt at one item.
type queueClaim struct {
	item, marker string
	token        []byte // in the marker: this claim's
	data         []byte
	version      int32 // of the item when read: the claim deletes it at this version
}

// resolve finds out, after an attempt with an unknown outcome, whether the
// claim happened (its marker holds our token) and, if not, whether the item is
// still there (and at which version). It reads after a Sync, in one view. It
// is exact when the item is gone: the transaction that deleted it also
// created its claimant's marker.
func (q *queueCore) resolve(ctx context.Context, c *queueClaim) (mine, present bool, version int32, err error) {
	err = retry(ctx, q.s, func() error {
		if err := q.s.Sync(ctx, q.dir); err != nil {
			return err
		}
		res, err := q.s.MultiRead(ctx, zoo.GetDataOp{Path: c.marker}, zoo.GetDataOp{Path: c.item})
		if err != nil {
			return err
		}
		mine = res[0].Err == nil && bytes.Equal(res[0].Data, c.token)
		present, version = res[1].Err == nil, res[1].Stat.Version
		if res[1].Err != nil && !errors.Is(res[1].Err, zoo.ErrNoNode) {
			return res[1].Err
		}
		return nil
	})
	return mine, present, version, err
}

// errTakeLost is in the error of a Take that may have taken an item it
// cannot return: its claim's outcome could not be settled.
var errTakeLost = errors.New("an item may have been taken and lost")

// giveUp ends a claim when Take's context ends (or retrying failed). If an
// attempt's outcome was unknown, it settles it with a fresh, short context:
// a claim that happened returns the item (it is taken: better to hand it out
// than to lose it); an item still there at the version the claim names is
// fenced, by rewriting its data at that version, so that an attempt still in
// flight can never commit later and lose it.
func (q *queueCore) giveUp(ctx context.Context, c *queueClaim, unknown bool, cause error) ([]byte, bool, error) {
	if !unknown {
		return nil, false, cause
	}
	if err := q.s.Err(); err != nil {
		// A claim that happened took its marker with the session.
		return nil, false, fmt.Errorf("recipe: queue %s: take: %w: %w", q.dir, errTakeLost, err)
	}
	cctx, cancel := cleanupCtx(ctx, q.s)
	defer cancel()
	for {
		mine, present, version, err := q.resolve(cctx, c)
		switch {
		case err != nil:
			return nil, false, fmt.Errorf("recipe: queue %s: take: %w: %w (%w)", q.dir, errTakeLost, cause, err)
		case mine:
			q.dropMarker(cctx, c.marker)
			return c.data, true, nil
		case !present || version != c.version:
			return nil, false, cause // settled: the claim cannot happen any more
		}
		_, err = q.s.Set(cctx, c.item, c.data, c.version)
		if err == nil {
			return nil, false, cause
		}
		if !transient(err) && !errors.Is(err, zoo.ErrBadVersion) && !errors.Is(err, zoo.ErrNoNode) {
			return nil, false, fmt.Errorf("recipe: queue %s: take: %w: %w (%w)", q.dir, errTakeLost, cause, err)
		}
		if perr := backoff(cctx, q.s, 0); perr != nil {
			return nil, false, fmt.Errorf("recipe: queue %s: take: %w: %w (%w)", q.dir, errTakeLost, cause, perr)
		}
	}
}

// dropMarker deletes a claim marker, best effort: one that stays is ignored
// and vanishes with the session.
func (q *queueCore) dropMarker(ctx context.Context, marker string) {
	cctx, cancel := cleanupCtx(ctx, q.s)
	defer cancel()
	_ = deleteNode(cctx, q.s, marker)
}

func (q *queueCore) peek(ctx context.Context) ([]byte, bool, error) {
	for {
		items, _, err := q.list(ctx, false)
		if err != nil || len(items) == 0 {
			return nil, false, err
		}
		items = items[:min(len(items), 16)]
		paths := make([]string, len(items))
		for i, it := range items {
			paths[i] = q.dir + "/" + it.name
		}
		res, err := multiRead(ctx, q.s, dataOps(paths...)...)
		if err != nil {
			return nil, false, err
		}
		for _, r := range res {
			if r.Err == nil {
				return r.Data, true, nil
			}
		}
		// All taken in between: look again.
	}
}

func (q *queueCore) len(ctx context.Context) (int, error) {
	items, _, err := q.list(ctx, false)
	return len(items), err
}
