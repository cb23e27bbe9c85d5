package zoo_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/zooraft/zoo"
	"github.com/zooraft/zoo/internal/testkit"
	"github.com/zooraft/zoo/zootest"
)

// pipelined runs calls through one WriteQueue with up to inFlight at once, as
// zkwire does for a client that does not wait for replies, and returns each
// call's error.
func pipelined(ctx context.Context, n, inFlight int, call func(ctx context.Context, i int) error) []error {
	var q zoo.WriteQueue
	errs := make([]error, n)
	slots := make(chan struct{}, inFlight)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		slots <- struct{}{}
		wctx, release := q.Next(ctx)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			errs[i] = call(wctx, i)
			release()
		}()
	}
	wg.Wait()
	return errs
}

// Pipelined writes commit in the order they were started, from the leader
// and from a follower (whose writes are forwarded), and a write may depend on
// the one started just before it.
func TestWriteQueueKeepsOrder(t *testing.T) {
	c := newCluster(t, 3, zootest.Options{})
	ctx := testkit.Context(t)
	leader := c.WaitLeader()
	for _, at := range []int{leader, followers(c, leader)[0]} {
		s := sess(t, c, at)
		base := fmt.Sprintf("/order-%d", at)
		mustCreate(t, ctx, s, base, nil, zoo.ModePersistent)
		const n = 300
		var errs []error
		// A leader blip on a loaded machine fails the rest of a run with
		// ErrConnectionLoss; the order must hold in every run, and one
		// run of three must get through.
		for run := 0; run < 3; run++ {
			dir := fmt.Sprintf("%s/run%d", base, run)
			mustCreate(t, ctx, s, dir, nil, zoo.ModePersistent)
			errs = pipelined(ctx, 2*n, 64, func(ctx context.Context, i int) error {
				if i%2 == 0 { // a parent, then a child that needs it
					_, err := s.Create(ctx, fmt.Sprintf("%s/seq-", dir), []byte(strconv.Itoa(i/2)), zoo.ModePersistentSequential, nil)
					return err
				}
				_, err := s.Create(ctx, fmt.Sprintf("%s/dep-%d", dir, i/2), nil, zoo.ModePersistent, nil)
				if err == nil {
					_, err = s.Create(ctx, fmt.Sprintf("%s/dep-%d/child", dir, i/2), nil, zoo.ModePersistent, nil)
				}
				return err
			})
			var names []string
			if err := zootest.Retry(ctx, func() (err error) { names, _, err = s.Children(ctx, dir); return err }); err != nil {
				t.Fatal(err)
			}
			slices.Sort(names)
			var order []int
			for _, name := range names {
				if len(name) > 4 && name[:4] == "seq-" {
					var data []byte
					if err := zootest.Retry(ctx, func() (err error) { data, _, err = s.Get(ctx, dir+"/"+name); return err }); err != nil {
						t.Fatal(err)
					}
					k, _ := strconv.Atoi(string(data))
					order = append(order, k)
				}
			}
			// Sequence numbers follow commit order: the indexes must rise.
			if !slices.IsSorted(order) {
				t.Fatalf("replica %d run %d: writes committed out of order: %v", at, run, order)
			}
			if errs[0] == nil && !slices.ContainsFunc(errs, func(e error) bool { return e != nil }) {
				if len(order) != n {
					t.Fatalf("replica %d: %d sequential nodes, want %d", at, len(order), n)
				}
				break
			}
			for _, err := range errs {
				if err != nil && !zootest.UnknownOutcome(err) {
					t.Fatalf("replica %d: %v", at, err)
				}
			}
			if run == 2 {
				t.Fatalf("replica %d: no run without a failure: %v", at, errors.Join(errs...))
			}
		}
	}
}

// When the leader dies under pipelined writes, what survives is a prefix of
// the writes in the order they were started: no write commits while an
// earlier one is lost.
func TestWriteQueueFailoverKeepsPrefix(t *testing.T) {
	c := newCluster(t, 3, zootest.Options{})
	ctx := testkit.Context(t)
	leader := c.WaitLeader()
	at := followers(c, leader)[0]
	s := sess(t, c, at)
	mustCreate(t, ctx, s, "/prefix", nil, zoo.ModePersistent)

	const n = 3000
	var acked sync.Map
	stopped := make(chan struct{})
	var once sync.Once
	errs := pipelined(ctx, n, 64, func(ctx context.Context, i int) error {
		_, err := s.Create(ctx, fmt.Sprintf("/prefix/%05d", i), nil, zoo.ModePersistent, nil)
		if err == nil {
			acked.Store(i, true)
			if i == 200 {
				once.Do(func() { go func() { c.Stop(leader); close(stopped) }() })
			}
		}
		return err
	})
	once.Do(func() { close(stopped) }) // in case write 200 failed
	<-stopped
	failed := 0
	for _, err := range errs {
		if err != nil {
			if !zootest.UnknownOutcome(err) && !errors.Is(err, zoo.ErrClosed) {
				t.Fatalf("unexpected error: %v", err)
			}
			failed++
		}
	}
	c.WaitLeader()
	var names []string
	if err := zootest.Retry(ctx, func() (err error) {
		if err = s.Sync(ctx, "/prefix"); err == nil {
			names, _, err = s.Children(ctx, "/prefix")
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	present := map[int]bool{}
	last := -1
	for _, name := range names {
		i, _ := strconv.Atoi(name)
		present[i] = true
		last = max(last, i)
	}
	for i := 0; i <= last; i++ {
		if !present[i] {
			t.Fatalf("write %d is missing but write %d committed (%d of %d present, %d failed)", i, last, len(names), n, failed)
		}
	}
	acked.Range(func(k, _ any) bool {
		if !present[k.(int)] {
			t.Errorf("acknowledged write %d lost", k)
		}
		return true
	})
	t.Logf("%d writes committed in order, %d failed after the leader stopped", len(names), failed)
}
