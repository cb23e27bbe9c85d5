package recipe

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zooraft/zoo"
	"github.com/zooraft/zoo/internal/testkit"
)

// TestQueueExactlyOnce: producers and blocking consumers on every replica;
// every item is delivered exactly once, and each consumer sees each
// producer's items in the order they were put. (An item whose Put had an
// unknown outcome, in a leader election, may or may not be delivered: at
// most once.)
func TestQueueExactlyOnce(t *testing.T) {
	cl := newCluster(t, 3)
	ctx := testkit.ContextFor(t, 180*time.Second)
	const producers, consumers, perProducer = 3, 4, 40

	type got struct {
		consumer int
		item     string
	}
	taken := make(chan got, producers*perProducer)
	cctx, stop := context.WithCancel(ctx)
	defer stop()
	var cwg sync.WaitGroup
	for c := range consumers {
		q, err := NewQueue(session(t, cl, c%3), "/jobs")
		must(t, err)
		cwg.Go(func() {
			for {
				data, err := q.Take(cctx)
				if err != nil {
					if cctx.Err() == nil {
						t.Errorf("consumer %d: %v", c, err)
					}
					return
				}
				taken <- got{c, string(data)}
			}
		})
	}
	var (
		pwg         sync.WaitGroup
		mu          sync.Mutex // guards put, unsure
		put, unsure = map[string]bool{}, map[string]bool{}
	)
	for p := range producers {
		q, err := NewQueue(session(t, cl, (p+1)%3), "/jobs")
		must(t, err)
		pwg.Go(func() {
			for i := range perProducer {
				item := fmt.Sprintf("%d-%03d", p, i)
				err := q.Put(ctx, []byte(item))
				mu.Lock()
				switch {
				case err == nil:
					put[item] = true
				case errors.Is(err, zoo.ErrConnectionLoss):
					unsure[item] = true
					t.Logf("producer %d: %v", p, err)
				default:
					t.Errorf("producer %d: %v", p, err)
				}
				mu.Unlock()
			}
		})
	}
	pwg.Wait()
	seen := map[string]bool{}
	last := map[[2]int]int{} // (consumer, producer) -> last index taken
	check := func(g got) {
		t.Helper()
		switch {
		case seen[g.item]:
			t.Fatalf("%s delivered twice", g.item)
		case !put[g.item] && !unsure[g.item]:
			t.Fatalf("%s delivered, never put", g.item)
		}
		seen[g.item] = true
		p, _ := strconv.Atoi(g.item[:1])
		i, _ := strconv.Atoi(g.item[2:])
		if l, ok := last[[2]int{g.consumer, p}]; ok && i <= l {
			t.Errorf("consumer %d got %s after item %d of producer %d", g.consumer, g.item, l, p)
		}
		last[[2]int{g.consumer, p}] = i
	}
	admin := session(t, cl, 0)
	q, err := NewQueue(admin, "/jobs")
	must(t, err)
	// Until every item put is delivered and the queue is empty.
	for delivered := 0; ; {
		if delivered >= len(put) {
			mustSync(t, admin)
			if n, err := q.Len(ctx); err == nil && n == 0 {
				break
			}
		}
		select {
		case g := <-taken:
			check(g)
			if put[g.item] {
				delivered++
			}
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			t.Fatalf("only %d of %d items delivered", delivered, len(put))
		}
	}
	stop()
	cwg.Wait()
	close(taken)
	for g := range taken { // Takes that ended as they were stopped
		check(g)
	}
	for item := range put {
		if !seen[item] {
			t.Errorf("%s never delivered", item)
		}
	}
	// No claim markers are left behind.
	if names := children(t, admin, "/jobs"); len(names) != 0 {
		t.Fatalf("left in the queue dir: %v", names)
	}
}

// putOnce puts one item with put (a Put of the queue at dir, through s),
// riding out leader elections without ever putting it twice: after an
// unknown outcome it settles the raft log with a write of its own (an entry
// of the current term commits only after every earlier entry that is ever
// to commit), and puts again only if no item in dir holds data. For the
// tests that put first and take later, and need every item exactly once.
func putOnce(t *testing.T, s *zoo.Session, dir string, data []byte, put func(ctx context.Context) error) {
	t.Helper()
	ctx := testkit.ContextFor(t, time.Minute)
	for {
		err := put(ctx)
		if err == nil {
			return
		}
		if !errors.Is(err, zoo.ErrConnectionLoss) {
			t.Fatalf("put %q: %v", data, err)
		}
		mustCreate(t, s, "/settle", nil)
		mustSet(t, s, "/settle", nil)
		mustSync(t, s)
		for _, n := range children(t, s, dir) {
			var got []byte
			mustDo(t, "get "+n, func(ctx context.Context) (err error) {
				got, _, err = s.Get(ctx, dir+"/"+n)
				if errors.Is(err, zoo.ErrNoNode) {
					err = nil
				}
				return err
			})
			if bytes.Equal(got, data) {
				return
			}
		}
	}
}

func TestQueueFIFOAndNonBlocking(t *testing.T) {
	cl := newCluster(t, 3)
	ctx := testkit.ContextFor(t, 60*time.Second)
	q, err := NewQueue(session(t, cl, 0), "/fifo/q")
	must(t, err)
	if _, ok, err := q.TryTake(ctx); ok || err != nil {
		t.Fatalf("TryTake on a missing queue: %v %v", ok, err)
	}
	if _, ok, err := q.Peek(ctx); ok || err != nil {
		t.Fatalf("Peek on a missing queue: %v %v", ok, err)
	}
	for i := range 12 {
		data := []byte(strconv.Itoa(i))
		putOnce(t, q.q.s, "/fifo/q", data, func(ctx context.Context) error { return q.Put(ctx, data) })
	}
	if n, err := q.Len(ctx); n != 12 || err != nil {
		t.Fatalf("Len = %d, %v", n, err)
	}
	if data, ok, err := q.Peek(ctx); string(data) != "0" || !ok || err != nil {
		t.Fatalf("Peek = %q %v %v", data, ok, err)
	}
	// A consumer on another replica takes them in order.
	q2, err := NewQueue(session(t, cl, 2), "/fifo/q")
	must(t, err)
	mustSync(t, session(t, cl, 2))
	for i := range 12 {
		var data []byte
		if i%2 == 0 {
			data, err = q2.Take(ctx)
		} else {
			var ok bool
			data, ok, err = q2.TryTake(ctx)
			if !ok {
				t.Fatalf("TryTake: empty at %d", i)
			}
		}
		must(t, err)
		if string(data) != strconv.Itoa(i) {
			t.Fatalf("item %d is %q", i, data)
		}
	}
	if _, ok, err := q2.TryTake(ctx); ok || err != nil {
		t.Fatalf("TryTake on an empty queue: %v %v", ok, err)
	}

	// Take blocks until an item comes, from any replica.
	got := make(chan string, 1)
	go func() {
		data, err := q2.Take(ctx)
		if err != nil {
			got <- "error: " + err.Error()
			return
		}
		got <- string(data)
	}()
	blocked(t, got, "Take on an empty queue")
	q3, err := NewQueue(session(t, cl, 1), "/fifo/q")
	must(t, err)
	putOnce(t, q3.q.s, "/fifo/q", []byte("late"), func(ctx context.Context) error { return q3.Put(ctx, []byte("late")) })
	if v := recv(t, got, "Take"); v != "late" {
		t.Fatalf("Take got %q", v)
	}
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if _, err := q2.Take(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Take past its deadline: %v", err)
	}

	// Foreign children (a stray claim marker, anything else) are ignored.
	s := session(t, cl, 0)
	mustCreate(t, s, "/fifo/q/"+queueMarkerPrefix+"qn-x", nil)
	mustCreate(t, s, "/fifo/q/other", nil)
	if n, err := q.Len(ctx); n != 0 || err != nil {
		t.Fatalf("Len with foreign children = %d, %v", n, err)
	}
	if _, err := NewQueue(nil, "/q"); !errors.Is(err, zoo.ErrBadArguments) {
		t.Fatalf("nil session: %v", err)
	}
}

func TestPriorityQueueOrder(t *testing.T) {
	cl := newCluster(t, 3)
	ctx := testkit.ContextFor(t, 60*time.Second)
	q, err := NewPriorityQueue(session(t, cl, 0), "/pq")
	must(t, err)
	prios := []int32{5, -3, 0, 5, 100, -3, math.MinInt32, math.MaxInt32, 0, 7}
	type item struct {
		prio int32
		idx  int
	}
	var want []item
	for i, p := range prios {
		data := fmt.Appendf(nil, "%d/%d", p, i)
		putOnce(t, q.q.s, "/pq", data, func(ctx context.Context) error { return q.Put(ctx, data, p) })
		want = append(want, item{p, i})
	}
	slices.SortStableFunc(want, func(a, b item) int {
		switch {
		case a.prio < b.prio:
			return -1
		case a.prio > b.prio:
			return 1
		}
		return 0
	})
	if data, ok, err := q.Peek(ctx); !ok || err != nil || string(data) != fmt.Sprintf("%d/%d", want[0].prio, want[0].idx) {
		t.Fatalf("Peek = %q %v %v", data, ok, err)
	}
	if n, err := q.Len(ctx); n != len(prios) || err != nil {
		t.Fatalf("Len = %d, %v", n, err)
	}
	// Consumers on other replicas share the work; together they see the
	// order (one at a time, so the order is observable).
	qs := []*PriorityQueue{q}
	for _, r := range []int{1, 2} {
		s := session(t, cl, r)
		mustSync(t, s)
		qr, err := NewPriorityQueue(s, "/pq")
		must(t, err)
		qs = append(qs, qr)
	}
	for i, w := range want {
		data, err := qs[i%3].Take(ctx)
		must(t, err)
		if got := string(data); got != fmt.Sprintf("%d/%d", w.prio, w.idx) {
			t.Fatalf("take %d: %s, want %d/%d", i, got, w.prio, w.idx)
		}
		// The next taker's replica must see this take.
		mustSync(t, qs[(i+1)%3].q.s)
	}
	// A FIFO queue does not see priority items, and the other way round.
	fq, err := NewQueue(session(t, cl, 0), "/pq")
	must(t, err)
	putOnce(t, fq.q.s, "/pq", []byte("fifo"), func(ctx context.Context) error { return fq.Put(ctx, []byte("fifo")) })
	if n, _ := q.Len(ctx); n != 0 {
		t.Fatalf("the priority queue counts a FIFO item")
	}
	names := children(t, fq.q.s, "/pq")
	if len(names) != 1 || !strings.HasPrefix(names[0], queuePrefixFIFO) {
		t.Fatalf("children %v", names)
	}
}

// TestQueueTakeCancelledAtRandom: consumers whose Takes are cut short at
// random moments (often while a claim is in flight) neither lose nor
// duplicate items.
func TestQueueTakeCancelledAtRandom(t *testing.T) {
	cl := newCluster(t, 3)
	ctx := testkit.ContextFor(t, 180*time.Second)
	const items = 60
	producer, err := NewQueue(session(t, cl, 0), "/cancel")
	must(t, err)
	for i := range items {
		data := []byte(strconv.Itoa(i))
		putOnce(t, producer.q.s, "/cancel", data, func(ctx context.Context) error { return producer.Put(ctx, data) })
	}
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	for c := range 4 {
		q, err := NewQueue(session(t, cl, c%3), "/cancel")
		must(t, err)
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				mu.Lock()
				n := len(seen)
				mu.Unlock()
				if n == items {
					return
				}
				short, cancel := context.WithTimeout(ctx, time.Duration((i*7+c*3)%40)*200*time.Microsecond)
				data, err := q.Take(short)
				cancel()
				if err != nil {
					if !ctxEnded(err) || errors.Is(err, errTakeLost) {
						t.Errorf("consumer %d: %v", c, err)
						return
					}
					continue
				}
				mu.Lock()
				seen[string(data)]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for i := range items {
		if n := seen[strconv.Itoa(i)]; n != 1 {
			t.Errorf("item %d delivered %d times", i, n)
		}
	}
	if n, err := producer.Len(ctx); n != 0 || err != nil {
		t.Fatalf("Len = %d, %v", n, err)
	}
}
