package zoo_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/zooraft/zoo"
	"github.com/zooraft/zoo/internal/testkit"
	"github.com/zooraft/zoo/zootest"
)

// recordDirs returns Options that remember each replica's data dir in dirs.
func recordDirs(opts zootest.Options, dirs *sync.Map) zootest.Options {
	prev := opts.Configure
	opts.Configure = func(i int, cfg *zoo.Config) {
		dirs.Store(i, cfg.Dir)
		if prev != nil {
			prev(i, cfg)
		}
	}
	return opts
}

// snapshotsIn lists the completed raft snapshots in a replica's data dir.
func snapshotsIn(t *testing.T, dirs *sync.Map, i int) []string {
	t.Helper()
	dir, ok := dirs.Load(i)
	if !ok {
		t.Fatalf("no data dir recorded for replica %d", i)
	}
	m, err := filepath.Glob(filepath.Join(dir.(string), "snapshots", "*", "state.bin"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// writeLoad makes up to n persistent znodes under prefix through sessions on
// every replica, with sets, deletes and multis mixed in. A write of unknown
// outcome (a leader change) skips the rest of that node's ops; any other
// error fails the test.
func writeLoad(t *testing.T, ctx context.Context, c *zootest.Cluster, prefix string, n int) {
	t.Helper()
	s := sess(t, c, c.WaitLeader())
	mustCreate(t, ctx, s, prefix, []byte(prefix), zoo.ModePersistent)
	var wg sync.WaitGroup
	const writers = 6
	for w := 0; w < writers; w++ {
		s := sess(t, c, w%c.Size())
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := w; k < n; k += writers {
				p := fmt.Sprintf("%s/n%04d", prefix, k)
				if _, err := s.Create(ctx, p, []byte(p), zoo.ModePersistent, nil); err != nil {
					if zootest.UnknownOutcome(err) {
						continue
					}
					t.Errorf("create %s: %v", p, err)
					return
				}
				var err error
				switch k % 5 {
				case 1:
					_, err = s.Set(ctx, p, []byte("changed"), 0)
				case 2:
					_, err = s.Set(ctx, p, nil, -1) // null data
				case 3:
					err = s.Delete(ctx, p, 0)
				case 4:
					_, err = s.Multi(ctx,
						zoo.CheckOp{Path: p, Version: 0},
						zoo.CreateOp{Path: p + "/child", Data: []byte{}},
						zoo.SetDataOp{Path: p, Data: []byte("multi"), Version: 0})
				}
				if err != nil && !zootest.UnknownOutcome(err) {
					t.Errorf("op %d on %s: %v", k%5, p, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
}

func TestRestartWholeEnsemble(t *testing.T) {
	for _, tc := range []struct {
		name      string
		threshold uint64 // SnapshotThreshold; 0 = default (no snapshot here)
	}{
		{"from the log", 0},
		{"from a snapshot plus the log", 64},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var dirs sync.Map
			c := newCluster(t, 3, recordDirs(zootest.Options{SnapshotThreshold: tc.threshold}, &dirs))
			ctx := testkit.Context(t)
			writeLoad(t, ctx, c, "/restart", 150)
			if tc.threshold > 0 {
				testkit.Eventually(t, 15*time.Second, "a snapshot on every replica", func() bool {
					for i := 0; i < c.Size(); i++ {
						if len(snapshotsIn(t, &dirs, i)) == 0 {
							return false
						}
					}
					return true
				})
				// Entries after the snapshot, to replay from the log.
				writeLoad(t, ctx, c, "/after-snapshot", 20)
			}
			before := assertAllAgree(t, ctx, c)

			for i := 0; i < c.Size(); i++ {
				c.Stop(i)
			}
			for i := 0; i < c.Size(); i++ {
				c.Restart(i)
			}
			c.WaitLeader()
			for i := 0; i < c.Size(); i++ {
				if err := c.Replica(i).WaitServing(ctx); err != nil {
					t.Fatalf("replica %d after restart: %v", i, err)
				}
			}
			after := assertAllAgree(t, ctx, c)
			if diff := diffTrees(before, after); diff != "" {
				t.Fatalf("tree changed across the restart:\n%s", diff)
			}
		})
	}
}

func TestAddedReplicaCatchesUpFromSnapshot(t *testing.T) {
	var dirs sync.Map
	// raft keeps max(SnapshotThreshold, 64) trailing entries after a
	// snapshot: well below the number written here, so the log the new
	// replica would need is gone and it must install a snapshot.
	c := newCluster(t, 3, recordDirs(zootest.Options{SnapshotThreshold: 64}, &dirs))
	ctx := testkit.Context(t)
	writeLoad(t, ctx, c, "/big", 250)
	leader := c.WaitLeader()
	testkit.Eventually(t, 15*time.Second, "a snapshot on the leader", func() bool {
		return len(snapshotsIn(t, &dirs, leader)) > 0
	})
	writeLoad(t, ctx, c, "/more", 20)

	n := c.AddReplica()
	if err := c.Replica(n).WaitServing(ctx); err != nil {
		t.Fatal(err)
	}
	if got := snapshotsIn(t, &dirs, n); len(got) == 0 {
		t.Fatal("the new replica caught up without installing a snapshot; the test did not test that")
	}
	testkit.Eventually(t, 10*time.Second, "the new replica serves as a member", func() bool {
		st, err := c.Replica(n).Status()
		return err == nil && st.Serving && st.Role != zoo.RoleObserver && len(st.Members) == 4
	})
	// Writes after the join reach it through the log.
	writeLoad(t, ctx, c, "/after-join", 12)
	tree := assertAllAgree(t, ctx, c)
	if n := len(tree["/big"].Children); n < 150 {
		t.Fatalf("/big has %d children", n)
	}
	// The new replica serves sessions of its own.
	s := sess(t, c, n)
	mustCreate(t, ctx, s, "/from-new", nil, zoo.ModeEphemeral)
	if !existsOn(t, ctx, c, leader, "/from-new") {
		t.Fatal("write through the new replica not on the leader")
	}
}
