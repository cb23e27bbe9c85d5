package recipe

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zooraft/zoo"
	"github.com/zooraft/zoo/internal/testkit"
)

// Never more than N leases at once, with acquirers spread over the replicas
// and mixing Acquire and TryAcquire; everyone finishes; nothing is left.
func TestSemaphoreNeverMoreThanN(t *testing.T) {
	c := newCluster(t, 3)
	ctx := testkit.ContextFor(t, 3*time.Minute)
	const participants, rounds, n = 9, 3, 3
	var (
		held, maxHeld atomic.Int32
		tries         atomic.Int32
		errs          errList
		wg            sync.WaitGroup
		mu            sync.Mutex // guards tokens
		tokens        = map[int64]bool{}
	)
	for i := range participants {
		s := session(t, c, i%3)
		wg.Go(func() {
			sem, _ := NewSemaphore(s, "/t1/sem/n", n)
			for r := 0; r < rounds; {
				var l *Lease
				var err error
				if (i+r)%4 == 0 {
					l, err = sem.TryAcquire(ctx)
					if errors.Is(err, ErrNoLease) {
						tries.Add(1)
						time.Sleep(10 * time.Millisecond)
						continue
					}
				} else {
					l, err = sem.Acquire(ctx)
				}
				if err != nil {
					errs.add("participant %d: %v", i, err)
					return
				}
				r++
				mu.Lock()
				if tokens[l.Token()] {
					errs.add("token %d handed out twice", l.Token())
				}
				tokens[l.Token()] = true
				mu.Unlock()
				h := held.Add(1)
				if h > n {
					errs.add("%d leases held at once", h)
				}
				for m := maxHeld.Load(); h > m && !maxHeld.CompareAndSwap(m, h); m = maxHeld.Load() {
				}
				time.Sleep(15 * time.Millisecond)
				held.Add(-1)
				if err := l.Release(ctx); err != nil {
					errs.add("release: %v", err)
				}
			}
		})
	}
	wg.Wait()
	errs.check(t)
	t.Logf("at most %d leases held at once; %d TryAcquire found none", maxHeld.Load(), tries.Load())
	admin := session(t, c, 0)
	for _, d := range []string{"/t1/sem/n/leases", "/t1/sem/n/locks"} {
		noneLeft(t, admin, d)
	}
}

func TestSemaphoreTryAcquireAndRelease(t *testing.T) {
	c := newCluster(t, 3)
	ctx := testkit.ContextFor(t, time.Minute)
	s1, s2 := session(t, c, 1), session(t, c, 2)
	sem1, _ := NewSemaphore(s1, "/t1/sem/try", 2, WithNodeData([]byte("s1")))
	sem2, _ := NewSemaphore(s2, "/t1/sem/try", 2)
	if sem1.MaxLeases() != 2 || sem1.Path() != "/t1/sem/try" {
		t.Fatal("accessors")
	}
	a, err := sem1.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b, err := sem2.TryAcquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var data []byte
	mustDo(t, "get the lease node", func(ctx context.Context) (err error) {
		data, _, err = s1.Get(ctx, a.Node())
		return err
	})
	if string(data) != "s1" {
		t.Errorf("lease node data %q", data)
	}
	if a.Token() == b.Token() || !a.Held() || !b.Held() {
		t.Error("two leases: same token, or not held")
	}
	if _, err := sem2.TryAcquire(ctx); !errors.Is(err, ErrNoLease) {
		t.Fatalf("TryAcquire with all leases taken: %v, want ErrNoLease", err)
	}
	testkit.EventuallyNil(t, 30*time.Second, func() error {
		got := children(t, s1, "/t1/sem/try/leases")
		return testkit.Holds(len(got) == 2, fmt.Sprintf("TryAcquire to take its node back: %v", got))
	})
	lost := a.Lost()
	if err := a.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.Release(ctx); err != nil {
		t.Errorf("second Release: %v", err)
	}
	select {
	case <-lost:
	default:
		t.Error("Release did not close Lost")
	}
	c3, err := sem2.TryAcquire(ctx)
	if err != nil {
		t.Fatalf("TryAcquire after a Release: %v", err)
	}
	for _, l := range []*Lease{b, c3} {
		if err := l.Release(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

func TestSemaphoreLeaseCountMismatch(t *testing.T) {
	c := newCluster(t, 3)
	ctx := testkit.ContextFor(t, time.Minute)
	sem2, _ := NewSemaphore(session(t, c, 0), "/t1/sem/mismatch", 2)
	sem3, _ := NewSemaphore(session(t, c, 1), "/t1/sem/mismatch", 3)
	l, err := sem2.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sem3.Acquire(ctx); !errors.Is(err, ErrLeaseCountMismatch) {
		t.Errorf("Acquire with another count: %v, want ErrLeaseCountMismatch", err)
	}
	if _, err := sem3.TryAcquire(ctx); !errors.Is(err, ErrLeaseCountMismatch) {
		t.Errorf("TryAcquire with another count: %v, want ErrLeaseCountMismatch", err)
	}
	if err := l.Release(ctx); err != nil {
		t.Fatal(err)
	}
}

// The holder's session closes: its lease goes, the waiter gets one, the
// holder's Lost closes and its Release reports the loss. A cancelled
// Acquire leaves neither a lease nor a lock node.
func TestSemaphoreLeaseLostAndCancelled(t *testing.T) {
	c := newCluster(t, 3)
	ctx := testkit.ContextFor(t, time.Minute)
	const path = "/t1/sem/lost"
	s1, s2, s3 := session(t, c, 0), session(t, c, 1), session(t, c, 2)
	sem1, _ := NewSemaphore(s1, path, 1)
	sem2, _ := NewSemaphore(s2, path, 1)
	sem3, _ := NewSemaphore(s3, path, 1)
	held, err := sem1.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	if _, err := sem3.Acquire(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Acquire with an ending context: %v", err)
	}
	testkit.EventuallyNil(t, 30*time.Second, func() error {
		got := children(t, s3, path+"/leases")
		return testkit.Holds(len(got) == 1, fmt.Sprintf("the cancelled Acquire to take its lease node back: %v", got))
	})
	noneLeft(t, s3, path+"/locks")
	got := make(chan *Lease, 1)
	go func() {
		l, err := sem2.Acquire(ctx)
		if err != nil {
			t.Errorf("waiter: %v", err)
		}
		got <- l
	}()
	testkit.EventuallyNil(t, 30*time.Second, func() error { return testkit.Holds(len(children(t, s2, path+"/leases")) == 2, "the waiter") })
	mustClose(t, s1)
	select {
	case <-held.Lost():
	case <-ctx.Done():
		t.Fatal("holder not told")
	}
	l := <-got
	if l == nil {
		return
	}
	if err := held.Release(ctx); !errors.Is(err, ErrLost) || !errors.Is(err, zoo.ErrClosed) {
		t.Errorf("Release of a lost lease: %v, want ErrLost and ErrClosed", err)
	}
	if err := l.Release(ctx); err != nil {
		t.Fatal(err)
	}
}
