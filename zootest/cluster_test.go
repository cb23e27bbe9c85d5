package zootest_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/zooraft/zoo"
	"github.com/zooraft/zoo/internal/testkit"
	"github.com/zooraft/zoo/zootest"
)

// A minority partition serves nothing and says so; the majority carries on;
// after healing everyone agrees and nothing the minority refused was written.
func TestPartitionMinorityStopsServing(t *testing.T) {
	for _, tc := range []struct {
		name string
		// minority picks the replica cut off, given the current leader.
		minority func(leader int) int
	}{
		{"follower cut off", func(leader int) int { return (leader + 1) % 3 }},
		{"leader cut off", func(leader int) int { return leader }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := zootest.New(t, 3, zootest.Options{TickTime: 100 * time.Millisecond})
			ctx := testkit.Context(t)
			leader := c.WaitLeader()
			alone := tc.minority(leader)
			var majority []int
			for i := 0; i < 3; i++ {
				if i != alone {
					majority = append(majority, i)
				}
			}
			s := c.Session(alone)
			if err := zootest.Retry(ctx, func() error {
				_, err := s.Create(ctx, "/before", nil, zoo.ModePersistent, nil)
				return err
			}, zoo.ErrNodeExists); err != nil {
				t.Fatal(err)
			}
			m := c.Session(majority[0])

			c.Partition(majority, []int{alone})
			testkit.Eventually(t, 10*time.Second, "the cut-off replica stops serving", func() bool {
				st, err := c.Replica(alone).Status()
				return err == nil && !st.Serving && st.Role == zoo.RoleNotServing
			})
			if _, err := s.Create(ctx, "/minority", nil, zoo.ModePersistent, nil); !errors.Is(err, zoo.ErrNotServing) {
				t.Fatalf("write in the minority: %v, want ErrNotServing", err)
			}
			if _, _, err := s.Get(ctx, "/before"); !errors.Is(err, zoo.ErrNotServing) {
				t.Fatalf("read in the minority: %v, want ErrNotServing", err)
			}
			// The majority elects a leader among itself and keeps writing.
			testkit.Eventually(t, 10*time.Second, "a leader in the majority", func() bool {
				l := c.Leader()
				return l == majority[0] || l == majority[1]
			})
			if err := zootest.Retry(ctx, func() error {
				_, err := m.Create(ctx, "/majority", nil, zoo.ModePersistent, nil)
				return err
			}, zoo.ErrNodeExists); err != nil {
				t.Fatalf("write in the majority: %v", err)
			}

			c.Heal()
			for i := 0; i < 3; i++ {
				if err := c.Replica(i).WaitServing(ctx); err != nil {
					t.Fatalf("replica %d after heal: %v", i, err)
				}
				var kids []string
				err := zootest.Retry(ctx, func() error {
					r, err := c.Replica(i).NewSession(ctx)
					if err != nil {
						return err
					}
					defer r.Close(ctx)
					if err := r.Sync(ctx, "/"); err != nil {
						return err
					}
					kids, _, err = r.Children(ctx, "/")
					return err
				})
				if err != nil {
					t.Fatal(err)
				}
				if got := fmt.Sprint(kids); got != "[before majority zookeeper]" {
					t.Fatalf("replica %d after heal: children of / = %s", i, got)
				}
			}
		})
	}
}

func TestStopRestartFollower(t *testing.T) {
	c := zootest.New(t, 3, zootest.Options{TickTime: 100 * time.Millisecond})
	ctx := testkit.Context(t)
	leader := c.WaitLeader()
	f := (leader + 1) % 3
	w := c.Session(leader)
	c.Stop(f)
	if c.Replica(f) != nil {
		t.Fatal("Replica of a stopped replica is not nil")
	}
	// Two of three still make a quorum.
	for i := 0; i < 20; i++ {
		if err := zootest.Retry(ctx, func() error {
			_, err := w.Create(ctx, fmt.Sprintf("/while-down-%02d", i), nil, zoo.ModePersistent, nil)
			return err
		}, zoo.ErrNodeExists); err != nil {
			t.Fatal(err)
		}
	}
	e := c.Restart(f)
	if e == nil || c.Replica(f) != e {
		t.Fatal("Restart did not return the running replica")
	}
	if err := e.WaitServing(ctx); err != nil {
		t.Fatal(err)
	}
	r := c.Session(f)
	if n, err := r.AllChildrenNumber(ctx, "/"); err != nil || n != 20+3 { // + /zookeeper, quota, config
		t.Fatalf("restarted follower sees %d nodes: %v", n, err)
	}
}
