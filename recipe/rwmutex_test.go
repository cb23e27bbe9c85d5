package recipe

import (
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zooraft/zoo"
	"github.com/zooraft/zoo/internal/testkit"
)

// Readers and writers on sessions spread over the replicas: a writer holds
// alone, readers only with readers, and everyone finishes.
func TestRWMutexExclusion(t *testing.T) {
	c := newCluster(t, 3)
	ctx := testkit.ContextFor(t, 3*time.Minute)
	const participants, rounds = 9, 4
	var (
		readers, writers atomic.Int32
		maxReaders       atomic.Int32
		errs             errList
		wg               sync.WaitGroup
	)
	for i := range participants {
		s := session(t, c, i%3)
		wg.Go(func() {
			rw, _ := NewRWMutex(s, "/t1/rw/excl")
			for r := range rounds {
				if i%3 == 0 {
					if err := rw.Lock(ctx); err != nil {
						errs.add("writer %d: %v", i, err)
						return
					}
					if n := writers.Add(1); n != 1 || readers.Load() != 0 {
						errs.add("writer %d round %d holds with %d writers, %d readers", i, r, n, readers.Load())
					}
					time.Sleep(5 * time.Millisecond)
					writers.Add(-1)
					if err := rw.Unlock(ctx); err != nil {
						errs.add("writer %d: Unlock: %v", i, err)
						return
					}
					continue
				}
				if err := rw.RLock(ctx); err != nil {
					errs.add("reader %d: %v", i, err)
					return
				}
				n := readers.Add(1)
				for m := maxReaders.Load(); n > m && !maxReaders.CompareAndSwap(m, n); m = maxReaders.Load() {
				}
				if w := writers.Load(); w != 0 {
					errs.add("reader %d holds with %d writers", i, w)
				}
				time.Sleep(20 * time.Millisecond)
				readers.Add(-1)
				if err := rw.RUnlock(ctx); err != nil {
					errs.add("reader %d: RUnlock: %v", i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	errs.check(t)
	t.Logf("at most %d readers held at once", maxReaders.Load())
	noneLeft(t, session(t, c, 0), "/t1/rw/excl")
}

// Many readers hold at once; a writer waits for all of them and then holds
// alone; TryLock and TryRLock see what is going on.
func TestRWMutexReadersShare(t *testing.T) {
	c := newCluster(t, 3)
	ctx := testkit.ContextFor(t, time.Minute)
	const dir = "/t1/rw/share"
	readers := make([]*RWMutex, 4)
	for i := range readers {
		readers[i], _ = NewRWMutex(session(t, c, i%3), dir)
		if err := readers[i].RLock(ctx); err != nil {
			t.Fatalf("reader %d: %v", i, err)
		}
	}
	for i, r := range readers {
		if !r.Held() || r.Writing() {
			t.Errorf("reader %d: Held %v Writing %v", i, r.Held(), r.Writing())
		}
	}
	ws := session(t, c, 1)
	w, _ := NewRWMutex(ws, dir)
	if err := w.TryLock(ctx); !errors.Is(err, ErrLocked) {
		t.Fatalf("TryLock among readers: %v, want ErrLocked", err)
	}
	extra, _ := NewRWMutex(session(t, c, 2), dir)
	if err := extra.TryRLock(ctx); err != nil {
		t.Fatalf("TryRLock among readers: %v", err)
	}
	if err := extra.RUnlock(ctx); err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() { got <- w.Lock(ctx) }()
	testkit.EventuallyNil(t, 30*time.Second, func() error { return testkit.Holds(len(children(t, ws, dir)) == 5, "the writer waiting") })
	// A reader arriving now queues behind the writer.
	if err := extra.TryRLock(ctx); !errors.Is(err, ErrLocked) {
		t.Fatalf("TryRLock behind a waiting writer: %v, want ErrLocked", err)
	}
	if err := readers[0].Unlock(ctx); !errors.Is(err, ErrNotLocked) {
		t.Errorf("Unlock of a read lock: %v, want ErrNotLocked", err)
	}
	for i, r := range readers {
		select {
		case err := <-got:
			t.Fatalf("writer got the lock with %d readers left: %v", len(readers)-i, err)
		default:
		}
		if err := r.RUnlock(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	if !w.Writing() {
		t.Error("writer not Writing")
	}
	if err := w.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
}

// Readers keep coming and going, always overlapping, so the lock is never
// free of readers; a writer still gets it, because readers that arrive after
// it queue behind it.
func TestRWMutexNoWriterStarvation(t *testing.T) {
	c := newCluster(t, 3)
	ctx := testkit.ContextFor(t, 2*time.Minute)
	const dir = "/t1/rw/starve"
	stop := make(chan struct{})
	var (
		readers atomic.Int32
		writing atomic.Bool
		errs    errList
		wg      sync.WaitGroup
	)
	for i := range 4 {
		s := session(t, c, i%3)
		wg.Go(func() {
			rw, _ := NewRWMutex(s, dir)
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := rw.RLock(ctx); err != nil {
					errs.add("reader %d: %v", i, err)
					return
				}
				readers.Add(1)
				if writing.Load() {
					errs.add("reader %d holds while the writer does", i)
				}
				time.Sleep(30 * time.Millisecond)
				readers.Add(-1)
				if err := rw.RUnlock(ctx); err != nil {
					errs.add("reader %d: %v", i, err)
					return
				}
			}
		})
	}
	testkit.EventuallyNil(t, 30*time.Second, func() error { return testkit.Holds(readers.Load() > 0, "readers holding") })
	w, _ := NewRWMutex(session(t, c, 0), dir)
	for range 3 {
		if err := w.Lock(ctx); err != nil {
			t.Fatalf("writer starved: %v", err)
		}
		writing.Store(true)
		if n := readers.Load(); n != 0 {
			t.Errorf("writer holds with %d readers", n)
		}
		time.Sleep(20 * time.Millisecond)
		writing.Store(false)
		if err := w.Unlock(ctx); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	errs.check(t)
}

// Readers watch only the nearest writer before them; a writer watches the
// node just before it. A writer's release lets in exactly the readers up to
// the next writer.
func TestRWMutexWatchLayout(t *testing.T) {
	c := newCluster(t, 3)
	ctx := testkit.ContextFor(t, 2*time.Minute)
	const dir = "/t1/rw/layout"
	// W1 holds; then R1, R2, W2, R3 queue in that order.
	kinds := []string{"W1", "R1", "R2", "W2", "R3"}
	sessions := make([]*zoo.Session, len(kinds))
	locks := make([]*RWMutex, len(kinds))
	for i := range kinds {
		sessions[i] = session(t, c, i%3)
		locks[i], _ = NewRWMutex(sessions[i], dir)
	}
	acquire := func(i int) error {
		if kinds[i][0] == 'W' {
			return locks[i].Lock(ctx)
		}
		return locks[i].RLock(ctx)
	}
	if err := acquire(0); err != nil {
		t.Fatal(err)
	}
	got := make([]chan error, len(kinds))
	for i := 1; i < len(kinds); i++ {
		got[i] = make(chan error, 1)
		go func() { got[i] <- acquire(i) }()
		testkit.EventuallyNil(t, 30*time.Second, func() error { return testkit.Holds(len(children(t, sessions[0], dir)) == i+1, kinds[i]+" queued") })
	}
	nodes := children(t, sessions[0], dir)
	want := [][]string{{nodes[0]}, {nodes[0]}, {nodes[0]}, {nodes[2]}, {nodes[3]}}
	testkit.EventuallyNil(t, 30*time.Second, func() error {
		return testkit.Holds(slices.EqualFunc(watchLayout(dir, nodes, sessions), want, slices.Equal), "the watch layout")
	})
	if err := locks[0].Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{1, 2} {
		if err := <-got[i]; err != nil {
			t.Fatalf("%s: %v", kinds[i], err)
		}
	}
	// W2 and R3 still wait: their watches are unchanged.
	nodes = nodes[1:]
	want = [][]string{{nodes[0]}, {nodes[1]}, {nodes[1]}, {nodes[2]}}
	testkit.EventuallyNil(t, 30*time.Second, func() error {
		return testkit.Holds(slices.EqualFunc(watchLayout(dir, nodes, sessions[1:]), want, slices.Equal), "the watch layout after W1")
	})
	for _, i := range []int{1, 2} {
		if err := locks[i].RUnlock(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-got[3]; err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-got[4]:
		t.Fatalf("R3 got in with W2 holding: %v", err)
	default:
	}
	if err := locks[3].Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-got[4]; err != nil {
		t.Fatal(err)
	}
	if err := locks[4].RUnlock(ctx); err != nil {
		t.Fatal(err)
	}
}

// Downgrade keeps the lock away from writers, also from a writer already
// queued behind the write lock, while readers queued before that writer get
// in.
func TestRWMutexDowngrade(t *testing.T) {
	c := newCluster(t, 3)
	ctx := testkit.ContextFor(t, time.Minute)
	const dir = "/t1/rw/down"
	s0 := session(t, c, 0)
	w, _ := NewRWMutex(s0, dir)
	if err := w.Downgrade(ctx); !errors.Is(err, ErrNotLocked) {
		t.Errorf("Downgrade without a write lock: %v", err)
	}
	if err := w.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	wtok := w.Token()
	// Queued behind the write lock: a reader, then a writer.
	r, _ := NewRWMutex(session(t, c, 1), dir)
	rgot := make(chan error, 1)
	go func() { rgot <- r.RLock(ctx) }()
	testkit.EventuallyNil(t, 30*time.Second, func() error { return testkit.Holds(len(children(t, s0, dir)) == 2, "the reader queued") })
	w2, _ := NewRWMutex(session(t, c, 2), dir)
	w2got := make(chan error, 1)
	go func() { w2got <- w2.Lock(ctx) }()
	testkit.EventuallyNil(t, 30*time.Second, func() error { return testkit.Holds(len(children(t, s0, dir)) == 3, "the writer queued") })

	if err := w.Downgrade(ctx); err != nil {
		t.Fatal(err)
	}
	if !w.Held() || w.Writing() || w.Token() <= wtok {
		t.Errorf("after Downgrade: Held %v Writing %v token %d (write token %d)", w.Held(), w.Writing(), w.Token(), wtok)
	}
	if err := <-rgot; err != nil {
		t.Fatalf("reader behind the downgraded writer: %v", err)
	}
	other, _ := NewRWMutex(session(t, c, 0), dir)
	if err := other.TryLock(ctx); !errors.Is(err, ErrLocked) {
		t.Errorf("TryLock while downgraded: %v, want ErrLocked", err)
	}
	if err := w.Unlock(ctx); !errors.Is(err, ErrNotLocked) {
		t.Errorf("Unlock after Downgrade: %v, want ErrNotLocked", err)
	}
	// The queued writer is first in line once the reader leaves, but the
	// downgraded reader (behind it in line) still holds: it must wait.
	if err := r.RUnlock(ctx); err != nil {
		t.Fatal(err)
	}
	nodes := children(t, s0, dir)
	if len(nodes) != 2 {
		t.Fatalf("nodes %v, want the writer's and the downgraded reader's", nodes)
	}
	testkit.EventuallyNil(t, 30*time.Second, func() error {
		return testkit.Holds(w2.core.s.HasWatches(dir+"/"+nodes[1], zoo.WatcherData), "the writer watching the downgraded reader")
	})
	select {
	case err := <-w2got:
		t.Fatalf("writer got the lock while the downgraded reader holds: %v", err)
	default:
	}
	if err := w.RUnlock(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-w2got; err != nil {
		t.Fatalf("writer after everyone left: %v", err)
	}
	if w2.Token() <= wtok {
		t.Errorf("writer token %d <= previous writer's %d", w2.Token(), wtok)
	}
	if err := w2.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
}
