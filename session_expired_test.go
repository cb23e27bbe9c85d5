package zoo_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/zooraft/zoo"
	"github.com/zooraft/zoo/internal/testkit"
	"github.com/zooraft/zoo/zootest"
)

// After a session expires (the ensemble ended it; its owner did not close
// it), every call of its handle that does I/O returns ErrSessionExpired,
// whatever the arguments, and its watches end with ErrSessionExpired.
// ensemble_errors_test.go checks the same for a closed session (ErrClosed).
// Two ways to expire: a silent client (a server session) on a lone replica,
// and a replica cut off for longer than the timeout that then rejoins.
func TestSessionExpiredCalls(t *testing.T) {
	t.Run("silent client", func(t *testing.T) {
		e := openConfig(t, zoo.Config{TickTime: 50 * time.Millisecond})
		ctx := testkit.Context(t)
		rec := &recorder{}
		s, err := e.NewServerSession(ctx, rec, zoo.WithSessionTimeout(500*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		// The client is heard from while it sets up, however slow the machine,
		// then falls silent.
		heard, quiet := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(quiet)
			tk := time.NewTicker(10 * time.Millisecond)
			defer tk.Stop()
			for {
				s.Touch()
				select {
				case <-heard:
					return
				case <-tk.C:
				}
			}
		}()
		w := armBeforeExpiry(t, ctx, s)
		close(heard)
		<-quiet
		select {
		case <-s.Done():
		case <-time.After(30 * time.Second):
			t.Fatal("silent session not expired within 30s")
		}
		checkExpiredCalls(t, ctx, s, w)
		if _, err := e.ResumeSession(ctx, s.ID(), s.Password(), nil); !errors.Is(err, zoo.ErrSessionExpired) {
			t.Fatalf("ResumeSession after expiry: %v, want ErrSessionExpired", err)
		}
	})

	t.Run("replica cut off", func(t *testing.T) {
		c := newCluster(t, 3, zootest.Options{})
		ctx := testkit.Context(t)
		leader := c.WaitLeader()
		f := followers(c, leader)[0]
		const timeout = 400 * time.Millisecond
		rec := &recorder{}
		s := serverSess(t, c, f, rec, zoo.WithSessionTimeout(timeout))
		w := armBeforeExpiry(t, ctx, s)
		obs := sess(t, c, leader)

		c.Isolate(f)
		testkit.Eventually(t, 20*time.Second, "the leader expires the cut-off session", func() bool {
			ok, _, err := obs.Exists(ctx, "/expiring-mine")
			return err == nil && !ok
		})
		if s.Err() != nil {
			t.Fatalf("cut-off replica already knows its session ended: %v", s.Err())
		}
		c.Heal()
		select {
		case <-s.Done():
		case <-time.After(20 * time.Second):
			t.Fatal("session not ended within 20s of healing")
		}
		// The replica serves again: the calls below fail because of the
		// session, not because the replica is cut off.
		if err := c.Replica(f).WaitServing(ctx); err != nil {
			t.Fatal(err)
		}
		checkExpiredCalls(t, ctx, s, w)
	})
}

// expiryWatches are the watches a session set before it expired.
type expiryWatches struct {
	get, exists, children <-chan zoo.Event
	persistent            *zoo.PersistentWatch
	recursive             *zoo.PersistentWatch
}

// armBeforeExpiry creates /expiring/x (open ACL, so every call below would
// succeed on a live session), an ephemeral /expiring-mine (outside
// /expiring: its deletion at expiry would fire the child watch), and a watch
// of each kind.
func armBeforeExpiry(t *testing.T, ctx context.Context, s *zoo.ServerSession) expiryWatches {
	t.Helper()
	mustCreate(t, ctx, s.Session, "/expiring", nil, zoo.ModePersistent)
	mustCreate(t, ctx, s.Session, "/expiring/x", []byte("x"), zoo.ModePersistent)
	mustCreate(t, ctx, s.Session, "/expiring-mine", nil, zoo.ModeEphemeral)
	var w expiryWatches
	var err error
	if _, _, w.get, err = s.GetW(ctx, "/expiring/x"); err != nil {
		t.Fatal(err)
	}
	if _, _, w.exists, err = s.ExistsW(ctx, "/expiring/absent"); err != nil {
		t.Fatal(err)
	}
	if _, _, w.children, err = s.ChildrenW(ctx, "/expiring"); err != nil {
		t.Fatal(err)
	}
	if w.persistent, err = s.AddWatch(ctx, "/expiring/x", zoo.WatchPersistent); err != nil {
		t.Fatal(err)
	}
	if w.recursive, err = s.AddWatch(ctx, "/", zoo.WatchPersistentRecursive); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.GetNotify(ctx, "/expiring/x"); err != nil {
		t.Fatal(err)
	}
	return w
}

// checkExpiredCalls checks the state of expired session s, that every call
// returns ErrSessionExpired, and that the watches w ended with it.
func checkExpiredCalls(t *testing.T, ctx context.Context, s *zoo.ServerSession, w expiryWatches) {
	t.Helper()
	if !errors.Is(s.Err(), zoo.ErrSessionExpired) || s.State() != zoo.StateExpired {
		t.Fatalf("expired session: Err %v, State %v", s.Err(), s.State())
	}
	var q zoo.WriteQueue
	calls := append(sessionCalls(ctx, s.Session), []namedCall{
		{"Create on /expiring", func() error {
			_, err := s.Create(ctx, "/expiring/new", nil, zoo.ModePersistent, nil)
			return err
		}},
		{"Create ephemeral", func() error {
			_, err := s.Create(ctx, "/expiring/eph", nil, zoo.ModeEphemeral, nil)
			return err
		}},
		{"CreateWithStat", func() error {
			_, _, err := s.CreateWithStat(ctx, zoo.CreateOp{Path: "/expiring/stat", Mode: zoo.ModePersistentSequential})
			return err
		}},
		{"Set existing", func() error { _, err := s.Set(ctx, "/expiring/x", []byte("y"), 0); return err }},
		{"Delete existing", func() error { return s.Delete(ctx, "/expiring/x", 0) }},
		{"SetACL existing", func() error { _, err := s.SetACL(ctx, "/expiring/x", zoo.ReadACL, 0); return err }},
		{"Multi of writes", func() error {
			_, err := s.Multi(ctx,
				zoo.CreateOp{Path: "/expiring/m"},
				zoo.SetDataOp{Path: "/expiring/x", Data: []byte("m"), Version: -1})
			return err
		}},
		{"Get existing", func() error { _, _, err := s.Get(ctx, "/expiring/x"); return err }},
		{"GetW existing", func() error { _, _, _, err := s.GetW(ctx, "/expiring/x"); return err }},
		{"Exists absent", func() error { _, _, err := s.Exists(ctx, "/expiring/absent"); return err }},
		{"ExistsW absent", func() error { _, _, _, err := s.ExistsW(ctx, "/expiring/absent"); return err }},
		{"GetEphemerals of its own", func() error { _, err := s.GetEphemerals(ctx, "/expiring"); return err }},
		{"MultiRead of children", func() error {
			_, err := s.MultiRead(ctx, zoo.GetChildrenOp{Path: "/expiring"})
			return err
		}},
		{"MultiRead empty", func() error { _, err := s.MultiRead(ctx); return err }},
		{"AddWatch recursive", func() error {
			_, err := s.AddWatch(ctx, "/expiring", zoo.WatchPersistentRecursive)
			return err
		}},
		{"RemoveWatches set before expiry", func() error {
			return s.RemoveWatches(ctx, "/expiring/x", zoo.WatcherData)
		}},
		{"AddAuth ip", func() error { return s.AddAuth(ctx, "ip", []byte("10.0.0.1")) }},
		{"CheckAccess", func() error { return s.CheckAccess(ctx, "/expiring/x", zoo.PermRead) }},
		{"GetNotify", func() error { _, _, err := s.GetNotify(ctx, "/expiring/x"); return err }},
		{"ExistsNotify", func() error { _, _, err := s.ExistsNotify(ctx, "/expiring/absent"); return err }},
		{"ChildrenNotify", func() error { _, _, err := s.ChildrenNotify(ctx, "/expiring"); return err }},
		{"AddWatchNotify", func() error { return s.AddWatchNotify(ctx, "/expiring", zoo.WatchPersistent) }},
		{"SetWatches", func() error {
			return s.SetWatches(ctx, zoo.WatchSet{Data: []string{"/expiring/x"}, Child: []string{"/expiring"}})
		}},
		{"Set through a WriteQueue", func() error {
			qctx, release := q.Next(ctx)
			defer release()
			_, err := s.Set(qctx, "/expiring/x", []byte("q"), -1)
			return err
		}},
	}...)
	for _, tc := range calls {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.call(); !errors.Is(err, zoo.ErrSessionExpired) {
				t.Fatalf("after expiry: %v, want ErrSessionExpired", err)
			}
		})
	}

	t.Run("watches", func(t *testing.T) {
		for name, ch := range map[string]<-chan zoo.Event{"GetW": w.get, "ExistsW": w.exists, "ChildrenW": w.children} {
			select {
			case ev, ok := <-ch:
				if !ok || ev.Type != zoo.EventNotWatching || !errors.Is(ev.Err, zoo.ErrSessionExpired) {
					t.Errorf("%s watch at expiry: %+v (open %v), want NotWatching with ErrSessionExpired", name, ev, ok)
				}
			case <-time.After(10 * time.Second):
				t.Errorf("%s watch not ended by the expiry", name)
			}
		}
		for name, pw := range map[string]*zoo.PersistentWatch{"persistent": w.persistent, "recursive": w.recursive} {
			deadline := time.After(10 * time.Second)
		drain:
			for {
				select {
				case _, ok := <-pw.Events():
					if !ok {
						break drain
					}
				case <-deadline:
					t.Errorf("%s watch not ended by the expiry", name)
					break drain
				}
			}
			if !errors.Is(pw.Err(), zoo.ErrSessionExpired) {
				t.Errorf("%s watch ended with %v, want ErrSessionExpired", name, pw.Err())
			}
		}
		if s.HasWatches("/expiring/x", zoo.WatcherAny) {
			t.Error("expired session still has watches on /expiring/x")
		}
	})

	// Close of an expired session is a no-op: it stays expired.
	if err := s.Close(ctx); err != nil {
		t.Fatalf("Close after expiry: %v", err)
	}
	if !errors.Is(s.Err(), zoo.ErrSessionExpired) || s.State() != zoo.StateExpired {
		t.Fatalf("after Close: Err %v, State %v", s.Err(), s.State())
	}
	if _, _, err := s.Get(ctx, "/expiring/x"); !errors.Is(err, zoo.ErrSessionExpired) {
		t.Fatalf("Get after Close of an expired session: %v, want ErrSessionExpired", err)
	}
}
