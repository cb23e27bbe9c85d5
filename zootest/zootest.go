// Package zootest runs whole zoo ensembles inside one test process: N replicas
// on raft's in-memory transport, each with a real bbolt data dir, with faults to
// inject (stop, restart, partition, isolate) and helpers to wait for a leader.
//
// A Cluster is cleaned up with the test (t.Cleanup); use it in your own tests
// of code built on zoo.
package zootest

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/zooraft/zoo"
	"github.com/zooraft/zoo/internal/memnet"
)

// Options tune a Cluster. The zero value is a good default for tests.
type Options struct {
	// TickTime for every replica. Default 200ms: elections take a few hundred
	// ms, and a busy machine running tests under -race does not see spurious ones.
	TickTime time.Duration
	// SnapshotThreshold for every replica. Default: zoo's default.
	SnapshotThreshold uint64
	// ContainerCheckInterval for every replica. Default: zoo's default.
	ContainerCheckInterval time.Duration
	// Configure, if set, adjusts each replica's Config before it opens.
	Configure func(i int, cfg *zoo.Config)
}

// Cluster is an in-process ensemble.
type Cluster struct {
	t    testing.TB
	opts Options
	net  *memnet.Network
	dirs []string
	ids  []string

	mu       sync.Mutex // guards replicas
	replicas []*zoo.Ensemble
}

// New starts an n-replica ensemble and waits until it has a leader.
func New(t testing.TB, n int, opts Options) *Cluster {
	t.Helper()
	if opts.TickTime == 0 {
		opts.TickTime = 200 * time.Millisecond
	}
	c := &Cluster{t: t, opts: opts, net: memnet.New(), replicas: make([]*zoo.Ensemble, n)}
	base := t.TempDir()
	for i := 0; i < n; i++ {
		c.ids = append(c.ids, fmt.Sprint(i+1))
		c.dirs = append(c.dirs, filepath.Join(base, "replica-"+c.ids[i]))
	}
	t.Cleanup(c.Close)
	for i := 0; i < n; i++ {
		if err := c.start(i, false); err != nil {
			t.Fatalf("zootest: start replica %d: %v", i, err)
		}
	}
	c.WaitLeader()
	return c
}

func (c *Cluster) addr(i int) raft.ServerAddress { return raft.ServerAddress("zoo-" + c.ids[i]) }

func (c *Cluster) config(i int, join bool) (zoo.Config, error) {
	ep, err := c.net.Endpoint(c.addr(i))
	if err != nil {
		return zoo.Config{}, err
	}
	cfg := zoo.Config{
		ID: c.ids[i], Dir: c.dirs[i], Transport: ep, Join: join,
		TickTime: c.opts.TickTime, SnapshotThreshold: c.opts.SnapshotThreshold,
		ContainerCheckInterval: c.opts.ContainerCheckInterval,
	}
	if !join {
		for j := range c.ids {
			if c.dirs[j] == "" {
				continue
			}
			cfg.Peers = append(cfg.Peers, zoo.Peer{ID: c.ids[j], Addr: string(c.addr(j))})
		}
		if len(cfg.Peers) == 1 {
			cfg.Peers = nil
		}
	}
	if c.opts.Configure != nil {
		c.opts.Configure(i, &cfg)
	}
	return cfg, nil
}

func (c *Cluster) start(i int, join bool) error {
	cfg, err := c.config(i, join)
	if err != nil {
		return err
	}
	e, err := zoo.Open(cfg)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.replicas[i] = e
	c.mu.Unlock()
	return nil
}

// Size returns the number of replicas, running or not.
func (c *Cluster) Size() int { return len(c.ids) }

// Replica returns replica i, or nil while it is stopped.
func (c *Cluster) Replica(i int) *zoo.Ensemble {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.replicas[i]
}

// ID returns replica i's member ID.
func (c *Cluster) ID(i int) string { return c.ids[i] }

// Leader returns the index of the replica that currently leads, or -1.
func (c *Cluster) Leader() int {
	for i := range c.ids {
		e := c.Replica(i)
		if e == nil {
			continue
		}
		if st, err := e.Status(); err == nil && st.Role == zoo.RoleLeader {
			return i
		}
	}
	return -1
}

// WaitLeader waits (up to 30s) for a leader that every running, connected
// replica agrees on, and returns its index.
func (c *Cluster) WaitLeader() int {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if l := c.Leader(); l >= 0 {
			return l
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.t.Fatalf("zootest: no leader within 30s")
	return -1
}

// Session opens a session on replica i, riding out leader elections (an
// unknown-outcome create only leaves a session that expires), and fails the
// test on any other error.
func (c *Cluster) Session(i int, opts ...zoo.SessionOption) *zoo.Session {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		s, err := c.Replica(i).NewSession(ctx, opts...)
		if err == nil {
			return s
		}
		// A leader election (or a busy machine losing a heartbeat) is not
		// what the caller's test is about: try again while it lasts.
		if !UnknownOutcome(err) || ctx.Err() != nil {
			c.t.Fatalf("zootest: session on replica %d: %v", i, err)
		}
		pause(ctx)
	}
}

// UnknownOutcome reports the errors after which a write may or may not have
// happened, or that say the replica could not serve it right now: what a
// leader change (or a busy machine losing a heartbeat) causes.
func UnknownOutcome(err error) bool {
	return errors.Is(err, zoo.ErrConnectionLoss) || errors.Is(err, zoo.ErrNotServing) ||
		errors.Is(err, zoo.ErrOperationTimeout)
}

// Retry runs call until its outcome is known: in a test on a loaded machine
// a leader may step down at any time, and most tests are not about that.
// done lists the errors that, after an unknown outcome, mean an earlier
// attempt took effect (zoo.ErrNodeExists for a create, ...): they count as
// success then.
func Retry(ctx context.Context, call func() error, done ...error) error {
	unknown := false
	for {
		err := call()
		if err == nil || !UnknownOutcome(err) || ctx.Err() != nil {
			if unknown && err != nil {
				for _, d := range done {
					if errors.Is(err, d) {
						return nil
					}
				}
			}
			return err
		}
		unknown = true
		pause(ctx)
	}
}

// pause waits a little before a retry, or until ctx ends.
func pause(ctx context.Context) {
	select {
	case <-time.After(10 * time.Millisecond):
	case <-ctx.Done():
	}
}

// Dir returns replica i's data dir (raft.db and snapshots), for tests that
// inspect or damage what it stored while it is stopped.
func (c *Cluster) Dir(i int) string { return c.dirs[i] }

// Stop closes replica i without closing its sessions, like a crash: its data
// dir stays for Restart.
func (c *Cluster) Stop(i int) {
	c.mu.Lock()
	e := c.replicas[i]
	c.replicas[i] = nil
	c.mu.Unlock()
	if e != nil {
		e.Close()
	}
}

// Restart reopens a stopped replica from its data dir.
func (c *Cluster) Restart(i int) *zoo.Ensemble {
	c.t.Helper()
	c.Stop(i)
	if err := c.start(i, false); err != nil {
		c.t.Fatalf("zootest: restart replica %d: %v", i, err)
	}
	return c.Replica(i)
}

// Start starts stopped replica i from its data dir, and returns Open's
// error: for tests of a replica that must refuse to start.
func (c *Cluster) Start(i int) error {
	c.t.Helper()
	if c.Replica(i) != nil {
		return fmt.Errorf("zootest: replica %d is running", i)
	}
	return c.start(i, false)
}

// AddReplica starts a new, empty replica, adds it as an observer, waits until
// it caught up with the leader, then promotes it to voter (a voter that is far
// behind would weaken the quorum while it catches up). Returns its index.
func (c *Cluster) AddReplica() int {
	c.t.Helper()
	i := len(c.ids)
	c.ids = append(c.ids, fmt.Sprint(i+1))
	c.dirs = append(c.dirs, filepath.Join(c.t.TempDir(), "replica-"+c.ids[i]))
	c.mu.Lock()
	c.replicas = append(c.replicas, nil)
	c.mu.Unlock()
	if err := c.start(i, true); err != nil {
		c.t.Fatalf("zootest: start replica %d: %v", i, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Replica(c.WaitLeader()).AddObserver(ctx, c.ids[i], string(c.addr(i))); err != nil {
		c.t.Fatalf("zootest: add replica %d as observer: %v", i, err)
	}
	if err := c.Replica(i).WaitServing(ctx); err != nil {
		c.t.Fatalf("zootest: replica %d catching up: %v", i, err)
	}
	if err := c.Replica(c.WaitLeader()).AddVoter(ctx, c.ids[i], string(c.addr(i))); err != nil {
		c.t.Fatalf("zootest: promote replica %d: %v", i, err)
	}
	return i
}

// Partition splits the replicas into groups (by index) that cannot reach each
// other; a replica named in no group is isolated.
func (c *Cluster) Partition(groups ...[]int) {
	var gs [][]raft.ServerAddress
	for _, g := range groups {
		var addrs []raft.ServerAddress
		for _, i := range g {
			addrs = append(addrs, c.addr(i))
		}
		gs = append(gs, addrs)
	}
	c.net.Partition(gs...)
}

// Isolate cuts replica i off from every other replica.
func (c *Cluster) Isolate(i int) { c.net.Isolate(c.addr(i)) }

// Heal removes every partition.
func (c *Cluster) Heal() { c.net.Heal() }

// Close stops every replica. It runs automatically at the end of the test.
func (c *Cluster) Close() {
	for i := range c.ids {
		c.Stop(i)
	}
}
