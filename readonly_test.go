package zoo_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/zooraft/zoo"
	"github.com/zooraft/zoo/internal/testkit"
	"github.com/zooraft/zoo/zootest"
)

// A read-only session on a replica cut off from its quorum reads the tree it
// has, refuses every write and Sync, and is not replicated.
func TestReadOnlySessionOnIsolatedReplica(t *testing.T) {
	c := newCluster(t, 3, zootest.Options{})
	ctx := testkit.Context(t)
	leader := c.WaitLeader()
	f := followers(c, leader)[0]
	rw := sess(t, c, f)
	mustCreate(t, ctx, rw, "/app", []byte("v1"), zoo.ModePersistent)
	mustCreate(t, ctx, rw, "/app/a", nil, zoo.ModePersistent)
	mustCreate(t, ctx, rw, "/app/b", nil, zoo.ModeEphemeral)
	sessions := mustStatus(t, c.Replica(f)).LocalSessions

	c.Isolate(f)
	testkit.Eventually(t, 10*time.Second, "the isolated replica stops serving", func() bool {
		return !c.Replica(f).Serving()
	})
	if _, _, err := rw.Get(ctx, "/app"); !errors.Is(err, zoo.ErrNotServing) {
		t.Fatalf("read-write session on an isolated replica: %v, want ErrNotServing", err)
	}

	ro, err := c.Replica(f).ReadOnlySession(0, nil, nil, zoo.WithSessionTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if !ro.ReadOnly() {
		t.Fatal("ReadOnly() of a read-only handle = false")
	}
	if ro.ID() >= 0 || len(ro.Password()) != 16 || ro.Timeout() < time.Second || ro.State() != zoo.StateConnected {
		t.Fatalf("local session: id %d, password %x, timeout %v, state %v", ro.ID(), ro.Password(), ro.Timeout(), ro.State())
	}
	if got := mustStatus(t, c.Replica(f)).LocalSessions; got != sessions {
		t.Fatalf("LocalSessions %d after ReadOnlySession, want %d (it is not replicated)", got, sessions)
	}

	t.Run("reads", func(t *testing.T) {
		if data, st, err := ro.Get(ctx, "/app"); err != nil || string(data) != "v1" || st.NumChildren != 2 {
			t.Fatalf("Get: %q %+v %v", data, st, err)
		}
		if ok, _, err := ro.Exists(ctx, "/app/a"); err != nil || !ok {
			t.Fatalf("Exists: %v %v", ok, err)
		}
		if names, _, err := ro.Children(ctx, "/app"); err != nil || !slices.Equal(names, []string{"a", "b"}) {
			t.Fatalf("Children: %v %v", names, err)
		}
		if _, _, err := ro.GetACL(ctx, "/app"); err != nil {
			t.Fatalf("GetACL: %v", err)
		}
		res, err := ro.MultiRead(ctx, zoo.GetDataOp{Path: "/app"}, zoo.GetChildrenOp{Path: "/nope"})
		if err != nil || string(res[0].Data) != "v1" || !errors.Is(res[1].Err, zoo.ErrNoNode) {
			t.Fatalf("MultiRead: %+v %v", res, err)
		}
		if n, err := ro.AllChildrenNumber(ctx, "/app"); err != nil || n != 2 {
			t.Fatalf("AllChildrenNumber: %d %v", n, err)
		}
		if eph, err := ro.GetEphemerals(ctx, "/"); err != nil || len(eph) != 0 {
			t.Fatalf("GetEphemerals of a local session: %v %v", eph, err)
		}
		if _, _, _, err := ro.GetW(ctx, "/app"); err != nil {
			t.Fatalf("GetW: %v", err)
		}
		if err := ro.CheckAccess(ctx, "/app", zoo.PermRead); err != nil {
			t.Fatalf("CheckAccess: %v", err)
		}
	})

	t.Run("writes", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			call func() error
		}{
			{"Create", func() error { _, err := ro.Create(ctx, "/ro", nil, zoo.ModePersistent, nil); return err }},
			{"Set", func() error { _, err := ro.Set(ctx, "/app", []byte("v2"), -1); return err }},
			{"Delete", func() error { return ro.Delete(ctx, "/app/a", -1) }},
			{"SetACL", func() error { _, err := ro.SetACL(ctx, "/app", zoo.OpenACL, -1); return err }},
			{"Multi", func() error { _, err := ro.Multi(ctx, zoo.CheckOp{Path: "/app", Version: -1}); return err }},
			{"empty Multi", func() error { _, err := ro.Multi(ctx); return err }},
			{"Sync", func() error { return ro.Sync(ctx, "/") }},
		} {
			if err := tc.call(); !errors.Is(err, zoo.ErrNotReadOnly) {
				t.Errorf("%s: %v, want ErrNotReadOnly", tc.name, err)
			}
		}
	})

	if err := ro.Close(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ro.Done():
	default:
		t.Fatal("Done not closed after Close")
	}
	if _, _, err := ro.Get(ctx, "/app"); !errors.Is(err, zoo.ErrClosed) {
		t.Fatalf("Get after Close: %v, want ErrClosed", err)
	}
	if _, err := ro.Create(ctx, "/ro", nil, zoo.ModePersistent, nil); !errors.Is(err, zoo.ErrClosed) {
		t.Fatalf("Create after Close: %v, want ErrClosed", err)
	}

	c.Heal()
	tree := assertAllAgree(t, ctx, c)
	if n := tree["/app"]; n.Data != "v1" || n.Stat.Version != 0 {
		t.Fatalf("/app changed by a read-only session: %+v", n)
	}
	if _, ok := tree["/ro"]; ok {
		t.Fatal("a read-only session's create was applied")
	}
}

// A client that had a read-write session keeps its id on a read-only handle;
// ending the handle does not end the session.
func TestReadOnlySessionContinuesExistingSession(t *testing.T) {
	c := newCluster(t, 1, zootest.Options{})
	ctx := testkit.Context(t)
	e := c.Replica(0)
	rw := serverSess(t, c, 0, nil)
	if rw.ReadOnly() {
		t.Fatal("ReadOnly() of a read-write handle = true")
	}
	mustCreate(t, ctx, rw.Session, "/mine", nil, zoo.ModeEphemeral)

	bad := rw.Password()
	bad[0] ^= 1
	if _, err := e.ReadOnlySession(rw.ID(), bad, nil); !errors.Is(err, zoo.ErrSessionExpired) {
		t.Fatalf("wrong password: %v, want ErrSessionExpired", err)
	}
	if _, err := e.ReadOnlySession(rw.ID()+1000, rw.Password(), nil); !errors.Is(err, zoo.ErrSessionExpired) {
		t.Fatalf("unknown session: %v, want ErrSessionExpired", err)
	}
	ro, err := e.ReadOnlySession(rw.ID(), rw.Password(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if ro.ID() != rw.ID() || !slices.Equal(ro.Password(), rw.Password()) || ro.Timeout() != rw.Timeout() {
		t.Fatalf("continued session: id %d timeout %v, want %d %v", ro.ID(), ro.Timeout(), rw.ID(), rw.Timeout())
	}
	if eph, err := ro.GetEphemerals(ctx, "/"); err != nil || !slices.Equal(eph, []string{"/mine"}) {
		t.Fatalf("GetEphemerals: %v %v", eph, err)
	}
	ro.Detach()
	if err := ro.Close(ctx); err != nil {
		t.Fatalf("Close after Detach: %v", err)
	}
	if err := rw.Err(); err != nil {
		t.Fatalf("the session ended with its read-only handle: %v", err)
	}
	if ok, _, err := rw.Exists(ctx, "/mine"); err != nil || !ok {
		t.Fatalf("the session's ephemeral after the read-only handle ended: %v %v", ok, err)
	}
}

// Close of the replica ends its read-only handles.
func TestReadOnlySessionEndsWithReplica(t *testing.T) {
	c := newCluster(t, 1, zootest.Options{})
	e := c.Replica(0)
	ro, err := e.ReadOnlySession(0, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Stop(0)
	select {
	case <-ro.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("read-only handle not ended by Close")
	}
	if !errors.Is(ro.Err(), zoo.ErrClosed) || ro.State() != zoo.StateClosed {
		t.Fatalf("after Close: Err %v, State %v", ro.Err(), ro.State())
	}
	if _, err := e.ReadOnlySession(0, nil, nil); !errors.Is(err, zoo.ErrClosed) {
		t.Fatalf("ReadOnlySession on a closed replica: %v, want ErrClosed", err)
	}
}

func TestCheckAccess(t *testing.T) {
	super := zoo.DigestID("super", "secret")
	c := newCluster(t, 1, zootest.Options{Configure: func(_ int, cfg *zoo.Config) { cfg.SuperDigest = super }})
	ctx := testkit.Context(t)
	plain := serverSess(t, c, 0, nil)
	admin := serverSess(t, c, 0, nil)
	if err := admin.AddAuth(ctx, "digest", []byte("super:secret")); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, ctx, plain.Session, "/open", nil, zoo.ModePersistent)
	for _, tc := range []struct {
		name string
		s    *zoo.ServerSession
		path string
		perm int32
		want error
	}{
		{"world may write an open node", plain, "/open", zoo.PermWrite, nil},
		{"anyone may read the config node", plain, "/zookeeper/config", zoo.PermRead, nil},
		{"only super may write the config node", plain, "/zookeeper/config", zoo.PermWrite, zoo.ErrNoAuth},
		{"super may", admin, "/zookeeper/config", zoo.PermWrite, nil},
		{"no node", plain, "/missing", zoo.PermRead, zoo.ErrNoNode},
		{"no permission bits", plain, "/open", 0, zoo.ErrBadArguments},
		{"unknown permission bits", plain, "/open", 0x40, zoo.ErrBadArguments},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.s.CheckAccess(ctx, tc.path, tc.perm)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("CheckAccess(%s, %#x) = %v, want %v", tc.path, tc.perm, err, tc.want)
			}
		})
	}
}

func mustStatus(t *testing.T, e *zoo.Ensemble) zoo.Status {
	t.Helper()
	st, err := e.Status()
	if err != nil {
		t.Fatal(err)
	}
	return st
}
