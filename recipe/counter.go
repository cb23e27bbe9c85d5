package recipe

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/zooraft/zoo"
)

// Counter is a shared 64-bit integer counter (kazoo's Counter, Curator's
// DistributedAtomicLong and SharedCount) kept in one persistent node.
//
// The value is stored as decimal ASCII text ("42", "-7"), the format kazoo's
// Counter writes (str(int)), so a kazoo Counter and this one can share a
// node; an absent node or empty data reads as 0. Any other content is an
// error wrapping [ErrCounterFormat]. (Curator's DistributedAtomicLong stores
// 8 bytes big-endian instead and cannot share a node with this Counter.)
//
// Every update is a read followed by a versioned write, retried on
// [zoo.ErrBadVersion], so concurrent updates from any number of sessions are
// applied exactly once each.
//
// Errors: [zoo.ErrNotServing] is retried until the context ends. After
// [zoo.ErrConnectionLoss] on a write, the same versioned write is retried as
// long as the node still has the version it was based on (one of the two
// attempts at most can succeed); if the node moved on meanwhile, the outcome
// cannot be known and the call returns an error wrapping
// [zoo.ErrConnectionLoss]: the update may or may not have been applied. So
// does an update whose context ends while its write is in flight.
// A counter node is persistent: session expiry does not touch it, but calls
// on the ended session return [zoo.ErrSessionExpired] / [zoo.ErrClosed].
type Counter struct {
	s    *zoo.Session
	path string
}

var (
	// ErrCounterFormat: the counter node holds something other than a decimal integer.
	ErrCounterFormat = errors.New("recipe: counter node does not hold a decimal integer")
	// ErrCounterOverflow: an Add would overflow int64; nothing was written.
	ErrCounterOverflow = errors.New("recipe: counter overflow")
)

// NewCounter returns the counter kept at path. The node is created (with
// missing parents) on first write. A malformed path wraps
// [zoo.ErrBadArguments].
func NewCounter(s *zoo.Session, path string) (*Counter, error) {
	if err := checkArgs("recipe.NewCounter", s, path, false); err != nil {
		return nil, err
	}
	return &Counter{s: s, path: path}, nil
}

// Path returns the counter node's path.
func (c *Counter) Path() string { return c.path }

// Get returns the counter's value as the session's replica sees it (0 if the
// node does not exist).
func (c *Counter) Get(ctx context.Context) (int64, error) {
	v, _, _, err := c.read(ctx)
	return v, err
}

// read returns the value and version (-1 with exists false if there is no
// node).
func (c *Counter) read(ctx context.Context) (v int64, version int32, exists bool, err error) {
	var data []byte
	var st zoo.Stat
	err = retry(ctx, c.s, func() error {
		var err error
		data, st, err = c.s.Get(ctx, c.path)
		return err
	})
	if errors.Is(err, zoo.ErrNoNode) {
		return 0, -1, false, nil
	}
	if err != nil {
		return 0, 0, false, err
	}
	v, err = counterDecode(c.path, data)
	return v, st.Version, true, err
}

// counterDecode parses a counter node's data.
func counterDecode(path string, data []byte) (int64, error) {
	text := strings.TrimSpace(string(data))
	if text == "" {
		return 0, nil
	}
	v, err := strconv.ParseInt(text, 10, 64)
	if err != nil {
		return 0, &zoo.PathError{Op: "recipe.Counter", Path: path, Err: fmt.Errorf("%w: %q", ErrCounterFormat, data)}
	}
	return v, nil
}

func counterEncode(v int64) []byte { return []byte(strconv.FormatInt(v, 10)) }

// Add adds delta to the counter and returns the new value.
func (c *Counter) Add(ctx context.Context, delta int64) (int64, error) {
	var out int64
	err := c.update(ctx, func(cur int64) (int64, bool, error) {
		if (delta > 0 && cur > math.MaxInt64-delta) || (delta < 0 && cur < math.MinInt64-delta) {
			return 0, false, ErrCounterOverflow
		}
		out = cur + delta
		return out, true, nil
	})
	return out, err
}

// CompareAndSet sets the counter to value if it currently equals expected,
// and reports whether it did. An absent node counts as 0.
func (c *Counter) CompareAndSet(ctx context.Context, expected, value int64) (bool, error) {
	swapped := false
	err := c.update(ctx, func(cur int64) (int64, bool, error) {
		swapped = cur == expected
		return value, swapped, nil
	})
	return swapped && err == nil, err
}

// Set sets the counter to value, whatever it was.
func (c *Counter) Set(ctx context.Context, value int64) error {
	return c.update(ctx, func(int64) (int64, bool, error) { return value, true, nil })
}

// update applies fn to the current value with a versioned write, retrying on
// conflicts. fn returns the new value and whether to write it.
func (c *Counter) update(ctx context.Context, fn func(cur int64) (int64, bool, error)) error {
	for {
		cur, version, exists, err := c.read(ctx)
		if err != nil {
			return err
		}
		if !exists {
			// Create it holding 0, then update it like any other: creating
			// "0" is idempotent, so a lost reply cannot count twice.
			if err := createNode(ctx, c.s, c.path, counterEncode(0)); err != nil {
				return err
			}
			continue
		}
		next, write, err := fn(cur)
		if err != nil || !write {
			return err
		}
		err = c.write(ctx, counterEncode(next), version)
		if errors.Is(err, errCounterConflict) {
			continue // someone else wrote (or deleted) first: start over
		}
		return err
	}
}

// errCounterConflict is write's answer when another update came first and
// this one certainly was not applied: read again and start over.
var errCounterConflict = errors.New("recipe: counter changed meanwhile")

// write sets the node's data if it is at version, retrying transient
// errors. After a lost reply (ErrConnectionLoss) it repeats the same write
// only while the node is still at version: at most one of the attempts can
// then succeed. If the node moved on, whether by our write or another's
// cannot be told: the error wraps ErrConnectionLoss (and never
// errCounterConflict, zoo.ErrBadVersion or zoo.ErrNoNode, which would have the
// caller apply the update again). errCounterConflict: the node was not at
// version, and nothing of ours was written.
func (c *Counter) write(ctx context.Context, data []byte, version int32) error {
	unknown := func(cause error) error {
		// cause is wrapped only if it is the context's end: a conflict
		// seen after a lost reply is no conflict of ours to retry.
		if ctxEnded(cause) {
			return fmt.Errorf("recipe: counter %s: the update may or may not have been applied: %w (%w)", c.path, zoo.ErrConnectionLoss, cause)
		}
		return fmt.Errorf("recipe: counter %s: the update may or may not have been applied: %w (%v)", c.path, zoo.ErrConnectionLoss, cause)
	}
	lost := false // an attempt's outcome is unknown
	for attempt := 0; ; attempt++ {
		_, err := c.s.Set(ctx, c.path, data, version)
		switch {
		case err == nil:
			return nil
		case ctxEnded(err):
			return unknown(err) // cut short in flight
		case !transient(err):
			conflict := errors.Is(err, zoo.ErrBadVersion) || errors.Is(err, zoo.ErrNoNode)
			switch {
			case conflict && lost:
				return unknown(err)
			case conflict:
				return errCounterConflict
			}
			return err
		}
		lost = lost || errors.Is(err, zoo.ErrConnectionLoss)
		if perr := backoff(ctx, c.s, attempt); perr != nil {
			if lost {
				return unknown(perr)
			}
			return perr
		}
		if !lost {
			continue
		}
		var st zoo.Stat
		err = retry(ctx, c.s, func() error {
			if err := c.s.Sync(ctx, c.path); err != nil {
				return err
			}
			var err error
			_, st, err = c.s.Exists(ctx, c.path)
			return err
		})
		if err != nil {
			return unknown(err)
		}
		if st.Version != version {
			return unknown(zoo.ErrBadVersion)
		}
	}
}

// Watch follows the counter's value: the feed receives the current value at
// once and the new value after every change (coalesced: a slow reader skips
// to the latest). It ends when ctx ends, with the context's error, or when
// the session ends; a node holding a non-integer ends it with
// [ErrCounterFormat]. Transient errors are retried.
func (c *Counter) Watch(ctx context.Context) *Feed[int64] {
	f := feedNew[int64]()
	go func() {
		first := true
		var last int64
		for {
			var data []byte
			var ev <-chan zoo.Event
			var ok bool
			err := retry(ctx, c.s, func() error {
				var err error
				data, _, ev, err = c.s.GetW(ctx, c.path)
				ok = err == nil
				if errors.Is(err, zoo.ErrNoNode) {
					// Watch for its creation instead.
					var exists bool
					exists, _, ev, err = c.s.ExistsW(ctx, c.path)
					if err == nil && exists {
						return errRetryNow // created in between
					}
				}
				return err
			})
			if err != nil {
				f.end(err)
				return
			}
			v := int64(0)
			if ok {
				if v, err = counterDecode(c.path, data); err != nil {
					f.end(err)
					return
				}
			}
			if first || v != last {
				f.send(v)
				first, last = false, v
			}
			if err := waitEvent(ctx, c.s, ev); err != nil {
				f.end(err)
				return
			}
		}
	}()
	return f
}
