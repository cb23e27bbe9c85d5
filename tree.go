package zoo

import (
	"fmt"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/google/btree"
)

// MaxDataSize is ZooKeeper's default jute.maxbuffer: the largest znode payload.
const MaxDataSize = 1048575

// Stat is a znode's metadata, field for field as ZooKeeper serves it.
type Stat struct {
	Czxid          int64 // zxid of the create
	Mzxid          int64 // zxid of the last setData
	Ctime          int64 // create time, ms since epoch (the leader's clock)
	Mtime          int64 // last setData time, ms since epoch
	Version        int32 // number of setData calls
	Cversion       int32 // child creates plus child deletes
	Aversion       int32 // number of setACL calls
	EphemeralOwner int64 // owning session id for ephemerals, else 0
	DataLength     int32
	NumChildren    int32
	Pzxid          int64 // zxid of the last child create or delete
}

// CreateMode is the kind of znode to create.
type CreateMode int32

// Create modes with ZooKeeper's flag values.
const (
	ModePersistent                  CreateMode = 0
	ModeEphemeral                   CreateMode = 1
	ModePersistentSequential        CreateMode = 2
	ModeEphemeralSequential         CreateMode = 3
	ModeContainer                   CreateMode = 4
	ModePersistentWithTTL           CreateMode = 5
	ModePersistentSequentialWithTTL CreateMode = 6
)

func (m CreateMode) String() string {
	switch m {
	case ModePersistent:
		return "PERSISTENT"
	case ModeEphemeral:
		return "EPHEMERAL"
	case ModePersistentSequential:
		return "PERSISTENT_SEQUENTIAL"
	case ModeEphemeralSequential:
		return "EPHEMERAL_SEQUENTIAL"
	case ModeContainer:
		return "CONTAINER"
	case ModePersistentWithTTL:
		return "PERSISTENT_WITH_TTL"
	case ModePersistentSequentialWithTTL:
		return "PERSISTENT_SEQUENTIAL_WITH_TTL"
	}
	return fmt.Sprintf("CreateMode(%d)", int32(m))
}

func (m CreateMode) valid() bool      { return m >= ModePersistent && m <= ModePersistentSequentialWithTTL }
func (m CreateMode) sequential() bool { return m == 2 || m == 3 || m == 6 }
func (m CreateMode) ephemeral() bool  { return m == 1 || m == 3 }
func (m CreateMode) ttl() bool        { return m == 5 || m == 6 }

// Stored ephemeralOwner sentinels (server-internal, served as 0), as in
// ZooKeeper's EphemeralType.
const (
	containerOwner = math.MinInt64
	ttlOwnerMask   = int64(-72057594037927936) // 0xFF00000000000000
	maxTTL         = int64(1)<<40 - 1
)

func isContainerOwner(o int64) bool { return o == containerOwner }
func isTTLOwner(o int64) bool       { return o != containerOwner && o&ttlOwnerMask == ttlOwnerMask }
func ttlOf(o int64) int64           { return o &^ ttlOwnerMask }
func isSessionOwner(o int64) bool   { return o > 0 }

// znode is one immutable node in the tree. Writers replace it with a modified
// copy, so a node handed to a reader or a snapshot never changes.
type znode struct {
	path      string
	parentEnd int32 // path[:parentEnd] is the parent path
	nameStart int32 // path[nameStart:] is the node name

	data         []byte // nil = null data, kept apart from empty
	acl          []ACL
	czxid, mzxid int64
	pzxid        int64
	ctime, mtime int64
	version      int32
	childCreates int32 // ZooKeeper's stored cversion: the sequence source
	aversion     int32
	owner        int64 // raw ephemeralOwner, including container/TTL sentinels
	numChildren  int32
}

func (n *znode) parent() string { return n.path[:n.parentEnd] }
func (n *znode) name() string   { return n.path[n.nameStart:] }

// keyPool recycles lookup keys: a key escapes into the B-tree's comparator, so
// a fresh one per lookup would cost a heap allocation on every read.
var keyPool = sync.Pool{New: func() any { return new(znode) }}

// withKey calls fn with a lookup key for path: nodes sort by (parent, name),
// so the children of one node are adjacent in the B-tree. The key is only
// valid during fn.
func withKey[T any](path string, fn func(key *znode) T) T {
	k := keyPool.Get().(*znode)
	k.path = path
	k.setKey()
	v := fn(k)
	k.path = ""
	keyPool.Put(k)
	return v
}

func (n *znode) setKey() {
	if n.path == "/" {
		n.parentEnd, n.nameStart = 0, 1
		return
	}
	i := strings.LastIndexByte(n.path, '/')
	n.parentEnd, n.nameStart = int32(max(i, 1)), int32(i+1)
}

func lessZnode(a, b *znode) bool {
	ap, bp := a.parent(), b.parent()
	if ap != bp {
		return ap < bp
	}
	return a.name() < b.name()
}

// stat renders the served Stat: cversion as creates+deletes, sentinel owners masked.
func (n *znode) stat() Stat {
	owner := n.owner
	if !isSessionOwner(owner) {
		owner = 0
	}
	return Stat{
		Czxid: n.czxid, Mzxid: n.mzxid, Pzxid: n.pzxid, Ctime: n.ctime, Mtime: n.mtime,
		Version: n.version, Cversion: 2*n.childCreates - n.numChildren, Aversion: n.aversion,
		EphemeralOwner: owner, DataLength: int32(len(n.data)), NumChildren: n.numChildren,
	}
}

// change is one effect of a write, consumed by the watch registry and the
// session table after the write (or whole multi) succeeded.
type change struct {
	typ       EventType // EventNodeCreated, EventNodeDeleted or EventNodeDataChanged
	path      string
	owner     int64 // raw owner of the created or deleted node
	acl       []ACL // the node's ACL: its events reach only watchers that may read it
	parentACL []ACL // the parent's ACL, for NodeChildrenChanged (nil for data changes)
}

// tree is the znode store. It is not safe for concurrent use: the FSM guards it.
type tree struct {
	nodes *btree.BTreeG[*znode]
	undo  []*undoEntry // non-nil while a multi runs
	txn   bool

	digest   uint64 // sum of nodeDigest over nodes (tree_digest.go)
	noDigest bool   // digest not kept (benchmarks of its cost)
}

type undoEntry struct {
	path string
	prev *znode // nil if the path did not exist
}

func newTree() *tree {
	t := &tree{nodes: btree.NewG(32, lessZnode)}
	// ZooKeeper creates / and /zookeeper with empty (not null) data.
	root := &znode{path: "/", acl: internACL(OpenACL), numChildren: 1, data: []byte{}}
	root.setKey()
	zk := &znode{path: zookeeperPath, acl: internACL(OpenACL), numChildren: 2, data: []byte{}}
	zk.setKey()
	quota := &znode{path: quotaPath, acl: internACL(OpenACL), data: []byte{}}
	quota.setKey()
	// ZooKeeper 3.8 serves aversion -1 for /zookeeper/config (its ACL is set
	// at startup without counting as a change).
	config := &znode{path: configPath, acl: internACL(ReadACL), data: []byte{}, aversion: -1}
	config.setKey()
	for _, n := range []*znode{root, zk, quota, config} {
		t.nodes.ReplaceOrInsert(n)
		t.replaced(nil, n)
	}
	return t
}

// get returns the node at path, or nil. Any string is safe here (a path a
// client sent unchecked, as in setWatches, finds nothing): keys are only ever
// built for paths that start with "/".
func (t *tree) get(path string) *znode {
	if path == "" || path[0] != '/' {
		return nil
	}
	return withKey(path, func(k *znode) *znode {
		n, _ := t.nodes.Get(k)
		return n
	})
}

// put stores n, remembering what it replaced when a multi may need to roll back.
func (t *tree) put(n *znode) {
	prev, _ := t.nodes.ReplaceOrInsert(n)
	t.replaced(prev, n)
	if t.txn {
		t.undo = append(t.undo, &undoEntry{path: n.path, prev: prev})
	}
}

func (t *tree) del(path string) {
	prev := withKey(path, func(k *znode) *znode { p, _ := t.nodes.Delete(k); return p })
	t.replaced(prev, nil)
	if t.txn && prev != nil {
		t.undo = append(t.undo, &undoEntry{path: path, prev: prev})
	}
}

// begin starts recording undo information for a multi.
func (t *tree) begin() { t.txn, t.undo = true, t.undo[:0] }

// commit keeps the multi's effects.
func (t *tree) commit() { t.txn, t.undo = false, t.undo[:0] }

// rollback restores every node the multi touched, newest change first.
func (t *tree) rollback() {
	for i := len(t.undo) - 1; i >= 0; i-- {
		u := t.undo[i]
		if u.prev == nil {
			cur := withKey(u.path, func(k *znode) *znode { p, _ := t.nodes.Delete(k); return p })
			t.replaced(cur, nil)
		} else {
			cur, _ := t.nodes.ReplaceOrInsert(u.prev)
			t.replaced(cur, u.prev)
		}
	}
	t.txn, t.undo = false, t.undo[:0]
}

// children lists the names of path's children in byte order.
func (t *tree) children(path string) []string {
	var out []string
	t.eachChild(path, func(c *znode) bool {
		out = append(out, c.name())
		return true
	})
	if out == nil {
		out = []string{}
	}
	return out
}

func (t *tree) eachChild(path string, fn func(*znode) bool) {
	pivot := &znode{path: path + "/"} // parent = path, name = ""
	pivot.parentEnd, pivot.nameStart = int32(len(path)), int32(len(pivot.path))
	if path == "/" {
		pivot.path, pivot.parentEnd, pivot.nameStart = "/", 1, 1
	}
	t.nodes.AscendGreaterOrEqual(pivot, func(c *znode) bool {
		if c.parent() != path || c.path == "/" {
			return false
		}
		return fn(c)
	})
}

// descendants counts every node below path, recursively.
func (t *tree) descendants(path string) int {
	total := 0
	t.eachChild(path, func(c *znode) bool {
		total += 1 + t.descendants(c.path)
		return true
	})
	return total
}

// txnCtx carries what every node in one transaction shares: its zxid, the
// leader's time, and who asks.
type txnCtx struct {
	zxid    int64
	time    int64
	session int64
	ids     []ID
	changes []change
}

// createReq is a create request after local validation.
type createReq struct {
	path string
	data []byte
	acl  []ACL
	mode CreateMode
	ttl  int64
}

// create adds a node with ZooKeeper's checks in ZooKeeper's order
// (PrepRequestProcessor.pRequest2TxnCreate) and returns the created node.
func (t *tree) create(x *txnCtx, r createReq) (*znode, error) {
	if !r.mode.valid() {
		return nil, fmt.Errorf("%w: unknown create mode %d", ErrBadArguments, r.mode)
	}
	if r.mode.ttl() && (r.ttl <= 0 || r.ttl > maxTTL) {
		return nil, fmt.Errorf("%w: ttl must be in [1, 2^40-1] ms", ErrBadArguments)
	}
	if r.mode.ephemeral() && x.session == 0 {
		return nil, fmt.Errorf("%w: ephemeral nodes need a session", ErrBadArguments)
	}
	check := r.path
	if r.mode.sequential() {
		check += "1"
	}
	if err := validatePath(check); err != nil {
		return nil, err
	}
	if r.path == "/" && !r.mode.sequential() {
		return nil, ErrNodeExists // a sequential "/" names a child of the root: "/0000000000"
	}
	if len(r.data) > MaxDataSize {
		return nil, fmt.Errorf("%w: data is %d bytes, limit %d", ErrBadArguments, len(r.data), MaxDataSize)
	}
	acl, err := fixupACL(r.acl, x.ids)
	if err != nil {
		return nil, err
	}
	parentPath, _ := splitPath(check)
	parent := t.get(parentPath)
	if parent == nil {
		return nil, ErrNoNode
	}
	if err := checkACL(parent.acl, x.ids, PermCreate); err != nil {
		return nil, err
	}
	path := r.path
	if r.mode.sequential() {
		path += fmt.Sprintf("%010d", parent.childCreates)
	}
	if err := validatePath(path); err != nil {
		return nil, err
	}
	if t.get(path) != nil {
		return nil, ErrNodeExists
	}
	if isSessionOwner(parent.owner) {
		return nil, ErrNoChildrenForEphemerals
	}
	owner := int64(0)
	switch {
	case r.mode.ephemeral():
		owner = x.session
	case r.mode == ModeContainer:
		owner = containerOwner
	case r.mode.ttl():
		owner = ttlOwnerMask | r.ttl
	}
	n := &znode{path: path, data: r.data, acl: acl, czxid: x.zxid, mzxid: x.zxid, pzxid: x.zxid,
		ctime: x.time, mtime: x.time, owner: owner}
	n.setKey()
	p := *parent
	p.childCreates++
	p.numChildren++
	p.pzxid = x.zxid
	t.put(&p)
	t.put(n)
	x.changes = append(x.changes, change{EventNodeCreated, path, owner, n.acl, parent.acl})
	return n, nil
}

// remove deletes a node (PrepRequestProcessor delete checks, in order).
func (t *tree) remove(x *txnCtx, path string, version int32) error {
	if err := validatePath(path); err != nil {
		return err
	}
	if isReservedPath(path) {
		return fmt.Errorf("%w: %s is reserved", ErrBadArguments, path)
	}
	parentPath, _ := splitPath(path)
	parent := t.get(parentPath)
	if parent == nil {
		return ErrNoNode
	}
	if err := checkACL(parent.acl, x.ids, PermDelete); err != nil {
		return err
	}
	n := t.get(path)
	if n == nil {
		return ErrNoNode
	}
	if version != -1 && version != n.version {
		return ErrBadVersion
	}
	if n.numChildren > 0 {
		return ErrNotEmpty
	}
	t.unlink(x, parent, n)
	return nil
}

// unlink removes a childless node n from parent without permission checks.
func (t *tree) unlink(x *txnCtx, parent, n *znode) {
	p := *parent
	p.numChildren--
	p.pzxid = max(p.pzxid, x.zxid)
	t.put(&p)
	t.del(n.path)
	x.changes = append(x.changes, change{EventNodeDeleted, n.path, n.owner, n.acl, parent.acl})
}

// setData replaces a node's data.
func (t *tree) setData(x *txnCtx, path string, data []byte, version int32) (*znode, error) {
	if err := validatePath(path); err != nil {
		return nil, err
	}
	if len(data) > MaxDataSize {
		return nil, fmt.Errorf("%w: data is %d bytes, limit %d", ErrBadArguments, len(data), MaxDataSize)
	}
	n := t.get(path)
	if n == nil {
		return nil, ErrNoNode
	}
	if err := checkACL(n.acl, x.ids, PermWrite); err != nil {
		return nil, err
	}
	if version != -1 && version != n.version {
		return nil, ErrBadVersion
	}
	m := *n
	m.data = data
	m.version++
	m.mzxid = x.zxid
	m.mtime = x.time
	t.put(&m)
	x.changes = append(x.changes, change{EventNodeDataChanged, path, m.owner, m.acl, nil})
	return &m, nil
}

// setACL replaces a node's ACL; it fires no watch.
func (t *tree) setACL(x *txnCtx, path string, acl []ACL, aversion int32) (*znode, error) {
	if err := validatePath(path); err != nil {
		return nil, err
	}
	fixed, err := fixupACL(acl, x.ids)
	if err != nil {
		return nil, err
	}
	n := t.get(path)
	if n == nil {
		return nil, ErrNoNode
	}
	if err := checkACL(n.acl, x.ids, PermAdmin); err != nil {
		return nil, err
	}
	if aversion != -1 && aversion != n.aversion {
		return nil, ErrBadVersion
	}
	m := *n
	m.acl = fixed
	m.aversion++
	t.put(&m)
	return &m, nil
}

// check is multi's version check: -1 is a pure existence check.
func (t *tree) check(x *txnCtx, path string, version int32) error {
	if err := validatePath(path); err != nil {
		return err
	}
	n := t.get(path)
	if n == nil {
		return ErrNoNode
	}
	if err := checkACL(n.acl, x.ids, PermRead); err != nil {
		return err
	}
	if version != -1 && version != n.version {
		return ErrBadVersion
	}
	return nil
}

// reapable reports whether a container or TTL node is due for deletion at
// time now (ms), as ZooKeeper's ContainerManager decides.
func (n *znode) reapable(now int64) bool {
	if n.numChildren > 0 {
		return false
	}
	switch {
	case isContainerOwner(n.owner):
		return n.childCreates > 0
	case isTTLOwner(n.owner):
		return now-n.mtime > ttlOf(n.owner)
	}
	return false
}

// reap deletes a container or TTL node if it still qualifies at the txn time;
// re-checked here so that every replica decides the same way.
func (t *tree) reap(x *txnCtx, path string) error {
	if err := validatePath(path); err != nil {
		return err // never from a healthy leader; must not crash the B-tree lookup
	}
	n := t.get(path)
	if n == nil || isReservedPath(path) {
		return ErrNoNode
	}
	if !n.reapable(x.time) {
		return ErrNotEmpty
	}
	parentPath, _ := splitPath(path)
	t.unlink(x, t.get(parentPath), n)
	return nil
}

// String renders the Stat the way zkCli.sh's "get -s" and "stat" print it.
func (s Stat) String() string {
	t := func(ms int64) string {
		return time.UnixMilli(ms).In(gmt).Format("Mon Jan 02 15:04:05 MST 2006")
	}
	return fmt.Sprintf("cZxid = %#x\nctime = %s\nmZxid = %#x\nmtime = %s\npZxid = %#x\ncversion = %d\n"+
		"dataVersion = %d\naclVersion = %d\nephemeralOwner = %#x\ndataLength = %d\nnumChildren = %d\n",
		s.Czxid, t(s.Ctime), s.Mzxid, t(s.Mtime), s.Pzxid, s.Cversion, s.Version, s.Aversion,
		s.EphemeralOwner, s.DataLength, s.NumChildren)
}

var gmt = time.FixedZone("GMT", 0)
