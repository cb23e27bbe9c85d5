package zoo

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

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
	m.nodes["/"] = &mnode{data: []byte{}, cversion: -1, children: map[string]bool{zookeeperPath: true}}
	m.nodes[zookeeperPath] = &mnode{data: []byte{}, cversion: -2, children: map[string]bool{quotaPath: true, configPath: true}}
	m.nodes[quotaPath] = &mnode{data: []byte{}, children: map[string]bool{}}
	m.nodes[configPath] = &mnode{data: []byte{}, aversion: -1, readOnly: true, children: map[string]bool{}}
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
		if o.Path == "/" && !seq {
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
