package zoo

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// testTime0 is the leader time the harness stamps on entry 0; entry i gets
// timeAt(i), so every ctime/mtime in a test is predictable.
const testTime0 = int64(1_700_000_000_000)

func timeAt(index uint64) int64 { return testTime0 + int64(index)*1000 }

// testFSM drives an FSM the way raft would, one committed entry at a time, with
// no raft underneath: entry i is zxid i.
type testFSM struct {
	t     testing.TB
	f     *fsm
	w     *watchRegistry
	index uint64
	ended []endedSession
}

func newTestFSM(t testing.TB) *testFSM {
	t.Helper()
	w := newWatchRegistry()
	h := &testFSM{t: t, w: w, f: newFSM(w, slog.New(slog.DiscardHandler))}
	h.f.onSessionsEnded = func(e []endedSession) { h.ended = append(h.ended, e...) }
	return h
}

// applyRaw applies encoded command bytes as the next log entry.
func (h *testFSM) applyRaw(data []byte) *applyResult {
	h.t.Helper()
	h.index++
	out := h.f.ApplyBatch([]*raft.Log{{Index: h.index, Type: raft.LogCommand, Data: data}})
	r, ok := out[0].(*applyResult)
	if !ok {
		h.t.Fatalf("entry %d: ApplyBatch returned %T", h.index, out[0])
	}
	return r
}

// apply applies c as the next log entry, stamping timeAt(index) unless c.time is set.
func (h *testFSM) apply(c *command) *applyResult {
	h.t.Helper()
	if c.time == 0 {
		c.time = timeAt(h.index + 1)
	}
	return h.applyRaw(encodeCommand(c))
}

func opCodeOf(op Op) opCode {
	switch op.(type) {
	case CreateOp:
		return opCreate
	case DeleteOp:
		return opDelete
	case SetDataOp:
		return opSetData
	case setACLOp:
		return opSetACL
	case CheckOp:
		return opCheck
	}
	panic(fmt.Sprintf("no opcode for %T", op))
}

// do applies a single op as session with identities ids; a whole-command error
// (such as an unknown session) comes back as the op's error.
func (h *testFSM) do(session int64, ids []ID, op Op) OpResult {
	h.t.Helper()
	r := h.apply(&command{op: opCodeOf(op), session: session, ids: ids, ops: []Op{op}})
	if r.err != nil {
		return OpResult{Err: r.err}
	}
	if len(r.results) != 1 {
		h.t.Fatalf("entry %d: %d results for one op", h.index, len(r.results))
	}
	return r.results[0]
}

func (h *testFSM) multi(session int64, ids []ID, ops ...Op) *applyResult {
	h.t.Helper()
	return h.apply(&command{op: opMulti, session: session, ids: ids, ops: ops})
}

// mustDo applies op without session or identities and fails the test on error.
func (h *testFSM) mustDo(op Op) OpResult {
	h.t.Helper()
	res := h.do(0, nil, op)
	if res.Err != nil {
		h.t.Fatalf("%T %+v: %v", op, op, res.Err)
	}
	return res
}

func (h *testFSM) mustCreate(path string, data []byte) string {
	h.t.Helper()
	return h.mustDo(CreateOp{Path: path, Data: data}).Path
}

func (h *testFSM) openSession() int64 {
	h.t.Helper()
	r := h.apply(&command{op: opCreateSession, timeout: 4000, password: []byte("0123456789abcdef")})
	if r.err != nil || r.sessionID != int64(h.index) {
		h.t.Fatalf("createSession: id %d, err %v", r.sessionID, r.err)
	}
	return r.sessionID
}

func (h *testFSM) closeSession(id int64) *applyResult {
	h.t.Helper()
	return h.apply(&command{op: opCloseSession, session: id})
}

func (h *testFSM) node(path string) *znode {
	h.f.mu.RLock()
	defer h.f.mu.RUnlock()
	return h.f.tree.get(path)
}

func (h *testFSM) stat(path string) Stat {
	h.t.Helper()
	n := h.node(path)
	if n == nil {
		h.t.Fatalf("%s does not exist", path)
	}
	return n.stat()
}

// replaceNode overwrites a stored node through fn, for states that would take
// billions of operations to reach (counter wrap-around).
func (h *testFSM) replaceNode(path string, fn func(*znode)) {
	h.t.Helper()
	h.f.mu.Lock()
	defer h.f.mu.Unlock()
	n := h.f.tree.get(path)
	if n == nil {
		h.t.Fatalf("%s does not exist", path)
	}
	m := *n
	fn(&m)
	h.f.tree.put(&m)
}

// snapshotBytes persists a snapshot of f into memory.
func snapshotBytes(t testing.TB, f *fsm) []byte {
	t.Helper()
	s, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := s.(*fsmSnapshot).writeTo(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// stateBytes is a snapshot with the applied index zeroed: it changes exactly
// when the tree or the session table does.
func stateBytes(t testing.TB, f *fsm) []byte {
	t.Helper()
	s, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	fs := s.(*fsmSnapshot)
	fs.applied = 0
	var buf bytes.Buffer
	if err := fs.writeTo(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func wantErr(t testing.TB, what string, got, want error) {
	t.Helper()
	if want == nil {
		if got != nil {
			t.Fatalf("%s: unexpected error %v", what, got)
		}
		return
	}
	if !errors.Is(got, want) {
		t.Fatalf("%s: error %v, want %v", what, got, want)
	}
}

func TestFSMSessionLifecycle(t *testing.T) {
	h := newTestFSM(t)
	h.mustCreate("/app", nil)
	h.mustCreate("/other", nil)
	s := h.openSession()
	s2 := h.openSession()

	for _, p := range []string{"/app/e1", "/app/e2", "/other/e3"} {
		res := h.do(s, nil, CreateOp{Path: p, Mode: ModeEphemeral})
		wantErr(t, "create "+p, res.Err, nil)
		if res.Stat.EphemeralOwner != s {
			t.Fatalf("%s: ephemeralOwner %d, want %d", p, res.Stat.EphemeralOwner, s)
		}
	}
	seq := h.do(s, nil, CreateOp{Path: "/app/q-", Mode: ModeEphemeralSequential})
	wantErr(t, "ephemeral sequential", seq.Err, nil)
	keep := h.do(s2, nil, CreateOp{Path: "/app/keep", Mode: ModeEphemeral})
	wantErr(t, "create /app/keep", keep.Err, nil)
	h.mustCreate("/app/plain", nil) // persistent nodes survive the session

	h.f.mu.RLock()
	got := len(h.f.sessions[s].ephemerals)
	h.f.mu.RUnlock()
	if got != 4 {
		t.Fatalf("session has %d ephemerals indexed, want 4", got)
	}
	checkFSM(t, h.f)

	rec := &recWatcher{sess: 99}
	for _, p := range []string{"/app/e1", "/app/e2", "/other/e3", seq.Path} {
		h.w.add(tableData, p, rec)
	}
	h.w.add(tableChild, "/app", rec)
	h.w.add(tableChild, "/other", rec)

	r := h.closeSession(s)
	wantErr(t, "closeSession", r.err, nil)
	zxid := int64(h.index)
	for _, p := range []string{"/app/e1", "/app/e2", "/other/e3", seq.Path} {
		if h.node(p) != nil {
			t.Errorf("%s survived its session", p)
		}
	}
	for _, p := range []string{"/app/keep", "/app/plain"} {
		if h.node(p) == nil {
			t.Errorf("%s was deleted with another session", p)
		}
	}
	if st := h.stat("/app"); st.Pzxid != zxid || st.NumChildren != 2 {
		t.Errorf("/app after close: pzxid %d numChildren %d, want %d and 2", st.Pzxid, st.NumChildren, zxid)
	}
	if st := h.stat("/other"); st.Pzxid != zxid || st.NumChildren != 0 {
		t.Errorf("/other after close: pzxid %d numChildren %d, want %d and 0", st.Pzxid, st.NumChildren, zxid)
	}
	// One zxid for all of it; paths deleted in sorted order, each followed by
	// its parent's child event while the one-shot child watch still stands.
	want := []Event{
		{Type: EventNodeDeleted, Path: "/app/e1", Zxid: zxid},
		{Type: EventNodeChildrenChanged, Path: "/app", Zxid: zxid},
		{Type: EventNodeDeleted, Path: "/app/e2", Zxid: zxid},
		{Type: EventNodeDeleted, Path: seq.Path, Zxid: zxid},
		{Type: EventNodeDeleted, Path: "/other/e3", Zxid: zxid},
		{Type: EventNodeChildrenChanged, Path: "/other", Zxid: zxid},
	}
	if !slices.Equal(rec.events, want) {
		t.Errorf("events on close:\n got %v\nwant %v", rec.events, want)
	}
	if !slices.Equal(h.ended, []endedSession{{id: s}}) {
		t.Errorf("onSessionsEnded got %v, want [{%d false}]", h.ended, s)
	}
	checkFSM(t, h.f)

	// The closed session is gone: its writes and a second close fail, changing nothing.
	before := stateBytes(t, h.f)
	for _, op := range []Op{
		CreateOp{Path: "/app/late", Mode: ModeEphemeral},
		CreateOp{Path: "/app/late"},
		SetDataOp{Path: "/app", Data: []byte("x"), Version: -1},
		DeleteOp{Path: "/app/plain", Version: -1},
		CheckOp{Path: "/app", Version: -1},
	} {
		wantErr(t, fmt.Sprintf("%T by closed session", op), h.do(s, nil, op).Err, ErrSessionExpired)
	}
	r = h.multi(s, nil, CreateOp{Path: "/app/m"})
	wantErr(t, "multi by closed session", r.err, ErrSessionExpired)
	wantErr(t, "second close", h.closeSession(s).err, ErrSessionExpired)
	wantErr(t, "close of a never-created session", h.closeSession(12345).err, ErrSessionExpired)
	if !bytes.Equal(before, stateBytes(t, h.f)) {
		t.Error("state changed by writes of an unknown session")
	}

	// An expiry is reported as such.
	h.ended = nil
	r = h.apply(&command{op: opCloseSession, session: s2, expired: true})
	wantErr(t, "expire", r.err, nil)
	if !slices.Equal(h.ended, []endedSession{{id: s2, expired: true}}) {
		t.Errorf("onSessionsEnded got %v, want expired %d", h.ended, s2)
	}
	if h.node("/app/keep") != nil {
		t.Error("ephemeral of expired session survived")
	}
	checkFSM(t, h.f)
}

func TestFSMEphemeralNeedsLiveSession(t *testing.T) {
	h := newTestFSM(t)
	before := stateBytes(t, h.f)
	// No session at all: the node could never be reaped, so it is refused.
	wantErr(t, "ephemeral without session", h.do(0, nil, CreateOp{Path: "/e", Mode: ModeEphemeral}).Err, ErrSessionExpired)
	r := h.multi(0, nil, CreateOp{Path: "/p"}, CreateOp{Path: "/p/e", Mode: ModeEphemeralSequential})
	wantErr(t, "multi ephemeral without session", r.results[1].Err, ErrSessionExpired)
	if !bytes.Equal(before, stateBytes(t, h.f)) {
		t.Error("state changed")
	}
}

func TestFSMApplyBatch(t *testing.T) {
	h := newTestFSM(t)
	logs := []*raft.Log{
		{Index: 1, Type: raft.LogCommand, Data: encodeCommand(&command{op: opCreate, time: timeAt(1), ops: []Op{CreateOp{Path: "/a"}}})},
		{Index: 2, Type: raft.LogNoop},
		{Index: 3, Type: raft.LogCommand, Data: []byte{commandVersion, 0xee}},
		{Index: 4, Type: raft.LogCommand, Data: encodeCommand(&command{op: opCreate, time: timeAt(4), ops: []Op{CreateOp{Path: "/a/b"}}})},
	}
	out := h.f.ApplyBatch(logs)
	if len(out) != 4 {
		t.Fatalf("%d results for 4 entries", len(out))
	}
	if r := out[0].(*applyResult); r.err != nil || r.results[0].Err != nil || r.index != 1 {
		t.Errorf("entry 1: %+v", r)
	}
	if out[1] != nil {
		t.Errorf("noop entry result %v, want nil", out[1])
	}
	wantErr(t, "undecodable entry", out[2].(*applyResult).err, ErrMarshallingError)
	if st := h.stat("/a/b"); st.Czxid != 4 || st.Ctime != timeAt(4) {
		t.Errorf("/a/b: czxid %d ctime %d", st.Czxid, st.Ctime)
	}
	if got := h.f.appliedIndex(); got != 4 {
		t.Errorf("applied %d, want 4", got)
	}
	// Already-reached index: waitApplied returns at once.
	if err := h.f.waitApplied(t.Context(), 3); err != nil {
		t.Error(err)
	}
}

func TestMulti(t *testing.T) {
	h := newTestFSM(t)
	h.mustCreate("/q", nil)
	s := h.openSession()

	// Later ops see earlier ones: a parent and its children in one transaction,
	// one zxid for all.
	r := h.multi(s, nil,
		CreateOp{Path: "/q/p", Data: []byte("v")},
		CreateOp{Path: "/q/p/c-", Mode: ModePersistentSequential},
		CreateOp{Path: "/q/p/c-", Mode: ModeEphemeralSequential},
		SetDataOp{Path: "/q/p", Data: []byte("w"), Version: 0},
		CheckOp{Path: "/q/p", Version: 1},
		DeleteOp{Path: "/q/p/c-0000000000", Version: 0},
	)
	wantErr(t, "multi", r.err, nil)
	z := int64(h.index)
	wantPaths := []string{"/q/p", "/q/p/c-0000000000", "/q/p/c-0000000001", "/q/p", "/q/p", ""}
	for i, res := range r.results {
		wantErr(t, fmt.Sprintf("op %d", i), res.Err, nil)
		if res.Path != wantPaths[i] {
			t.Errorf("op %d path %q, want %q", i, res.Path, wantPaths[i])
		}
	}
	if st := r.results[0].Stat; st.Czxid != z || st.Version != 0 {
		t.Errorf("create result stat %+v: the state right after that op", st)
	}
	if st := r.results[3].Stat; st.Version != 1 || st.Mzxid != z || st.NumChildren != 2 {
		t.Errorf("setData result stat %+v", st)
	}
	want := Stat{Czxid: z, Mzxid: z, Pzxid: z, Ctime: timeAt(h.index), Mtime: timeAt(h.index),
		Version: 1, Cversion: 3, DataLength: 1, NumChildren: 1}
	if st := h.stat("/q/p"); st != want {
		t.Errorf("/q/p\n got %+v\nwant %+v", st, want)
	}
	if st := h.stat("/q/p/c-0000000001"); st.Czxid != z || st.EphemeralOwner != s {
		t.Errorf("ephemeral child %+v", st)
	}
	checkFSM(t, h.f)

	// The empty transaction is a successful no-op.
	before := stateBytes(t, h.f)
	if r := h.multi(0, nil); r.err != nil || len(r.results) != 0 {
		t.Errorf("empty multi: %+v", r)
	}
	if !bytes.Equal(before, stateBytes(t, h.f)) {
		t.Error("empty multi changed the state")
	}
}

func TestMultiFailure(t *testing.T) {
	type tc struct {
		name   string
		ops    []Op
		failAt int
		want   error
	}
	tests := []tc{
		{"first op", []Op{CreateOp{Path: "/f/x"}, CreateOp{Path: "/f/y"}}, 0, ErrNodeExists},
		{"middle op", []Op{
			CreateOp{Path: "/f/n1"},
			CreateOp{Path: "/f/s-", Mode: ModePersistentSequential},
			SetDataOp{Path: "/f/missing", Version: -1},
			DeleteOp{Path: "/f/x", Version: -1},
		}, 2, ErrNoNode},
		{"last op", []Op{
			DeleteOp{Path: "/f/x", Version: -1},
			CreateOp{Path: "/f/x", Data: []byte("again")},
			SetDataOp{Path: "/f", Data: []byte("d"), Version: -1},
			CheckOp{Path: "/f", Version: 0},
		}, 3, ErrBadVersion},
		{"sees own deletes", []Op{DeleteOp{Path: "/f/x", Version: -1}, CheckOp{Path: "/f/x", Version: -1}}, 1, ErrNoNode},
		{"sees own creates", []Op{CreateOp{Path: "/f/n"}, CreateOp{Path: "/f/n"}}, 1, ErrNodeExists},
		{"sees own versions", []Op{SetDataOp{Path: "/f/x", Version: 0}, SetDataOp{Path: "/f/x", Version: 0}}, 1, ErrBadVersion},
		{"not empty after own create", []Op{CreateOp{Path: "/f/x/c"}, DeleteOp{Path: "/f/x", Version: -1}}, 1, ErrNotEmpty},
		{"ephemeral then child", []Op{
			CreateOp{Path: "/f/e", Mode: ModeEphemeral},
			CreateOp{Path: "/f/e/c"},
		}, 1, ErrNoChildrenForEphemerals},
		{"ephemeral delete then fail", []Op{
			DeleteOp{Path: "/f/eph", Version: -1},
			CreateOp{Path: "/f/e2", Mode: ModeEphemeral},
			CreateOp{Path: "/nope/x"},
		}, 2, ErrNoNode},
		{"no auth", []Op{CreateOp{Path: "/f/n"}, CreateOp{Path: "/ro/n"}}, 1, ErrNoAuth},
		{"bad arguments", []Op{CreateOp{Path: "/f/n"}, CreateOp{Path: "/f/n/"}, CreateOp{Path: "/f/m"}}, 1, ErrBadArguments},
		{"setACL then fail", []Op{setACLOp{path: "/f", acl: ReadACL, version: -1}, CreateOp{Path: "/f/n"}}, 1, ErrNoAuth},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newTestFSM(t)
			s := h.openSession()
			h.mustCreate("/f", nil)
			h.mustCreate("/f/x", nil)
			wantErr(t, "ephemeral", h.do(s, nil, CreateOp{Path: "/f/eph", Mode: ModeEphemeral}).Err, nil)
			h.mustDo(CreateOp{Path: "/ro", ACL: ReadACL})
			rec := &recWatcher{sess: 1}
			h.w.add(tableRecursive, "/", rec)
			before := stateBytes(t, h.f)
			r := h.multi(s, nil, tt.ops...)
			wantErr(t, "multi", r.err, nil)
			if len(r.results) != len(tt.ops) {
				t.Fatalf("%d results for %d ops", len(r.results), len(tt.ops))
			}
			for i, res := range r.results {
				var want error
				switch {
				case i < tt.failAt:
					want = ErrRolledBack
				case i == tt.failAt:
					want = tt.want
				default:
					want = ErrRuntimeInconsistency
				}
				if !errors.Is(res.Err, want) || res.Stat != nil {
					t.Errorf("op %d: %v (stat %v), want %v", i, res.Err, res.Stat, want)
				}
			}
			if c := CodeOf(r.results[0].Err); tt.failAt > 0 && c != CodeOK {
				t.Errorf("rolled-back op code %d, want 0", c)
			}
			if !bytes.Equal(before, stateBytes(t, h.f)) {
				t.Error("failed multi changed the state")
			}
			if len(rec.events) != 0 {
				t.Errorf("failed multi fired %v", rec.events)
			}
			checkFSM(t, h.f)
			// Sequence counters were rolled back too.
			if got := h.mustDo(CreateOp{Path: "/f/s-", Mode: ModePersistentSequential}).Path; got != "/f/s-0000000002" {
				t.Errorf("next sequential %s, want /f/s-0000000002", got)
			}
		})
	}
}

// model is a naive ZooKeeper tree: maps and counters, written from the
// semantics in zk-facts rather than from tree.go. ACLs are always open here.
type model struct {
	nodes    map[string]*mnode
	sessions map[int64]bool
}

type mnode struct {
	data                []byte
	czxid, mzxid, pzxid int64
	ctime, mtime        int64
	version, aversion   int32
	cversion            int32 // served: child creates + child deletes (-1/-2 offsets for built-ins)
	seq                 int32 // child creates only: the sequence source
	session             int64 // owning session of an ephemeral
	mode                CreateMode
	ttl                 int64
	readOnly            bool // world:anyone READ only, as /zookeeper/config
	children            map[string]bool
}

func newModel() *model {
	m := &model{nodes: map[string]*mnode{}, sessions: map[int64]bool{}}
	m.nodes["/"] = &mnode{cversion: -1, children: map[string]bool{zookeeperPath: true}}
	m.nodes[zookeeperPath] = &mnode{cversion: -2, children: map[string]bool{quotaPath: true, configPath: true}}
	m.nodes[quotaPath] = &mnode{data: []byte{}, children: map[string]bool{}}
	m.nodes[configPath] = &mnode{data: []byte{}, readOnly: true, children: map[string]bool{}}
	return m
}

func (m *model) clone() *model {
	c := &model{nodes: make(map[string]*mnode, len(m.nodes)), sessions: make(map[int64]bool, len(m.sessions))}
	for p, n := range m.nodes {
		cp := *n
		cp.children = make(map[string]bool, len(n.children))
		for k := range n.children {
			cp.children[k] = true
		}
		c.nodes[p] = &cp
	}
	for s := range m.sessions {
		c.sessions[s] = true
	}
	return c
}

func (m *model) stat(p string) Stat {
	n := m.nodes[p]
	return Stat{Czxid: n.czxid, Mzxid: n.mzxid, Pzxid: n.pzxid, Ctime: n.ctime, Mtime: n.mtime,
		Version: n.version, Cversion: n.cversion, Aversion: n.aversion, EphemeralOwner: n.session,
		DataLength: int32(len(n.data)), NumChildren: int32(len(n.children))}
}

func (m *model) paths() []string {
	out := make([]string, 0, len(m.nodes))
	for p := range m.nodes {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

func (m *model) liveSessions() []int64 {
	var out []int64
	for s := range m.sessions {
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

func modelParent(p string) string {
	i := strings.LastIndexByte(p, '/')
	if i <= 0 {
		return "/"
	}
	return p[:i]
}

func (m *model) unlink(p string, zxid int64) {
	parent := m.nodes[modelParent(p)]
	delete(parent.children, p)
	parent.cversion++
	if zxid > parent.pzxid {
		parent.pzxid = zxid
	}
	delete(m.nodes, p)
}

func (m *model) op(op Op, session, zxid, now int64) OpResult {
	switch o := op.(type) {
	case CreateOp:
		ephemeral := o.Mode == ModeEphemeral || o.Mode == ModeEphemeralSequential
		seq := o.Mode == ModePersistentSequential || o.Mode == ModeEphemeralSequential || o.Mode == ModePersistentSequentialWithTTL
		ttl := o.TTL.Milliseconds()
		switch {
		case ephemeral && !m.sessions[session]:
			return OpResult{Err: ErrSessionExpired}
		case o.Mode < 0 || o.Mode > 6:
			return OpResult{Err: ErrBadArguments}
		case (o.Mode == ModePersistentWithTTL || o.Mode == ModePersistentSequentialWithTTL) && (ttl < 1 || ttl > 1<<40-1):
			return OpResult{Err: ErrBadArguments}
		}
		probe := o.Path
		if seq {
			probe += "0"
		}
		if validatePath(probe) != nil || len(o.Data) > MaxDataSize {
			return OpResult{Err: ErrBadArguments}
		}
		if o.Path == "/" {
			return OpResult{Err: ErrNodeExists}
		}
		parent := m.nodes[modelParent(probe)]
		if parent == nil {
			return OpResult{Err: ErrNoNode}
		}
		p := o.Path
		if seq {
			p += fmt.Sprintf("%010d", parent.seq)
		}
		if m.nodes[p] != nil {
			return OpResult{Err: ErrNodeExists}
		}
		if parent.session != 0 {
			return OpResult{Err: ErrNoChildrenForEphemerals}
		}
		n := &mnode{data: o.Data, czxid: zxid, mzxid: zxid, pzxid: zxid, ctime: now, mtime: now,
			mode: o.Mode, children: map[string]bool{}}
		if ephemeral {
			n.session = session
		}
		if o.Mode == ModePersistentWithTTL || o.Mode == ModePersistentSequentialWithTTL {
			n.ttl = ttl
		}
		m.nodes[p] = n
		parent.children[p] = true
		parent.seq++
		parent.cversion++
		parent.pzxid = zxid
		st := m.stat(p)
		return OpResult{Path: p, Stat: &st}
	case DeleteOp:
		if validatePath(o.Path) != nil || isReservedPath(o.Path) {
			return OpResult{Err: ErrBadArguments}
		}
		n := m.nodes[o.Path]
		switch {
		case m.nodes[modelParent(o.Path)] == nil || n == nil:
			return OpResult{Err: ErrNoNode}
		case o.Version != -1 && o.Version != n.version:
			return OpResult{Err: ErrBadVersion}
		case len(n.children) > 0:
			return OpResult{Err: ErrNotEmpty}
		}
		m.unlink(o.Path, zxid)
		return OpResult{}
	case SetDataOp:
		n := m.nodes[o.Path]
		switch {
		case validatePath(o.Path) != nil || len(o.Data) > MaxDataSize:
			return OpResult{Err: ErrBadArguments}
		case n == nil:
			return OpResult{Err: ErrNoNode}
		case n.readOnly:
			return OpResult{Err: ErrNoAuth}
		case o.Version != -1 && o.Version != n.version:
			return OpResult{Err: ErrBadVersion}
		}
		n.data, n.version, n.mzxid, n.mtime = o.Data, n.version+1, zxid, now
		st := m.stat(o.Path)
		return OpResult{Path: o.Path, Stat: &st}
	case setACLOp:
		n := m.nodes[o.path]
		switch {
		case n == nil:
			return OpResult{Err: ErrNoNode}
		case n.readOnly:
			return OpResult{Err: ErrNoAuth}
		case o.version != -1 && o.version != n.aversion:
			return OpResult{Err: ErrBadVersion}
		}
		n.aversion++
		st := m.stat(o.path)
		return OpResult{Path: o.path, Stat: &st}
	case CheckOp:
		n := m.nodes[o.Path]
		switch {
		case n == nil:
			return OpResult{Path: o.Path, Err: ErrNoNode}
		case o.Version != -1 && o.Version != n.version:
			return OpResult{Path: o.Path, Err: ErrBadVersion}
		}
		return OpResult{Path: o.Path}
	}
	panic(fmt.Sprintf("model: op %T", op))
}

// apply applies one command at zxid and returns what the FSM must return.
func (m *model) apply(c *command, zxid int64) ([]OpResult, error) {
	switch c.op {
	case opCreateSession:
		m.sessions[zxid] = true
		return nil, nil
	case opCloseSession:
		if !m.sessions[c.session] {
			return nil, ErrSessionExpired
		}
		for _, p := range m.paths() {
			if n := m.nodes[p]; n != nil && n.session == c.session {
				m.unlink(p, zxid)
			}
		}
		delete(m.sessions, c.session)
		return nil, nil
	case opReap:
		n := m.nodes[c.path]
		switch {
		case n == nil || isReservedPath(c.path):
			return nil, ErrNoNode
		case len(n.children) > 0:
			return nil, ErrNotEmpty
		case n.mode == ModeContainer && n.seq > 0,
			n.ttl > 0 && c.time-n.mtime > n.ttl:
			m.unlink(c.path, zxid)
			return nil, nil
		}
		return nil, ErrNotEmpty
	}
	if c.session != 0 && !m.sessions[c.session] {
		return nil, ErrSessionExpired
	}
	if c.op != opMulti {
		return []OpResult{m.op(c.ops[0], c.session, zxid, c.time)}, nil
	}
	tx := m.clone()
	results := make([]OpResult, len(c.ops))
	for i, op := range c.ops {
		results[i] = tx.op(op, c.session, zxid, c.time)
		if results[i].Err == nil {
			continue
		}
		for j := range results {
			switch {
			case j < i:
				results[j] = OpResult{Err: ErrRolledBack}
			case j > i:
				results[j] = OpResult{Err: ErrRuntimeInconsistency}
			}
		}
		return results, nil
	}
	*m = *tx
	return results, nil
}

// commandGen produces random but mostly meaningful commands, steered by its
// own model of the state they lead to.
type commandGen struct {
	rng   *rand.Rand
	m     *model
	index uint64
	now   int64
}

func newCommandGen(seed uint64) *commandGen {
	return &commandGen{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), m: newModel(), now: testTime0}
}

func (g *commandGen) pick(paths []string) string { return paths[g.rng.IntN(len(paths))] }

func (g *commandGen) data() []byte {
	switch g.rng.IntN(4) {
	case 0:
		return nil
	case 1:
		return []byte{}
	}
	b := make([]byte, 1+g.rng.IntN(16))
	for i := range b {
		b[i] = byte(g.rng.UintN(256))
	}
	return b
}

func (g *commandGen) version(v int32) int32 {
	switch g.rng.IntN(4) {
	case 0:
		return v + 1 // wrong
	case 1:
		return v
	}
	return -1
}

func (g *commandGen) session(ephemeral bool) int64 {
	live := g.m.liveSessions()
	if len(live) == 0 || g.rng.IntN(10) == 0 {
		if ephemeral || g.rng.IntN(2) == 0 {
			return int64(g.index) + 1000 // never a session
		}
		return 0
	}
	if !ephemeral && g.rng.IntN(2) == 0 {
		return 0
	}
	return live[g.rng.IntN(len(live))]
}

// anyPath is an existing node most of the time, else a made-up one.
func (g *commandGen) anyPath() string {
	if g.rng.IntN(5) == 0 {
		return "/" + string(rune('a'+g.rng.IntN(4))) + "/" + string(rune('a'+g.rng.IntN(4)))
	}
	return g.pick(g.m.paths())
}

func (g *commandGen) createOp(tx *model) CreateOp {
	var parents []string
	for _, p := range tx.paths() {
		if strings.Count(p, "/") < 4 && (p == "/" || !strings.HasPrefix(p, zookeeperPath)) {
			parents = append(parents, p)
		}
	}
	parent := g.pick(parents)
	modes := []CreateMode{0, 0, 0, 1, 1, 2, 3, 4, 4, 5, 6}
	mode := modes[g.rng.IntN(len(modes))]
	name := string(rune('a' + g.rng.IntN(4)))
	if mode.sequential() {
		name = "s-"
	}
	p := parent + "/" + name
	if parent == "/" {
		p = "/" + name
	}
	op := CreateOp{Path: p, Data: g.data(), Mode: mode}
	if mode.ttl() {
		op.TTL = time.Duration(g.rng.IntN(20_000)) * time.Millisecond // sometimes 0: refused
	}
	return op
}

func (g *commandGen) simpleOp(tx *model) Op {
	switch k := g.rng.IntN(10); {
	case k < 4:
		return g.createOp(tx)
	case k < 6:
		p := g.anyPath()
		v := int32(0)
		if n := tx.nodes[p]; n != nil {
			v = n.version
		}
		return DeleteOp{Path: p, Version: g.version(v)}
	case k < 8:
		p := g.anyPath()
		v := int32(0)
		if n := tx.nodes[p]; n != nil {
			v = n.version
		}
		return SetDataOp{Path: p, Data: g.data(), Version: g.version(v)}
	default:
		p := g.anyPath()
		v := int32(0)
		if n := tx.nodes[p]; n != nil {
			v = n.version
		}
		return CheckOp{Path: p, Version: g.version(v)}
	}
}

// next returns the next command and advances the generator's model.
func (g *commandGen) next() *command {
	g.index++
	g.now += int64(g.rng.IntN(3000))
	c := &command{time: g.now}
	switch k := g.rng.IntN(100); {
	case k < 6:
		c.op = opCreateSession
		c.timeout = 4000
		c.password = []byte{byte(g.index)}
	case k < 10:
		c.op = opCloseSession
		c.session = g.session(true)
		c.expired = g.rng.IntN(2) == 0
	case k < 13:
		c.op = opReap
		var due []string
		for _, p := range g.m.paths() {
			if n := g.m.nodes[p]; n.mode == ModeContainer || n.ttl > 0 {
				due = append(due, p)
			}
		}
		if len(due) > 0 && g.rng.IntN(4) != 0 {
			c.path = g.pick(due)
		} else {
			c.path = g.anyPath()
		}
	case k < 28:
		c.op = opMulti
		c.session = g.session(false)
		tx := g.m.clone()
		for range 1 + g.rng.IntN(4) {
			op := g.simpleOp(tx)
			if co, ok := op.(CreateOp); ok && co.Mode.ephemeral() {
				if c.session == 0 {
					co.Mode--
					op = co
				}
			}
			c.ops = append(c.ops, op)
			tx.op(op, c.session, int64(g.index), c.time) // later ops build on earlier ones
		}
	case k < 33:
		c.op = opSetACL
		p := g.anyPath()
		v := int32(0)
		if n := g.m.nodes[p]; n != nil {
			v = n.aversion
		}
		c.ops = []Op{setACLOp{path: p, acl: OpenACL, version: g.version(v)}}
	default:
		op := g.simpleOp(g.m)
		co, isCreate := op.(CreateOp)
		c.session = g.session(isCreate && co.Mode.ephemeral())
		c.op = opCodeOf(op)
		c.ops = []Op{op}
	}
	return c
}

// randomLog generates n encoded commands from seed.
func randomLog(seed uint64, n int) [][]byte {
	g := newCommandGen(seed)
	out := make([][]byte, n)
	for i := range out {
		c := g.next()
		out[i] = encodeCommand(c)
		g.m.apply(c, int64(g.index))
	}
	return out
}

func TestFSMRandomAgainstModel(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			g := newCommandGen(seed)
			h := newTestFSM(t)
			m := newModel()
			stats := map[string]int{}
			for step := range 2000 {
				c := g.next()
				b := encodeCommand(c)
				wantRes, wantWhole := m.apply(c, int64(g.index))
				g.m.apply(c, int64(g.index))
				r := h.applyRaw(b)
				what := fmt.Sprintf("step %d op %d %+v", step, c.op, c.ops)
				if CodeOf(r.err) != CodeOf(wantWhole) {
					t.Fatalf("%s: error %v, model %v", what, r.err, wantWhole)
				}
				if len(r.results) != len(wantRes) {
					t.Fatalf("%s: %d results, model %d", what, len(r.results), len(wantRes))
				}
				for i, want := range wantRes {
					got := r.results[i]
					if !errors.Is(got.Err, unwrapAll(want.Err)) || CodeOf(got.Err) != CodeOf(want.Err) {
						t.Fatalf("%s: op %d error %v, model %v", what, i, got.Err, want.Err)
					}
					if want.Err == nil && (got.Path != want.Path || (got.Stat == nil) != (want.Stat == nil) ||
						(got.Stat != nil && *got.Stat != *want.Stat)) {
						t.Fatalf("%s: op %d\n got %q %+v\nwant %q %+v", what, i, got.Path, got.Stat, want.Path, want.Stat)
					}
				}
				if r.err == nil && (len(r.results) == 0 || r.results[len(r.results)-1].Err == nil) {
					stats[fmt.Sprintf("ok op %d", c.op)]++
				}
				if step%100 == 99 {
					compareWithModel(t, h.f, m)
					checkFSM(t, h.f)
				}
			}
			compareWithModel(t, h.f, m)
			checkFSM(t, h.f)
			h.f.mu.RLock()
			t.Logf("%d nodes, %d sessions; successes %v", h.f.tree.nodes.Len(), len(h.f.sessions), stats)
			h.f.mu.RUnlock()
		})
	}
}

// compareWithModel checks that f holds exactly the model's nodes, stats and data.
func compareWithModel(t *testing.T, f *fsm, m *model) {
	t.Helper()
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.tree.nodes.Len() != len(m.nodes) {
		t.Fatalf("%d nodes, model %d", f.tree.nodes.Len(), len(m.nodes))
	}
	for _, p := range m.paths() {
		n := f.tree.get(p)
		if n == nil {
			t.Fatalf("%s missing", p)
		}
		if got, want := n.stat(), m.stat(p); got != want {
			t.Fatalf("%s\n got %+v\nwant %+v", p, got, want)
		}
		if (n.data == nil) != (m.nodes[p].data == nil) || !bytes.Equal(n.data, m.nodes[p].data) {
			t.Fatalf("%s data %q, model %q", p, n.data, m.nodes[p].data)
		}
		if n.childCreates != m.nodes[p].seq {
			t.Fatalf("%s sequence counter %d, model %d", p, n.childCreates, m.nodes[p].seq)
		}
	}
	if len(f.sessions) != len(m.sessions) {
		t.Fatalf("%d sessions, model %d", len(f.sessions), len(m.sessions))
	}
	for s := range m.sessions {
		if f.sessions[s] == nil {
			t.Fatalf("session %d missing", s)
		}
	}
}

func TestFSMDeterminism(t *testing.T) {
	log := randomLog(42, 2000)
	apply := func(f *fsm, from int, batch func() int) [][]byte {
		var results [][]byte
		for i := from; i < len(log); {
			n := min(batch(), len(log)-i)
			var logs []*raft.Log
			for j := range n {
				logs = append(logs, &raft.Log{Index: uint64(i + j + 1), Type: raft.LogCommand, Data: log[i+j]})
			}
			for _, r := range f.ApplyBatch(logs) {
				results = append(results, encodeResult(r.(*applyResult)))
			}
			i += n
		}
		return results
	}
	a, b := newTestFSM(t), newTestFSM(t)
	ra := apply(a.f, 0, func() int { return 1 })
	rng := rand.New(rand.NewPCG(7, 7))
	rb := apply(b.f, 0, func() int { return 1 + rng.IntN(64) }) // raft batches vary by replica
	for i := range ra {
		if !bytes.Equal(ra[i], rb[i]) {
			t.Fatalf("entry %d: results differ", i+1)
		}
	}
	sa, sb := snapshotBytes(t, a.f), snapshotBytes(t, b.f)
	if !bytes.Equal(sa, sb) {
		t.Fatal("snapshots of replicas that applied the same log differ")
	}
	checkFSM(t, a.f)

	// A replica that installs a snapshot half way and replays the rest ends up
	// in the same state too.
	half := newTestFSM(t)
	apply(half.f, 0, func() int { return 1 })
	c := newTestFSM(t)
	mid := newTestFSM(t)
	for i := range 1000 {
		mid.f.ApplyBatch([]*raft.Log{{Index: uint64(i + 1), Type: raft.LogCommand, Data: log[i]}})
	}
	if err := c.f.Restore(readCloser(snapshotBytes(t, mid.f))); err != nil {
		t.Fatal(err)
	}
	rc := apply(c.f, 1000, func() int { return 3 })
	for i := range rc {
		if !bytes.Equal(rc[i], ra[1000+i]) {
			t.Fatalf("entry %d after restore: results differ", 1000+i+1)
		}
	}
	if !bytes.Equal(snapshotBytes(t, c.f), sa) {
		t.Fatal("snapshot+replay differs from full replay")
	}
	if len(sa) < 2000 {
		t.Errorf("snapshot only %d bytes: the random log did too little", len(sa))
	}
}
