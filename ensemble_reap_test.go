package zoo_test

import (
	"errors"
	"testing"
	"time"

	"github.com/zooraft/zoo"
	"github.com/zooraft/zoo/internal/testkit"
	"github.com/zooraft/zoo/zootest"
)

// The leader deletes containers that had children and lost them all, and TTL
// nodes left childless past their TTL, as replicated deletes every replica sees.
func TestLeaderReapsContainersAndTTLNodes(t *testing.T) {
	c := newCluster(t, 3, zootest.Options{ContainerCheckInterval: 50 * time.Millisecond})
	ctx := testkit.Context(t)
	leader := c.WaitLeader()
	s := sess(t, c, followers(c, leader)[0])

	// A container that never had a child stays (ZooKeeper keeps never-used ones).
	mustCreate(t, ctx, s, "/unused", nil, zoo.ModeContainer)
	mustCreate(t, ctx, s, "/box", nil, zoo.ModeContainer)
	mustCreate(t, ctx, s, "/box/item", nil, zoo.ModePersistent)
	if _, _, err := s.CreateWithStat(ctx, zoo.CreateOp{Path: "/ttl", Mode: zoo.ModePersistentWithTTL, TTL: 200 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.CreateWithStat(ctx, zoo.CreateOp{Path: "/ttl-parent", Mode: zoo.ModePersistentWithTTL, TTL: 50 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, ctx, s, "/ttl-parent/child", nil, zoo.ModePersistent)

	// The expired TTL node going proves the reaper ran after everything above
	// existed: the nodes that must stay are checked right then.
	for i := 0; i < c.Size(); i++ {
		testkit.Eventually(t, 10*time.Second, "expired TTL node reaped", func() bool { return !existsOn(t, ctx, c, i, "/ttl") })
	}
	for _, p := range []string{"/box", "/unused", "/ttl-parent"} {
		if !existsOn(t, ctx, c, leader, p) {
			t.Fatalf("%s was reaped", p)
		}
	}
	if err := s.Delete(ctx, "/box/item", -1); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < c.Size(); i++ {
		testkit.Eventually(t, 10*time.Second, "emptied container reaped on every replica", func() bool {
			return !existsOn(t, ctx, c, i, "/box")
		})
		for _, p := range []string{"/unused", "/ttl-parent"} {
			if !existsOn(t, ctx, c, i, p) {
				t.Fatalf("replica %d: %s was reaped", i, p)
			}
		}
	}
}

func TestTTLValidation(t *testing.T) {
	e, err := zoo.Open(zoo.Config{TickTime: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ctx := testkit.Context(t)
	s, err := e.NewSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range []zoo.CreateOp{
		{Path: "/a", Mode: zoo.ModePersistentWithTTL},                                    // no TTL
		{Path: "/a", Mode: zoo.ModePersistent, TTL: time.Second},                         // TTL without TTL mode
		{Path: "/a", Mode: zoo.ModePersistentWithTTL, TTL: time.Microsecond},             // not whole ms
		{Path: "/a", Mode: zoo.ModePersistentWithTTL, TTL: (1 << 40) * time.Millisecond}, // above 2^40-1 ms
	} {
		if _, _, err := s.CreateWithStat(ctx, op); !errors.Is(err, zoo.ErrBadArguments) {
			t.Errorf("%+v: got %v, want ErrBadArguments", op, err)
		}
	}
	if ok, _, _ := s.Exists(ctx, "/a"); ok {
		t.Fatal("a rejected create left a node")
	}
}
