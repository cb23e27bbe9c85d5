package zoo_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/zooraft/zoo"
	"github.com/zooraft/zoo/internal/memnet"
	"github.com/zooraft/zoo/internal/testkit"
	"github.com/zooraft/zoo/zootest"
)

// Bad input gets a clear typed error and changes nothing, through a follower.
func TestBadInputLeavesStateUnchanged(t *testing.T) {
	c := newCluster(t, 3, zootest.Options{})
	ctx := testkit.Context(t)
	f := followers(c, c.WaitLeader())[0]
	s := sess(t, c, f)
	for _, p := range []string{"/bad", "/bad/node"} {
		mustCreate(t, ctx, s, p, []byte("data"), zoo.ModePersistent)
	}
	if err := zootest.Retry(ctx, func() error { _, err := s.Set(ctx, "/bad/node", []byte("v1"), 0); return err }, zoo.ErrBadVersion); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, ctx, s, "/bad/eph", nil, zoo.ModeEphemeral)
	before := assertAllAgree(t, ctx, c)

	huge := bytes.Repeat([]byte{'x'}, 1<<20) // 1,048,576 bytes: one over the limit
	if len(huge) != zoo.MaxDataSize+1 {
		t.Fatalf("MaxDataSize is %d", zoo.MaxDataSize)
	}
	for _, tc := range []struct {
		name string
		call func() error
		want error
	}{
		{"create empty path", func() error { _, err := s.Create(ctx, "", nil, zoo.ModePersistent, nil); return err }, zoo.ErrBadArguments},
		{"create relative path", func() error { _, err := s.Create(ctx, "bad", nil, zoo.ModePersistent, nil); return err }, zoo.ErrBadArguments},
		{"create trailing slash", func() error { _, err := s.Create(ctx, "/bad/", nil, zoo.ModePersistent, nil); return err }, zoo.ErrBadArguments},
		{"create double slash", func() error { _, err := s.Create(ctx, "/bad//x", nil, zoo.ModePersistent, nil); return err }, zoo.ErrBadArguments},
		{"create dot", func() error { _, err := s.Create(ctx, "/bad/./x", nil, zoo.ModePersistent, nil); return err }, zoo.ErrBadArguments},
		{"create dot-dot", func() error { _, err := s.Create(ctx, "/bad/../x", nil, zoo.ModePersistent, nil); return err }, zoo.ErrBadArguments},
		{"create NUL", func() error { _, err := s.Create(ctx, "/bad/\x00", nil, zoo.ModePersistent, nil); return err }, zoo.ErrBadArguments},
		{"create unknown mode", func() error { _, err := s.Create(ctx, "/bad/m", nil, zoo.CreateMode(42), nil); return err }, zoo.ErrBadArguments},
		{"get invalid path", func() error { _, _, err := s.Get(ctx, "/bad/"); return err }, zoo.ErrBadArguments},
		{"set invalid path", func() error { _, err := s.Set(ctx, "nope", nil, -1); return err }, zoo.ErrBadArguments},
		{"delete invalid path", func() error { return s.Delete(ctx, "/a//b", -1) }, zoo.ErrBadArguments},
		{"create oversized data", func() error { _, err := s.Create(ctx, "/bad/big", huge, zoo.ModePersistent, nil); return err }, zoo.ErrBadArguments},
		{"set oversized data", func() error { _, err := s.Set(ctx, "/bad/node", huge, -1); return err }, zoo.ErrBadArguments},
		{"multi oversized data", func() error {
			_, err := s.Multi(ctx, zoo.SetDataOp{Path: "/bad/node", Data: huge, Version: -1})
			return err
		}, zoo.ErrBadArguments},
		{"set wrong version", func() error { _, err := s.Set(ctx, "/bad/node", []byte("x"), 0); return err }, zoo.ErrBadVersion},
		{"delete wrong version", func() error { return s.Delete(ctx, "/bad/node", 7) }, zoo.ErrBadVersion},
		{"setACL wrong aversion", func() error { _, err := s.SetACL(ctx, "/bad/node", zoo.OpenACL, 3); return err }, zoo.ErrBadVersion},
		{"multi wrong version", func() error {
			_, err := s.Multi(ctx, zoo.CreateOp{Path: "/bad/m1"}, zoo.CheckOp{Path: "/bad/node", Version: 0})
			return err
		}, zoo.ErrBadVersion},
		{"create existing", func() error { _, err := s.Create(ctx, "/bad/node", nil, zoo.ModePersistent, nil); return err }, zoo.ErrNodeExists},
		{"create without parent", func() error { _, err := s.Create(ctx, "/none/x", nil, zoo.ModePersistent, nil); return err }, zoo.ErrNoNode},
		{"child of ephemeral", func() error { _, err := s.Create(ctx, "/bad/eph/kid", nil, zoo.ModePersistent, nil); return err }, zoo.ErrNoChildrenForEphemerals},
		{"sequential child of ephemeral", func() error {
			_, err := s.Create(ctx, "/bad/eph/kid-", nil, zoo.ModeEphemeralSequential, nil)
			return err
		}, zoo.ErrNoChildrenForEphemerals},
		{"delete non-empty", func() error { return s.Delete(ctx, "/bad", -1) }, zoo.ErrNotEmpty},
		{"delete missing", func() error { return s.Delete(ctx, "/bad/none", -1) }, zoo.ErrNoNode},
		{"delete /zookeeper", func() error { return s.Delete(ctx, "/zookeeper", -1) }, zoo.ErrBadArguments},
		{"delete /zookeeper/quota", func() error { return s.Delete(ctx, "/zookeeper/quota", -1) }, zoo.ErrBadArguments},
		{"delete /", func() error { return s.Delete(ctx, "/", -1) }, zoo.ErrBadArguments},
		{"TTL without TTL mode", func() error {
			_, _, err := s.CreateWithStat(ctx, zoo.CreateOp{Path: "/bad/ttl", TTL: time.Second})
			return err
		}, zoo.ErrBadArguments},
		{"empty ACL", func() error { _, err := s.Create(ctx, "/bad/acl", nil, zoo.ModePersistent, []zoo.ACL{}); return err }, zoo.ErrInvalidACL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := zootest.Retry(ctx, tc.call) // rides out a leader change
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			var pe *zoo.PathError
			if !errors.As(err, &pe) || pe.Op == "" {
				t.Fatalf("%v is not a *zoo.PathError naming the op", err)
			}
		})
	}

	after := assertAllAgree(t, ctx, c)
	if diff := diffTrees(before, after); diff != "" {
		t.Fatalf("rejected calls changed the tree:\n%s", diff)
	}
	if s.Err() != nil {
		t.Fatalf("session ended by bad input: %v", s.Err())
	}
}

// After Session.Close every call returns ErrClosed (not ErrSessionExpired:
// the owner closed it), and Close stays idempotent.
func TestSessionClosedCalls(t *testing.T) {
	e := openMem(t)
	ctx := testkit.Context(t)
	s, err := e.NewSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	mustCreate(t, ctx, s, "/x", nil, zoo.ModePersistent)
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	for _, tc := range sessionCalls(ctx, s) {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.call(); !errors.Is(err, zoo.ErrClosed) {
				t.Fatalf("after Session.Close: %v, want ErrClosed", err)
			}
		})
	}
	// The ensemble itself is unaffected.
	s2, err := e.NewSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ok, _, err := s2.Exists(ctx, "/x"); err != nil || !ok {
		t.Fatalf("/x after the other session closed: %v %v", ok, err)
	}
}

// After Ensemble.Close every method returns ErrClosed and Close is idempotent.
func TestEnsembleClosedCalls(t *testing.T) {
	e := openMem(t)
	ctx := testkit.Context(t)
	s, err := e.NewSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if !errors.Is(s.Err(), zoo.ErrClosed) || s.State() != zoo.StateClosed {
		t.Fatalf("session after Ensemble.Close: %v %v", s.Err(), s.State())
	}
	calls := append(sessionCalls(ctx, s), []namedCall{
		{"NewSession", func() error { _, err := e.NewSession(ctx); return err }},
		{"Status", func() error { _, err := e.Status(); return err }},
		{"WaitServing", func() error { return e.WaitServing(ctx) }},
		{"AddVoter", func() error { return e.AddVoter(ctx, "9", "zoo-9") }},
		{"AddObserver", func() error { return e.AddObserver(ctx, "9", "zoo-9") }},
		{"RemoveMember", func() error { return e.RemoveMember(ctx, "9") }},
		{"TransferLeadership any", func() error { return e.TransferLeadership(ctx, "") }},
		{"TransferLeadership to", func() error { return e.TransferLeadership(ctx, "1") }},
		{"Session.Close", func() error {
			if err := s.Close(ctx); err != nil {
				return err // Close of an ended session is a no-op
			}
			return zoo.ErrClosed
		}},
	}...)
	for _, tc := range calls {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.call(); !errors.Is(err, zoo.ErrClosed) {
				t.Fatalf("after Ensemble.Close: %v, want ErrClosed", err)
			}
		})
	}
}

type namedCall struct {
	name string
	call func() error
}

// sessionCalls is one call of each Session method.
func sessionCalls(ctx context.Context, s *zoo.Session) []namedCall {
	return []namedCall{
		{"Create", func() error { _, err := s.Create(ctx, "/y", nil, zoo.ModePersistent, nil); return err }},
		{"Set", func() error { _, err := s.Set(ctx, "/x", nil, -1); return err }},
		{"Delete", func() error { return s.Delete(ctx, "/x", -1) }},
		{"SetACL", func() error { _, err := s.SetACL(ctx, "/x", zoo.OpenACL, -1); return err }},
		{"Multi", func() error { _, err := s.Multi(ctx, zoo.CheckOp{Path: "/x", Version: -1}); return err }},
		{"Multi empty", func() error { _, err := s.Multi(ctx); return err }},
		{"Get", func() error { _, _, err := s.Get(ctx, "/x"); return err }},
		{"GetW", func() error { _, _, _, err := s.GetW(ctx, "/x"); return err }},
		{"Exists", func() error { _, _, err := s.Exists(ctx, "/x"); return err }},
		{"ExistsW", func() error { _, _, _, err := s.ExistsW(ctx, "/x"); return err }},
		{"Children", func() error { _, _, err := s.Children(ctx, "/"); return err }},
		{"ChildrenW", func() error { _, _, _, err := s.ChildrenW(ctx, "/"); return err }},
		{"GetACL", func() error { _, _, err := s.GetACL(ctx, "/x"); return err }},
		{"GetEphemerals", func() error { _, err := s.GetEphemerals(ctx, "/"); return err }},
		{"AllChildrenNumber", func() error { _, err := s.AllChildrenNumber(ctx, "/"); return err }},
		{"MultiRead", func() error { _, err := s.MultiRead(ctx, zoo.GetDataOp{Path: "/x"}); return err }},
		{"AddWatch", func() error { _, err := s.AddWatch(ctx, "/x", zoo.WatchPersistent); return err }},
		{"RemoveWatches", func() error { return s.RemoveWatches(ctx, "/x", zoo.WatcherAny) }},
		{"AddAuth", func() error { return s.AddAuth(ctx, "digest", []byte("u:p")) }},
		{"Sync", func() error { return s.Sync(ctx, "/") }},
	}
}

// openMem opens a one-replica in-memory ensemble closed with the test.
func openMem(t *testing.T) *zoo.Ensemble {
	t.Helper()
	e, err := zoo.Open(zoo.Config{TickTime: tick})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// A data dir held by an open Ensemble cannot be opened again: Open fails
// fast with ErrDirLocked instead of waiting on bbolt's file lock.
func TestOpenLockedDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	e, err := zoo.Open(zoo.Config{Dir: dir, TickTime: tick})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	ctx := testkit.Context(t)
	s, err := e.NewSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	mustCreate(t, ctx, s, "/held", []byte("1"), zoo.ModePersistent)

	type result struct {
		e   *zoo.Ensemble
		err error
	}
	done := make(chan result, 1)
	go func() {
		e2, err := zoo.Open(zoo.Config{Dir: dir, ID: "2", TickTime: tick})
		done <- result{e2, err}
	}()
	select {
	case r := <-done:
		if r.err == nil {
			r.e.Close()
			t.Fatal("second Open of a held dir succeeded")
		}
		if !errors.Is(r.err, zoo.ErrDirLocked) {
			t.Fatalf("second Open: %v, want ErrDirLocked", r.err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("second Open of a held dir hangs")
	}

	// The holder is unaffected.
	if data, _, err := s.Get(ctx, "/held"); err != nil || string(data) != "1" {
		t.Fatalf("holder after the failed Open: %q %v", data, err)
	}
	mustCreate(t, ctx, s, "/still-writable", nil, zoo.ModePersistent)
	// Once released the dir opens, with its data.
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	e3, err := zoo.Open(zoo.Config{Dir: dir, TickTime: tick})
	if err != nil {
		t.Fatal(err)
	}
	defer e3.Close()
	s3, err := e3.NewSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/held", "/still-writable"} {
		if ok, _, err := s3.Exists(ctx, p); err != nil || !ok {
			t.Fatalf("%s after reopen: %v %v", p, ok, err)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	peers := []zoo.Peer{{ID: "1", Addr: "127.0.0.1:7001"}, {ID: "2", Addr: "127.0.0.1:7002"}}
	for _, tc := range []struct {
		name  string
		cfg   zoo.Config
		field string
	}{
		{"Peers without self", zoo.Config{ID: "3", BindAddr: "127.0.0.1:0", Peers: peers}, "Peers"},
		{"duplicate IDs", zoo.Config{ID: "1", BindAddr: "127.0.0.1:0",
			Peers: []zoo.Peer{{ID: "1", Addr: "127.0.0.1:7001"}, {ID: "1", Addr: "127.0.0.1:7002"}}}, "Peers[1]"},
		{"duplicate addresses", zoo.Config{ID: "1", BindAddr: "127.0.0.1:0",
			Peers: []zoo.Peer{{ID: "1", Addr: "127.0.0.1:7001"}, {ID: "2", Addr: "127.0.0.1:7001"}}}, "Peers[1]"},
		{"peer without address", zoo.Config{ID: "1", BindAddr: "127.0.0.1:0",
			Peers: []zoo.Peer{{ID: "1"}}}, "Peers[0]"},
		{"MaxSessionTimeout below MinSessionTimeout", zoo.Config{TickTime: tick,
			MinSessionTimeout: time.Second, MaxSessionTimeout: 500 * time.Millisecond}, "MaxSessionTimeout"},
		{"MinSessionTimeout below TickTime", zoo.Config{TickTime: time.Second,
			MinSessionTimeout: 100 * time.Millisecond, MaxSessionTimeout: 10 * time.Second}, "MinSessionTimeout"},
		{"TickTime too small", zoo.Config{TickTime: time.Millisecond}, "TickTime"},
		{"Join without BindAddr", zoo.Config{ID: "4", Join: true}, "BindAddr"},
		{"Peers without BindAddr", zoo.Config{ID: "1", Peers: peers}, "BindAddr"},
		{"negative SnapshotsRetained", zoo.Config{SnapshotsRetained: -1}, "SnapshotsRetained"},
		{"bad SuperDigest", zoo.Config{SuperDigest: "not a digest"}, "SuperDigest"},
		{"MaxSessionTimeout beyond int32 milliseconds", zoo.Config{MaxSessionTimeout: 30 * 24 * time.Hour}, "MaxSessionTimeout"},
		{"only observers", zoo.Config{ID: "1", BindAddr: "127.0.0.1:0",
			Peers: []zoo.Peer{{ID: "1", Addr: "127.0.0.1:7001", Observer: true}}}, "Peers"},
		{"AdvertiseAddr without BindAddr", zoo.Config{AdvertiseAddr: "127.0.0.1:7001"}, "AdvertiseAddr"},
		{"BindAddr with a custom Transport", zoo.Config{BindAddr: "127.0.0.1:0", Transport: memTransport(t)}, "BindAddr"},
		{"AdvertiseAddr with a custom Transport", zoo.Config{AdvertiseAddr: "127.0.0.1:7001", Transport: memTransport(t)}, "AdvertiseAddr"},
		// Bound to a free port, listed at another: the check needs the port it got.
		{"self listed at another address", zoo.Config{ID: "1", Dir: t.TempDir(), BindAddr: "127.0.0.1:0",
			Peers: []zoo.Peer{{ID: "1", Addr: "127.0.0.1:7001"}, {ID: "2", Addr: "127.0.0.1:7002"}}}, "Peers[0]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := zoo.Open(tc.cfg)
			if err == nil {
				e.Close()
				t.Fatal("Open succeeded")
			}
			var ce *zoo.ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("%v (%T) is not a *zoo.ConfigError", err, err)
			}
			if ce.Field != tc.field || ce.Reason == "" {
				t.Fatalf("ConfigError %+v, want field %q", ce, tc.field)
			}
		})
	}
}

// The zero Config is a working single-replica, in-memory ensemble.
func TestZeroConfig(t *testing.T) {
	e, err := zoo.Open(zoo.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := testkit.Context(t)
	s, err := e.NewSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	mustCreate(t, ctx, s, "/zero", []byte("config"), zoo.ModePersistent)
	data, st, err := s.Get(ctx, "/zero")
	if err != nil || string(data) != "config" || st.Version != 0 || st.Czxid == 0 {
		t.Fatalf("get: %q %+v %v", data, st, err)
	}
	status, err := e.Status()
	if err != nil || status.Role != zoo.RoleLeader || status.LeaderID != "1" || len(status.Members) != 1 {
		t.Fatalf("status: %+v %v", status, err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if err := e.Close(); err != nil {
			t.Fatalf("Close again: %v", err)
		}
	}
}

// Close ends every call in flight: none may block forever, even a write that
// raft had queued but not yet committed when it shut down (hashicorp/raft
// leaves such a future unanswered, hashicorp/raft#498).
func TestCloseEndsInflightWrites(t *testing.T) {
	for round := 0; round < 5; round++ {
		e, err := zoo.Open(zoo.Config{TickTime: tick})
		if err != nil {
			t.Fatal(err)
		}
		ctx := testkit.Context(t)
		const writers = 16
		sessions := make([]*zoo.Session, writers)
		for i := range sessions {
			if sessions[i], err = e.NewSession(ctx); err != nil {
				t.Fatal(err)
			}
		}
		started := make(chan struct{}, writers)
		errs := make(chan error, writers)
		for i, s := range sessions {
			go func() {
				for k := 0; ; k++ {
					_, err := s.Create(ctx, fmt.Sprintf("/r%d-w%d-%d", round, i, k), nil, zoo.ModePersistent, nil)
					if k == 0 {
						started <- struct{}{}
					}
					if err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		for range writers {
			<-started
		}
		if err := e.Close(); err != nil {
			t.Fatal(err)
		}
		timeout := time.After(10 * time.Second)
		for range writers {
			select {
			case err := <-errs:
				// ErrConnectionLoss: raft gave up on an entry it had
				// appended ("leadership lost"): its outcome is unknown.
				if !errors.Is(err, zoo.ErrClosed) && !errors.Is(err, zoo.ErrConnectionLoss) {
					t.Fatalf("write in flight at Close: %v, want ErrClosed or ErrConnectionLoss", err)
				}
			case <-timeout:
				t.Fatalf("round %d: a write in flight at Close never returned", round)
			}
		}
	}
}

// memTransport is an in-memory transport no other replica shares.
func memTransport(t *testing.T) zoo.Transport {
	t.Helper()
	ep, err := memnet.New().Endpoint("zoo-alone")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ep.Close() })
	return ep
}

// A replica may be listed under another name for the address it binds
// (zoo.cfg's server.N=localhost:... as zoo server passes it): only a
// different port is refused.
func TestSelfListedByHostName(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	e, err := zoo.Open(zoo.Config{ID: "1", Dir: t.TempDir(), BindAddr: fmt.Sprintf("127.0.0.1:%d", port),
		Peers: []zoo.Peer{{ID: "1", Addr: fmt.Sprintf("localhost:%d", port)}}})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if err := e.WaitServing(testkit.Context(t)); err != nil {
		t.Fatal(err)
	}
}

// MultiRead's errors name the operation like every other call's, and a
// PathError without a path reads "op: reason".
func TestMultiReadErrorIsAPathError(t *testing.T) {
	e := openMem(t)
	ctx := testkit.Context(t)
	s, err := e.NewSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	_, err = s.MultiRead(ctx, zoo.GetDataOp{Path: "/"})
	var pe *zoo.PathError
	if !errors.As(err, &pe) || pe.Op != "multiRead" || !errors.Is(err, zoo.ErrClosed) {
		t.Fatalf("MultiRead on a closed session: %v (%T), want a multiRead PathError wrapping ErrClosed", err, err)
	}
	if want := "multiRead: " + zoo.ErrClosed.Error(); err.Error() != want {
		t.Fatalf("error reads %q, want %q", err.Error(), want)
	}
}
