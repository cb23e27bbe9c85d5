package zkwire

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zooraft/zoo/internal/realzk"
)

// TestDifferentialAgainstZooKeeper runs the same random sequence of creates
// (every mode, containers and TTL nodes included; null, empty and short data;
// ACLs that allow everything, reads only, our digest user, another user, the
// auth scheme), deletes and sets (any or a given version), reads, ACL reads
// and writes, child listings and multis, through go-zookeeper, against a real
// ZooKeeper 3.8 and against zoo, one operation at a time, from two sessions
// authenticated as the same digest user that now and then close (taking their
// ephemerals) and are replaced, and requires the same answer every time: error
// codes, data, created names, ACLs, ephemeral owners and every Stat field that
// does not depend on zxid numbering or clocks.
func TestDifferentialAgainstZooKeeper(t *testing.T) {
	zkAddr := realzk.Standalone(t, 200*time.Millisecond, "zookeeper.extendedTypesEnabled=true")
	_, zooAddr := serve(t, openSingle(t), Config{ExtendedTypesEnabled: true})
	ref, got := newDiffSide(t, zkAddr), newDiffSide(t, zooAddr)

	rng := rand.New(rand.NewPCG(42, 7))
	var recent []string
	outcomes := map[string]int{}
	for i := range 4000 {
		k := rng.IntN(2) // which of the two sessions
		if rng.IntN(100) == 0 {
			// The session closes (its ephemerals go) and a new one takes its place.
			ref.reopen(k)
			got.reopen(k)
			recent = append(recent, fmt.Sprintf("session %d closed and replaced", k))
			continue
		}
		op := randomOp(rng)
		want, have := fmt.Sprintf("s%d: %s", k, op(ref.conns[k], ref.owner)), fmt.Sprintf("s%d: %s", k, op(got.conns[k], got.owner))
		recent = append(recent, want)
		if len(recent) > 8 {
			recent = recent[1:]
		}
		outcomes[want[strings.LastIndex(want, " ")+1:]]++
		if want != have {
			t.Fatalf("operation %d differs\nZooKeeper: %s\nzoo:       %s\nlast operations on ZooKeeper:\n  %s",
				i, want, have, strings.Join(recent, "\n  "))
		}
	}
	// The sequence must exercise success and the errors alike.
	t.Logf("outcomes: %v", outcomes)
	for _, o := range []string{"ok", "NoNode", "NodeExists", "BadVersion", "NotEmpty", "NoChildrenForEphemerals", "NoAuth"} {
		if outcomes[o] == 0 {
			t.Errorf("no operation ended %s", o)
		}
	}
}

// diffSide is one server of the comparison with its two sessions. Session
// ids differ between servers, so Stats name an ephemeral's owner by its
// place in the sequence ("s1#3": the third session in slot 1).
type diffSide struct {
	t      *testing.T
	addr   string
	conns  [2]*zk.Conn
	gen    [2]int
	labels map[int64]string
}

func newDiffSide(t *testing.T, addr string) *diffSide {
	d := &diffSide{t: t, addr: addr, labels: map[int64]string{}}
	d.reopen(0)
	d.reopen(1)
	return d
}

// reopen closes slot k's session, if any, and opens a new one authenticated
// as the digest user u.
func (d *diffSide) reopen(k int) {
	d.t.Helper()
	if d.conns[k] != nil {
		d.conns[k].Close() // waits for the server's answer: its ephemerals are gone
	}
	c, _ := connectZK(d.t, []string{d.addr}, 10*time.Second)
	if err := c.AddAuth("digest", []byte("u:p")); err != nil {
		d.t.Fatal(err)
	}
	d.gen[k]++
	d.conns[k] = c
	d.labels[c.SessionID()] = fmt.Sprintf("s%d#%d", k, d.gen[k])
}

// owner names a session id as the sequence knows it.
func (d *diffSide) owner(id int64) string {
	if id == 0 {
		return "none"
	}
	if l, ok := d.labels[id]; ok {
		return l
	}
	return "unknown"
}

var (
	diffPaths = []string{"/d", "/d/a", "/d/b", "/d/a/x", "/d/a/y", "/d/b/x", "/d/a/x/z", "/nope/x"}
	diffData  = [][]byte{nil, {}, []byte("x"), []byte("yy")}
	// Debian's ZooKeeper is 3.8.0, older than the 3.8.4 zoo follows on reads:
	// 3.8.4 checks READ on exists and masks digests in getACL without ADMIN.
	// So every ACL here lets the session read, and any digest in it belongs
	// to a user the session may administer as; writes still meet NoAuth.
	diffACLs = [][]zk.ACL{
		zk.WorldACL(zk.PermAll), zk.WorldACL(zk.PermAll), zk.WorldACL(zk.PermAll),
		zk.WorldACL(zk.PermAll), zk.WorldACL(zk.PermAll), zk.WorldACL(zk.PermAll),
		zk.WorldACL(zk.PermRead),
		zk.WorldACL(zk.PermRead | zk.PermCreate),
		zk.DigestACL(zk.PermAll, "u", "p"),
		zk.AuthACL(zk.PermAll),
		append(zk.WorldACL(zk.PermRead), zk.DigestACL(zk.PermAdmin, "u", "p")...),
	}
)

// randomOp returns an operation that runs on a connection and describes what
// it did and got, in terms both servers must agree on.
func randomOp(rng *rand.Rand) func(c *zk.Conn, owner func(int64) string) string {
	path := diffPaths[rng.IntN(len(diffPaths))]
	data := diffData[rng.IntN(len(diffData))]
	version := int32(-1)
	if rng.IntN(2) == 0 {
		version = int32(rng.IntN(3))
	}
	acl := diffACLs[rng.IntN(len(diffACLs))]
	switch n := rng.IntN(100); {
	case n < 27:
		flags := int32(rng.IntN(4)) // persistent, ephemeral, sequential, ephemeral sequential
		if flags&zk.FlagSequence != 0 && rng.IntN(2) == 0 {
			path += "/s-"
		}
		return func(c *zk.Conn, owner func(int64) string) string {
			name, err := c.Create(path, data, flags, acl)
			return fmt.Sprintf("create %s %q flags=%d %v -> %q %s", path, data, flags, acl, name, errName(err))
		}
	case n < 30:
		return func(c *zk.Conn, owner func(int64) string) string {
			name, err := c.CreateContainer(path, data, zk.FlagContainer, acl)
			return fmt.Sprintf("createContainer %s %q %v -> %q %s", path, data, acl, name, errName(err))
		}
	case n < 33:
		flags := int32(zk.FlagTTL + rng.IntN(2)) // TTL, sequential TTL
		return func(c *zk.Conn, owner func(int64) string) string {
			name, err := c.CreateTTL(path, data, flags, acl, time.Hour)
			return fmt.Sprintf("createTTL %s %q flags=%d %v -> %q %s", path, data, flags, acl, name, errName(err))
		}
	case n < 35:
		return func(c *zk.Conn, owner func(int64) string) string {
			got, st, err := c.GetACL(path)
			return fmt.Sprintf("getACL %s -> %v %s %s", path, got, statString(st, owner), errName(err))
		}
	case n < 37 && path != "/d":
		return func(c *zk.Conn, owner func(int64) string) string {
			st, err := c.SetACL(path, acl, version)
			return fmt.Sprintf("setACL %s %v v%d -> %s %s", path, acl, version, statString(st, owner), errName(err))
		}
	case n < 55:
		return func(c *zk.Conn, owner func(int64) string) string {
			return fmt.Sprintf("delete %s v%d -> %s", path, version, errName(c.Delete(path, version)))
		}
	case n < 70:
		return func(c *zk.Conn, owner func(int64) string) string {
			st, err := c.Set(path, data, version)
			return fmt.Sprintf("set %s %q v%d -> %s %s", path, data, version, statString(st, owner), errName(err))
		}
	case n < 80:
		return func(c *zk.Conn, owner func(int64) string) string {
			d, st, err := c.Get(path)
			return fmt.Sprintf("get %s -> %q nil=%v %s %s", path, d, d == nil, statString(st, owner), errName(err))
		}
	case n < 85:
		return func(c *zk.Conn, owner func(int64) string) string {
			ok, st, err := c.Exists(path)
			return fmt.Sprintf("exists %s -> %v %s %s", path, ok, statString(st, owner), errName(err))
		}
	case n < 95:
		return func(c *zk.Conn, owner func(int64) string) string {
			kids, st, err := c.Children(path)
			slices.Sort(kids)
			return fmt.Sprintf("children %s -> %v %s %s", path, kids, statString(st, owner), errName(err))
		}
	}
	// A multi of two or three writes and checks.
	var ops []any
	var desc []string
	for range 2 + rng.IntN(2) {
		p := diffPaths[rng.IntN(len(diffPaths))]
		v := int32(rng.IntN(3)) - 1
		switch rng.IntN(4) {
		case 0:
			ops = append(ops, &zk.CreateRequest{Path: p, Data: data, Acl: acl})
			desc = append(desc, "create "+p)
		case 1:
			ops = append(ops, &zk.DeleteRequest{Path: p, Version: v})
			desc = append(desc, fmt.Sprintf("delete %s v%d", p, v))
		case 2:
			ops = append(ops, &zk.SetDataRequest{Path: p, Data: data, Version: v})
			desc = append(desc, fmt.Sprintf("set %s v%d", p, v))
		case 3:
			ops = append(ops, &zk.CheckVersionRequest{Path: p, Version: v})
			desc = append(desc, fmt.Sprintf("check %s v%d", p, v))
		}
	}
	return func(c *zk.Conn, owner func(int64) string) string {
		res, err := c.Multi(ops...)
		var out []string
		for _, r := range res {
			out = append(out, fmt.Sprintf("{%q %s %s}", r.String, statString(r.Stat, owner), errName(r.Error)))
		}
		return fmt.Sprintf("multi [%s] -> %v %s", strings.Join(desc, ", "), out, errName(err))
	}
}

// statString renders the Stat fields that do not depend on how each server
// numbers zxids or on clocks; zxids only by how they relate.
func statString(st *zk.Stat, owner func(int64) string) string {
	if st == nil {
		return "nostat"
	}
	return fmt.Sprintf("v=%d cv=%d av=%d owner=%s len=%d kids=%d m>c=%v p>c=%v",
		st.Version, st.Cversion, st.Aversion, owner(st.EphemeralOwner), st.DataLength, st.NumChildren,
		st.Mzxid > st.Czxid, st.Pzxid > st.Czxid)
}

// errName names err's ZooKeeper code, as the last word of a description.
func errName(err error) string {
	if err == nil {
		return "ok"
	}
	for _, known := range []struct {
		err  error
		name string
	}{{zk.ErrNoNode, "NoNode"}, {zk.ErrNodeExists, "NodeExists"}, {zk.ErrBadVersion, "BadVersion"},
		{zk.ErrNotEmpty, "NotEmpty"}, {zk.ErrNoChildrenForEphemerals, "NoChildrenForEphemerals"},
		{zk.ErrBadArguments, "BadArguments"}, {zk.ErrInvalidACL, "InvalidACL"}, {zk.ErrNoAuth, "NoAuth"},
		{zk.ErrAPIError, "APIError"}} {
		if errors.Is(err, known.err) {
			return known.name
		}
	}
	return "other:" + strings.ReplaceAll(err.Error(), " ", "_")
}

// TestDifferentialWatchesAgainstZooKeeper compares watch semantics: one
// session sets data, exists and child watches on random paths, another makes
// random writes (and now and then closes and is replaced); after each write
// the watcher syncs, so every notification the write caused has arrived, and
// the notifications each watch got so far must be the same on ZooKeeper and
// zoo: which watches fire, for which writes, with which event.
func TestDifferentialWatchesAgainstZooKeeper(t *testing.T) {
	zkAddr := realzk.Standalone(t, 200*time.Millisecond)
	_, zooAddr := serve(t, openSingle(t), Config{})
	ref, got := newDiffSide(t, zkAddr), newDiffSide(t, zooAddr)
	type watch struct {
		desc string
		ch   [2]<-chan zk.Event // ZooKeeper's, zoo's
		seen [2]string
	}
	var watches []*watch
	rng := rand.New(rand.NewPCG(9, 9))
	fired := 0
	for i := range 2500 {
		path := diffPaths[rng.IntN(len(diffPaths))]
		switch n := rng.IntN(100); {
		case n < 30: // the watcher sets a watch
			w := &watch{}
			var res [2]string
			for s, side := range []*diffSide{ref, got} {
				c := side.conns[0]
				switch n % 3 {
				case 0:
					d, st, ch, err := c.GetW(path)
					res[s], w.ch[s] = fmt.Sprintf("getW %s -> %q %s %s", path, d, statString(st, side.owner), errName(err)), ch
				case 1:
					ok, st, ch, err := c.ExistsW(path)
					res[s], w.ch[s] = fmt.Sprintf("existsW %s -> %v %s %s", path, ok, statString(st, side.owner), errName(err)), ch
				case 2:
					kids, st, ch, err := c.ChildrenW(path)
					slices.Sort(kids)
					res[s], w.ch[s] = fmt.Sprintf("childrenW %s -> %v %s %s", path, kids, statString(st, side.owner), errName(err)), ch
				}
			}
			if res[0] != res[1] {
				t.Fatalf("step %d differs\nZooKeeper: %s\nzoo:       %s", i, res[0], res[1])
			}
			w.desc = fmt.Sprintf("step %d: %s", i, res[0])
			watches = append(watches, w)
		case n < 32: // the writer's session closes and is replaced
			ref.reopen(1)
			got.reopen(1)
		default: // the writer writes
			op := randomOp(rng)
			want, have := op(ref.conns[1], ref.owner), op(got.conns[1], got.owner)
			if want != have {
				t.Fatalf("step %d differs\nZooKeeper: %s\nzoo:       %s", i, want, have)
			}
		}
		// Every notification caused so far has reached the watcher once its
		// sync is answered (one connection delivers in order).
		for _, side := range []*diffSide{ref, got} {
			if _, err := side.conns[0].Sync("/"); err != nil {
				t.Fatal(err)
			}
		}
		for _, w := range watches {
			for s := range 2 {
				select {
				case ev, ok := <-w.ch[s]:
					if ok {
						w.seen[s] += fmt.Sprintf(" [step %d: %v %s]", i, ev.Type, ev.Path)
					}
				default:
				}
			}
			if w.seen[0] != w.seen[1] {
				t.Fatalf("watch of %s\nZooKeeper got:%s\nzoo got:      %s", w.desc, w.seen[0], w.seen[1])
			}
		}
	}
	for _, w := range watches {
		if w.seen[0] != "" {
			fired++
		}
	}
	t.Logf("%d watches set, %d fired", len(watches), fired)
	if fired < 50 {
		t.Fatalf("only %d watches fired: the sequence tests too little", fired)
	}
}
