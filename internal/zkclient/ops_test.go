package zkclient

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zooraft/zoo"
	"github.com/zooraft/zoo/internal/testkit"
	"github.com/zooraft/zoo/zkwire"
	"github.com/zooraft/zoo/zootest"
)

func TestOps(t *testing.T) {
	t.Parallel()
	_, addr := single(t, zkwire.Config{ExtendedTypesEnabled: true})
	c, _ := connect(t, []string{addr}, Options{})
	ctx := testkit.Context(t)

	t.Run("create get set exists delete", func(t *testing.T) {
		p, err := c.Create(ctx, "/a", []byte("x"), zoo.ModePersistent, nil)
		if err != nil || p != "/a" {
			t.Fatalf("create /a = %q, %v", p, err)
		}
		data, st, err := c.Get(ctx, "/a", false)
		if err != nil || string(data) != "x" || st.Czxid <= 0 || st.Mzxid != st.Czxid || st.Version != 0 ||
			st.DataLength != 1 || st.Ctime == 0 || st.Mtime != st.Ctime || st.EphemeralOwner != 0 {
			t.Fatalf("get /a = %q %+v %v", data, st, err)
		}
		st2, err := c.Set(ctx, "/a", []byte("yy"), 0)
		if err != nil || st2.Version != 1 || st2.Mzxid <= st.Mzxid || st2.DataLength != 2 {
			t.Fatalf("set /a = %+v %v", st2, err)
		}
		_, err = c.Set(ctx, "/a", []byte("z"), 0)
		isPathErr(t, err, "/a", zoo.ErrBadVersion)
		if ok, st3, err := c.Exists(ctx, "/a", false); err != nil || !ok || st3 != st2 {
			t.Fatalf("exists /a = %v %+v %v, want %+v", ok, st3, err, st2)
		}
		if ok, _, err := c.Exists(ctx, "/nope", false); err != nil || ok {
			t.Fatalf("exists /nope = %v %v", ok, err)
		}
		_, _, err = c.Get(ctx, "/nope", false)
		isPathErr(t, err, "/nope", zoo.ErrNoNode)
		_, err = c.Create(ctx, "/a", nil, zoo.ModePersistent, nil)
		isPathErr(t, err, "/a", zoo.ErrNodeExists)
		_, err = c.Create(ctx, "/none/child", nil, zoo.ModePersistent, nil)
		isPathErr(t, err, "/none/child", zoo.ErrNoNode)
		_, err = c.Set(ctx, "/nope", nil, -1)
		isPathErr(t, err, "/nope", zoo.ErrNoNode)
		mustCreate(t, c, "/a/kid", nil)
		isPathErr(t, c.Delete(ctx, "/a", -1), "/a", zoo.ErrNotEmpty)
		isPathErr(t, c.Delete(ctx, "/a/kid", 5), "/a/kid", zoo.ErrBadVersion)
		isPathErr(t, c.Delete(ctx, "/nope", -1), "/nope", zoo.ErrNoNode)
		isPathErr(t, c.Delete(ctx, "/zookeeper", -1), "/zookeeper", zoo.ErrBadArguments)
		if err := c.Delete(ctx, "/a/kid", 0); err != nil {
			t.Fatal(err)
		}
		if err := c.Delete(ctx, "/a", -1); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("null and empty data", func(t *testing.T) {
		mustCreate(t, c, "/null", nil)
		mustCreate(t, c, "/empty", []byte{})
		if data, _, err := c.Get(ctx, "/null", false); err != nil || data != nil {
			t.Fatalf("null data read as %#v, %v", data, err)
		}
		if data, _, err := c.Get(ctx, "/empty", false); err != nil || data == nil || len(data) != 0 {
			t.Fatalf("empty data read as %#v, %v", data, err)
		}
	})

	t.Run("create modes", func(t *testing.T) {
		mustCreate(t, c, "/m", nil)
		p, err := c.Create(ctx, "/m/seq-", nil, zoo.ModePersistentSequential, nil)
		if err != nil || p != "/m/seq-0000000000" {
			t.Fatalf("sequential = %q %v", p, err)
		}
		p, st, err := c.CreateWithStat(ctx, zoo.CreateOp{Path: "/m/eph", Mode: zoo.ModeEphemeral})
		if err != nil || p != "/m/eph" || st.EphemeralOwner != c.SessionID() || st.Czxid == 0 {
			t.Fatalf("create2 ephemeral = %q %+v %v", p, st, err)
		}
		p, err = c.Create(ctx, "/m/eseq-", nil, zoo.ModeEphemeralSequential, nil)
		if err != nil || p != "/m/eseq-0000000002" {
			t.Fatalf("ephemeral sequential = %q %v", p, err)
		}
		_, err = c.Create(ctx, "/m/eph/kid", nil, zoo.ModePersistent, nil)
		isPathErr(t, err, "/m/eph/kid", zoo.ErrNoChildrenForEphemerals)
		p, err = c.Create(ctx, "/m/box", nil, zoo.ModeContainer, nil)
		if err != nil || p != "/m/box" {
			t.Fatalf("container = %q %v", p, err)
		}
		p, st, err = c.CreateWithStat(ctx, zoo.CreateOp{Path: "/m/ttl", Mode: zoo.ModePersistentWithTTL, TTL: time.Hour})
		if err != nil || p != "/m/ttl" || st.EphemeralOwner != 0 {
			t.Fatalf("createTTL = %q %+v %v", p, st, err)
		}
		p, _, err = c.CreateWithStat(ctx, zoo.CreateOp{Path: "/m/tseq-", Mode: zoo.ModePersistentSequentialWithTTL, TTL: time.Minute})
		if err != nil || !strings.HasPrefix(p, "/m/tseq-") || len(p) != len("/m/tseq-")+10 {
			t.Fatalf("sequential TTL = %q %v", p, err)
		}
		for _, tc := range []struct {
			name string
			op   zoo.CreateOp
		}{
			{"TTL mode without TTL", zoo.CreateOp{Path: "/m/x", Mode: zoo.ModePersistentWithTTL}},
			{"TTL without TTL mode", zoo.CreateOp{Path: "/m/x", TTL: time.Second}},
			{"TTL in microseconds", zoo.CreateOp{Path: "/m/x", Mode: zoo.ModePersistentWithTTL, TTL: time.Microsecond}},
			{"unknown mode", zoo.CreateOp{Path: "/m/x", Mode: 9}},
			{"bad path", zoo.CreateOp{Path: "m/x"}},
		} {
			_, _, err := c.CreateWithStat(ctx, tc.op)
			isPathErr(t, err, tc.op.Path, zoo.ErrBadArguments)
		}
		_, err = c.Create(ctx, "/m/x", nil, zoo.ModePersistentWithTTL, nil)
		isPathErr(t, err, "/m/x", zoo.ErrBadArguments)
		// A sequential name may end in "/": the server appends the number.
		mustCreate(t, c, "/m/q", nil)
		if p, err := c.Create(ctx, "/m/q/", nil, zoo.ModePersistentSequential, nil); err != nil || p != "/m/q/0000000000" {
			t.Fatalf("sequential under /m/q/ = %q %v", p, err)
		}
	})

	t.Run("children", func(t *testing.T) {
		mustCreate(t, c, "/c", nil)
		for _, n := range []string{"x", "y", "z"} {
			mustCreate(t, c, "/c/"+n, nil)
		}
		names, err := c.Children(ctx, "/c", false)
		slices.Sort(names)
		if err != nil || !slices.Equal(names, []string{"x", "y", "z"}) {
			t.Fatalf("children = %q %v", names, err)
		}
		names, st, err := c.ChildrenWithStat(ctx, "/c", false)
		if err != nil || len(names) != 3 || st.NumChildren != 3 || st.Cversion != 3 {
			t.Fatalf("children2 = %q %+v %v", names, st, err)
		}
		if names, err := c.Children(ctx, "/c/x", false); err != nil || names == nil || len(names) != 0 {
			t.Fatalf("no children read as %#v, %v", names, err)
		}
		_, err = c.Children(ctx, "/nope", false)
		isPathErr(t, err, "/nope", zoo.ErrNoNode)
		_, _, err = c.ChildrenWithStat(ctx, "/nope", false)
		isPathErr(t, err, "/nope", zoo.ErrNoNode)
		mustCreate(t, c, "/c/x/deep", nil)
		if n, err := c.AllChildrenNumber(ctx, "/c"); err != nil || n != 4 {
			t.Fatalf("getAllChildrenNumber = %d %v", n, err)
		}
		_, err = c.AllChildrenNumber(ctx, "/nope")
		isPathErr(t, err, "/nope", zoo.ErrNoNode)
	})

	t.Run("acl", func(t *testing.T) {
		mustCreate(t, c, "/acl", nil)
		acl, st, err := c.GetACL(ctx, "/acl")
		if err != nil || !slices.Equal(acl, zoo.OpenACL) || st.Aversion != 0 {
			t.Fatalf("getACL = %+v %+v %v", acl, st, err)
		}
		_, err = c.SetACL(ctx, "/acl", zoo.ReadACL, 3)
		isPathErr(t, err, "/acl", zoo.ErrBadVersion)
		st, err = c.SetACL(ctx, "/acl", zoo.ReadACL, 0)
		if err != nil || st.Aversion != 1 {
			t.Fatalf("setACL = %+v %v", st, err)
		}
		// No ADMIN permission left: ZNOAUTH comes before the version check.
		_, err = c.SetACL(ctx, "/acl", zoo.OpenACL, 0)
		isPathErr(t, err, "/acl", zoo.ErrNoAuth)
		_, err = c.Set(ctx, "/acl", []byte("w"), -1)
		isPathErr(t, err, "/acl", zoo.ErrNoAuth)
		_, err = c.Create(ctx, "/bad-acl", nil, zoo.ModePersistent, []zoo.ACL{})
		isPathErr(t, err, "/bad-acl", zoo.ErrInvalidACL)
		_, _, err = c.GetACL(ctx, "/nope")
		isPathErr(t, err, "/nope", zoo.ErrNoNode)
	})

	t.Run("sync", func(t *testing.T) {
		if err := c.Sync(ctx, "/"); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("ephemerals", func(t *testing.T) {
		mustCreate(t, c, "/e", nil)
		for _, p := range []string{"/e/one", "/e/two", "/eph-top"} {
			if _, err := c.Create(ctx, p, nil, zoo.ModeEphemeral, nil); err != nil {
				t.Fatal(err)
			}
		}
		all, err := c.GetEphemerals(ctx, "/")
		slices.Sort(all)
		if err != nil || !slices.Contains(all, "/e/one") || !slices.Contains(all, "/eph-top") || !slices.Contains(all, "/m/eph") {
			t.Fatalf("getEphemerals / = %q %v", all, err)
		}
		some, err := c.GetEphemerals(ctx, "/e")
		slices.Sort(some)
		if err != nil || !slices.Equal(some, []string{"/e/one", "/e/two", "/eph-top"}) {
			t.Fatalf("getEphemerals /e (a string prefix) = %q %v", some, err)
		}
		if none, err := c.GetEphemerals(ctx, "/zz"); err != nil || none == nil || len(none) != 0 {
			t.Fatalf("getEphemerals /zz = %#v %v", none, err)
		}
	})

	t.Run("whoAmI", func(t *testing.T) {
		ids, err := c.WhoAmI(ctx)
		if err != nil || !slices.Contains(ids, zoo.ID{Scheme: "ip", ID: "127.0.0.1"}) {
			t.Fatalf("whoAmI = %+v %v", ids, err)
		}
	})

	t.Run("config and reconfig", func(t *testing.T) {
		data, st, err := c.GetConfig(ctx, false)
		if err != nil || len(data) != 0 || st.Czxid != 0 && st.Mzxid < st.Czxid {
			t.Fatalf("getConfig = %q %+v %v", data, st, err)
		}
		_, _, err = c.Reconfig(ctx, nil, []string{"2"}, nil, -1)
		if !errors.Is(err, zoo.ErrReconfigDisabled) {
			t.Fatalf("reconfig with reconfig disabled: %v", err)
		}
	})

	t.Run("bad input", func(t *testing.T) {
		for _, p := range []string{"", "a", "/a/", "//", "/a//b", "/.", "/a/..", "/a\x00", "/\u00e9\u0085", "/\U0001F600"} {
			_, err := c.Create(ctx, p, nil, zoo.ModePersistent, nil)
			isPathErr(t, err, p, zoo.ErrBadArguments)
			_, _, err = c.Get(ctx, p, false)
			isPathErr(t, err, p, zoo.ErrBadArguments)
		}
		isPathErr(t, c.AddWatch(ctx, "/", 7), "/", zoo.ErrBadArguments)
		isPathErr(t, c.RemoveWatches(ctx, "/", 9, false), "/", zoo.ErrBadArguments)
		isPathErr(t, c.CheckWatches(ctx, "/", 0), "/", zoo.ErrBadArguments)
		_, err := c.Multi(ctx, zoo.DeleteOp{Path: "bad"})
		isPathErr(t, err, "bad", zoo.ErrBadArguments)
		_, err = c.MultiRead(ctx, zoo.GetDataOp{Path: "bad"})
		isPathErr(t, err, "bad", zoo.ErrBadArguments)

		var nilConn *Conn
		if _, err := nilConn.Create(ctx, "/x", nil, 0, nil); !errors.Is(err, zoo.ErrBadArguments) {
			t.Fatalf("nil Conn: %v", err)
		}
		if _, _, err := nilConn.Get(ctx, "/x", false); !errors.Is(err, zoo.ErrBadArguments) {
			t.Fatalf("nil Conn: %v", err)
		}
		if _, err := nilConn.Multi(ctx, zoo.CheckOp{Path: "/"}); !errors.Is(err, zoo.ErrBadArguments) {
			t.Fatalf("nil Conn: %v", err)
		}
		if err := nilConn.Close(); !errors.Is(err, zoo.ErrBadArguments) || nilConn.State() != StateClosed {
			t.Fatalf("nil Conn Close: %v", err)
		}
		//lint:ignore SA1012 a nil Context is bad input to refuse, not to crash on
		if _, _, err := c.Get(nil, "/", false); !errors.Is(err, zoo.ErrBadArguments) {
			t.Fatalf("nil Context: %v", err)
		}
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, _, err := c.Get(cctx, "/", false); !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled context: %v", err)
		}
	})
}

func TestMulti(t *testing.T) {
	t.Parallel()
	_, addr := single(t, zkwire.Config{})
	c, _ := connect(t, []string{addr}, Options{})
	ctx := testkit.Context(t)
	mustCreate(t, c, "/t", []byte("0"))

	res, err := c.Multi(ctx,
		zoo.CreateOp{Path: "/t/a", Data: []byte("a")},
		zoo.CreateOp{Path: "/t/a/s-", Mode: zoo.ModePersistentSequential},
		zoo.CreateOp{Path: "/t/box", Mode: zoo.ModeContainer},
		zoo.SetDataOp{Path: "/t", Data: []byte("1"), Version: 0},
		zoo.CheckOp{Path: "/t", Version: 1},
		zoo.DeleteOp{Path: "/t/a/s-0000000000", Version: -1},
	)
	if err != nil || len(res) != 6 {
		t.Fatalf("multi = %+v %v", res, err)
	}
	if res[0].Path != "/t/a" || res[1].Path != "/t/a/s-0000000000" || res[2].Path != "/t/box" || res[2].Stat == nil ||
		res[3].Stat == nil || res[3].Stat.Version != 1 || res[4].Err != nil || res[5].Err != nil {
		t.Fatalf("multi results %+v", res)
	}
	// One zxid for the whole transaction.
	if res[2].Stat.Czxid != res[3].Stat.Mzxid {
		t.Fatalf("multi zxids %d and %d differ", res[2].Stat.Czxid, res[3].Stat.Mzxid)
	}

	res, err = c.Multi(ctx,
		zoo.CreateOp{Path: "/t/b"},
		zoo.CheckOp{Path: "/t", Version: 7},
		zoo.DeleteOp{Path: "/t/a", Version: -1},
	)
	isPathErr(t, err, "/t", zoo.ErrBadVersion)
	if len(res) != 3 || res[0].Err != zoo.ErrRolledBack || !errors.Is(res[1].Err, zoo.ErrBadVersion) ||
		!errors.Is(res[2].Err, zoo.ErrRuntimeInconsistency) {
		t.Fatalf("failed multi results %+v", res)
	}
	if ok, _, _ := c.Exists(ctx, "/t/b", false); ok {
		t.Fatal("a failed multi created /t/b")
	}
	if res, err := c.Multi(ctx); err != nil || len(res) != 0 {
		t.Fatalf("empty multi = %+v %v", res, err)
	}

	rres, err := c.MultiRead(ctx, zoo.GetDataOp{Path: "/t"}, zoo.GetChildrenOp{Path: "/t"}, zoo.GetDataOp{Path: "/nope"},
		zoo.GetChildrenOp{Path: "/t/a"})
	if err != nil || len(rres) != 4 {
		t.Fatalf("multiRead = %+v %v", rres, err)
	}
	slices.Sort(rres[1].Children)
	if string(rres[0].Data) != "1" || rres[0].Stat.Version != 1 || !slices.Equal(rres[1].Children, []string{"a", "box"}) ||
		!errors.Is(rres[2].Err, zoo.ErrNoNode) || rres[3].Children == nil || len(rres[3].Children) != 0 {
		t.Fatalf("multiRead results %+v", rres)
	}
}

func TestChroot(t *testing.T) {
	t.Parallel()
	_, addr := single(t, zkwire.Config{})
	root, _ := connect(t, []string{addr}, Options{})
	ctx := testkit.Context(t)
	mustCreate(t, root, "/app", nil)
	mustCreate(t, root, "/apple", nil)
	if _, err := root.Create(ctx, "/apple/eph", nil, zoo.ModeEphemeral, nil); err != nil {
		t.Fatal(err)
	}

	c, rec := connect(t, []string{addr}, Options{Chroot: "/app"})
	// Paths in.
	if p, err := c.Create(ctx, "/x", []byte("1"), zoo.ModePersistent, nil); err != nil || p != "/x" {
		t.Fatalf("create under chroot = %q %v", p, err)
	}
	if data, _, err := root.Get(ctx, "/app/x", false); err != nil || string(data) != "1" {
		t.Fatalf("node under chroot seen from / = %q %v", data, err)
	}
	if names, err := c.Children(ctx, "/", false); err != nil || !slices.Equal(names, []string{"x"}) {
		t.Fatalf("children of the chroot = %q %v", names, err)
	}
	if _, st, err := c.Get(ctx, "/", false); err != nil || st.NumChildren != 1 {
		t.Fatalf("get of the chroot = %+v %v", st, err)
	}
	// Paths out: created paths, sequential, create2, multi.
	if p, err := c.Create(ctx, "/x/s-", nil, zoo.ModePersistentSequential, nil); err != nil || p != "/x/s-0000000000" {
		t.Fatalf("sequential under chroot = %q %v", p, err)
	}
	if p, _, err := c.CreateWithStat(ctx, zoo.CreateOp{Path: "/e", Mode: zoo.ModeEphemeral}); err != nil || p != "/e" {
		t.Fatalf("create2 under chroot = %q %v", p, err)
	}
	res, err := c.Multi(ctx, zoo.CreateOp{Path: "/m"}, zoo.CreateOp{Path: "/box", Mode: zoo.ModeContainer})
	if err != nil || res[0].Path != "/m" || res[1].Path != "/box" {
		t.Fatalf("multi under chroot = %+v %v", res, err)
	}
	rres, err := c.MultiRead(ctx, zoo.GetDataOp{Path: "/x"})
	if err != nil || string(rres[0].Data) != "1" {
		t.Fatalf("multiRead under chroot = %+v %v", rres, err)
	}
	// getEphemerals: rooted at the chroot, /apple's ephemeral left out.
	if eph, err := c.GetEphemerals(ctx, "/"); err != nil || !slices.Equal(eph, []string{"/e"}) {
		t.Fatalf("getEphemerals under chroot = %q %v", eph, err)
	}
	if n, err := c.AllChildrenNumber(ctx, "/"); err != nil || n != 5 { // x, x/s-0000000000, e, m, box
		t.Fatalf("getAllChildrenNumber under chroot = %d %v", n, err)
	}
	// Events carry client paths.
	if _, _, err := c.Get(ctx, "/x", true); err != nil {
		t.Fatal(err)
	}
	if err := c.AddWatch(ctx, "/", zoo.WatchPersistentRecursive); err != nil {
		t.Fatal(err)
	}
	if _, err := root.Set(ctx, "/app/x", []byte("2"), -1); err != nil {
		t.Fatal(err)
	}
	rec.waitEvent(t, zoo.EventNodeDataChanged, "/x")
	if _, err := root.Create(ctx, "/app/new", nil, zoo.ModePersistent, nil); err != nil {
		t.Fatal(err)
	}
	rec.waitEvent(t, zoo.EventNodeCreated, "/new")
	// The chroot node itself is "/".
	if _, err := root.Set(ctx, "/app", []byte("r"), -1); err != nil {
		t.Fatal(err)
	}
	rec.waitEvent(t, zoo.EventNodeDataChanged, "/")
	if err := c.Sync(ctx, "/x"); err != nil {
		t.Fatal(err)
	}
	if err := c.RemoveWatches(ctx, "/", zoo.WatcherAny, false); err != nil {
		t.Fatal(err)
	}
	rec.waitEvent(t, EventPersistentWatchRemoved, "/")
	// getConfig is outside the chroot.
	if _, _, err := c.GetConfig(ctx, true); err != nil {
		t.Fatalf("getConfig under chroot: %v", err)
	}
	// A chroot that does not exist: every path is missing.
	gone, _ := connect(t, []string{addr}, Options{Chroot: "/nowhere"})
	if _, err := gone.Create(ctx, "/x", nil, zoo.ModePersistent, nil); !errors.Is(err, zoo.ErrNoNode) {
		t.Fatalf("create under a missing chroot: %v", err)
	}
}

func TestConnectValidates(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		servers []string
		opts    Options
	}{
		{"no servers", nil, Options{}},
		{"empty server", []string{""}, Options{}},
		{"bad server", []string{"a:b:c"}, Options{}},
		{"no host", []string{":2181"}, Options{}},
		{"relative chroot", []string{"h:1"}, Options{Chroot: "app"}},
		{"chroot with trailing slash", []string{"h:1"}, Options{Chroot: "/app/"}},
		{"negative timeout", []string{"h:1"}, Options{SessionTimeout: -1}},
		{"huge timeout", []string{"h:1"}, Options{SessionTimeout: 1000 * time.Hour}},
		{"negative dial timeout", []string{"h:1"}, Options{DialTimeout: -1}},
		{"negative frame size", []string{"h:1"}, Options{MaxFrameSize: -1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Connect(tc.servers, tc.opts)
			if c != nil || !errors.Is(err, zoo.ErrBadArguments) {
				t.Fatalf("Connect = %v, %v; want ErrBadArguments", c, err)
			}
		})
	}
	// A port may be left out.
	c, err := Connect([]string{"localhost", "[::1]"}, Options{Chroot: "/"})
	if err != nil || !slices.Equal(c.servers, []string{"localhost:2181", "[::1]:2181"}) || c.chroot != "" {
		t.Fatalf("Connect = %v %v", c, err)
	}
	c.Close()

	servers, chroot, err := ParseConnectString("a:1, b:2,c/app/x")
	if err != nil || !slices.Equal(servers, []string{"a:1", "b:2", "c:2181"}) || chroot != "/app/x" {
		t.Fatalf("ParseConnectString = %q %q %v", servers, chroot, err)
	}
	for _, bad := range []string{"", "/app", "a:1/app/", "a:1:2"} {
		if _, _, err := ParseConnectString(bad); !errors.Is(err, zoo.ErrBadArguments) {
			t.Errorf("ParseConnectString(%q): %v", bad, err)
		}
	}
}

// Requests made before the session exists wait for it; after Close every
// call fails with ErrClosed, and Close is idempotent.
func TestConnectInBackgroundAndClose(t *testing.T) {
	t.Parallel()
	ens := openSingle(t, zoo.Config{})
	ln, addr := listenLater(t)
	rec := &recorder{}
	c, err := Connect([]string{addr}, Options{SessionTimeout: testSessionTTL, OnEvent: rec.onEvent})
	if err != nil {
		t.Fatal(err)
	}
	if st := c.State(); st != StateConnecting {
		t.Fatalf("state before any server answered: %v", st)
	}
	ctx := testkit.Context(t)
	done := make(chan error, 1)
	go func() {
		_, err := c.Create(ctx, "/early", []byte("e"), zoo.ModeEphemeral, nil)
		done <- err
	}()
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	if _, _, err := c.Get(short, "/", false); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("request without a session: %v", err)
	}
	cancel()
	srv, err := zkwire.NewServer(ens, zkwire.Config{})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln())
	t.Cleanup(func() { srv.Close() })
	if err := <-done; err != nil {
		t.Fatalf("request made before the session: %v", err)
	}
	if c.State() != StateConnected || c.SessionID() == 0 || len(c.Password()) != 16 || c.Server() != addr || c.SessionTimeout() <= 0 {
		t.Fatalf("state %v id %x password %x server %q timeout %v", c.State(), c.SessionID(), c.Password(), c.Server(), c.SessionTimeout())
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, _, err := c.Get(ctx, "/", false); !errors.Is(err, zoo.ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
	if st := rec.states(); len(st) != 2 || st[0] != StateConnected || st[1] != StateClosed || c.State() != StateClosed {
		t.Fatalf("states %v, now %v", st, c.State())
	}
	// closeSession deleted the ephemeral at once.
	s, err := ens.NewSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(ctx)
	if ok, _, err := s.Exists(ctx, "/early"); err != nil || ok {
		t.Fatalf("ephemeral after Close: %v %v", ok, err)
	}
	// A Conn that never connected closes too.
	never, err := Connect([]string{"127.0.0.1:1"}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := never.Close(); err != nil || never.State() != StateClosed {
		t.Fatalf("Close of a Conn that never connected: %v %v", err, never.State())
	}
}

// listenLater reserves a port and returns a func that listens on it.
func listenLater(t *testing.T) (func() net.Listener, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return func() net.Listener {
		var l net.Listener
		testkit.Eventually(t, waitLong, "listen on "+addr, func() bool {
			l, err = net.Listen("tcp", addr)
			return err == nil
		})
		return l
	}, addr
}

// Reconfig's request decodes as zkwire (and ZooKeeper) expects: server
// lists comma-joined, empty lists null.
func TestReconfig(t *testing.T) {
	t.Parallel()
	super := zoo.DigestID("super", "secret")
	cl := &cluster{Cluster: zootest.New(t, 3, zootest.Options{Configure: func(_ int, cfg *zoo.Config) { cfg.SuperDigest = super }})}
	for i := 0; i < 3; i++ {
		if err := cl.Replica(i).WaitServing(testkit.Context(t)); err != nil {
			t.Fatal(err)
		}
		_, addr := serve(t, cl.Replica(i), zkwire.Config{ReconfigEnabled: true})
		cl.addrs = append(cl.addrs, addr)
	}
	leader := cl.WaitLeader()
	here := (leader + 1) % 3
	c, _ := connect(t, cl.addrs[here:here+1], Options{})
	ctx := testkit.Context(t)
	observer := []string{"server.4=127.0.0.1:7004:7005:observer;7006"}
	if _, _, err := c.Reconfig(ctx, observer, nil, nil, -1); !errors.Is(err, zoo.ErrNoAuth) {
		t.Fatalf("reconfig without the super user: %v", err)
	}
	if err := c.AddAuth(ctx, "digest", []byte("super:secret")); err != nil {
		t.Fatal(err)
	}
	data, _, err := c.Reconfig(ctx, observer, nil, nil, -1)
	if err != nil || !strings.Contains(string(data), "server.4=127.0.0.1:7004:observer") || !strings.Contains(string(data), "version=") {
		t.Fatalf("reconfig add = %q %v", data, err)
	}
	if _, _, err := c.Reconfig(ctx, nil, []string{"4"}, nil, 12345); !errors.Is(err, zoo.ErrBadVersion) {
		t.Fatalf("reconfig at a stale version: %v", err)
	}
	if _, _, err := c.Reconfig(ctx, nil, []string{"1", "2", "3"}, nil, -1); !errors.Is(err, zoo.ErrBadArguments) {
		t.Fatalf("reconfig leaving no participant: %v", err)
	}
	data, _, err = c.Reconfig(ctx, nil, []string{"4"}, nil, -1)
	if err != nil || strings.Contains(string(data), "server.4") {
		t.Fatalf("reconfig remove = %q %v", data, err)
	}
}
