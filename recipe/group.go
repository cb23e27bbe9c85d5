package recipe

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/zooraft/zoo"
)

// Group is group membership and service discovery (Curator's
// ServiceDiscovery, kazoo's Party): each member is an ephemeral node
// "<group path>/<instance id>" holding an opaque payload (an address, a
// JSON document, ...), so a member is listed exactly as long as its session
// lives.
//
// Session expiry: every registration of the session is gone (its ephemeral
// node is deleted by the ensemble) and each [Registration] reports it on
// Done/Err. A Registration is not re-created automatically, neither after
// expiry (an expired [zoo.Session] cannot be revived: open a new session and
// Register again) nor when someone else deletes the node (an operator may
// mean it); both end it visibly instead.
//
// [zoo.ErrNotServing] and [zoo.ErrConnectionLoss] are retried until the
// context ends; every write of a Group is idempotent or checked (a Register
// whose reply was lost finds its own node by its ephemeral owner).
type Group struct {
	s    *zoo.Session
	path string
}

// MemberExistsError is returned by [Group.Register] when another session
// holds the instance id: a live member, or the ephemeral node of a crashed
// previous incarnation that the ensemble has not expired yet (it will, within
// that session's timeout). It wraps [zoo.ErrNodeExists].
type MemberExistsError struct {
	Group string // the group's path
	ID    string // the instance id asked for
	Owner int64  // session id holding the node
}

// Error implements error.
func (e *MemberExistsError) Error() string {
	return fmt.Sprintf("recipe: group %s: instance %q is registered by session %#x", e.Group, e.ID, e.Owner)
}

// Unwrap returns [zoo.ErrNodeExists]: the member's node exists.
func (e *MemberExistsError) Unwrap() error { return zoo.ErrNodeExists }

// ErrRegistrationLost ends a [Registration] whose node was deleted or replaced
// by someone else while its session lived.
var ErrRegistrationLost = errors.New("recipe: group registration deleted by someone else")

// NewGroup returns the group kept under path. A malformed path wraps
// [zoo.ErrBadArguments].
func NewGroup(s *zoo.Session, path string) (*Group, error) {
	if err := checkArgs("recipe.NewGroup", s, path, false); err != nil {
		return nil, err
	}
	return &Group{s: s, path: path}, nil
}

// Path returns the group's directory node.
func (g *Group) Path() string { return g.path }

// Register adds this session to the group as id with payload. id is one path
// segment (no "/"); a bad id wraps [zoo.ErrBadArguments]. If this session
// already holds id, its payload is replaced. Another session holding id is a
// [*MemberExistsError]. If Register fails otherwise (its context ended), it
// deletes the member node its create may have left.
func (g *Group) Register(ctx context.Context, id string, payload []byte) (*Registration, error) {
	if id == "" || id == "." || id == ".." || strings.Contains(id, "/") {
		return nil, &zoo.PathError{Op: "recipe.Group.Register", Path: g.path + "/" + id,
			Err: fmt.Errorf("%w: instance id must be one non-empty path segment", zoo.ErrBadArguments)}
	}
	node := g.path + "/" + id
	// A member node this session already had before the call is not ours to
	// clean up if the call fails.
	var pre zoo.Stat
	_ = retry(ctx, g.s, func() error {
		var err error
		_, pre, err = g.s.Exists(ctx, node)
		return err
	})
	var czxid int64
	err := retry(ctx, g.s, func() error {
		_, st, err := g.s.CreateWithStat(ctx, zoo.CreateOp{Path: node, Data: payload, Mode: zoo.ModeEphemeral})
		switch {
		case err == nil:
			czxid = st.Czxid
			return nil
		case errors.Is(err, zoo.ErrNoNode):
			if err := ensurePath(ctx, g.s, g.path); err != nil {
				return err
			}
			return errRetryNow
		case !errors.Is(err, zoo.ErrNodeExists):
			return err
		}
		// Ours already (a retried create, or a second Register)?
		data, st, err := g.s.Get(ctx, node)
		switch {
		case errors.Is(err, zoo.ErrNoNode):
			return errRetryNow // gone meanwhile: create again
		case err != nil:
			return err
		case st.EphemeralOwner != g.s.ID():
			return &MemberExistsError{Group: g.path, ID: id, Owner: st.EphemeralOwner}
		}
		czxid = st.Czxid
		if bytes.Equal(data, payload) {
			return nil
		}
		_, err = g.s.Set(ctx, node, payload, st.Version)
		if errors.Is(err, zoo.ErrBadVersion) {
			return errRetryNow
		}
		return err
	})
	if err != nil {
		var me *MemberExistsError
		if !errors.As(err, &me) && !errors.Is(err, zoo.ErrBadArguments) && g.s.Err() == nil {
			// A create cut short may still have happened: do not leave a
			// member behind that nobody registered.
			cctx, cancel := cleanupCtx(ctx, g.s)
			groupDropOwn(cctx, g.s, node, pre.Czxid)
			cancel()
		}
		return nil, err
	}
	r := &Registration{s: g.s, id: id, path: node, czxid: czxid, done: make(chan struct{}), stop: make(chan struct{})}
	go r.monitor()
	return r, nil
}

// groupDropOwn deletes node if this session owns it and it is not the one
// created at keep, best effort.
func groupDropOwn(ctx context.Context, s *zoo.Session, node string, keep int64) {
	_ = retry(ctx, s, func() error {
		if err := s.Sync(ctx, node); err != nil {
			return err
		}
		_, st, err := s.Get(ctx, node)
		if err != nil || st.EphemeralOwner != s.ID() || st.Czxid == keep {
			return nil
		}
		err = s.Delete(ctx, node, st.Version)
		if errors.Is(err, zoo.ErrBadVersion) {
			return errRetryNow
		}
		return nil
	})
}

// RegisterJSON is [Group.Register] with v encoded as JSON.
func (g *Group) RegisterJSON(ctx context.Context, id string, v any) (*Registration, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return g.Register(ctx, id, b)
}

// Members returns the current members, id to payload, as the session's
// replica sees them (use [zoo.Session.Sync] first to see everything
// committed before the call). The payloads are read in one consistent view.
// An empty or absent group is an empty map.
func (g *Group) Members(ctx context.Context) (map[string][]byte, error) {
	out := map[string][]byte{}
	err := retry(ctx, g.s, func() error {
		clear(out)
		names, _, err := g.s.Children(ctx, g.path)
		if errors.Is(err, zoo.ErrNoNode) {
			return nil
		}
		if err != nil {
			return err
		}
		ops := make([]zoo.ReadOp, len(names))
		for i, n := range names {
			ops[i] = zoo.GetDataOp{Path: g.path + "/" + n}
		}
		res, err := g.s.MultiRead(ctx, ops...)
		if err != nil {
			return err
		}
		for i, r := range res {
			if r.Err == nil {
				out[names[i]] = r.Data // a member that left in between is skipped
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// MembersJSON is [Group.Members] with each payload decoded from JSON into a
// T. A payload that does not decode is an error naming the member.
func MembersJSON[T any](ctx context.Context, g *Group) (map[string]T, error) {
	raw, err := g.Members(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string]T, len(raw))
	for id, b := range raw {
		var v T
		if err := json.Unmarshal(b, &v); err != nil {
			return nil, fmt.Errorf("recipe: group %s: member %q: %w", g.path, id, err)
		}
		out[id] = v
	}
	return out, nil
}

// Watch follows the group's membership: the feed receives the full
// membership (id to payload) once it is loaded and again after every change
// (a member joining, leaving or updating its payload). Snapshots are
// coalesced: a slow reader skips intermediate ones but always ends up with
// the latest, and the latest is never stale once the group is at rest.
//
// Watch runs a [TreeCache] of the group (one persistent recursive watch; it
// resyncs by itself if the watch is reset). The feed ends when ctx ends or
// the session ends, with that error.
func (g *Group) Watch(ctx context.Context) *Feed[map[string][]byte] {
	f := feedNew[map[string][]byte]()
	c, err := NewTreeCache(g.s, g.path, TreeCacheOptions{MaxDepth: 1})
	if err != nil {
		f.end(err)
		return f
	}
	go func() {
		defer c.Close()
		if err := c.Start(ctx); err != nil {
			f.end(err)
			return
		}
		var last map[string][]byte
		feedCache(ctx, c, f, func() {
			cur := map[string][]byte{}
			for _, name := range c.childNames(g.path) {
				if data, _, ok := c.Get(g.path + "/" + name); ok {
					cur[name] = data
				}
			}
			if last == nil || !maps.EqualFunc(cur, last, bytes.Equal) {
				f.send(maps.Clone(cur))
				last = cur
			}
		})
	}()
	return f
}

// Registration is one member registered by [Group.Register]. It ends when
// deregistered, when its session ends, or when its node is deleted or
// replaced by someone else; Done is then closed and Err says which.
type Registration struct {
	s     *zoo.Session
	id    string
	path  string
	czxid int64 // of our node: a node with another czxid is not ours

	once    sync.Once
	leaving atomic.Bool   // set by Deregister before it deletes the node
	stop    chan struct{} // closed by Deregister
	done    chan struct{} // closed when the registration ended
	mu      sync.Mutex    // guards err
	err     error
}

// ID returns the instance id.
func (r *Registration) ID() string { return r.id }

// Path returns the member's node.
func (r *Registration) Path() string { return r.path }

// Done is closed when the registration has ended.
func (r *Registration) Done() <-chan struct{} { return r.done }

// Err returns nil while the registration lives and after Deregister; else
// why it ended: [ErrRegistrationLost], or the session's end
// ([zoo.ErrSessionExpired], [zoo.ErrClosed]).
func (r *Registration) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// monitor watches the member node until it goes or the registration is
// stopped.
func (r *Registration) monitor() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-r.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	end := func(err error) {
		r.mu.Lock()
		if r.err == nil {
			r.err = err
		}
		r.mu.Unlock()
		close(r.done)
	}
	for {
		var ok bool
		var st zoo.Stat
		var ev <-chan zoo.Event
		err := retry(ctx, r.s, func() error {
			var err error
			ok, st, ev, err = r.s.ExistsW(ctx, r.path)
			return err
		})
		select {
		case <-r.stop:
			end(nil)
			return
		default:
		}
		switch {
		case err != nil:
			if serr := r.s.Err(); serr != nil {
				err = serr
			}
			end(err)
			return
		case !ok || st.Czxid != r.czxid:
			if r.leaving.Load() {
				end(nil) // deleted by Deregister
				return
			}
			if err := lostWith(ctx, r.s); err != nil {
				end(err)
			} else {
				end(ErrRegistrationLost)
			}
			return
		}
		select {
		case <-ev:
		case <-r.stop:
			end(nil)
			return
		case <-r.s.Done():
			end(r.s.Err())
			return
		}
	}
}

// Update replaces the member's payload. It fails with ErrRegistrationLost if
// the node is no longer this registration's.
func (r *Registration) Update(ctx context.Context, payload []byte) error {
	return retry(ctx, r.s, func() error {
		data, st, err := r.s.Get(ctx, r.path)
		switch {
		case errors.Is(err, zoo.ErrNoNode):
			return r.lostErr()
		case err != nil:
			return err
		case st.Czxid != r.czxid:
			return r.lostErr()
		case bytes.Equal(data, payload):
			return nil // done (perhaps by an attempt whose reply was lost)
		}
		_, err = r.s.Set(ctx, r.path, payload, st.Version)
		if errors.Is(err, zoo.ErrBadVersion) || errors.Is(err, zoo.ErrNoNode) {
			return errRetryNow
		}
		return err
	})
}

func (r *Registration) lostErr() error {
	if err := r.s.Err(); err != nil {
		return err
	}
	return ErrRegistrationLost
}

// Deregister removes the member and ends the registration (Err stays nil).
// Removing a member that is already gone is not an error.
func (r *Registration) Deregister(ctx context.Context) error {
	r.leaving.Store(true)
	err := retry(ctx, r.s, func() error {
		_, st, err := r.s.Get(ctx, r.path)
		switch {
		case errors.Is(err, zoo.ErrNoNode):
			return nil
		case err != nil:
			return err
		case st.Czxid != r.czxid:
			return nil // not ours any more
		}
		err = r.s.Delete(ctx, r.path, st.Version)
		if errors.Is(err, zoo.ErrNoNode) || errors.Is(err, zoo.ErrBadVersion) {
			return errRetryNow // look again
		}
		return err
	})
	if err != nil && r.s.Err() == nil {
		r.leaving.Store(false)
		return err
	}
	r.once.Do(func() { close(r.stop) })
	<-r.done
	return nil
}

// Feed delivers the latest state of something watched (a counter's value, a
// group's membership, a JSON config node): C receives a value at once and
// after every change. Values are coalesced: C holds at most one value, the
// newest, so a slow reader skips intermediate states but never misses the
// last one. When the feed ends, C is closed (after any value still held) and
// Err says why.
type Feed[T any] struct {
	c    chan T
	done chan struct{}
	mu   sync.Mutex // guards err
	err  error
}

func feedNew[T any]() *Feed[T] {
	return &Feed[T]{c: make(chan T, 1), done: make(chan struct{})}
}

// C returns the channel of values.
func (f *Feed[T]) C() <-chan T { return f.c }

// Done is closed when the feed has ended.
func (f *Feed[T]) Done() <-chan struct{} { return f.done }

// Err returns nil while the feed runs, then why it ended: the context's
// error, the session's ([zoo.ErrSessionExpired], [zoo.ErrClosed]) or another
// failure.
func (f *Feed[T]) Err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

// send replaces any value not yet received with v. Only the feed's own
// goroutine sends, so after the drain there is room.
func (f *Feed[T]) send(v T) {
	select {
	case <-f.c:
	default:
	}
	f.c <- v
}

// end closes the feed with err (which should not be nil).
func (f *Feed[T]) end(err error) {
	f.mu.Lock()
	f.err = err
	f.mu.Unlock()
	close(f.c)
	close(f.done)
}
