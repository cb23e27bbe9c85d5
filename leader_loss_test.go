package zoo

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/zooraft/zoo/internal/testkit"
)

// When the leader's process is gone (here: closed, so its port refuses
// connections), its followers do not wait for raft's heartbeat timeout:
// they lower it to the lease, elect a new leader, and put it back.
func TestFollowersElectAtOnceWhenTheLeadersPortRefuses(t *testing.T) {
	ports := testkit.FreePorts(t, 3)
	var peers []Peer
	for i, p := range ports {
		peers = append(peers, Peer{ID: strconv.Itoa(i + 1), Addr: fmt.Sprintf("127.0.0.1:%d", p)})
	}
	base := t.TempDir()
	logs := make([]*syncBuffer, len(peers))
	replicas := make([]*Ensemble, len(peers))
	for i, p := range peers {
		logs[i] = &syncBuffer{}
		e, err := Open(Config{ID: p.ID, Dir: filepath.Join(base, p.ID), BindAddr: p.Addr, Peers: peers,
			TickTime: 2 * time.Second, Logger: slog.New(slog.NewTextHandler(logs[i], nil))})
		if err != nil {
			t.Fatal(err)
		}
		defer e.Close()
		replicas[i] = e
	}
	leaderOf := func() int {
		for i, e := range replicas {
			if e != nil && e.raft.State() == raft.Leader {
				return i
			}
		}
		return -1
	}
	testkit.Eventually(t, 30*time.Second, "a leader", func() bool { return leaderOf() >= 0 })
	old := leaderOf()
	if lease := replicas[old].raftLease; lease != 500*time.Millisecond {
		t.Fatalf("lease %v at TickTime 2s, want 500ms", lease)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, e := range replicas {
		if err := e.WaitServing(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// Another mechanism moved the snapshot threshold meanwhile (within a
	// quarter of the default, so that snapshot_schedule.go leaves it): the
	// heartbeat timeout's round trip must keep it.
	const threshold = 9000
	for _, e := range replicas {
		if err := e.reloadRaft(func(rc *raft.ReloadableConfig) { rc.SnapshotThreshold = threshold }); err != nil {
			t.Fatal(err)
		}
	}
	replicas[old].Close()
	replicas[old] = nil
	testkit.Eventually(t, 30*time.Second, "a new leader", func() bool { return leaderOf() >= 0 })
	noticed := 0
	for i, l := range logs {
		if i != old && strings.Contains(l.String(), "the leader's port refuses connections: electing a new leader now") {
			noticed++
		}
	}
	if noticed == 0 {
		t.Fatal("no follower noticed the leader's port refusing connections; they waited for the heartbeat timeout")
	}
	testkit.Eventually(t, 10*time.Second, "raft's heartbeat timeout back at TickTime/2 on every replica", func() bool {
		for _, e := range replicas {
			if e != nil && e.raft.ReloadableConfig().HeartbeatTimeout != time.Second {
				return false
			}
		}
		return true
	})
	for _, e := range replicas {
		if e != nil {
			if got := e.raft.ReloadableConfig().SnapshotThreshold; got != threshold {
				t.Errorf("snapshot threshold %d after the election, want %d: restoring the heartbeat timeout reset it", got, threshold)
			}
		}
	}
}
