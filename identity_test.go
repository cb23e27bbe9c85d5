package zoo_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"github.com/zooraft/zoo"
	"github.com/zooraft/zoo/internal/testkit"
	"github.com/zooraft/zoo/zootest"
)

// waitRegistered waits until replica i's state records every member's data dir.
func waitRegistered(t *testing.T, c *zootest.Cluster, i int) {
	t.Helper()
	testkit.Eventually(t, 20*time.Second, "every member's data dir recorded", func() bool {
		st, err := c.Replica(i).Status()
		if err != nil || len(st.Members) != c.Size() {
			return false
		}
		for _, m := range st.Members {
			if m.DataDir == "" {
				return false
			}
		}
		return true
	})
}

// The defect this guards against, step by step: follower B is down; a write
// is acknowledged by the leader A and follower C; A and C go down; C's data
// dir is wiped; B and C start. C must not vote for B (whose log lacks the
// write): it learns from B that the ensemble recorded another data dir for
// it and stops. When A returns, A and B elect a leader that has the write.
func TestWipedReplicaDoesNotVoteAwayAnAcknowledgedWrite(t *testing.T) {
	c := newCluster(t, 3, zootest.Options{})
	ctx := testkit.Context(t)
	a := c.WaitLeader()
	f := followers(c, a)
	b, cc := f[0], f[1]
	waitRegistered(t, c, a)
	waitRegistered(t, c, b)

	c.Stop(b)
	s := sess(t, c, a)
	mustCreate(t, ctx, s, "/acked", []byte("by A and C"), zoo.ModePersistent)
	c.Stop(a)
	c.Stop(cc)
	if err := os.RemoveAll(c.Dir(cc)); err != nil {
		t.Fatal(err)
	}

	c.Restart(b)
	wiped := c.Restart(cc)
	select {
	case <-wiped.Stopped():
	case <-time.After(30 * time.Second):
		t.Fatal("the wiped replica did not stop")
	}
	var ie *zoo.IdentityError
	if err := wiped.Failure(); !errors.As(err, &ie) || ie.Member != c.ID(cc) || ie.Dir != c.Dir(cc) {
		t.Fatalf("Failure() = %v, want an IdentityError for replica %s", err, c.ID(cc))
	}
	if st, err := c.Replica(b).Status(); err != nil || st.Serving {
		t.Fatalf("B serves without A (status %+v, %v): it was elected with the wiped replica's vote", st, err)
	}

	c.Restart(a)
	s = sess(t, c, b)
	testkit.Eventually(t, 20*time.Second, "the acknowledged write readable through B", func() bool {
		if err := s.Sync(ctx, "/"); err != nil {
			return false
		}
		data, _, err := s.Get(ctx, "/acked")
		return err == nil && string(data) == "by A and C"
	})

	// The documented way back: remove it, add it back, start it on an empty dir.
	leader := c.WaitLeader()
	st, err := c.Replica(leader).Status()
	if err != nil {
		t.Fatal(err)
	}
	var addr string
	for _, m := range st.Members {
		if m.ID == c.ID(cc) {
			addr = m.Addr
		}
	}
	if err := c.Replica(leader).RemoveMember(ctx, c.ID(cc)); err != nil {
		t.Fatal(err)
	}
	c.Stop(cc)
	if err := os.RemoveAll(c.Dir(cc)); err != nil {
		t.Fatal(err)
	}
	if err := c.Replica(leader).AddVoter(ctx, c.ID(cc), addr); err != nil {
		t.Fatal(err)
	}
	c.Restart(cc)
	rebuilt := sess(t, c, cc)
	testkit.Eventually(t, 20*time.Second, "the rebuilt replica serves the acknowledged write", func() bool {
		if err := rebuilt.Sync(ctx, "/"); err != nil {
			return false
		}
		data, _, err := rebuilt.Get(ctx, "/acked")
		return err == nil && string(data) == "by A and C"
	})
	waitRegistered(t, c, leader)
}

// A data dir that belongs to another replica (a swapped myid) is refused at
// Open, before raft starts.
func TestDataDirOfAnotherReplicaIsRefused(t *testing.T) {
	c := newCluster(t, 3, zootest.Options{})
	c.Stop(1)
	c.Stop(2)
	cfg := zoo.Config{ID: c.ID(2), Dir: c.Dir(1), TickTime: 100 * time.Millisecond}
	e, err := zoo.Open(cfg)
	if err == nil {
		e.Close()
		t.Fatal("opened replica 3 on replica 2's data dir")
	}
	var ie *zoo.IdentityError
	if !errors.As(err, &ie) || ie.Member != c.ID(2) {
		t.Fatalf("Open: %v, want an IdentityError", err)
	}
}

// A data dir written by a newer zoo, whose format this one does not know, is
// refused at Open rather than misread.
func TestDataDirOfANewerZooIsRefused(t *testing.T) {
	dir := t.TempDir()
	e, err := zoo.Open(zoo.Config{Dir: dir, TickTime: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	e.Close()
	store, err := raftboltdb.NewBoltStore(filepath.Join(dir, "raft.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := store.SetUint64([]byte("zoo.format"), 99); err != nil {
		t.Fatal(err)
	}
	store.Close()
	if e, err := zoo.Open(zoo.Config{Dir: dir, TickTime: 100 * time.Millisecond}); err == nil {
		e.Close()
		t.Fatal("opened a data dir of format 99")
	} else if !strings.Contains(err.Error(), "newer zoo") || !strings.Contains(err.Error(), dir) {
		t.Fatalf("Open: %v, want it to name the dir and say a newer zoo wrote it", err)
	}
}

// Every member of an ensemble on disk stores the one id its first leader
// named it with, and keeps it across a restart.
func TestEveryMemberStoresTheEnsembleID(t *testing.T) {
	c := newCluster(t, 3, zootest.Options{})
	ids := func() []string {
		var out []string
		for i := range 3 {
			st, err := c.Replica(i).Status()
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, st.Ensemble)
		}
		return out
	}
	var named string
	testkit.Eventually(t, 30*time.Second, "every member stores one ensemble id", func() bool {
		got := ids()
		named = got[0]
		return len(named) == 32 && got[1] == named && got[2] == named
	})
	if st, err := c.Restart(1).Status(); err != nil || st.Ensemble != named {
		t.Fatalf("after a restart: ensemble %q (%v), want %q", st.Ensemble, err, named)
	}
}

// A member removed and added back while it runs registers its data dir
// again: the removal dropped its record, and without a new one its dir
// could later be wiped unnoticed.
func TestMemberAddedBackWhileRunningRegistersAgain(t *testing.T) {
	c := newCluster(t, 3, zootest.Options{})
	leader := c.WaitLeader()
	waitRegistered(t, c, leader)
	other := (leader + 1) % 3
	recorded := func() string {
		st, err := c.Replica(c.WaitLeader()).Status()
		if err != nil {
			return ""
		}
		for _, m := range st.Members {
			if m.ID == c.ID(other) {
				return m.DataDir
			}
		}
		return ""
	}
	before := recorded()
	addr := ""
	if st, err := c.Replica(leader).Status(); err == nil {
		for _, m := range st.Members {
			if m.ID == c.ID(other) {
				addr = m.Addr
			}
		}
	}
	if addr == "" || before == "" {
		t.Fatalf("member %s: address %q, record %q", c.ID(other), addr, before)
	}
	ctx := testkit.Context(t)
	if err := c.Replica(leader).RemoveMember(ctx, c.ID(other)); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, "the record dropped with the member", func() bool { return recorded() == "" })
	if err := c.Replica(c.WaitLeader()).AddVoter(ctx, c.ID(other), addr); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 20*time.Second, "the member's data dir recorded again", func() bool { return recorded() == before })
}
