package zoo

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Create creates a znode and returns its path (with the sequence suffix for
// sequential modes). A nil acl means [OpenACL]. For TTL modes use [Session.CreateWithStat].
// Errors: [ErrNodeExists], [ErrNoNode] (no parent), [ErrNoChildrenForEphemerals],
// [ErrBadArguments], [ErrInvalidACL], [ErrNoAuth], [ErrSessionExpired]; after
// [ErrConnectionLoss] the node may or may not have been created.
func (s *Session) Create(ctx context.Context, path string, data []byte, mode CreateMode, acl []ACL) (string, error) {
	p, _, err := s.CreateWithStat(ctx, CreateOp{Path: path, Data: data, Mode: mode, ACL: acl})
	return p, err
}

// CreateWithStat creates a znode as [Session.Create] does and also returns its Stat.
func (s *Session) CreateWithStat(ctx context.Context, op CreateOp) (string, Stat, error) {
	if err := checkCreate(op); err != nil {
		return "", Stat{}, pathErr("create", op.Path, err)
	}
	res, err := s.write(ctx, opCreate, []Op{op})
	if err != nil {
		return "", Stat{}, pathErr("create", op.Path, err)
	}
	r := res.results[0]
	if r.Err != nil {
		return "", Stat{}, pathErr("create", op.Path, r.Err)
	}
	return r.Path, *r.Stat, nil
}

// checkCreate rejects locally what the FSM would reject anyway, saving a round trip.
func checkCreate(op CreateOp) error {
	if !op.Mode.valid() {
		return fmt.Errorf("%w: unknown create mode %d", ErrBadArguments, op.Mode)
	}
	check := op.Path
	if op.Mode.sequential() {
		check += "1"
	}
	if err := validatePath(check); err != nil {
		return err
	}
	if len(op.Data) > MaxDataSize {
		return fmt.Errorf("%w: data is %d bytes, limit %d", ErrBadArguments, len(op.Data), MaxDataSize)
	}
	if op.Mode.ttl() != (op.TTL != 0) {
		return fmt.Errorf("%w: a TTL goes with the TTL create modes only", ErrBadArguments)
	}
	if op.TTL%time.Millisecond != 0 {
		return fmt.Errorf("%w: TTL must be whole milliseconds", ErrBadArguments)
	}
	return nil
}

// Set replaces a znode's data if its version matches (-1: any version).
// Errors: [ErrNoNode], [ErrBadVersion], [ErrNoAuth], [ErrBadArguments].
func (s *Session) Set(ctx context.Context, path string, data []byte, version int32) (Stat, error) {
	if err := validatePath(path); err != nil {
		return Stat{}, pathErr("set", path, err)
	}
	if len(data) > MaxDataSize {
		return Stat{}, pathErr("set", path, fmt.Errorf("%w: data is %d bytes, limit %d", ErrBadArguments, len(data), MaxDataSize))
	}
	res, err := s.write(ctx, opSetData, []Op{SetDataOp{Path: path, Data: data, Version: version}})
	if err != nil {
		return Stat{}, pathErr("set", path, err)
	}
	if r := res.results[0]; r.Err != nil {
		return Stat{}, pathErr("set", path, r.Err)
	}
	return *res.results[0].Stat, nil
}

// Delete deletes a childless znode if its version matches (-1: any).
// Errors: [ErrNoNode], [ErrBadVersion], [ErrNotEmpty], [ErrNoAuth], [ErrBadArguments].
func (s *Session) Delete(ctx context.Context, path string, version int32) error {
	if err := validatePath(path); err != nil {
		return pathErr("delete", path, err)
	}
	res, err := s.write(ctx, opDelete, []Op{DeleteOp{Path: path, Version: version}})
	if err != nil {
		return pathErr("delete", path, err)
	}
	return pathErr("delete", path, res.results[0].Err)
}

// SetACL replaces a znode's ACL if its aversion matches (-1: any). Needs ADMIN.
func (s *Session) SetACL(ctx context.Context, path string, acl []ACL, aversion int32) (Stat, error) {
	if err := validatePath(path); err != nil {
		return Stat{}, pathErr("setACL", path, err)
	}
	res, err := s.write(ctx, opSetACL, []Op{setACLOp{path: path, acl: acl, version: aversion}})
	if err != nil {
		return Stat{}, pathErr("setACL", path, err)
	}
	if r := res.results[0]; r.Err != nil {
		return Stat{}, pathErr("setACL", path, r.Err)
	}
	return *res.results[0].Stat, nil
}

// Multi applies ops atomically in one transaction with one zxid: all succeed or
// none does. The results always have one entry per op; when the transaction
// fails the error is the failing op's (wrapped with its path) and the results
// follow ZooKeeper's pattern (see [OpResult]).
func (s *Session) Multi(ctx context.Context, ops ...Op) ([]OpResult, error) {
	if err := s.errIfReadOnly(); err != nil {
		return nil, pathErr("multi", "", err)
	}
	for i, op := range ops {
		var err error
		path := ""
		switch o := op.(type) {
		case CreateOp:
			path, err = o.Path, checkCreate(o)
		case DeleteOp:
			path, err = o.Path, validatePath(o.Path)
		case SetDataOp:
			path, err = o.Path, validatePath(o.Path)
			if err == nil && len(o.Data) > MaxDataSize {
				err = fmt.Errorf("%w: data is %d bytes, limit %d", ErrBadArguments, len(o.Data), MaxDataSize)
			}
		case CheckOp:
			path, err = o.Path, validatePath(o.Path)
		default:
			err = fmt.Errorf("%w: op %T not allowed in multi", ErrBadArguments, op)
		}
		if err != nil {
			results := make([]OpResult, len(ops))
			for j := range results {
				switch {
				case j < i:
					results[j].Err = ErrRolledBack
				case j == i:
					results[j].Err = err
				default:
					results[j].Err = ErrRuntimeInconsistency
				}
			}
			return results, pathErr("multi", path, err)
		}
	}
	if len(ops) == 0 {
		return []OpResult{}, s.live()
	}
	res, err := s.write(ctx, opMulti, ops)
	if err != nil {
		return nil, pathErr("multi", "", err)
	}
	for i, r := range res.results {
		if r.Err != nil && r.Err != ErrRolledBack {
			return res.results, pathErr("multi", opPath(ops[i]), r.Err)
		}
	}
	return res.results, nil
}

func opPath(op Op) string {
	switch o := op.(type) {
	case CreateOp:
		return o.Path
	case DeleteOp:
		return o.Path
	case SetDataOp:
		return o.Path
	case CheckOp:
		return o.Path
	}
	return ""
}

// read runs fn against the local tree after checking the session and quorum.
// fn runs under the FSM's read lock: watches registered there cannot miss a change.
func (s *Session) read(ctx context.Context, op, path string, fn func(t *tree) error) error {
	if err := s.live(); err != nil {
		return pathErr(op, path, err)
	}
	if err := ctx.Err(); err != nil {
		return pathErr(op, path, err)
	}
	if err := validatePath(path); err != nil {
		return pathErr(op, path, err)
	}
	if !s.readOnly && !s.e.serving() {
		return pathErr(op, path, ErrNotServing)
	}
	s.e.fsm.mu.RLock()
	defer s.e.fsm.mu.RUnlock()
	return pathErr(op, path, fn(s.e.fsm.tree))
}

// Get returns a znode's data (nil for null data) and Stat. Errors: [ErrNoNode], [ErrNoAuth].
func (s *Session) Get(ctx context.Context, path string) ([]byte, Stat, error) {
	return s.get(ctx, path, nil)
}

// GetW is [Session.Get] that also sets a one-shot data watch: the channel gets
// NodeDataChanged or NodeDeleted, once, then closes.
func (s *Session) GetW(ctx context.Context, path string) ([]byte, Stat, <-chan Event, error) {
	w := s.oneShotWatch()
	data, st, err := s.get(ctx, path, w)
	if err != nil {
		return nil, Stat{}, nil, err
	}
	return data, st, w.ch, nil
}

func (s *Session) get(ctx context.Context, path string, w watcher) (data []byte, st Stat, err error) {
	err = s.read(ctx, "get", path, func(t *tree) error {
		n := t.get(path)
		if n == nil {
			return ErrNoNode
		}
		if err := checkACL(n.acl, s.authIDs(), PermRead); err != nil {
			return err
		}
		if n.data != nil {
			data = slices.Clone(n.data)
		}
		st = n.stat()
		if w != nil {
			s.e.watches.add(tableData, path, w)
		}
		return nil
	})
	return data, st, err
}

// Exists reports whether a znode exists, with its Stat if it does.
func (s *Session) Exists(ctx context.Context, path string) (bool, Stat, error) {
	return s.exists(ctx, path, nil)
}

// ExistsW is [Session.Exists] that also sets a one-shot watch, even when the
// node is absent: NodeCreated, NodeDataChanged or NodeDeleted, once.
func (s *Session) ExistsW(ctx context.Context, path string) (bool, Stat, <-chan Event, error) {
	w := s.oneShotWatch()
	ok, st, err := s.exists(ctx, path, w)
	if err != nil {
		return false, Stat{}, nil, err
	}
	return ok, st, w.ch, nil
}

func (s *Session) exists(ctx context.Context, path string, w watcher) (ok bool, st Stat, err error) {
	err = s.read(ctx, "exists", path, func(t *tree) error {
		n := t.get(path)
		if n != nil {
			if err := checkACL(n.acl, s.authIDs(), PermRead); err != nil {
				return err
			}
			ok, st = true, n.stat()
		}
		if w != nil {
			s.e.watches.add(tableData, path, w)
		}
		return nil
	})
	return ok, st, err
}

// Children returns the names of a znode's children, sorted, and its Stat.
func (s *Session) Children(ctx context.Context, path string) ([]string, Stat, error) {
	return s.children(ctx, path, nil)
}

// ChildrenW is [Session.Children] that also sets a one-shot child watch:
// NodeChildrenChanged, or NodeDeleted if the node itself goes.
func (s *Session) ChildrenW(ctx context.Context, path string) ([]string, Stat, <-chan Event, error) {
	w := s.oneShotWatch()
	names, st, err := s.children(ctx, path, w)
	if err != nil {
		return nil, Stat{}, nil, err
	}
	return names, st, w.ch, nil
}

func (s *Session) children(ctx context.Context, path string, w watcher) (names []string, st Stat, err error) {
	err = s.read(ctx, "children", path, func(t *tree) error {
		n := t.get(path)
		if n == nil {
			return ErrNoNode
		}
		if err := checkACL(n.acl, s.authIDs(), PermRead); err != nil {
			return err
		}
		names, st = t.children(path), n.stat()
		if w != nil {
			s.e.watches.add(tableChild, path, w)
		}
		return nil
	})
	return names, st, err
}

// GetACL returns a znode's ACL and Stat. It needs READ or ADMIN; without ADMIN
// digest hashes are masked, as ZooKeeper 3.8.4+ does.
func (s *Session) GetACL(ctx context.Context, path string) (acl []ACL, st Stat, err error) {
	err = s.read(ctx, "getACL", path, func(t *tree) error {
		n := t.get(path)
		if n == nil {
			return ErrNoNode
		}
		ids := s.authIDs()
		admin := checkACL(n.acl, ids, PermAdmin) == nil
		if !admin && checkACL(n.acl, ids, PermRead) != nil {
			return ErrNoAuth
		}
		acl, st = slices.Clone(n.acl), n.stat()
		if !admin {
			acl = maskACL(acl)
		}
		return nil
	})
	return acl, st, err
}

// GetEphemerals lists this session's ephemeral nodes whose path starts with
// prefix (a plain string prefix, as ZooKeeper's getEphemerals; "" or "/" = all), sorted.
func (s *Session) GetEphemerals(ctx context.Context, prefix string) ([]string, error) {
	if prefix == "" {
		prefix = "/"
	}
	var out []string
	err := s.read(ctx, "getEphemerals", prefix, func(*tree) error {
		se := s.e.fsm.sessions[s.id]
		if se == nil && s.readOnly {
			return nil // a local session owns no ephemerals
		}
		if se == nil {
			return ErrSessionExpired
		}
		for p := range se.ephemerals {
			if prefix == "/" || strings.HasPrefix(p, prefix) {
				out = append(out, p)
			}
		}
		return nil
	})
	slices.Sort(out)
	if out == nil {
		out = []string{}
	}
	return out, err
}

// AllChildrenNumber counts every node below path, recursively.
func (s *Session) AllChildrenNumber(ctx context.Context, path string) (n int, err error) {
	err = s.read(ctx, "getAllChildrenNumber", path, func(t *tree) error {
		node := t.get(path)
		if node == nil {
			return ErrNoNode
		}
		if err := checkACL(node.acl, s.authIDs(), PermRead); err != nil {
			return err
		}
		n = t.descendants(path)
		return nil
	})
	return n, err
}

// MultiRead runs several reads against one consistent view of the local tree
// (ZooKeeper's multiRead; reads are independent: one failing does not fail the rest).
func (s *Session) MultiRead(ctx context.Context, ops ...ReadOp) ([]ReadResult, error) {
	if err := s.live(); err != nil {
		return nil, pathErr("multiRead", "", err)
	}
	if !s.readOnly && !s.e.serving() {
		return nil, pathErr("multiRead", "", ErrNotServing)
	}
	ids := s.authIDs()
	out := make([]ReadResult, len(ops))
	s.e.fsm.mu.RLock()
	defer s.e.fsm.mu.RUnlock()
	t := s.e.fsm.tree
	for i, op := range ops {
		var path string
		switch o := op.(type) {
		case GetDataOp:
			path = o.Path
		case GetChildrenOp:
			path = o.Path
		}
		if err := validatePath(path); err != nil {
			out[i].Err = pathErr("multiRead", path, err)
			continue
		}
		n := t.get(path)
		if n == nil {
			out[i].Err = pathErr("multiRead", path, ErrNoNode)
			continue
		}
		if err := checkACL(n.acl, ids, PermRead); err != nil {
			out[i].Err = pathErr("multiRead", path, err)
			continue
		}
		out[i].Stat = n.stat()
		if _, ok := op.(GetChildrenOp); ok {
			out[i].Children = t.children(path)
		} else if n.data != nil {
			out[i].Data = slices.Clone(n.data)
		}
	}
	return out, nil
}

// AddWatch adds a persistent watch on path, which need not exist. It stays
// until removed with [Session.RemoveWatches] or the session ends.
func (s *Session) AddWatch(ctx context.Context, path string, mode WatchMode) (*PersistentWatch, error) {
	if mode != WatchPersistent && mode != WatchPersistentRecursive {
		return nil, pathErr("addWatch", path, fmt.Errorf("%w: unknown watch mode %d", ErrBadArguments, mode))
	}
	w := &PersistentWatch{sess: s.id, owner: s, path: path, mode: mode, ch: make(chan Event, persistentWatchBuffer)}
	err := s.read(ctx, "addWatch", path, func(*tree) error {
		if mode == WatchPersistent {
			s.e.watches.add(tablePersistent, path, w)
		} else {
			s.e.watches.add(tableRecursive, path, w)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return w, nil
}

// persistentWatchBuffer is how many undelivered events a persistent watch holds
// before it is ended with ErrWatchOverflow.
const persistentWatchBuffer = 4096

// HasWatches reports whether this session handle has a watch of typ on path
// (ZooKeeper's checkWatches): a recipe's tests use it to show it left none
// behind.
func (s *Session) HasWatches(path string, typ WatcherType) bool {
	return s.e.watches.has(s, path, typ)
}

// RemoveWatches removes this session's watches of the given type on path:
// a one-shot watch's channel receives an EventNotWatching and closes; a
// persistent watch's Events channel closes with Err() nil. [ErrNoWatcher] if
// there were none.
func (s *Session) RemoveWatches(ctx context.Context, path string, typ WatcherType) error {
	if err := s.live(); err != nil {
		return pathErr("removeWatches", path, err)
	}
	if typ < WatcherChildren || typ > WatcherPersistentRecursive {
		return pathErr("removeWatches", path, fmt.Errorf("%w: unknown watcher type %d", ErrBadArguments, typ))
	}
	if !s.e.watches.remove(s.id, path, typ, nil) {
		return pathErr("removeWatches", path, ErrNoWatcher)
	}
	return nil
}

// Sync makes this replica catch up with the leader: once it returns, reads
// through this replica reflect every write committed before Sync was called.
func (s *Session) Sync(ctx context.Context, path string) error {
	if err := s.live(); err != nil {
		return pathErr("sync", path, err)
	}
	if err := s.errIfReadOnly(); err != nil {
		return pathErr("sync", path, err)
	}
	if err := validatePath(path); err != nil {
		return pathErr("sync", path, err)
	}
	err := s.e.sync(ctx)
	if errors.Is(err, ErrClosed) {
		return pathErr("sync", path, ErrClosed)
	}
	return pathErr("sync", path, err)
}

// oneShotWatch makes a GetW-style watch owned by this handle.
func (s *Session) oneShotWatch() *oneShotWatch {
	w := newOneShotWatch(s.id)
	w.owner = s
	return w
}
