package zoo

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
)

// checkFSM runs the tree invariant checker on f's current state.
func checkFSM(t testing.TB, f *fsm) {
	t.Helper()
	f.mu.RLock()
	defer f.mu.RUnlock()
	checkTree(t, f.tree, f.sessions)
}

// builtinChildren is how many children a node has that no create counted:
// "/zookeeper" under "/", and "quota" and "config" under "/zookeeper".
func builtinChildren(path string) int32 {
	switch path {
	case "/":
		return 1
	case zookeeperPath:
		return 2
	}
	return 0
}

// checkTree verifies what must hold after any sequence of writes: keys match
// paths, every node's parent exists and counts it, pzxid covers every child's
// czxid, cversion is served as creates+deletes, ephemerals have no children and
// belong to live sessions whose index lists exactly them.
func checkTree(t testing.TB, tr *tree, sessions map[int64]*sessionEntry) {
	t.Helper()
	for _, p := range []string{"/", zookeeperPath, quotaPath, configPath} {
		if tr.get(p) == nil {
			t.Errorf("invariant: %s missing", p)
		}
	}
	var nodes []*znode
	tr.nodes.Ascend(func(n *znode) bool {
		nodes = append(nodes, n)
		return true
	})
	counted := map[string]int32{}
	ephemerals := map[int64]int{}
	for _, n := range nodes {
		st := n.stat()
		if st.DataLength != int32(len(n.data)) {
			t.Errorf("invariant: %s dataLength %d, data %d bytes", n.path, st.DataLength, len(n.data))
		}
		if st.Cversion != 2*n.childCreates-n.numChildren {
			t.Errorf("invariant: %s served cversion %d, stored %d, %d children", n.path, st.Cversion, n.childCreates, n.numChildren)
		}
		if n.childCreates < n.numChildren-builtinChildren(n.path) {
			t.Errorf("invariant: %s has %d children but only %d creates", n.path, n.numChildren, n.childCreates)
		}
		if n.mzxid < n.czxid || n.pzxid < n.czxid {
			t.Errorf("invariant: %s czxid %d mzxid %d pzxid %d", n.path, n.czxid, n.mzxid, n.pzxid)
		}
		switch {
		case isSessionOwner(n.owner):
			ephemerals[n.owner]++
			s := sessions[n.owner]
			if s == nil {
				t.Errorf("invariant: %s owned by dead session %d", n.path, n.owner)
			} else if _, ok := s.ephemerals[n.path]; !ok {
				t.Errorf("invariant: %s missing from session %d's index", n.path, n.owner)
			}
			if st.EphemeralOwner != n.owner {
				t.Errorf("invariant: %s served owner %d, stored %d", n.path, st.EphemeralOwner, n.owner)
			}
		case n.owner == 0 || isContainerOwner(n.owner) || isTTLOwner(n.owner):
			if st.EphemeralOwner != 0 {
				t.Errorf("invariant: %s serves sentinel owner %#x as %d", n.path, n.owner, st.EphemeralOwner)
			}
		default:
			t.Errorf("invariant: %s has owner %#x", n.path, n.owner)
		}
		if n.path == "/" {
			continue
		}
		if err := validatePath(n.path); err != nil {
			t.Errorf("invariant: stored path %q: %v", n.path, err)
			continue
		}
		parentPath, name := splitPath(n.path)
		if n.parent() != parentPath || n.name() != name {
			t.Errorf("invariant: %s keyed as (%q, %q)", n.path, n.parent(), n.name())
		}
		p := tr.get(parentPath)
		if p == nil {
			t.Errorf("invariant: %s has no parent", n.path)
			continue
		}
		counted[parentPath]++
		if p.pzxid < n.czxid {
			t.Errorf("invariant: %s pzxid %d < child %s czxid %d", parentPath, p.pzxid, n.path, n.czxid)
		}
		if isSessionOwner(p.owner) {
			t.Errorf("invariant: %s is a child of ephemeral %s", n.path, parentPath)
		}
	}
	for _, n := range nodes {
		if n.numChildren != counted[n.path] {
			t.Errorf("invariant: %s numChildren %d, has %d", n.path, n.numChildren, counted[n.path])
		}
		if got := len(tr.children(n.path)); int32(got) != n.numChildren {
			t.Errorf("invariant: %s lists %d children, numChildren %d", n.path, got, n.numChildren)
		}
	}
	for id, s := range sessions {
		if s.id != id {
			t.Errorf("invariant: session %d stored under %d", s.id, id)
		}
		if len(s.ephemerals) != ephemerals[id] {
			t.Errorf("invariant: session %d indexes %d ephemerals, owns %d", id, len(s.ephemerals), ephemerals[id])
		}
	}
}

func TestTreeInitialState(t *testing.T) {
	h := newTestFSM(t)
	tests := []struct {
		path        string
		cversion    int32
		numChildren int32
		data        []byte
		acl         []ACL
	}{
		// ZooKeeper serves these quirky cversions on a fresh server: the
		// built-in children were never counted as creates.
		{"/", -1, 1, []byte{}, OpenACL},
		{zookeeperPath, -2, 2, []byte{}, OpenACL},
		{quotaPath, 0, 0, []byte{}, OpenACL},
		{configPath, 0, 0, []byte{}, ReadACL},
	}
	for _, tt := range tests {
		n := h.node(tt.path)
		if n == nil {
			t.Fatalf("%s missing", tt.path)
		}
		st := n.stat()
		if st.Cversion != tt.cversion || st.NumChildren != tt.numChildren {
			t.Errorf("%s: cversion %d numChildren %d, want %d %d", tt.path, st.Cversion, st.NumChildren, tt.cversion, tt.numChildren)
		}
		if (n.data == nil) != (tt.data == nil) || !bytes.Equal(n.data, tt.data) {
			t.Errorf("%s: data %q (nil %v)", tt.path, n.data, n.data == nil)
		}
		if fmt.Sprint(n.acl) != fmt.Sprint(tt.acl) {
			t.Errorf("%s: acl %v, want %v", tt.path, n.acl, tt.acl)
		}
	}
	if got := h.f.tree.children("/"); strings.Join(got, ",") != "zookeeper" {
		t.Errorf("children of /: %v", got)
	}
	if got := h.f.tree.children(zookeeperPath); strings.Join(got, ",") != "config,quota" {
		t.Errorf("children of /zookeeper: %v", got)
	}
	checkFSM(t, h.f)

	// The first user create makes the root's cversion 0 (1 create, 0 deletes, minus the quirk).
	h.mustCreate("/a", nil)
	if st := h.stat("/"); st.Cversion != 0 || st.NumChildren != 2 {
		t.Errorf("/ after a create: cversion %d numChildren %d", st.Cversion, st.NumChildren)
	}
}

func TestCreateModes(t *testing.T) {
	type tc struct {
		name      string
		op        CreateOp
		ephemeral bool // create as the test session
		wantPath  string
		rawOwner  func(session int64) int64
	}
	zero := func(int64) int64 { return 0 }
	tests := []tc{
		{"persistent", CreateOp{Path: "/p/n", Mode: ModePersistent}, false, "/p/n", zero},
		{"persistent sequential", CreateOp{Path: "/p/n-", Mode: ModePersistentSequential}, false, "/p/n-0000000000", zero},
		{"ephemeral", CreateOp{Path: "/p/n", Mode: ModeEphemeral}, true, "/p/n", func(s int64) int64 { return s }},
		{"ephemeral sequential", CreateOp{Path: "/p/n", Mode: ModeEphemeralSequential}, true, "/p/n0000000000", func(s int64) int64 { return s }},
		{"container", CreateOp{Path: "/p/n", Mode: ModeContainer}, false, "/p/n", func(int64) int64 { return math.MinInt64 }},
		{"ttl", CreateOp{Path: "/p/n", Mode: ModePersistentWithTTL, TTL: 5 * time.Second}, false, "/p/n",
			func(int64) int64 { return int64(-0x100000000000000) | 5000 }},
		{"ttl sequential", CreateOp{Path: "/p/", Mode: ModePersistentSequentialWithTTL, TTL: time.Millisecond}, false, "/p/0000000000",
			func(int64) int64 { return int64(-0x100000000000000) | 1 }},
		{"ttl max", CreateOp{Path: "/p/n", Mode: ModePersistentWithTTL, TTL: time.Duration(1<<40-1) * time.Millisecond}, false, "/p/n",
			func(int64) int64 { return int64(-0x100000000000000) | (1<<40 - 1) }},
		{"session writes persistent", CreateOp{Path: "/p/n"}, true, "/p/n", zero},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newTestFSM(t)
			h.mustCreate("/p", nil)
			s := h.openSession()
			caller := int64(0)
			if tt.ephemeral {
				caller = s
			}
			tt.op.Data = []byte("d")
			res := h.do(caller, nil, tt.op)
			wantErr(t, "create", res.Err, nil)
			if res.Path != tt.wantPath {
				t.Fatalf("created %q, want %q", res.Path, tt.wantPath)
			}
			n := h.node(tt.wantPath)
			if n == nil {
				t.Fatal("node not stored")
			}
			if want := tt.rawOwner(s); n.owner != want {
				t.Errorf("stored owner %#x, want %#x", n.owner, want)
			}
			served := int64(0)
			if isSessionOwner(n.owner) {
				served = s
			}
			z := int64(h.index)
			want := Stat{Czxid: z, Mzxid: z, Pzxid: z, Ctime: timeAt(h.index), Mtime: timeAt(h.index),
				EphemeralOwner: served, DataLength: 1}
			if *res.Stat != want || n.stat() != want {
				t.Errorf("stat\n got %+v (stored %+v)\nwant %+v", *res.Stat, n.stat(), want)
			}
			if got := n.stat().EphemeralOwner; got != served {
				t.Errorf("served owner %d, want %d", got, served)
			}
			checkFSM(t, h.f)
		})
	}
}

func TestCreateErrors(t *testing.T) {
	// The fixture: /p open; /locked READ-only with an existing child /locked/x;
	// /eph an ephemeral; /eph-locked an ephemeral without CREATE for anyone.
	setup := func(t *testing.T) (*testFSM, int64) {
		h := newTestFSM(t)
		s := h.openSession()
		h.mustCreate("/p", nil)
		h.mustCreate("/locked", nil)
		h.mustCreate("/locked/x", nil)
		h.mustDo(setACLOp{path: "/locked", acl: ReadACL, version: -1})
		wantErr(t, "/eph", h.do(s, nil, CreateOp{Path: "/eph", Mode: ModeEphemeral}).Err, nil)
		wantErr(t, "/eph-locked", h.do(s, nil, CreateOp{Path: "/eph-locked", Mode: ModeEphemeral, ACL: ReadACL}).Err, nil)
		h.mustDo(CreateOp{Path: "/c", Mode: ModeContainer})
		h.mustDo(CreateOp{Path: "/ttl", Mode: ModePersistentWithTTL, TTL: time.Hour})
		return h, s
	}
	big := make([]byte, MaxDataSize+1)
	tests := []struct {
		name    string
		op      CreateOp
		session bool
		want    error
	}{
		{"unknown mode", CreateOp{Path: "/p/n", Mode: 7}, false, ErrBadArguments},
		{"negative mode", CreateOp{Path: "/p/n", Mode: -1}, false, ErrBadArguments},
		{"ttl zero", CreateOp{Path: "/p/n", Mode: ModePersistentWithTTL}, false, ErrBadArguments},
		{"ttl negative", CreateOp{Path: "/p/n", Mode: ModePersistentWithTTL, TTL: -time.Millisecond}, false, ErrBadArguments},
		{"ttl 2^40 ms", CreateOp{Path: "/p/n", Mode: ModePersistentSequentialWithTTL, TTL: time.Duration(1<<40) * time.Millisecond}, false, ErrBadArguments},
		{"ttl before parent", CreateOp{Path: "/nope/n", Mode: ModePersistentWithTTL}, false, ErrBadArguments},
		{"trailing slash", CreateOp{Path: "/p/"}, false, ErrBadArguments},
		{"relative", CreateOp{Path: "p/n"}, false, ErrBadArguments},
		{"dot segment", CreateOp{Path: "/p/."}, false, ErrBadArguments},
		{"empty", CreateOp{Path: ""}, false, ErrBadArguments},
		{"sequential empty", CreateOp{Path: "", Mode: ModePersistentSequential}, false, ErrBadArguments},
		{"sequential double slash", CreateOp{Path: "//", Mode: ModePersistentSequential}, false, ErrBadArguments},
		{"root", CreateOp{Path: "/"}, false, ErrNodeExists},
		{"data over limit", CreateOp{Path: "/p/n", Data: big}, false, ErrBadArguments},
		{"empty acl", CreateOp{Path: "/p/n", ACL: []ACL{}}, false, ErrInvalidACL},
		{"invalid acl before missing parent", CreateOp{Path: "/nope/n", ACL: []ACL{{PermAll, ID{"world", "someone"}}}}, false, ErrInvalidACL},
		{"invalid acl before exists", CreateOp{Path: "/p", ACL: []ACL{{PermAll, ID{"bogus", "x"}}}}, false, ErrInvalidACL},
		{"auth acl without identity", CreateOp{Path: "/p/n", ACL: CreatorACL}, false, ErrInvalidACL},
		{"missing parent", CreateOp{Path: "/nope/n"}, false, ErrNoNode},
		{"missing grandparent", CreateOp{Path: "/nope/a/b"}, false, ErrNoNode},
		{"missing parent sequential", CreateOp{Path: "/nope/n-", Mode: ModePersistentSequential}, false, ErrNoNode},
		{"no create perm", CreateOp{Path: "/locked/y"}, false, ErrNoAuth},
		{"no create perm before exists", CreateOp{Path: "/locked/x"}, false, ErrNoAuth},
		{"exists", CreateOp{Path: "/p"}, false, ErrNodeExists},
		{"exists ephemeral", CreateOp{Path: "/p", Mode: ModeEphemeral}, true, ErrNodeExists},
		{"exists reserved", CreateOp{Path: "/zookeeper"}, false, ErrNodeExists},
		{"under ephemeral", CreateOp{Path: "/eph/c"}, false, ErrNoChildrenForEphemerals},
		{"ephemeral under ephemeral", CreateOp{Path: "/eph/c", Mode: ModeEphemeral}, true, ErrNoChildrenForEphemerals},
		{"sequential under ephemeral", CreateOp{Path: "/eph/c-", Mode: ModePersistentSequential}, false, ErrNoChildrenForEphemerals},
		{"container under ephemeral", CreateOp{Path: "/eph/c", Mode: ModeContainer}, false, ErrNoChildrenForEphemerals},
		{"no create perm before ephemeral parent", CreateOp{Path: "/eph-locked/c"}, false, ErrNoAuth},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, s := setup(t)
			caller := int64(0)
			if tt.session {
				caller = s
			}
			before := stateBytes(t, h.f)
			wantErr(t, "create", h.do(caller, nil, tt.op).Err, tt.want)
			if !bytes.Equal(before, stateBytes(t, h.f)) {
				t.Error("failed create changed the state")
			}
		})
	}

	// What the fixture allows, for contrast with the failures above.
	ok := []CreateOp{
		{Path: "/p/n", Data: make([]byte, MaxDataSize)},
		{Path: "/p/n", Mode: ModePersistentWithTTL, TTL: time.Millisecond},
		{Path: "/c/n"},
		{Path: "/ttl/n"},
		{Path: "/zookeeper/n"}, // the server does not block /zookeeper children
		{Path: "/p/", Mode: ModePersistentSequential},
		{Path: "/p/n", ACL: []ACL{{PermAll, ID{"world", "anyone"}}, {PermAll, ID{"world", "anyone"}}}},
	}
	for i, op := range ok {
		t.Run(fmt.Sprintf("ok%d", i), func(t *testing.T) {
			h, _ := setup(t)
			wantErr(t, "create", h.do(0, nil, op).Err, nil)
			checkFSM(t, h.f)
		})
	}
}

func TestCreateDuplicateACLEntriesCollapse(t *testing.T) {
	h := newTestFSM(t)
	dup := []ACL{{PermAll, ID{"world", "anyone"}}, {PermRead, ID{"ip", "10.0.0.1"}}, {PermAll, ID{"world", "anyone"}}}
	h.mustDo(CreateOp{Path: "/n", ACL: dup})
	if got := h.node("/n").acl; len(got) != 2 {
		t.Errorf("stored acl %v, want duplicates removed", got)
	}
	if len(dup) != 3 || dup[2].Scheme != "world" {
		t.Errorf("caller's ACL slice modified: %v", dup)
	}
}

func TestSequentialNumbers(t *testing.T) {
	h := newTestFSM(t)
	h.mustCreate("/test", nil)
	h.mustCreate("/test/a", nil)
	h.mustCreate("/test/b", nil)
	// zk-facts 1.3 / ClickHouse PR #17700: the suffix is the parent's stored
	// cversion, which counts every child create.
	if got := h.mustDo(CreateOp{Path: "/test/c-", Mode: ModePersistentSequential}).Path; got != "/test/c-0000000002" {
		t.Fatalf("first sequential: %s, want /test/c-0000000002", got)
	}
	// Deletes do not give numbers back.
	h.mustDo(DeleteOp{Path: "/test/a", Version: -1})
	h.mustDo(DeleteOp{Path: "/test/c-0000000002", Version: -1})
	s := h.openSession()
	res := h.do(s, nil, CreateOp{Path: "/test/c-", Mode: ModeEphemeralSequential})
	wantErr(t, "ephemeral sequential", res.Err, nil)
	if res.Path != "/test/c-0000000003" {
		t.Fatalf("after deletes: %s, want /test/c-0000000003", res.Path)
	}
	// Any mode counts, and a failed create does not.
	h.mustDo(CreateOp{Path: "/test/d", Mode: ModeContainer})
	wantErr(t, "dup", h.do(0, nil, CreateOp{Path: "/test/d"}).Err, ErrNodeExists)
	if got := h.mustDo(CreateOp{Path: "/test/", Mode: ModePersistentSequential}).Path; got != "/test/0000000005" {
		t.Fatalf("bare sequential: %s, want /test/0000000005", got)
	}
	// stored 6 creates, 2 deletes: served cversion 8.
	if st := h.stat("/test"); st.Cversion != 8 || st.NumChildren != 4 {
		t.Errorf("/test: cversion %d numChildren %d, want 8 and 4", st.Cversion, st.NumChildren)
	}
	// A sequential name can collide with an existing node.
	h.mustCreate("/test/x0000000007", nil)
	wantErr(t, "sequential collision", h.do(0, nil, CreateOp{Path: "/test/x", Mode: ModePersistentSequential}).Err, ErrNodeExists)

	// Signed int32, as documented: after 2147483647 comes -2147483648.
	h.mustCreate("/wrap", nil)
	h.replaceNode("/wrap", func(n *znode) { n.childCreates = math.MaxInt32 })
	if got := h.mustDo(CreateOp{Path: "/wrap/s", Mode: ModePersistentSequential}).Path; got != "/wrap/s2147483647" {
		t.Errorf("at max: %s", got)
	}
	if got := h.mustDo(CreateOp{Path: "/wrap/s", Mode: ModePersistentSequential}).Path; got != "/wrap/s-2147483648" {
		t.Errorf("after wrap: %s", got)
	}
}

func TestStatLifecycle(t *testing.T) {
	h := newTestFSM(t)
	h.mustCreate("/s", []byte("hello"))
	c := int64(h.index)
	want := Stat{Czxid: c, Mzxid: c, Pzxid: c, Ctime: timeAt(h.index), Mtime: timeAt(h.index), DataLength: 5}
	if got := h.stat("/s"); got != want {
		t.Fatalf("after create\n got %+v\nwant %+v", got, want)
	}
	if st := h.stat("/"); st.Pzxid != c || st.Mzxid != 0 {
		t.Errorf("root after child create: pzxid %d mzxid %d", st.Pzxid, st.Mzxid)
	}

	step := func(what string, op Op, edit func(z int64, tm int64)) {
		t.Helper()
		h.mustDo(op)
		edit(int64(h.index), timeAt(h.index))
		if got := h.stat("/s"); got != want {
			t.Fatalf("after %s\n got %+v\nwant %+v", what, got, want)
		}
	}
	step("child create", CreateOp{Path: "/s/a"}, func(z, _ int64) {
		want.Pzxid, want.Cversion, want.NumChildren = z, 1, 1
	})
	step("second child", CreateOp{Path: "/s/b", Mode: ModeContainer}, func(z, _ int64) {
		want.Pzxid, want.Cversion, want.NumChildren = z, 2, 2
	})
	step("child setData", SetDataOp{Path: "/s/a", Data: []byte("x"), Version: -1}, func(z, _ int64) {})
	step("child delete", DeleteOp{Path: "/s/a", Version: 1}, func(z, _ int64) {
		want.Pzxid, want.Cversion, want.NumChildren = z, 3, 1
	})
	step("setData", SetDataOp{Path: "/s", Data: []byte("hi"), Version: 0}, func(z, tm int64) {
		want.Mzxid, want.Mtime, want.Version, want.DataLength = z, tm, 1, 2
	})
	step("setData nil", SetDataOp{Path: "/s", Version: -1}, func(z, tm int64) {
		want.Mzxid, want.Mtime, want.Version, want.DataLength = z, tm, 2, 0
	})
	step("setACL", setACLOp{path: "/s", acl: ReadACL, version: 0}, func(z, _ int64) {
		want.Aversion = 1
	})
	if h.node("/s").data != nil {
		t.Error("setData(nil) stored empty data instead of null")
	}

	// Delete only ever raises pzxid (ZooKeeper's DataTree.deleteNode).
	tr := newTree()
	x := &txnCtx{zxid: 10}
	if _, err := tr.create(x, createReq{path: "/q", acl: OpenACL}); err != nil {
		t.Fatal(err)
	}
	x = &txnCtx{zxid: 20}
	if _, err := tr.create(x, createReq{path: "/q/c", acl: OpenACL}); err != nil {
		t.Fatal(err)
	}
	if err := tr.remove(&txnCtx{zxid: 15}, "/q/c", -1); err != nil {
		t.Fatal(err)
	}
	if got := tr.get("/q").pzxid; got != 20 {
		t.Errorf("pzxid after delete at an older zxid: %d, want 20", got)
	}
}

func TestNullAndEmptyData(t *testing.T) {
	h := newTestFSM(t)
	h.mustCreate("/null", nil)
	h.mustCreate("/empty", []byte{})
	if n := h.node("/null"); n.data != nil || n.stat().DataLength != 0 {
		t.Errorf("/null: data %#v", n.data)
	}
	if n := h.node("/empty"); n.data == nil || len(n.data) != 0 {
		t.Errorf("/empty: data %#v", n.data)
	}
	h.mustDo(SetDataOp{Path: "/null", Data: []byte{}, Version: -1})
	h.mustDo(SetDataOp{Path: "/empty", Version: -1})
	if h.node("/null").data == nil || h.node("/empty").data != nil {
		t.Error("setData did not swap null and empty")
	}
	// Survives a snapshot round trip.
	g := newTestFSM(t)
	if err := g.f.Restore(readCloser(snapshotBytes(t, h.f))); err != nil {
		t.Fatal(err)
	}
	if g.node("/null").data == nil || g.node("/empty").data != nil {
		t.Error("null/empty lost in snapshot")
	}
}

func TestDataLimit(t *testing.T) {
	h := newTestFSM(t)
	h.mustCreate("/d", make([]byte, MaxDataSize))
	if st := h.stat("/d"); st.DataLength != 1048575 {
		t.Fatalf("dataLength %d", st.DataLength)
	}
	wantErr(t, "create 1048576", h.do(0, nil, CreateOp{Path: "/e", Data: make([]byte, MaxDataSize+1)}).Err, ErrBadArguments)
	wantErr(t, "set 1048576", h.do(0, nil, SetDataOp{Path: "/d", Data: make([]byte, MaxDataSize+1), Version: -1}).Err, ErrBadArguments)
	wantErr(t, "set 1048575", h.do(0, nil, SetDataOp{Path: "/d", Data: make([]byte, MaxDataSize), Version: -1}).Err, nil)
	if st := h.stat("/d"); st.Version != 1 {
		t.Errorf("version %d after one successful set", st.Version)
	}
}

func TestDeleteErrors(t *testing.T) {
	setup := func(t *testing.T) *testFSM {
		h := newTestFSM(t)
		h.mustCreate("/p", nil)
		h.mustDo(SetDataOp{Path: "/p", Data: []byte("v1"), Version: -1}) // version 1
		h.mustCreate("/p/c", nil)
		h.mustCreate("/leaf", nil)
		// /nodel: children may be created but not deleted.
		h.mustDo(CreateOp{Path: "/nodel", ACL: []ACL{{PermAll &^ PermDelete, ID{"world", "anyone"}}}})
		h.mustCreate("/nodel/x", nil)
		// /closed/x: the child has an empty permission set, the parent is open.
		h.mustCreate("/closed", nil)
		h.mustDo(CreateOp{Path: "/closed/x", ACL: []ACL{{0, ID{"world", "anyone"}}}})
		return h
	}
	tests := []struct {
		name    string
		path    string
		version int32
		want    error
	}{
		{"root", "/", -1, ErrBadArguments},
		{"zookeeper", "/zookeeper", -1, ErrBadArguments},
		{"quota", "/zookeeper/quota", -1, ErrBadArguments},
		{"config", "/zookeeper/config", -1, ErrBadArguments},
		{"reserved before version", "/zookeeper/quota", 7, ErrBadArguments},
		{"reserved before not empty", "/zookeeper", 0, ErrBadArguments},
		{"invalid path", "/p/", -1, ErrBadArguments},
		{"double slash", "//p", -1, ErrBadArguments},
		{"missing parent", "/nope/x", -1, ErrNoNode},
		{"no delete perm before missing node", "/nodel/missing", -1, ErrNoAuth},
		{"no delete perm", "/nodel/x", -1, ErrNoAuth},
		{"missing", "/missing", -1, ErrNoNode},
		{"bad version", "/leaf", 1, ErrBadVersion},
		{"bad version before not empty", "/p", 0, ErrBadVersion},
		{"not empty", "/p", -1, ErrNotEmpty},
		{"not empty exact version", "/p", 1, ErrNotEmpty},
		{"ok any version", "/leaf", -1, nil},
		{"ok exact version", "/leaf", 0, nil},
		{"ok child", "/p/c", -1, nil},
		{"node ACL is not consulted", "/closed/x", -1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := setup(t)
			before := stateBytes(t, h.f)
			parent := "/"
			if tt.path != "/" && validatePath(tt.path) == nil {
				parent, _ = splitPath(tt.path)
			}
			pBefore := h.node(parent)
			wantErr(t, "delete", h.do(0, nil, DeleteOp{Path: tt.path, Version: tt.version}).Err, tt.want)
			if tt.want != nil {
				if !bytes.Equal(before, stateBytes(t, h.f)) {
					t.Error("failed delete changed the state")
				}
				return
			}
			if h.node(tt.path) != nil {
				t.Fatal("node still there")
			}
			z := int64(h.index)
			st := h.stat(parent)
			if st.Pzxid != z || st.NumChildren != pBefore.numChildren-1 || st.Cversion != pBefore.stat().Cversion+1 {
				t.Errorf("parent after delete: %+v", st)
			}
			if st.Mzxid != pBefore.mzxid || st.Version != pBefore.version {
				t.Errorf("delete changed the parent's data stat: %+v", st)
			}
			checkFSM(t, h.f)
		})
	}

	// A child of /zookeeper that a user created can be deleted again.
	h := setup(t)
	h.mustCreate("/zookeeper/mine", nil)
	h.mustDo(DeleteOp{Path: "/zookeeper/mine", Version: -1})
	checkFSM(t, h.f)
}

func TestSetDataErrors(t *testing.T) {
	setup := func(t *testing.T) *testFSM {
		h := newTestFSM(t)
		h.mustCreate("/n", []byte("v0"))
		h.mustDo(CreateOp{Path: "/ro", ACL: ReadACL})
		return h
	}
	tests := []struct {
		name    string
		path    string
		version int32
		want    error
	}{
		{"invalid path", "/n/", -1, ErrBadArguments},
		{"missing", "/missing", -1, ErrNoNode},
		{"missing bad version", "/missing", 5, ErrNoNode},
		{"no write perm before version", "/ro", 5, ErrNoAuth},
		{"no write perm", "/ro", -1, ErrNoAuth},
		{"config is read-only", configPath, -1, ErrNoAuth},
		{"bad version", "/n", 1, ErrBadVersion},
		{"ok exact", "/n", 0, nil},
		{"ok any", "/n", -1, nil},
		{"root is writable", "/", -1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := setup(t)
			before := stateBytes(t, h.f)
			res := h.do(0, nil, SetDataOp{Path: tt.path, Data: []byte("new"), Version: tt.version})
			wantErr(t, "setData", res.Err, tt.want)
			if tt.want != nil {
				if !bytes.Equal(before, stateBytes(t, h.f)) {
					t.Error("failed setData changed the state")
				}
				return
			}
			if st := h.stat(tt.path); *res.Stat != st || st.Version != 1 || st.Mzxid != int64(h.index) || st.Mtime != timeAt(h.index) {
				t.Errorf("stat %+v, result %+v", st, *res.Stat)
			}
			if res.Path != tt.path {
				t.Errorf("result path %q", res.Path)
			}
		})
	}

	t.Run("version wraps", func(t *testing.T) {
		h := setup(t)
		h.replaceNode("/n", func(n *znode) { n.version = math.MaxInt32 })
		wantErr(t, "set at max", h.do(0, nil, SetDataOp{Path: "/n", Version: math.MaxInt32}).Err, nil)
		if v := h.stat("/n").Version; v != math.MinInt32 {
			t.Fatalf("version after wrap %d", v)
		}
		wantErr(t, "set after wrap", h.do(0, nil, SetDataOp{Path: "/n", Version: math.MinInt32}).Err, nil)
		if v := h.stat("/n").Version; v != math.MinInt32+1 {
			t.Fatalf("version %d", v)
		}
	})
}

func TestSetACLErrors(t *testing.T) {
	setup := func(t *testing.T) *testFSM {
		h := newTestFSM(t)
		h.mustCreate("/n", []byte("v0"))
		h.mustDo(CreateOp{Path: "/noadmin", ACL: []ACL{{PermAll &^ PermAdmin, ID{"world", "anyone"}}}})
		return h
	}
	bad := []ACL{{PermAll, ID{"world", "nobody"}}}
	tests := []struct {
		name     string
		path     string
		acl      []ACL
		aversion int32
		want     error
	}{
		{"invalid path", "/n/", ReadACL, -1, ErrBadArguments},
		{"invalid acl before missing", "/missing", bad, -1, ErrInvalidACL},
		{"empty acl", "/n", nil, -1, ErrInvalidACL},
		{"bad perms", "/n", []ACL{{64, ID{"world", "anyone"}}}, -1, ErrInvalidACL},
		{"missing", "/missing", ReadACL, -1, ErrNoNode},
		{"no admin before version", "/noadmin", ReadACL, 9, ErrNoAuth},
		{"bad aversion", "/n", ReadACL, 1, ErrBadVersion},
		{"version is not aversion", "/n", ReadACL, 0, nil},
		{"any", "/n", ReadACL, -1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := setup(t)
			h.mustDo(SetDataOp{Path: "/n", Data: []byte("v1"), Version: -1}) // version 1, aversion 0
			before := stateBytes(t, h.f)
			var old Stat
			if n := h.node(tt.path); n != nil {
				old = n.stat()
			}
			res := h.do(0, nil, setACLOp{path: tt.path, acl: tt.acl, version: tt.aversion})
			wantErr(t, "setACL", res.Err, tt.want)
			if tt.want != nil {
				if !bytes.Equal(before, stateBytes(t, h.f)) {
					t.Error("failed setACL changed the state")
				}
				return
			}
			want := old
			want.Aversion = 1
			if st := h.stat(tt.path); st != want || *res.Stat != want {
				t.Errorf("stat %+v, want %+v (only aversion changes)", st, want)
			}
			if fmt.Sprint(h.node(tt.path).acl) != fmt.Sprint(tt.acl) {
				t.Errorf("acl %v", h.node(tt.path).acl)
			}
		})
	}
}

func TestCheckOp(t *testing.T) {
	h := newTestFSM(t)
	h.mustCreate("/n", nil)
	h.mustDo(SetDataOp{Path: "/n", Version: -1})
	h.mustDo(CreateOp{Path: "/hidden", ACL: []ACL{{PermWrite, ID{"world", "anyone"}}}})
	before := stateBytes(t, h.f)
	tests := []struct {
		path    string
		version int32
		want    error
	}{
		{"/n", -1, nil},
		{"/n", 1, nil},
		{"/n", 0, ErrBadVersion},
		{"/missing", -1, ErrNoNode},
		{"/n/", -1, ErrBadArguments},
		{"/hidden", -1, ErrNoAuth},
		{"/hidden", 5, ErrNoAuth},
	}
	for _, tt := range tests {
		res := h.do(0, nil, CheckOp{Path: tt.path, Version: tt.version})
		wantErr(t, fmt.Sprintf("check %s@%d", tt.path, tt.version), res.Err, tt.want)
	}
	if !bytes.Equal(before, stateBytes(t, h.f)) {
		t.Error("check changed the state")
	}
}

func TestContainerAndTTLReaping(t *testing.T) {
	h := newTestFSM(t)
	h.mustDo(CreateOp{Path: "/c", Mode: ModeContainer})
	h.mustDo(CreateOp{Path: "/t", Mode: ModePersistentWithTTL, TTL: 10 * time.Second})
	h.mustCreate("/plain", nil)
	tMtime := h.node("/t").mtime
	reap := func(path string, now int64) error {
		t.Helper()
		return h.apply(&command{op: opReap, path: path, time: now}).err
	}
	now := timeAt(h.index + 1)
	if h.node("/c").reapable(now) {
		t.Error("never-used container reapable")
	}
	wantErr(t, "reap unused container", reap("/c", now), ErrNotEmpty)
	h.mustCreate("/c/x", nil)
	wantErr(t, "reap container with child", reap("/c", now), ErrNotEmpty)
	h.mustDo(DeleteOp{Path: "/c/x", Version: -1})
	if !h.node("/c").reapable(0) {
		t.Error("emptied container not reapable")
	}
	rootBefore := h.stat("/")
	wantErr(t, "reap emptied container", reap("/c", now), nil)
	if h.node("/c") != nil {
		t.Fatal("container not deleted")
	}
	if st := h.stat("/"); st.Pzxid != int64(h.index) || st.NumChildren != rootBefore.NumChildren-1 {
		t.Errorf("root after reap %+v", st)
	}

	wantErr(t, "reap live ttl", reap("/t", tMtime+10_000), ErrNotEmpty)
	h.mustCreate("/t/x", nil)
	wantErr(t, "reap ttl with child", reap("/t", tMtime+20_000), ErrNotEmpty)
	h.mustDo(DeleteOp{Path: "/t/x", Version: -1})
	wantErr(t, "reap expired ttl", reap("/t", tMtime+10_001), nil)
	if h.node("/t") != nil {
		t.Fatal("ttl node not deleted")
	}

	wantErr(t, "reap persistent", reap("/plain", now), ErrNotEmpty)
	wantErr(t, "reap missing", reap("/missing", now), ErrNoNode)
	for _, p := range []string{"/", zookeeperPath, quotaPath, configPath} {
		wantErr(t, "reap "+p, reap(p, now), ErrNoNode)
	}
	// A reap entry never comes from a client, but a bad path must still not
	// bring a replica down.
	for _, p := range []string{"", "x", "/x/", "//"} {
		if err := reap(p, now); err == nil {
			t.Errorf("reap %q succeeded", p)
		}
	}
	checkFSM(t, h.f)
}

func TestChildrenOrderAndDescendants(t *testing.T) {
	h := newTestFSM(t)
	for _, p := range []string{"/b", "/a", "/a/z", "/a/y", "/a/y/1", "/a-", "/a-/q", "/ab"} {
		h.mustCreate(p, nil)
	}
	if got := strings.Join(h.f.tree.children("/a"), ","); got != "y,z" {
		t.Errorf("children of /a: %s", got)
	}
	if got := strings.Join(h.f.tree.children("/"), ","); got != "a,a-,ab,b,zookeeper" {
		t.Errorf("children of /: %s", got)
	}
	if got := h.f.tree.children("/b"); got == nil || len(got) != 0 {
		t.Errorf("children of leaf: %#v, want empty non-nil", got)
	}
	if got := h.f.tree.descendants("/a"); got != 3 {
		t.Errorf("descendants of /a: %d", got)
	}
	if got := h.f.tree.descendants("/"); got != 11 {
		t.Errorf("descendants of /: %d (includes the /zookeeper subtree)", got)
	}
}

func TestCreateModeString(t *testing.T) {
	for m, want := range map[CreateMode]string{
		ModePersistent: "PERSISTENT", ModeEphemeralSequential: "EPHEMERAL_SEQUENTIAL",
		ModeContainer: "CONTAINER", ModePersistentSequentialWithTTL: "PERSISTENT_SEQUENTIAL_WITH_TTL",
		9: "CreateMode(9)",
	} {
		if got := m.String(); got != want {
			t.Errorf("%d: %s, want %s", int32(m), got, want)
		}
	}
}

// A sequential create of "/" names a child of the root, as in ZooKeeper
// (checked against 3.8 in zkwire's TestBuiltinNodesMatchZooKeeper); a plain
// create of "/" finds it existing.
func TestCreateSequentialUnderRoot(t *testing.T) {
	h := newTestFSM(t)
	if res := h.do(0, nil, CreateOp{Path: "/"}); !errors.Is(res.Err, ErrNodeExists) {
		t.Fatalf("create / = %v, want ErrNodeExists", res.Err)
	}
	for _, want := range []string{"/0000000000", "/0000000001"} {
		if got := h.mustDo(CreateOp{Path: "/", Mode: ModePersistentSequential}).Path; got != want {
			t.Fatalf("sequential create of / = %q, want %q", got, want)
		}
	}
}

// Lookups take any string: a path a client sent unchecked finds nothing
// instead of crashing the replica (setWatches passes paths as they come).
func TestGetAnyString(t *testing.T) {
	h := newTestFSM(t)
	for _, p := range []string{"", "x", "zookeeper", "a/b", "\x00"} {
		if n := h.f.tree.get(p); n != nil {
			t.Errorf("get(%q) = %s", p, n.path)
		}
	}
}
