package zoo_test

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/zooraft/zoo"
	"github.com/zooraft/zoo/internal/testkit"
	"github.com/zooraft/zoo/zootest"
)

func TestStatusOfACluster(t *testing.T) {
	c := newCluster(t, 3, zootest.Options{})
	ctx := testkit.Context(t)
	at := c.WaitLeader()
	s := sess(t, c, at)
	mustCreate(t, ctx, s, "/status", nil, zoo.ModePersistent)
	var sts []zoo.Status
	leader := -1
	testkit.Eventually(t, 10*time.Second, "every replica agrees on one leader", func() bool {
		sts, leader = sts[:0], -1
		for i := 0; i < c.Size(); i++ {
			st, err := c.Replica(i).Status()
			if err != nil {
				t.Fatal(err)
			}
			sts = append(sts, st)
			if st.Role == zoo.RoleLeader {
				leader = i
			}
		}
		for _, st := range sts {
			if leader < 0 || st.LeaderID != c.ID(leader) {
				return false
			}
		}
		return true
	})
	for i, st := range sts {
		want := zoo.RoleFollower
		if i == leader {
			want = zoo.RoleLeader
		}
		if st.ID != c.ID(i) || st.Role != want || !st.Serving || st.LeaderAddr == "" || len(st.Members) != 3 {
			t.Fatalf("replica %d: %+v, want mode %v", i, st, want)
		}
		for _, m := range st.Members {
			if !m.Voter {
				t.Fatalf("replica %d: member %+v is not a voter", i, m)
			}
		}
	}
	if got := sts[at].LocalSessions; got != 1 {
		t.Fatalf("replica %d serves %d sessions, want 1", at, got)
	}
	if sts[leader].Nodes < 5 { // /, /zookeeper, its quota and config, /status
		t.Fatalf("leader has %d nodes", sts[leader].Nodes)
	}
	if got := fmt.Sprint(zoo.RoleLeader, zoo.RoleFollower, zoo.RoleObserver, zoo.RoleNotServing); got != "leader follower observer not serving" {
		t.Fatalf("mode names: %s", got)
	}

	// A replica cut off from the quorum says so.
	f := followers(c, leader)[0]
	c.Isolate(f)
	testkit.Eventually(t, 5*time.Second, "isolated replica reports not serving", func() bool {
		st, err := c.Replica(f).Status()
		return err == nil && st.Role == zoo.RoleNotServing && !st.Serving && st.LeaderID == ""
	})
	c.Heal()
	testkit.Eventually(t, 10*time.Second, "healed replica follows again", func() bool {
		st, err := c.Replica(f).Status()
		return err == nil && st.Role == zoo.RoleFollower && st.LeaderID != ""
	})
}

// tcpReplica opens a replica on a real TCP port of 127.0.0.1 with a real data dir.
func tcpReplica(t *testing.T, id string, join bool) *zoo.Ensemble {
	t.Helper()
	e, err := zoo.Open(zoo.Config{
		ID: id, Dir: filepath.Join(t.TempDir(), "replica-"+id), BindAddr: "127.0.0.1:0",
		Join: join, TickTime: tick,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// membersOf returns "id:voter|observer" of every member in st, sorted.
func membersOf(st zoo.Status) []string {
	var out []string
	for _, m := range st.Members {
		kind := "observer"
		if m.Voter {
			kind = "voter"
		}
		out = append(out, m.ID+":"+kind)
	}
	slices.Sort(out)
	return out
}

func TestMembershipOverTCP(t *testing.T) {
	ctx := testkit.Context(t)
	// Replica 1 bootstraps alone; the others join through it.
	e1 := tcpReplica(t, "1", false)
	if err := e1.WaitServing(ctx); err != nil {
		t.Fatal(err)
	}
	replicas := map[string]*zoo.Ensemble{"1": e1}
	for _, id := range []string{"2", "3"} {
		e := tcpReplica(t, id, true)
		if err := zootest.Retry(ctx, func() error { return e1.AddVoter(ctx, id, e.Addr()) }); err != nil {
			t.Fatalf("AddVoter %s: %v", id, err)
		}
		replicas[id] = e
	}
	// An observer, added through a follower (forwarded to the leader).
	e4 := tcpReplica(t, "4", true)
	if err := zootest.Retry(ctx, func() error { return replicas["2"].AddObserver(ctx, "4", e4.Addr()) }); err != nil {
		t.Fatalf("AddObserver: %v", err)
	}
	replicas["4"] = e4

	statusOf := func(id string) zoo.Status {
		t.Helper()
		st, err := replicas[id].Status()
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	// converge waits until every replica reports leader and members as given.
	converge := func(leader string, members []string) {
		t.Helper()
		testkit.Eventually(t, 15*time.Second, fmt.Sprintf("all agree on leader %s and members %v", leader, members), func() bool {
			for _, e := range replicas {
				st, err := e.Status()
				if err != nil || st.LeaderID != leader || !slices.Equal(membersOf(st), members) {
					return false
				}
			}
			return true
		})
	}
	converge("1", []string{"1:voter", "2:voter", "3:voter", "4:observer"})
	for id, want := range map[string]zoo.Role{"1": zoo.RoleLeader, "2": zoo.RoleFollower, "3": zoo.RoleFollower, "4": zoo.RoleObserver} {
		if st := statusOf(id); st.Role != want || !st.Serving || st.LeaderAddr != e1.Addr() {
			t.Fatalf("replica %s: %+v, want mode %v", id, st, want)
		}
	}

	// Writes through the observer reach everyone; reads on the observer work.
	var obs *zoo.Session
	if err := zootest.Retry(ctx, func() (err error) { obs, err = e4.NewSession(ctx); return err }); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, ctx, obs, "/via-observer", []byte("o"), zoo.ModePersistent)
	for id, e := range replicas {
		var s *zoo.Session
		if err := zootest.Retry(ctx, func() (err error) { s, err = e.NewSession(ctx); return err }); err != nil {
			t.Fatal(err)
		}
		var data []byte
		err := zootest.Retry(ctx, func() (err error) {
			if err := s.Sync(ctx, "/"); err != nil {
				return err
			}
			data, _, err = s.Get(ctx, "/via-observer")
			return err
		})
		if err != nil || string(data) != "o" {
			t.Fatalf("replica %s: %q %v", id, data, err)
		}
		s.Close(ctx)
	}

	// Leadership moves where asked, whoever is asked.
	if err := replicas["3"].TransferLeadership(ctx, "2"); err != nil {
		t.Fatalf("TransferLeadership: %v", err)
	}
	converge("2", []string{"1:voter", "2:voter", "3:voter", "4:observer"})
	if st := statusOf("2"); st.Role != zoo.RoleLeader {
		t.Fatalf("2 after transfer: %+v", st)
	}
	if err := replicas["1"].TransferLeadership(ctx, "nobody"); !errors.Is(err, zoo.ErrBadArguments) {
		t.Fatalf("transfer to an unknown member: %v", err)
	}
	// The observer's session survived the leader change.
	if err := zootest.Retry(ctx, func() error {
		_, err := obs.Set(ctx, "/via-observer", []byte("after transfer"), 0)
		return err
	}, zoo.ErrBadVersion); err != nil {
		t.Fatal(err)
	}

	// Removing members shrinks the configuration.
	if err := zootest.Retry(ctx, func() error { return replicas["1"].RemoveMember(ctx, "3") }); err != nil {
		t.Fatalf("RemoveMember 3: %v", err)
	}
	replicas["3"].Close()
	delete(replicas, "3")
	if err := zootest.Retry(ctx, func() error { return replicas["2"].RemoveMember(ctx, "4") }); err != nil {
		t.Fatalf("RemoveMember 4: %v", err)
	}
	e4.Close()
	delete(replicas, "4")
	converge("2", []string{"1:voter", "2:voter"})

	// Two voters left: both are needed, and they still serve.
	var s *zoo.Session
	if err := zootest.Retry(ctx, func() (err error) { s, err = replicas["1"].NewSession(ctx); return err }); err != nil {
		t.Fatal(err)
	}
	var data []byte
	var st zoo.Stat
	err := zootest.Retry(ctx, func() (err error) {
		if err := s.Sync(ctx, "/"); err != nil {
			return err
		}
		data, st, err = s.Get(ctx, "/via-observer")
		return err
	})
	if err != nil || string(data) != "after transfer" || st.Version != 1 {
		t.Fatalf("after shrinking: %q %+v %v", data, st, err)
	}
	mustCreate(t, ctx, s, "/after-shrink", nil, zoo.ModePersistent)
}

// A membership change waiting for a leader ends with ErrClosed when its
// replica closes, never with a nil error as if it had been done.
func TestMembershipChangeEndsWithClose(t *testing.T) {
	c := newCluster(t, 3, zootest.Options{})
	ctx := testkit.Context(t)
	f := followers(c, c.WaitLeader())[0]
	e := c.Replica(f)
	c.Isolate(f)
	testkit.Eventually(t, 5*time.Second, "isolated replica stops serving", func() bool {
		st, err := e.Status()
		return err == nil && !st.Serving
	})
	done := make(chan error, 1)
	go func() { done <- e.AddObserver(ctx, "9", "zoo-9") }()
	// Let the call reach its wait-for-a-leader loop (4 ticks long) before
	// Close. Not a wait for state: the assertion holds whatever the
	// interleaving; this one is the interleaving that used to return nil.
	<-time.After(2 * tick)
	c.Stop(f)
	select {
	case err := <-done:
		// ErrNotServing if it gave up waiting for a leader before Close.
		if !errors.Is(err, zoo.ErrClosed) && !errors.Is(err, zoo.ErrNotServing) {
			t.Fatalf("AddObserver across Close: %v, want ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("AddObserver did not return after Close")
	}
}

// Status.LeaderSince says when each replica learned of the current leadership,
// and moves on when a new leader takes over.
func TestStatusLeaderSince(t *testing.T) {
	c := newCluster(t, 3, zootest.Options{})
	leader := c.WaitLeader()
	since := func(i int) time.Time {
		st, err := c.Replica(i).Status()
		if err != nil {
			t.Fatal(err)
		}
		return st.LeaderSince
	}
	for i := 0; i < c.Size(); i++ {
		testkit.Eventually(t, 10*time.Second, "LeaderSince set", func() bool { return !since(i).IsZero() })
	}
	before := since(leader)
	if time.Since(before) < 0 {
		t.Fatalf("LeaderSince %v is in the future", before)
	}
	stopped := time.Now()
	c.Stop(leader)
	next := c.WaitLeader()
	testkit.Eventually(t, 10*time.Second, "new leader's LeaderSince", func() bool { return since(next).After(stopped) })
	for _, i := range followers(c, next) {
		if i != leader {
			testkit.Eventually(t, 10*time.Second, "follower's LeaderSince", func() bool { return since(i).After(stopped) })
		}
	}
}
