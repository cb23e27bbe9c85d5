package zoo_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/zooraft/zoo"
	"github.com/zooraft/zoo/internal/lincheck"
	"github.com/zooraft/zoo/internal/testkit"
	"github.com/zooraft/zoo/zootest"
)

// TestLinearizableUnderFaults has clients on every replica write, compare-and-
// set and sync-then-read three znodes while replicas are cut off, healed,
// stopped and restarted, then checks with porcupine that the history is
// linearizable: every acknowledged write took effect exactly once, between
// its call and its return, and every synced read saw the latest of them.
// (Plain reads are sequentially consistent, as in ZooKeeper, not linearizable:
// they are not checked here.)
func TestLinearizableUnderFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("runs faults for several seconds")
	}
	const keys, clients = 3, 6
	c := newCluster(t, 3, zootest.Options{})
	setup := c.Session(0)
	ctx := testkit.Context(t)
	for k := range keys {
		mustCreate(t, ctx, setup, fmt.Sprintf("/reg%d", k), []byte{}, zoo.ModePersistent)
	}

	h := lincheck.NewHistory()

	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for id := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runClient(runCtx, c, id, keys, h)
		}()
	}

	// Faults, from the test goroutine (zootest fails the test from here).
	rng := rand.New(rand.NewPCG(1, 2))
	deadline := time.Now().Add(8 * time.Second)
	for time.Now().Before(deadline) {
		time.Sleep(400 * time.Millisecond)
		switch rng.IntN(3) {
		case 0: // cut the leader off, let the others elect, heal
			if l := c.Leader(); l >= 0 {
				c.Isolate(l)
				time.Sleep(time.Duration(300+rng.IntN(700)) * time.Millisecond)
				c.Heal()
			}
		case 1: // cut a random replica off
			c.Isolate(rng.IntN(3))
			time.Sleep(time.Duration(200+rng.IntN(500)) * time.Millisecond)
			c.Heal()
		case 2: // crash the leader and bring it back
			if l := c.Leader(); l >= 0 {
				c.Stop(l)
				time.Sleep(time.Duration(200+rng.IntN(400)) * time.Millisecond)
				c.Restart(l)
			}
		}
	}
	c.Heal()
	stop()
	wg.Wait()

	reads, writes, unknown := h.Counts()
	t.Logf("history: %d synced reads, %d writes with a known outcome, %d unknown", reads, writes, unknown)
	if reads < 50 || writes < 50 {
		t.Fatalf("too few operations completed to check anything (%d reads, %d writes)", reads, writes)
	}
	if err := h.Check(2 * time.Minute); err != nil {
		t.Fatal(err)
	}
}

// runClient issues random operations from one session on replica id%3 until
// ctx ends, opening a new session whenever its replica ended the old one.
func runClient(ctx context.Context, c *zootest.Cluster, id, keys int, h *lincheck.History) {
	rng := rand.New(rand.NewPCG(uint64(id), 7))
	replica := id % c.Size()
	var s *zoo.Session
	for n := 0; ctx.Err() == nil; n++ {
		if s == nil {
			e := c.Replica(replica)
			if e == nil { // stopped: wait for its restart
				time.Sleep(20 * time.Millisecond)
				continue
			}
			sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			s, _ = e.NewSession(sctx)
			cancel()
			continue
		}
		key := rng.IntN(keys)
		path := fmt.Sprintf("/reg%d", key)
		opCtx, cancel := context.WithTimeout(ctx, 3*time.Second)
		in := lincheck.Input{Key: key, Op: lincheck.Op(rng.IntN(3))}
		var out lincheck.Output
		var err error
		keep := false // whether the operation belongs in the history
		call := h.Now()
		switch in.Op {
		case lincheck.Read:
			if err = s.Sync(opCtx, path); err == nil {
				var data []byte
				var st zoo.Stat
				if data, st, err = s.Get(opCtx, path); err == nil {
					// A failed read changed nothing: only successful ones count.
					out, keep = lincheck.Output{Value: string(data), Version: st.Version}, true
				}
			}
		case lincheck.Write, lincheck.CAS:
			in.Value = fmt.Sprintf("c%d-%d", id, n)
			in.Version = -1
			if in.Op == lincheck.CAS {
				// A local read picks the version to expect; it may be stale,
				// which only makes the CAS fail.
				var st zoo.Stat
				if _, st, err = s.Get(opCtx, path); err != nil {
					break // nothing was sent
				}
				in.Version = st.Version
				call = h.Now()
			}
			var st zoo.Stat
			st, err = s.Set(opCtx, path, []byte(in.Value), in.Version)
			keep = true
			switch {
			case err == nil:
				out = lincheck.Output{OK: true, Version: st.Version}
			case in.Op == lincheck.CAS && errors.Is(err, zoo.ErrBadVersion):
				out = lincheck.Output{OK: false}
			default:
				out = lincheck.Output{Unknown: true}
			}
		}
		cancel()
		if keep {
			h.Add(id, in, call, out)
		}
		if errors.Is(err, zoo.ErrSessionExpired) || errors.Is(err, zoo.ErrClosed) {
			s = nil
		}
	}
}
