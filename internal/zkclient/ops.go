package zkclient

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/zooraft/zoo"
	"github.com/zooraft/zoo/internal/jute"
)

// This file has one method per ZooKeeper request. Every error a server
// returns is the zoo error of its code (errors.Is(err, zoo.ErrNoNode)),
// wrapped in a *zoo.PathError naming the caller's path. After
// zoo.ErrConnectionLoss or the context ending, the outcome of a write is
// unknown: it may have been applied.

// configNode is where ZooKeeper keeps the dynamic configuration. getConfig
// reads it without the chroot, as the Java client does.
const configNode = "/zookeeper/config"

// orOpen is the ACL sent for nil: zoo's convention (ZooKeeper itself refuses
// an empty list with ZINVALIDACL, which an empty non-nil list still gets).
func orOpen(acl []zoo.ACL) []zoo.ACL {
	if acl == nil {
		return zoo.OpenACL
	}
	return acl
}

// Create creates a znode and returns its path (with the sequence suffix
// for sequential modes), using create (1), or createContainer (19) for
// containers. A nil acl means zoo.OpenACL. TTL modes need CreateWithStat.
// Errors: zoo.ErrNodeExists, zoo.ErrNoNode (no parent),
// zoo.ErrNoChildrenForEphemerals, zoo.ErrInvalidACL, zoo.ErrNoAuth,
// zoo.ErrBadArguments, zoo.ErrNotReadOnly.
func (c *Conn) Create(ctx context.Context, path string, data []byte, mode zoo.CreateMode, acl []zoo.ACL) (string, error) {
	if mode == zoo.ModePersistentWithTTL || mode == zoo.ModePersistentSequentialWithTTL {
		return "", pathErr("create", path, fmt.Errorf("%w: TTL modes need CreateWithStat", zoo.ErrBadArguments))
	}
	p, _, err := c.create(ctx, zoo.CreateOp{Path: path, Data: data, ACL: acl, Mode: mode}, false)
	return p, err
}

// CreateWithStat creates a znode as Create does and also returns its Stat,
// using create2 (15), createContainer (19), or createTTL (21) for the TTL
// modes with op.TTL (whole milliseconds; the server must enable TTLs, else
// zoo.ErrUnimplemented).
func (c *Conn) CreateWithStat(ctx context.Context, op zoo.CreateOp) (string, zoo.Stat, error) {
	return c.create(ctx, op, true)
}

func (c *Conn) create(ctx context.Context, o zoo.CreateOp, withStat bool) (string, zoo.Stat, error) {
	if c == nil {
		return "", zoo.Stat{}, pathErr("create", o.Path, errNilConn)
	}
	typ, err := createType(o, withStat)
	if err != nil {
		return "", zoo.Stat{}, pathErr("create", o.Path, err)
	}
	var (
		created string
		st      zoo.Stat
		sp      = c.serverPath(o.Path)
	)
	req := newRequest(typ, func(w *jute.Writer) { writeCreate(w, typ, sp, o) },
		func(code zoo.Code, r *jute.Reader) error {
			if code != zoo.CodeOK {
				return zoo.ErrorForCode(code)
			}
			created = c.clientPath(r.UString())
			if typ != jute.OpCreate {
				st = r.Stat()
			}
			return nil
		})
	if err := c.do(ctx, req); err != nil {
		return "", zoo.Stat{}, pathErr("create", o.Path, err)
	}
	return created, st, nil
}

// createType checks a create and picks its opcode, as the Java client does.
func createType(o zoo.CreateOp, withStat bool) (int32, error) {
	check := o.Path
	if o.Mode == zoo.ModePersistentSequential || o.Mode == zoo.ModeEphemeralSequential ||
		o.Mode == zoo.ModePersistentSequentialWithTTL {
		check += "1" // the server appends the sequence number
	}
	if err := validatePath(check); err != nil {
		return 0, err
	}
	isTTL := o.Mode == zoo.ModePersistentWithTTL || o.Mode == zoo.ModePersistentSequentialWithTTL
	switch {
	case o.Mode < zoo.ModePersistent || o.Mode > zoo.ModePersistentSequentialWithTTL:
		return 0, fmt.Errorf("%w: unknown create mode %d", zoo.ErrBadArguments, o.Mode)
	case isTTL && (o.TTL <= 0 || o.TTL%time.Millisecond != 0):
		return 0, fmt.Errorf("%w: TTL modes need a TTL of whole milliseconds, got %v", zoo.ErrBadArguments, o.TTL)
	case !isTTL && o.TTL != 0:
		return 0, fmt.Errorf("%w: a TTL goes with the TTL create modes only", zoo.ErrBadArguments)
	case isTTL:
		return jute.OpCreateTTL, nil
	case o.Mode == zoo.ModeContainer:
		return jute.OpCreateContainer, nil
	case withStat:
		return jute.OpCreate2, nil
	}
	return jute.OpCreate, nil
}

// writeCreate writes a CreateRequest, or a CreateTTLRequest for createTTL.
func writeCreate(w *jute.Writer, typ int32, serverPath string, o zoo.CreateOp) {
	w.UString(serverPath)
	w.Buffer(o.Data)
	w.ACLs(orOpen(o.ACL))
	w.Int(int32(o.Mode))
	if typ == jute.OpCreateTTL {
		w.Long(o.TTL.Milliseconds())
	}
}

// Delete deletes a znode at version (-1: any). Errors: zoo.ErrNoNode,
// zoo.ErrBadVersion, zoo.ErrNotEmpty, zoo.ErrNoAuth, zoo.ErrBadArguments.
func (c *Conn) Delete(ctx context.Context, path string, version int32) error {
	if err := c.check("delete", path); err != nil {
		return err
	}
	sp := c.serverPath(path)
	req := newRequest(jute.OpDelete, func(w *jute.Writer) { w.UString(sp); w.Int(version) }, nil)
	return pathErr("delete", path, c.do(ctx, req))
}

// Exists reports whether a znode exists, with its Stat. With watch, a data
// watch is set on an existing node and an exist watch on a missing one
// (NodeCreated fires when it appears).
func (c *Conn) Exists(ctx context.Context, path string, watch bool) (bool, zoo.Stat, error) {
	if err := c.check("exists", path); err != nil {
		return false, zoo.Stat{}, err
	}
	var (
		ok bool
		st zoo.Stat
		sp = c.serverPath(path)
	)
	req := newRequest(jute.OpExists, func(w *jute.Writer) { w.UString(sp); w.Bool(watch) },
		func(code zoo.Code, r *jute.Reader) error {
			switch code {
			case zoo.CodeOK:
				if st = r.Stat(); watch && r.Err == nil {
					c.addWatch(sp, kindData)
				}
				ok = true
				return nil
			case zoo.CodeNoNode:
				if watch {
					c.addWatch(sp, kindExist)
				}
				return nil
			}
			return zoo.ErrorForCode(code)
		})
	if err := c.do(ctx, req); err != nil {
		return false, zoo.Stat{}, pathErr("exists", path, err)
	}
	return ok, st, nil
}

// Get returns a znode's data (nil for null data, as ZooKeeper keeps null and
// empty apart) and Stat; with watch, sets a data watch. Errors: zoo.ErrNoNode, zoo.ErrNoAuth.
func (c *Conn) Get(ctx context.Context, path string, watch bool) ([]byte, zoo.Stat, error) {
	if err := c.check("get", path); err != nil {
		return nil, zoo.Stat{}, err
	}
	data, st, err := c.getData(ctx, c.serverPath(path), watch)
	return data, st, pathErr("get", path, err)
}

func (c *Conn) getData(ctx context.Context, sp string, watch bool) ([]byte, zoo.Stat, error) {
	var (
		data []byte
		st   zoo.Stat
	)
	req := newRequest(jute.OpGetData, func(w *jute.Writer) { w.UString(sp); w.Bool(watch) },
		func(code zoo.Code, r *jute.Reader) error {
			if code != zoo.CodeOK {
				return zoo.ErrorForCode(code)
			}
			data, st = r.Buffer(), r.Stat()
			if watch && r.Err == nil {
				c.addWatch(sp, kindData)
			}
			return nil
		})
	if err := c.do(ctx, req); err != nil {
		return nil, zoo.Stat{}, err
	}
	return data, st, nil
}

// Set replaces a znode's data at version (-1: any) and returns the new
// Stat. Errors: zoo.ErrNoNode, zoo.ErrBadVersion, zoo.ErrNoAuth.
func (c *Conn) Set(ctx context.Context, path string, data []byte, version int32) (zoo.Stat, error) {
	if err := c.check("set", path); err != nil {
		return zoo.Stat{}, err
	}
	sp := c.serverPath(path)
	st, err := c.statRequest(ctx, jute.OpSetData, func(w *jute.Writer) { w.UString(sp); w.Buffer(data); w.Int(version) })
	return st, pathErr("set", path, err)
}

// statRequest runs a request whose reply is a Stat.
func (c *Conn) statRequest(ctx context.Context, op int32, body func(w *jute.Writer)) (zoo.Stat, error) {
	var st zoo.Stat
	err := c.do(ctx, newRequest(op, body, func(code zoo.Code, r *jute.Reader) error {
		if code != zoo.CodeOK {
			return zoo.ErrorForCode(code)
		}
		st = r.Stat()
		return nil
	}))
	return st, err
}

// GetACL returns a znode's ACL and Stat. Errors: zoo.ErrNoNode, zoo.ErrNoAuth.
func (c *Conn) GetACL(ctx context.Context, path string) ([]zoo.ACL, zoo.Stat, error) {
	if err := c.check("getACL", path); err != nil {
		return nil, zoo.Stat{}, err
	}
	var (
		acl []zoo.ACL
		st  zoo.Stat
		sp  = c.serverPath(path)
	)
	req := newRequest(jute.OpGetACL, func(w *jute.Writer) { w.UString(sp) }, func(code zoo.Code, r *jute.Reader) error {
		if code != zoo.CodeOK {
			return zoo.ErrorForCode(code)
		}
		acl, st = r.ACLs(), r.Stat()
		return nil
	})
	if err := c.do(ctx, req); err != nil {
		return nil, zoo.Stat{}, pathErr("getACL", path, err)
	}
	return acl, st, nil
}

// SetACL replaces a znode's ACL at aversion (-1: any); nil means
// zoo.OpenACL. Errors: zoo.ErrNoNode, zoo.ErrBadVersion, zoo.ErrInvalidACL, zoo.ErrNoAuth.
func (c *Conn) SetACL(ctx context.Context, path string, acl []zoo.ACL, aversion int32) (zoo.Stat, error) {
	if err := c.check("setACL", path); err != nil {
		return zoo.Stat{}, err
	}
	sp := c.serverPath(path)
	st, err := c.statRequest(ctx, jute.OpSetACL, func(w *jute.Writer) { w.UString(sp); w.ACLs(orOpen(acl)); w.Int(aversion) })
	return st, pathErr("setACL", path, err)
}

// Children returns a znode's child names, unordered (getChildren, 8); with
// watch, sets a child watch. Errors: zoo.ErrNoNode, zoo.ErrNoAuth.
func (c *Conn) Children(ctx context.Context, path string, watch bool) ([]string, error) {
	names, _, err := c.children(ctx, "children", path, watch, false)
	return names, err
}

// ChildrenWithStat is Children returning the znode's Stat too (getChildren2, 12).
func (c *Conn) ChildrenWithStat(ctx context.Context, path string, watch bool) ([]string, zoo.Stat, error) {
	return c.children(ctx, "children", path, watch, true)
}

func (c *Conn) children(ctx context.Context, name, path string, watch, withStat bool) ([]string, zoo.Stat, error) {
	if err := c.check(name, path); err != nil {
		return nil, zoo.Stat{}, err
	}
	var (
		names []string
		st    zoo.Stat
		sp    = c.serverPath(path)
		op    = jute.OpGetChildren
	)
	if withStat {
		op = jute.OpGetChildren2
	}
	req := newRequest(op, func(w *jute.Writer) { w.UString(sp); w.Bool(watch) }, func(code zoo.Code, r *jute.Reader) error {
		if code != zoo.CodeOK {
			return zoo.ErrorForCode(code)
		}
		names = r.Strings()
		if withStat {
			st = r.Stat()
		}
		if watch && r.Err == nil {
			c.addWatch(sp, kindChild)
		}
		return nil
	})
	if err := c.do(ctx, req); err != nil {
		return nil, zoo.Stat{}, pathErr(name, path, err)
	}
	if names == nil {
		names = []string{}
	}
	return names, st, nil
}

// Sync makes the server catch up with the leader, so that the reads after
// it see every write committed before it.
func (c *Conn) Sync(ctx context.Context, path string) error {
	if err := c.check("sync", path); err != nil {
		return err
	}
	sp := c.serverPath(path)
	return pathErr("sync", path, c.do(ctx, newRequest(jute.OpSync, func(w *jute.Writer) { w.UString(sp) }, nil)))
}

// AddAuth adds an identity to the session (digest: "user:password"). It is
// sent again on every reconnection. A server that refuses it
// (zoo.ErrAuthFailed) closes the connection and the Conn becomes
// StateAuthFailed for good, as a Java client does.
func (c *Conn) AddAuth(ctx context.Context, scheme string, auth []byte) error {
	if c == nil {
		return fmt.Errorf("zkclient: addAuth: %w", errNilConn)
	}
	a := authInfo{scheme: scheme, auth: append([]byte(nil), auth...)}
	req := c.authRequest(a, func() { c.auths = append(c.auths, a) })
	if err := c.do(ctx, req); err != nil {
		return fmt.Errorf("zkclient: addAuth %s: %w", scheme, err)
	}
	return nil
}

// WhoAmI returns the identities the server holds for the session (whoAmI,
// 107): each as a zoo.ID whose ID is the user name the server reports
// ("ip"/"127.0.0.1", "digest"/"alice").
func (c *Conn) WhoAmI(ctx context.Context) ([]zoo.ID, error) {
	if c == nil {
		return nil, fmt.Errorf("zkclient: whoAmI: %w", errNilConn)
	}
	var ids []zoo.ID
	req := newRequest(jute.OpWhoAmI, nil, func(code zoo.Code, r *jute.Reader) error {
		if code != zoo.CodeOK {
			return zoo.ErrorForCode(code)
		}
		n := r.Count(8)
		ids = make([]zoo.ID, 0, max(n, 0))
		for i := 0; i < n && r.Err == nil; i++ {
			ids = append(ids, zoo.ID{Scheme: r.UString(), ID: r.UString()})
		}
		return nil
	})
	if err := c.do(ctx, req); err != nil {
		return nil, fmt.Errorf("zkclient: whoAmI: %w", err)
	}
	return ids, nil
}

// AddWatch sets a persistent watch (zoo.WatchPersistent: the node's
// changes and its child list's; zoo.WatchPersistentRecursive: the node's
// and every descendant's, without NodeChildrenChanged). It stays until
// removed with RemoveWatches and is re-armed after reconnections.
func (c *Conn) AddWatch(ctx context.Context, path string, mode zoo.WatchMode) error {
	if err := c.check("addWatch", path); err != nil {
		return err
	}
	kind := kindPersistent
	switch mode {
	case zoo.WatchPersistent:
	case zoo.WatchPersistentRecursive:
		kind = kindRecursive
	default:
		return pathErr("addWatch", path, fmt.Errorf("%w: unknown watch mode %d", zoo.ErrBadArguments, mode))
	}
	sp := c.serverPath(path)
	req := newRequest(jute.OpAddWatch, func(w *jute.Writer) { w.UString(sp); w.Int(int32(mode)) },
		func(code zoo.Code, r *jute.Reader) error {
			if code != zoo.CodeOK {
				return zoo.ErrorForCode(code)
			}
			if r.Len() >= 4 { // ErrorResponse{0}; tolerate servers that omit it
				if code := zoo.Code(r.Int()); code != zoo.CodeOK {
					return zoo.ErrorForCode(code)
				}
			}
			c.addWatch(sp, kind)
			return nil
		})
	return pathErr("addWatch", path, c.do(ctx, req))
}

// checkWatcherType refuses watcher types ZooKeeper does not know.
func checkWatcherType(typ zoo.WatcherType) error {
	if typ < zoo.WatcherChildren || typ > zoo.WatcherPersistentRecursive {
		return fmt.Errorf("%w: unknown watcher type %d", zoo.ErrBadArguments, typ)
	}
	return nil
}

// CheckWatches asks the server whether the session has a watch of typ on
// path (checkWatches, 17): nil if so, else zoo.ErrNoWatcher. Servers
// before 3.9 know only types Children, Data and Any.
func (c *Conn) CheckWatches(ctx context.Context, path string, typ zoo.WatcherType) error {
	if err := c.check("checkWatches", path); err != nil {
		return err
	}
	if err := checkWatcherType(typ); err != nil {
		return pathErr("checkWatches", path, err)
	}
	sp := c.serverPath(path)
	req := newRequest(jute.OpCheckWatches, func(w *jute.Writer) { w.UString(sp); w.Int(int32(typ)) }, nil)
	return pathErr("checkWatches", path, c.do(ctx, req))
}

// RemoveWatches removes the session's watches of typ on path
// (removeWatches, 18, zkCli's removewatches) and delivers a
// DataWatchRemoved, ChildWatchRemoved or PersistentWatchRemoved event for
// what it removed. zoo.ErrNoWatcher if the client holds no such watch or the
// server has none. With local, the watches are also removed when the server
// cannot be asked: at once while disconnected, or after an error reply.
func (c *Conn) RemoveWatches(ctx context.Context, path string, typ zoo.WatcherType, local bool) error {
	if err := c.check("removeWatches", path); err != nil {
		return err
	}
	if err := checkWatcherType(typ); err != nil {
		return pathErr("removeWatches", path, err)
	}
	sp := c.serverPath(path)
	if local && ctx != nil {
		c.mu.Lock()
		offline := c.cur == nil && !c.closed && c.final == nil
		if offline {
			removed := c.watches.remove(sp, typ)
			c.pushRemoved(path, removed)
			c.mu.Unlock()
			c.events.wait(ctx, c.events.mark())
			if removed == 0 {
				return pathErr("removeWatches", path, zoo.ErrNoWatcher)
			}
			return nil
		}
		c.mu.Unlock()
	}
	req := newRequest(jute.OpRemoveWatches, func(w *jute.Writer) { w.UString(sp); w.Int(int32(typ)) },
		func(code zoo.Code, _ *jute.Reader) error {
			// As ZKWatchManager.removeWatcher: the client must hold the
			// watch, and drops it if the server did (or with local).
			if code != zoo.CodeOK && !local {
				return zoo.ErrorForCode(code)
			}
			c.mu.Lock()
			defer c.mu.Unlock()
			removed := c.watches.remove(sp, typ)
			if removed == 0 {
				if code != zoo.CodeOK {
					return zoo.ErrorForCode(code)
				}
				return zoo.ErrNoWatcher
			}
			c.pushRemoved(path, removed)
			return nil
		})
	err := c.do(ctx, req)
	if local && errors.Is(err, zoo.ErrConnectionLoss) {
		// The connection went with the request: remove locally, as the
		// Java client does when the request fails with CONNECTIONLOSS.
		c.mu.Lock()
		removed := c.watches.remove(sp, typ)
		c.pushRemoved(path, removed)
		c.mu.Unlock()
		c.events.wait(ctx, c.events.mark())
		if removed != 0 {
			err = nil
		}
	}
	return pathErr("removeWatches", path, err)
}

// pushRemoved queues the events for removed watch kinds. c.mu is held.
func (c *Conn) pushRemoved(path string, removed watchKinds) {
	for _, typ := range removedEvents(removed) {
		c.events.push(Event{Type: typ, State: c.state, Path: path})
	}
}

// GetEphemerals lists the session's ephemeral nodes whose path starts with
// prefix (a plain string prefix: "/a" matches "/ab"; "" or "/" for all).
// Under a chroot the prefix is rooted there and only nodes inside it are
// returned, chroot stripped (the Java 3.8 client sends the prefix as given
// and returns server paths; see the package doc).
func (c *Conn) GetEphemerals(ctx context.Context, prefix string) ([]string, error) {
	if prefix == "" {
		prefix = "/"
	}
	if err := c.check("getEphemerals", prefix); err != nil {
		return nil, err
	}
	var paths []string
	sp := c.serverPath(prefix)
	req := newRequest(jute.OpGetEphemerals, func(w *jute.Writer) { w.UString(sp) }, func(code zoo.Code, r *jute.Reader) error {
		if code != zoo.CodeOK {
			return zoo.ErrorForCode(code)
		}
		for _, p := range r.Strings() {
			if cp, inside := c.stripChroot(p); inside {
				paths = append(paths, cp)
			}
		}
		return nil
	})
	if err := c.do(ctx, req); err != nil {
		return nil, pathErr("getEphemerals", prefix, err)
	}
	if paths == nil {
		paths = []string{}
	}
	return paths, nil
}

// AllChildrenNumber returns the number of descendants of a znode
// (getAllChildrenNumber, 104). Errors: zoo.ErrNoNode, zoo.ErrNoAuth.
func (c *Conn) AllChildrenNumber(ctx context.Context, path string) (int, error) {
	if err := c.check("getAllChildrenNumber", path); err != nil {
		return 0, err
	}
	var n int32
	sp := c.serverPath(path)
	req := newRequest(jute.OpGetAllChildrenNumber, func(w *jute.Writer) { w.UString(sp) }, func(code zoo.Code, r *jute.Reader) error {
		if code != zoo.CodeOK {
			return zoo.ErrorForCode(code)
		}
		n = r.Int()
		return nil
	})
	if err := c.do(ctx, req); err != nil {
		return 0, pathErr("getAllChildrenNumber", path, err)
	}
	return int(n), nil
}

// GetConfig returns the ensemble's dynamic configuration, the data of
// /zookeeper/config (never under the chroot); with watch, sets a data
// watch on it.
func (c *Conn) GetConfig(ctx context.Context, watch bool) ([]byte, zoo.Stat, error) {
	if c == nil {
		return nil, zoo.Stat{}, pathErr("getConfig", configNode, errNilConn)
	}
	data, st, err := c.getData(ctx, configNode, watch)
	return data, st, pathErr("getConfig", configNode, err)
}

// Reconfig changes the ensemble's membership (reconfig, 16): incrementally
// with joining ("server.<id>=host:port:port[:role];[host:]port") and
// leaving (server ids), or wholesale with members; each list is sent
// comma-separated, and an empty list as null, as the Java client does.
// fromConfig is the config version the change applies to (-1: any). It
// returns the new configuration and the Stat of /zookeeper/config.
// Errors: zoo.ErrReconfigDisabled, zoo.ErrUnimplemented (standalone),
// zoo.ErrNewConfigNoQuorum, zoo.ErrReconfigInProgress, zoo.ErrBadVersion,
// zoo.ErrBadArguments, zoo.ErrNoAuth.
func (c *Conn) Reconfig(ctx context.Context, joining, leaving, members []string, fromConfig int64) ([]byte, zoo.Stat, error) {
	if c == nil {
		return nil, zoo.Stat{}, fmt.Errorf("zkclient: reconfig: %w", errNilConn)
	}
	list := func(w *jute.Writer, l []string) {
		if len(l) == 0 {
			w.NullString()
		} else {
			w.UString(strings.Join(l, ","))
		}
	}
	var (
		data []byte
		st   zoo.Stat
	)
	req := newRequest(jute.OpReconfig, func(w *jute.Writer) {
		list(w, joining)
		list(w, leaving)
		list(w, members)
		w.Long(fromConfig)
	}, func(code zoo.Code, r *jute.Reader) error {
		if code != zoo.CodeOK {
			return zoo.ErrorForCode(code)
		}
		data, st = r.Buffer(), r.Stat()
		return nil
	})
	if err := c.do(ctx, req); err != nil {
		return nil, zoo.Stat{}, fmt.Errorf("zkclient: reconfig: %w", err)
	}
	return data, st, nil
}
