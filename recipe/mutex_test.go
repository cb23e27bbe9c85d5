package recipe

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zooraft/zoo"
	"github.com/zooraft/zoo/internal/testkit"
	"github.com/zooraft/zoo/zootest"
)

// Many contenders on sessions spread over the replicas: never two holders at
// once (an in-process gauge, and a znode counter updated with versioned Sets
// that would fail if a previous holder's write were not visible), tokens
// strictly increase from holder to holder, everyone finishes, and nothing is
// left behind.
func TestMutexMutualExclusion(t *testing.T) {
	c := newCluster(t, 3)
	ctx := testkit.ContextFor(t, 3*time.Minute)
	const sessions, rounds = 12, 4
	admin := session(t, c, 0)
	mustCreate(t, admin, "/t1counter", []byte("0"))
	var (
		holders atomic.Int32
		errs    errList
		mu      sync.Mutex // guards tokens
		tokens  []int64
		wg      sync.WaitGroup
	)
	for i := range sessions {
		s := session(t, c, i%3)
		wg.Go(func() {
			m, err := NewMutex(s, "/t1/locks/mx")
			if err != nil {
				errs.add("NewMutex: %v", err)
				return
			}
			for r := range rounds {
				if err := m.Lock(ctx); err != nil {
					errs.add("contender %d round %d: Lock: %v", i, r, err)
					return
				}
				if n := holders.Add(1); n != 1 {
					errs.add("%d holders at once", n)
				}
				mu.Lock()
				tokens = append(tokens, m.Token())
				mu.Unlock()
				var data []byte
				var st zoo.Stat
				if err := zootest.Retry(ctx, func() (err error) {
					data, st, err = s.Get(ctx, "/t1counter")
					return err
				}); err != nil {
					errs.add("get: %v", err)
				}
				n, _ := strconv.Atoi(string(data))
				// After an unknown outcome, ErrBadVersion means that our
				// own earlier attempt took effect: nobody else writes.
				if err := zootest.Retry(ctx, func() error {
					_, err := s.Set(ctx, "/t1counter", []byte(strconv.Itoa(n+1)), st.Version)
					return err
				}, zoo.ErrBadVersion); err != nil {
					errs.add("contender %d: versioned set under the lock: %v", i, err)
				}
				holders.Add(-1)
				if err := m.Unlock(ctx); err != nil {
					errs.add("Unlock: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	errs.check(t)
	if t.Failed() {
		return
	}
	mustSync(t, admin)
	var data []byte
	mustDo(t, "get the counter", func(ctx context.Context) (err error) {
		data, _, err = admin.Get(ctx, "/t1counter")
		return err
	})
	if got, want := string(data), strconv.Itoa(sessions*rounds); got != want {
		t.Errorf("counter = %s, want %s", got, want)
	}
	if len(tokens) != sessions*rounds {
		t.Errorf("%d acquisitions, want %d", len(tokens), sessions*rounds)
	}
	for i := 1; i < len(tokens); i++ {
		if tokens[i] <= tokens[i-1] {
			t.Errorf("token %d = %d after %d: fencing tokens must increase", i, tokens[i], tokens[i-1])
		}
	}
	noneLeft(t, admin, "/t1/locks/mx")
}

// Each waiter watches only its predecessor (and the holder only its own node),
// so releasing the lock can wake one waiter only; waiters get the lock in
// arrival order.
func TestMutexWaitersWatchOnlyPredecessor(t *testing.T) {
	c := newCluster(t, 3)
	ctx := testkit.ContextFor(t, 2*time.Minute)
	const waiters = 5
	const dir = "/t1/locks/herd"
	sessions := make([]*zoo.Session, waiters+1)
	mutexes := make([]*Mutex, waiters+1)
	for i := range sessions {
		sessions[i] = session(t, c, i%3)
		mutexes[i], _ = NewMutex(sessions[i], dir)
	}
	if err := mutexes[0].Lock(ctx); err != nil {
		t.Fatal(err)
	}
	order := make(chan int, waiters)
	release := make(chan struct{})
	var wg sync.WaitGroup
	for i := 1; i <= waiters; i++ {
		// One at a time, so that arrival order is known.
		wg.Go(func() {
			if err := mutexes[i].Lock(ctx); err != nil {
				t.Errorf("waiter %d: %v", i, err)
				return
			}
			order <- i
			<-release
			if err := mutexes[i].Unlock(ctx); err != nil {
				t.Errorf("waiter %d: Unlock: %v", i, err)
			}
		})
		testkit.EventuallyNil(t, 30*time.Second, func() error { return testkit.Holds(len(children(t, sessions[0], dir)) == i+1, "waiter's node") })
	}
	nodes := children(t, sessions[0], dir)
	for i, n := range nodes {
		if o := owner(t, sessions[0], dir+"/"+n); o != sessions[i].ID() {
			t.Fatalf("node %d %s owned by session %d, want %d", i, n, o, sessions[i].ID())
		}
	}
	// Expected: the holder watches its own node (to learn of a loss), each
	// waiter its predecessor and nothing else.
	want := make([][]string, len(sessions))
	want[0] = []string{nodes[0]}
	for i := 1; i < len(sessions); i++ {
		want[i] = []string{nodes[i-1]}
	}
	testkit.EventuallyNil(t, 30*time.Second, func() error {
		return testkit.Holds(slices.EqualFunc(watchLayout(dir, nodes, sessions), want, slices.Equal), "the watch layout")
	})
	// Only waiter 1's session has a watch on the holder's node: its deletion
	// wakes waiter 1 alone.
	if err := mutexes[0].Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	close(release)
	for want := 1; want <= waiters; want++ {
		select {
		case got := <-order:
			if got != want {
				t.Fatalf("waiter %d got the lock in turn %d: not FIFO", got, want)
			}
		case <-ctx.Done():
			t.Fatal("waiters starved")
		}
	}
	wg.Wait()
}

func TestMutexTryLockAndReentrancy(t *testing.T) {
	c := newCluster(t, 3)
	ctx := testkit.ContextFor(t, time.Minute)
	s1, s2 := session(t, c, 1), session(t, c, 2)
	m1, _ := NewMutex(s1, "/t1/locks/try", WithNodeData([]byte("m1")))
	m2, _ := NewMutex(s2, "/t1/locks/try")
	select {
	case <-m1.Lost():
	default:
		t.Error("Lost of a Mutex that holds nothing is not closed")
	}
	if m1.Token() != 0 || m1.Sequence() != -1 || m1.Node() != "" || m1.Held() {
		t.Error("an unlocked Mutex reports a hold")
	}
	if err := m1.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	lost := m1.Lost()
	if !m1.Held() || m1.Token() == 0 || m1.Sequence() < 0 {
		t.Fatal("a locked Mutex reports no hold")
	}
	var data []byte
	mustDo(t, "get the lock node", func(ctx context.Context) (err error) {
		data, _, err = s1.Get(ctx, m1.Node())
		return err
	})
	if string(data) != "m1" {
		t.Errorf("lock node data %q; want m1", data)
	}
	if err := m2.TryLock(ctx); !errors.Is(err, ErrLocked) {
		t.Fatalf("TryLock of a held lock: %v, want ErrLocked", err)
	}
	testkit.EventuallyNil(t, 30*time.Second, func() error {
		got := children(t, s1, "/t1/locks/try")
		return testkit.Holds(len(got) == 1, fmt.Sprintf("TryLock to take its node back: %v", got))
	})
	if err := m1.Lock(ctx); !errors.Is(err, ErrNotReentrant) {
		t.Errorf("second Lock: %v, want ErrNotReentrant", err)
	}
	if err := m1.TryLock(ctx); !errors.Is(err, ErrNotReentrant) {
		t.Errorf("TryLock while held: %v, want ErrNotReentrant", err)
	}
	if err := m2.Unlock(ctx); !errors.Is(err, ErrNotLocked) {
		t.Errorf("Unlock by a non-holder: %v, want ErrNotLocked", err)
	}
	tok := m1.Token()
	if err := m1.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-lost:
	default:
		t.Error("Unlock did not close Lost")
	}
	if err := m1.Unlock(ctx); !errors.Is(err, ErrNotLocked) {
		t.Errorf("second Unlock: %v, want ErrNotLocked", err)
	}
	if err := m2.TryLock(ctx); err != nil {
		t.Fatalf("TryLock of a free lock: %v", err)
	}
	if m2.Token() <= tok {
		t.Errorf("next holder's token %d <= previous %d", m2.Token(), tok)
	}
	// A concurrent Lock on the same value is refused too.
	done := make(chan error, 1)
	go func() { done <- m1.Lock(ctx) }()
	testkit.EventuallyNil(t, 30*time.Second, func() error { return testkit.Holds(len(children(t, s1, "/t1/locks/try")) == 2, "m1 waiting") })
	if err := m1.Lock(ctx); !errors.Is(err, ErrNotReentrant) {
		t.Errorf("Lock while another Lock runs: %v, want ErrNotReentrant", err)
	}
	if err := m2.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := m1.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
}

// A Lock whose context ends removes its node and its watch.
func TestMutexLockCancelledCleansUp(t *testing.T) {
	c := newCluster(t, 3)
	ctx := testkit.ContextFor(t, time.Minute)
	s1, s2 := session(t, c, 0), session(t, c, 1)
	holder, _ := NewMutex(s1, "/t1/locks/cancel")
	waiter, _ := NewMutex(s2, "/t1/locks/cancel")
	if err := holder.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	if err := waiter.Lock(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Lock with an ending context: %v", err)
	}
	testkit.EventuallyNil(t, 30*time.Second, func() error {
		got := children(t, s1, "/t1/locks/cancel")
		return testkit.Holds(len(got) == 1, fmt.Sprintf("the cancelled Lock to take its node back: %v", got))
	})
	if s2.HasWatches(holder.Node(), zoo.WatcherData) {
		t.Error("the cancelled Lock left its watch")
	}
	if err := holder.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	if err := waiter.Lock(ctx); err != nil {
		t.Fatalf("Lock after a cancelled one: %v", err)
	}
}

// Closing the holder's session releases the lock: the holder's Lost closes,
// the next waiter gets it, and the holder's Unlock reports the loss.
func TestMutexReleasedOnSessionClose(t *testing.T) {
	c := newCluster(t, 3)
	ctx := testkit.ContextFor(t, time.Minute)
	s1, s2 := session(t, c, 1), session(t, c, 2)
	holder, _ := NewMutex(s1, "/t1/locks/close")
	waiter, _ := NewMutex(s2, "/t1/locks/close")
	if err := holder.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() { got <- waiter.Lock(ctx) }()
	testkit.EventuallyNil(t, 30*time.Second, func() error { return testkit.Holds(len(children(t, s2, "/t1/locks/close")) == 2, "the waiter") })
	mustClose(t, s1)
	select {
	case <-holder.Lost():
	case <-ctx.Done():
		t.Fatal("holder not told of the loss")
	}
	if holder.Held() {
		t.Error("Held after the session closed")
	}
	if err := <-got; err != nil {
		t.Fatalf("waiter: %v", err)
	}
	if err := holder.Unlock(ctx); !errors.Is(err, ErrLost) || !errors.Is(err, zoo.ErrClosed) {
		t.Errorf("Unlock after the session closed: %v, want ErrLost and ErrClosed", err)
	}
	if err := holder.Lock(ctx); !errors.Is(err, zoo.ErrClosed) {
		t.Errorf("Lock on a closed session: %v, want ErrClosed", err)
	}
}

// A holder whose replica crashes: its session expires on the survivors after
// its timeout and the waiter gets the lock.
func TestMutexReleasedWhenHolderReplicaStops(t *testing.T) {
	c := newCluster(t, 3)
	ctx := testkit.ContextFor(t, 2*time.Minute)
	leader := c.WaitLeader()
	victim := (leader + 1) % 3
	s1 := session(t, c, victim, zoo.WithSessionTimeout(time.Second))
	s2 := session(t, c, leader)
	holder, _ := NewMutex(s1, "/t1/locks/stop")
	waiter, _ := NewMutex(s2, "/t1/locks/stop")
	if err := holder.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() { got <- waiter.Lock(ctx) }()
	testkit.EventuallyNil(t, 30*time.Second, func() error { return testkit.Holds(len(children(t, s2, "/t1/locks/stop")) == 2, "the waiter") })
	c.Stop(victim)
	select {
	case <-holder.Lost():
	case <-ctx.Done():
		t.Fatal("holder not told")
	}
	select {
	case err := <-got:
		if err != nil {
			t.Fatalf("waiter: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("the lock was not released after the holder's replica stopped")
	}
	if !waiter.Held() {
		t.Error("waiter does not hold")
	}
}

// A holder on a replica cut off from the quorum: it gives the lock up (Lost,
// ErrSuspended) before the ensemble expires its session and lets the waiter
// in; after the partition heals its Unlock reports the loss.
func TestMutexIsolatedHolderGivesUpBeforeExpiry(t *testing.T) {
	c := newCluster(t, 3)
	ctx := testkit.ContextFor(t, 2*time.Minute)
	leader := c.WaitLeader()
	victim := (leader + 1) % 3
	s1 := session(t, c, victim) // default timeout: 20 ticks
	s2 := session(t, c, leader)
	holder, _ := NewMutex(s1, "/t1/locks/isolated")
	waiter, _ := NewMutex(s2, "/t1/locks/isolated")
	if err := holder.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	var lostAt, gotAt atomic.Int64
	go func() {
		if err := waiter.Lock(ctx); err != nil {
			t.Errorf("waiter: %v", err)
			return
		}
		gotAt.Store(time.Now().UnixNano())
	}()
	testkit.EventuallyNil(t, 30*time.Second, func() error { return testkit.Holds(len(children(t, s2, "/t1/locks/isolated")) == 2, "the waiter") })
	c.Isolate(victim)
	go func() {
		<-holder.Lost()
		lostAt.Store(time.Now().UnixNano())
	}()
	testkit.EventuallyNil(t, time.Minute, func() error { return testkit.Holds(gotAt.Load() != 0, "the waiter to get the lock") })
	if l, g := lostAt.Load(), gotAt.Load(); l == 0 || l > g {
		t.Errorf("the isolated holder learnt of its loss at %d, after the next holder got the lock at %d", l, g)
	}
	c.Heal()
	err := holder.Unlock(ctx)
	if !errors.Is(err, ErrLost) || !errors.Is(err, ErrSuspended) {
		t.Errorf("Unlock after the loss: %v, want ErrLost and ErrSuspended", err)
	}
	testkit.EventuallyNil(t, time.Minute, func() error { return testkit.Holds(s1.Err() != nil, "the holder's session to end") })
}

// Lock calls whose context ends at every possible moment (before, during and
// after their create was sent, while waiting) leave no contender behind.
func TestMutexCancelledAtRandomLeavesNothing(t *testing.T) {
	c := newCluster(t, 3)
	ctx := testkit.ContextFor(t, 2*time.Minute)
	holderS := session(t, c, 0)
	holder, _ := NewMutex(holderS, "/t1/cancel")
	if err := holder.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	sessions := []*zoo.Session{holderS, session(t, c, 1), session(t, c, 2)}
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			m, _ := NewMutex(sessions[i%3], "/t1/cancel")
			cctx, cancel := context.WithTimeout(ctx, time.Duration(i%20)*time.Millisecond)
			defer cancel()
			if err := m.Lock(cctx); err == nil {
				t.Errorf("contender %d got the held lock", i)
			}
		})
	}
	wg.Wait()
	want := []string{baseName(holder.Node())}
	testkit.EventuallyNil(t, 30*time.Second, func() error {
		got := children(t, holderS, "/t1/cancel")
		return testkit.Holds(slices.Equal(got, want), fmt.Sprintf("only the holder's node (%v), not %v", want, got))
	})
	if err := holder.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	// The lock is free for anyone now.
	m, _ := NewMutex(sessions[2], "/t1/cancel")
	if err := m.TryLock(ctx); err != nil {
		t.Fatalf("TryLock after all cancelled: %v", err)
	}
}
