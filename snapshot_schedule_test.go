package zoo

import (
	"fmt"
	"testing"
	"time"

	"github.com/zooraft/zoo/internal/testkit"
)

func TestSnapshotThresholdFor(t *testing.T) {
	for _, tc := range []struct {
		configured uint64
		nodes      int
		want       uint64
	}{
		{8192, 0, 8192},
		{8192, 10_000, 8192},
		{8192, 1_000_000, 125_000},
		{8192, 100_000_000, maxSnapshotThreshold},
		{200_000, 1_000_000, 200_000},
	} {
		if got := snapshotThresholdFor(tc.configured, tc.nodes); got != tc.want {
			t.Errorf("snapshotThresholdFor(%d, %d) = %d, want %d", tc.configured, tc.nodes, got, tc.want)
		}
	}
}

// raft's snapshot threshold follows the tree: up as it grows past eight
// times the configured threshold, back down as it shrinks.
func TestSnapshotThresholdFollowsTheTree(t *testing.T) {
	e, s, ctx := loneSession(t, Config{Dir: t.TempDir(), TickTime: 50 * time.Millisecond, SnapshotThreshold: 64})
	defer e.Close()
	threshold := func() uint64 { return e.raft.ReloadableConfig().SnapshotThreshold }
	if got := threshold(); got != 64 {
		t.Fatalf("threshold %d at the start, want 64", got)
	}
	var ops []Op
	for i := range 2000 {
		ops = append(ops, CreateOp{Path: fmt.Sprintf("/n%05d", i), Mode: ModePersistent})
		if len(ops) == 200 {
			if _, err := s.Multi(ctx, ops...); err != nil {
				t.Fatal(err)
			}
			ops = nil
		}
	}
	testkit.Eventually(t, 10*time.Second, "the threshold at an eighth of 2000+ znodes", func() bool {
		return threshold() >= 250 && threshold() < 260
	})
	for i := range 2000 {
		ops = append(ops, DeleteOp{Path: fmt.Sprintf("/n%05d", i), Version: -1})
		if len(ops) == 200 {
			if _, err := s.Multi(ctx, ops...); err != nil {
				t.Fatal(err)
			}
			ops = nil
		}
	}
	testkit.Eventually(t, 10*time.Second, "the threshold back at 64", func() bool { return threshold() == 64 })
}
