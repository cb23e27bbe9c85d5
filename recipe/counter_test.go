package recipe

import (
	"context"
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zooraft/zoo"
	"github.com/zooraft/zoo/internal/testkit"
)

// TestCounterConcurrentAdds: many sessions add at once while the raft leader
// replica is cut off under them (so that writes in flight there have an
// unknown outcome). Every Add that succeeded was applied exactly
// once and saw a distinct result; an Add whose outcome is unknown says so
// (an error wrapping zoo.ErrConnectionLoss, and never a conflict to retry)
// and was applied at most once.
func TestCounterConcurrentAdds(t *testing.T) {
	cl := newCluster(t, 3)
	ctx := testkit.ContextFor(t, 180*time.Second)
	leader := cl.WaitLeader()
	const sessions, adds = 8, 15
	results := make(chan int64, sessions*adds)
	var (
		wg            sync.WaitGroup
		done          atomic.Int32
		known, unsure atomic.Int64 // the sums of the deltas of applied and unknown Adds
	)
	for i := range sessions {
		c, err := NewCounter(session(t, cl, (leader+1+i%2)%3), "/counters/hits")
		must(t, err)
		delta := int64(i%3 + 1)
		wg.Go(func() {
			for range adds {
				v, err := c.Add(ctx, delta)
				done.Add(1)
				switch {
				case err == nil:
					known.Add(delta)
					results <- v
				case errors.Is(err, zoo.ErrConnectionLoss) && !errors.Is(err, zoo.ErrBadVersion) &&
					!errors.Is(err, errCounterConflict):
					unsure.Add(delta)
					t.Logf("Add: %v", err)
				default:
					t.Errorf("Add: %v", err)
					return
				}
			}
		})
	}
	testkit.EventuallyNil(t, time.Minute, func() error { return testkit.Holds(done.Load() >= sessions*adds/3, "a third of the Adds") })
	cl.Isolate(leader)
	wg.Wait()
	cl.Heal()
	close(results)
	seen := map[int64]bool{}
	for v := range results {
		if seen[v] {
			t.Fatalf("two Adds returned %d", v)
		}
		seen[v] = true
	}
	s := session(t, cl, (leader+1)%3)
	mustSync(t, s)
	c, err := NewCounter(s, "/counters/hits")
	must(t, err)
	got, err := c.Get(ctx)
	must(t, err)
	if lo, hi := known.Load(), known.Load()+unsure.Load(); got < lo || got > hi {
		t.Fatalf("sum %d; want %d (plus at most %d of Adds with an unknown outcome)", got, lo, hi-lo)
	}
}

func TestCounterCompareAndSetAndFormat(t *testing.T) {
	cl := newCluster(t, 1)
	s := session(t, cl, 0)
	ctx := testkit.ContextFor(t, 60*time.Second)
	c, err := NewCounter(s, "/cnt")
	must(t, err)
	if v, err := c.Get(ctx); v != 0 || err != nil {
		t.Fatalf("Get of a missing counter: %d %v", v, err)
	}
	if ok, err := c.CompareAndSet(ctx, 1, 5); ok || err != nil {
		t.Fatalf("CAS 1->5 on 0: %v %v", ok, err)
	}
	if ok, err := c.CompareAndSet(ctx, 0, 5); !ok || err != nil {
		t.Fatalf("CAS 0->5: %v %v", ok, err)
	}
	if v, err := c.Add(ctx, -7); v != -2 || err != nil {
		t.Fatalf("Add -7: %d %v", v, err)
	}
	// Stored as kazoo's Counter stores it: decimal text.
	data, _, err := s.Get(ctx, "/cnt")
	must(t, err)
	if string(data) != "-2" {
		t.Fatalf("stored %q", data)
	}
	// A value written by kazoo (str(int)) reads back.
	mustSet(t, s, "/cnt", []byte("41"))
	if v, err := c.Add(ctx, 1); v != 42 || err != nil {
		t.Fatalf("Add to a kazoo-written value: %d %v", v, err)
	}
	must(t, c.Set(ctx, math.MaxInt64-1))
	if _, err := c.Add(ctx, 2); !errors.Is(err, ErrCounterOverflow) {
		t.Fatalf("overflow: %v", err)
	}
	if v, _ := c.Get(ctx); v != math.MaxInt64-1 {
		t.Fatalf("an overflowing Add wrote %d", v)
	}
	mustSet(t, s, "/cnt", []byte("twelve"))
	if _, err := c.Get(ctx); !errors.Is(err, ErrCounterFormat) {
		t.Fatalf("Get of a non-number: %v", err)
	}
	if _, err := c.Add(ctx, 1); !errors.Is(err, ErrCounterFormat) {
		t.Fatalf("Add to a non-number: %v", err)
	}
	if _, err := NewCounter(s, "counter"); !errors.Is(err, zoo.ErrBadArguments) {
		t.Fatalf("bad path: %v", err)
	}
}

func TestCounterWatch(t *testing.T) {
	cl := newCluster(t, 3)
	ctx := testkit.ContextFor(t, 60*time.Second)
	watcher, err := NewCounter(session(t, cl, 0), "/watched")
	must(t, err)
	f := watcher.Watch(ctx)
	if v := recv(t, f.C(), "first value"); v != 0 {
		t.Fatalf("first value %d", v)
	}
	adder, err := NewCounter(session(t, cl, 1), "/watched")
	must(t, err)
	for range 10 {
		// An unknown outcome (a leader election) changes nothing here:
		// the last Set decides.
		if _, err := adder.Add(ctx, 3); err != nil && !errors.Is(err, zoo.ErrConnectionLoss) {
			t.Fatal(err)
		}
	}
	mustDo(t, "set the counter", func(ctx context.Context) error { return adder.Set(ctx, 30) })
	// Coalesced: whatever came in between, the latest value arrives.
	testkit.EventuallyNil(t, 30*time.Second, func() error {
		select {
		case v := <-f.C():
			if v == 30 {
				return nil
			}
		default:
		}
		return errors.New("30 not seen yet")
	})
	s := session(t, cl, 2)
	c2, err := NewCounter(s, "/watched")
	must(t, err)
	f2 := c2.Watch(ctx)
	mustClose(t, s)
	<-f2.Done()
	if !errors.Is(f2.Err(), zoo.ErrClosed) {
		t.Fatalf("feed after its session closed: %v", f2.Err())
	}
}
