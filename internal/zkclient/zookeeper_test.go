package zkclient

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/zooraft/zoo"
	"github.com/zooraft/zoo/internal/realzk"
	"github.com/zooraft/zoo/internal/testkit"
)

// These tests run the client against a real Apache ZooKeeper (Debian's
// zookeeper package, 3.8), to prove it speaks the real protocol and not
// only zkwire's reading of it.

func TestAgainstZooKeeper(t *testing.T) {
	t.Parallel()
	addr := realzk.Standalone(t, 500*time.Millisecond, "zookeeper.extendedTypesEnabled=true") // sessions negotiate into [1s, 10s]
	ctx := testkit.Context(t)

	t.Run("ops", func(t *testing.T) {
		c, _ := connect(t, []string{addr}, Options{})
		p, err := c.Create(ctx, "/a", []byte("x"), zoo.ModePersistent, nil)
		if err != nil || p != "/a" {
			t.Fatalf("create = %q %v", p, err)
		}
		_, err = c.Create(ctx, "/a", nil, zoo.ModePersistent, nil)
		isPathErr(t, err, "/a", zoo.ErrNodeExists)
		data, st, err := c.Get(ctx, "/a", false)
		if err != nil || string(data) != "x" || st.Version != 0 || st.DataLength != 1 || st.Czxid == 0 {
			t.Fatalf("get = %q %+v %v", data, st, err)
		}
		mustCreate(t, c, "/null", nil)
		if data, _, err := c.Get(ctx, "/null", false); err != nil || data != nil {
			t.Fatalf("null data = %#v %v", data, err)
		}
		st2, err := c.Set(ctx, "/a", []byte("yy"), 0)
		if err != nil || st2.Version != 1 {
			t.Fatalf("set = %+v %v", st2, err)
		}
		_, err = c.Set(ctx, "/a", nil, 0)
		isPathErr(t, err, "/a", zoo.ErrBadVersion)
		if ok, st3, err := c.Exists(ctx, "/a", false); err != nil || !ok || st3 != st2 {
			t.Fatalf("exists = %v %+v %v", ok, st3, err)
		}
		if ok, _, err := c.Exists(ctx, "/nope", false); err != nil || ok {
			t.Fatalf("exists /nope = %v %v", ok, err)
		}
		_, _, err = c.Get(ctx, "/nope", false)
		isPathErr(t, err, "/nope", zoo.ErrNoNode)

		p, err = c.Create(ctx, "/a/s-", nil, zoo.ModePersistentSequential, nil)
		if err != nil || p != "/a/s-0000000000" {
			t.Fatalf("sequential = %q %v", p, err)
		}
		p, st, err = c.CreateWithStat(ctx, zoo.CreateOp{Path: "/a/e", Mode: zoo.ModeEphemeral})
		if err != nil || p != "/a/e" || st.EphemeralOwner != c.SessionID() {
			t.Fatalf("create2 ephemeral = %q %+v %v", p, st, err)
		}
		_, err = c.Create(ctx, "/a/e/kid", nil, zoo.ModePersistent, nil)
		isPathErr(t, err, "/a/e/kid", zoo.ErrNoChildrenForEphemerals)
		if p, err := c.Create(ctx, "/a/box", nil, zoo.ModeContainer, nil); err != nil || p != "/a/box" {
			t.Fatalf("container = %q %v", p, err)
		}
		if p, _, err := c.CreateWithStat(ctx, zoo.CreateOp{Path: "/a/ttl", Mode: zoo.ModePersistentWithTTL, TTL: time.Hour}); err != nil || p != "/a/ttl" {
			t.Fatalf("createTTL = %q %v", p, err)
		}
		names, err := c.Children(ctx, "/a", false)
		slices.Sort(names)
		if err != nil || !slices.Equal(names, []string{"box", "e", "s-0000000000", "ttl"}) {
			t.Fatalf("children = %q %v", names, err)
		}
		names, st, err = c.ChildrenWithStat(ctx, "/a", false)
		if err != nil || len(names) != 4 || st.NumChildren != 4 {
			t.Fatalf("children2 = %q %+v %v", names, st, err)
		}
		if n, err := c.AllChildrenNumber(ctx, "/a"); err != nil || n != 4 {
			t.Fatalf("getAllChildrenNumber = %d %v", n, err)
		}
		if eph, err := c.GetEphemerals(ctx, "/"); err != nil || !slices.Equal(eph, []string{"/a/e"}) {
			t.Fatalf("getEphemerals = %q %v", eph, err)
		}
		isPathErr(t, c.Delete(ctx, "/a", -1), "/a", zoo.ErrNotEmpty)
		isPathErr(t, c.Delete(ctx, "/a/s-0000000000", 3), "/a/s-0000000000", zoo.ErrBadVersion)
		if err := c.Delete(ctx, "/a/s-0000000000", 0); err != nil {
			t.Fatal(err)
		}
		acl, _, err := c.GetACL(ctx, "/a")
		if err != nil || !slices.Equal(acl, zoo.OpenACL) {
			t.Fatalf("getACL = %+v %v", acl, err)
		}
		if st, err := c.SetACL(ctx, "/a", zoo.ReadACL, 0); err != nil || st.Aversion != 1 {
			t.Fatalf("setACL = %+v %v", st, err)
		}
		_, err = c.Set(ctx, "/a", nil, -1)
		isPathErr(t, err, "/a", zoo.ErrNoAuth)
		if err := c.Sync(ctx, "/a"); err != nil {
			t.Fatal(err)
		}
		if _, _, err := c.GetConfig(ctx, true); err != nil {
			t.Fatalf("getConfig: %v", err)
		}
		if _, _, err := c.Reconfig(ctx, nil, []string{"2"}, nil, -1); !errors.Is(err, zoo.ErrReconfigDisabled) && !errors.Is(err, zoo.ErrUnimplemented) {
			t.Fatalf("reconfig on a standalone server: %v", err)
		}
		ids, err := c.WhoAmI(ctx)
		if err != nil || !slices.Contains(ids, zoo.ID{Scheme: "ip", ID: "127.0.0.1"}) {
			t.Fatalf("whoAmI = %+v %v", ids, err)
		}
	})

	t.Run("multi", func(t *testing.T) {
		c, _ := connect(t, []string{addr}, Options{})
		mustCreate(t, c, "/m", []byte("0"))
		res, err := c.Multi(ctx,
			zoo.CreateOp{Path: "/m/a"},
			zoo.CreateOp{Path: "/m/box", Mode: zoo.ModeContainer},
			zoo.SetDataOp{Path: "/m", Data: []byte("1"), Version: 0},
			zoo.CheckOp{Path: "/m", Version: 1},
			zoo.DeleteOp{Path: "/m/a", Version: 0},
		)
		if err != nil || len(res) != 5 || res[0].Path != "/m/a" || res[1].Path != "/m/box" || res[1].Stat == nil ||
			res[2].Stat == nil || res[2].Stat.Version != 1 {
			t.Fatalf("multi = %+v %v", res, err)
		}
		res, err = c.Multi(ctx, zoo.CreateOp{Path: "/m/b"}, zoo.CheckOp{Path: "/m", Version: 9}, zoo.DeleteOp{Path: "/m", Version: -1})
		isPathErr(t, err, "/m", zoo.ErrBadVersion)
		if len(res) != 3 || res[0].Err != zoo.ErrRolledBack || !errors.Is(res[1].Err, zoo.ErrBadVersion) ||
			!errors.Is(res[2].Err, zoo.ErrRuntimeInconsistency) {
			t.Fatalf("failed multi results %+v", res)
		}
		rres, err := c.MultiRead(ctx, zoo.GetDataOp{Path: "/m"}, zoo.GetChildrenOp{Path: "/m"}, zoo.GetDataOp{Path: "/nope"})
		if err != nil || len(rres) != 3 || string(rres[0].Data) != "1" || !slices.Equal(rres[1].Children, []string{"box"}) ||
			!errors.Is(rres[2].Err, zoo.ErrNoNode) {
			t.Fatalf("multiRead = %+v %v", rres, err)
		}
	})

	t.Run("watches", func(t *testing.T) {
		r := &recorder{delay: 20 * time.Millisecond}
		c, _ := connect(t, []string{addr}, Options{OnEvent: r.onEvent})
		mustCreate(t, c, "/w", nil)
		if _, _, err := c.Get(ctx, "/w", true); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Set(ctx, "/w", []byte("1"), -1); err != nil {
			t.Fatal(err)
		}
		if !r.has(zoo.EventNodeDataChanged, "/w") {
			t.Fatalf("the notification was not handled before the reply: %v", r.nodeEvents())
		}
		if err := c.AddWatch(ctx, "/w", zoo.WatchPersistentRecursive); err != nil {
			t.Fatal(err)
		}
		if err := c.CheckWatches(ctx, "/w", zoo.WatcherAny); err != nil {
			t.Fatalf("checkWatches: %v", err)
		}
		mustCreate(t, c, "/w/a", nil)
		mustCreate(t, c, "/w/a/b", nil)
		if err := c.Delete(ctx, "/w/a/b", -1); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, ev := range r.nodeEvents()[1:] {
			got = append(got, ev.String())
		}
		if want := []string{"NodeCreated /w/a", "NodeCreated /w/a/b", "NodeDeleted /w/a/b"}; !slices.Equal(got, want) {
			t.Fatalf("recursive watch events %q, want %q", got, want)
		}
		if err := c.RemoveWatches(ctx, "/w", zoo.WatcherAny, false); err != nil {
			t.Fatal(err)
		}
		r.waitEvent(t, EventPersistentWatchRemoved, "/w")
		isPathErr(t, c.CheckWatches(ctx, "/w", zoo.WatcherAny), "/w", zoo.ErrNoWatcher)
		isPathErr(t, c.RemoveWatches(ctx, "/w", zoo.WatcherData, false), "/w", zoo.ErrNoWatcher)
	})

	t.Run("auth", func(t *testing.T) {
		c, _ := connect(t, []string{addr}, Options{})
		if err := c.AddAuth(ctx, "digest", []byte("alice:secret")); err != nil {
			t.Fatal(err)
		}
		ids, err := c.WhoAmI(ctx)
		if err != nil || !slices.Contains(ids, zoo.ID{Scheme: "digest", ID: "alice"}) {
			t.Fatalf("whoAmI = %+v %v", ids, err)
		}
		if _, err := c.Create(ctx, "/secret", nil, zoo.ModePersistent, zoo.CreatorACL); err != nil {
			t.Fatal(err)
		}
		other, _ := connect(t, []string{addr}, Options{})
		_, _, err = other.Get(ctx, "/secret", false)
		isPathErr(t, err, "/secret", zoo.ErrNoAuth)

		bad, r := connect(t, []string{addr}, Options{})
		if err := bad.AddAuth(ctx, "bogus", []byte("x")); !errors.Is(err, zoo.ErrAuthFailed) {
			t.Fatalf("unknown auth scheme: %v", err)
		}
		testkit.Eventually(t, waitLong, "AuthFailed", func() bool { return r.count(StateAuthFailed) == 1 })
	})

	t.Run("chroot", func(t *testing.T) {
		root, _ := connect(t, []string{addr}, Options{})
		mustCreate(t, root, "/app", nil)
		c, r := connect(t, []string{addr}, Options{Chroot: "/app"})
		if p, err := c.Create(ctx, "/x-", nil, zoo.ModeEphemeralSequential, nil); err != nil || p != "/x-0000000000" {
			t.Fatalf("create under chroot = %q %v", p, err)
		}
		if ok, _, err := root.Exists(ctx, "/app/x-0000000000", false); err != nil || !ok {
			t.Fatalf("node under chroot from /: %v %v", ok, err)
		}
		if eph, err := c.GetEphemerals(ctx, "/"); err != nil || !slices.Equal(eph, []string{"/x-0000000000"}) {
			t.Fatalf("getEphemerals under chroot = %q %v", eph, err)
		}
		if ok, _, err := c.Exists(ctx, "/y", true); err != nil || ok {
			t.Fatal(ok, err)
		}
		mustCreate(t, root, "/app/y", nil)
		r.waitEvent(t, zoo.EventNodeCreated, "/y")
	})

	t.Run("pipelining", func(t *testing.T) {
		c, _ := connect(t, []string{addr}, Options{})
		mustCreate(t, c, "/p", nil)
		var wg sync.WaitGroup
		errs := make(chan error, 16)
		for g := range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				p := fmt.Sprintf("/p/%d", g)
				if _, err := c.Create(ctx, p, nil, zoo.ModePersistent, nil); err != nil {
					errs <- err
					return
				}
				for i := int32(0); i < 20; i++ {
					if st, err := c.Set(ctx, p, nil, i); err != nil || st.Version != i+1 {
						errs <- fmt.Errorf("set %s #%d: %+v %v", p, i, st, err)
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	})

	t.Run("resume and re-arm", func(t *testing.T) {
		g := &gate{}
		c, r := connect(t, []string{addr}, Options{Dialer: g.dial})
		other, _ := connect(t, []string{addr}, Options{})
		sid := c.SessionID()
		mustCreate(t, c, "/r", nil)
		mustCreate(t, c, "/r2", nil)
		if _, _, err := c.Get(ctx, "/r", true); err != nil {
			t.Fatal(err)
		}
		if err := c.AddWatch(ctx, "/r2", zoo.WatchPersistent); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Create(ctx, "/r/eph", nil, zoo.ModeEphemeral, nil); err != nil {
			t.Fatal(err)
		}
		g.set(true)
		g.cut()
		testkit.Eventually(t, waitLong, "disconnected", func() bool { return c.State() == StateDisconnected })
		if _, err := other.Set(ctx, "/r", []byte("changed"), -1); err != nil {
			t.Fatal(err)
		}
		g.set(false)
		r.waitEvent(t, zoo.EventNodeDataChanged, "/r") // catch-up from setWatches
		if c.SessionID() != sid {
			t.Fatalf("session changed from %x to %x", sid, c.SessionID())
		}
		if ok, st, err := c.Exists(ctx, "/r/eph", false); err != nil || !ok || st.EphemeralOwner != sid {
			t.Fatalf("ephemeral after resuming: %v %+v %v", ok, st, err)
		}
		if _, err := other.Set(ctx, "/r2", []byte("x"), -1); err != nil {
			t.Fatal(err)
		}
		r.waitEvent(t, zoo.EventNodeDataChanged, "/r2") // the persistent watch was re-armed (setWatches2)
	})

	t.Run("many watches re-armed", func(t *testing.T) { manyWatchesRearmed(t, addr) })

	t.Run("expiry", func(t *testing.T) {
		g := &gate{}
		c, r := connect(t, []string{addr}, Options{SessionTimeout: 2 * time.Second, Dialer: g.dial})
		if _, err := c.Create(ctx, "/gone-soon", nil, zoo.ModeEphemeral, nil); err != nil {
			t.Fatal(err)
		}
		other, _ := connect(t, []string{addr}, Options{})
		g.set(true)
		g.cut()
		testkit.Eventually(t, waitLong, "the session's ephemeral is deleted", func() bool {
			ok, _, err := other.Exists(ctx, "/gone-soon", false)
			return err == nil && !ok
		})
		g.set(false)
		testkit.Eventually(t, waitLong, "expired", func() bool { return c.State() == StateExpired })
		if _, _, err := c.Get(ctx, "/", false); !errors.Is(err, zoo.ErrSessionExpired) {
			t.Fatalf("after expiry: %v", err)
		}
		if r.count(StateExpired) != 1 {
			t.Fatalf("states %v", r.states())
		}
	})

	t.Run("close deletes ephemerals", func(t *testing.T) {
		c, _ := connect(t, []string{addr}, Options{})
		other, _ := connect(t, []string{addr}, Options{})
		if _, err := c.Create(ctx, "/bye", nil, zoo.ModeEphemeral, nil); err != nil {
			t.Fatal(err)
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		if ok, _, err := other.Exists(ctx, "/bye", false); err != nil || ok {
			t.Fatalf("ephemeral after Close: %v %v", ok, err)
		}
	})
}
