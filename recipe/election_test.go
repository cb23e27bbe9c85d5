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
	"github.com/zooraft/zoo/zootest"
)

// leaderGauge tracks how many campaigners believe they lead.
type leaderGauge struct {
	n    atomic.Int32
	errs errList
}

// lead records a term from Campaign's return to the close of Lost, or to
// the close of stepDown: the owner closes that before it ends the term itself
// (by closing the session, which other replicas may apply before the
// leader's own does).
func (l *leaderGauge) lead(name string, e *Election, stepDown <-chan struct{}) {
	if n := l.n.Add(1); n != 1 {
		l.errs.add("%s elected while %d others lead", name, n-1)
	}
	select {
	case <-e.Lost():
	case <-stepDown:
	}
	l.n.Add(-1)
}

// Contenders take turns through Lead: one leader at a time, each one leads.
func TestElectionOneLeaderAtATime(t *testing.T) {
	c := newCluster(t, 3)
	ctx := testkit.ContextFor(t, 2*time.Minute)
	const contenders = 6
	var (
		leading atomic.Int32
		errs    errList
		wg      sync.WaitGroup
		mu      sync.Mutex // guards led
		led     []string
	)
	for i := range contenders {
		s := session(t, c, i%3)
		wg.Go(func() {
			e, _ := NewElection(s, "/t1/elect/turns")
			name := fmt.Sprint("c", i)
			err := e.Lead(ctx, []byte(name), func(ctx context.Context) error {
				if n := leading.Add(1); n != 1 {
					errs.add("%s leads with %d others", name, n-1)
				}
				defer leading.Add(-1)
				if !e.IsLeader() {
					errs.add("%s: IsLeader false inside Lead", name)
				}
				info, err := e.Leader(ctx)
				if err != nil || string(info.Value) != name || info.Token != e.Token() || info.Session != s.ID() {
					errs.add("%s: Leader() = %+v, %v", name, info, err)
				}
				mu.Lock()
				led = append(led, name)
				mu.Unlock()
				time.Sleep(20 * time.Millisecond)
				return nil
			})
			if err != nil {
				errs.add("%s: Lead: %v", name, err)
			}
			if e.IsLeader() {
				errs.add("%s still leads after Lead", name)
			}
		})
	}
	wg.Wait()
	errs.check(t)
	if len(led) != contenders {
		t.Errorf("terms %v, want one per contender", led)
	}
	noneLeft(t, session(t, c, 0), "/t1/elect/turns")
}

// The campaigners' ensemble loses its raft leader replica, which also served
// the elected campaigner: a new leader is elected among the campaigners on
// the surviving replicas once the old one's session expires, and there is
// never more than one. Then the new leader's session closes, and the next
// one takes over at once.
func TestElectionEnsembleFailover(t *testing.T) {
	c := newCluster(t, 3)
	ctx := testkit.ContextFor(t, 3*time.Minute)
	const dir = "/t1/elect/failover"
	raftLeader := c.WaitLeader()
	var leaders leaderGauge

	first, _ := NewElection(session(t, c, raftLeader, zoo.WithSessionTimeout(time.Second)), dir)
	if err := first.Campaign(ctx, []byte("first")); err != nil {
		t.Fatal(err)
	}
	go leaders.lead("first", first, nil)

	type camp struct {
		name     string
		s        *zoo.Session
		e        *Election
		stepDown chan struct{}
	}
	var camps []camp
	for i := range 4 {
		s := session(t, c, (raftLeader+1+i%2)%3)
		e, _ := NewElection(s, dir)
		camps = append(camps, camp{fmt.Sprint("c", i), s, e, make(chan struct{})})
	}
	elected := make(chan int, len(camps))
	for i, cp := range camps {
		go func() {
			if err := cp.e.Campaign(ctx, []byte(cp.name)); err != nil {
				if ctx.Err() == nil && cp.s.Err() == nil {
					t.Errorf("%s: Campaign: %v", cp.name, err)
				}
				return
			}
			elected <- i
			leaders.lead(cp.name, cp.e, cp.stepDown)
		}()
		testkit.EventuallyNil(t, 30*time.Second, func() error {
			return testkit.Holds(len(children(t, cp.s, dir)) == i+2, cp.name+" queued")
		})
	}

	stoppedAt := time.Now()
	c.Stop(raftLeader)
	select {
	case <-first.Lost():
	case <-ctx.Done():
		t.Fatal("the first leader was not told its replica stopped")
	}
	var next int
	select {
	case next = <-elected:
	case <-time.After(time.Second + 30*time.Second): // session timeout + slack
		t.Fatal("no new leader after the old one's replica stopped")
	}
	t.Logf("new leader %s %v after the raft leader stopped", camps[next].name, time.Since(stoppedAt).Round(time.Millisecond))
	c.WaitLeader()
	obsS := session(t, c, (raftLeader+1)%3)
	mustSync(t, obsS)
	obs, _ := NewElection(obsS, dir)
	info, err := obs.Leader(ctx)
	if err != nil || string(info.Value) != camps[next].name {
		t.Fatalf("Leader() = %+v, %v; want %s", info, err, camps[next].name)
	}
	count := 0
	for _, cp := range camps {
		if cp.e.IsLeader() {
			count++
		}
	}
	if count != 1 {
		t.Errorf("%d campaigners think they lead", count)
	}

	// The new leader's session dies: the next campaigner takes over.
	close(camps[next].stepDown)
	mustClose(t, camps[next].s)
	select {
	case third := <-elected:
		if third == next {
			t.Fatal("elected twice")
		}
		if camps[third].e.Token() <= info.Token {
			t.Errorf("token %d after %d", camps[third].e.Token(), info.Token)
		}
	case <-ctx.Done():
		t.Fatal("no leader after the second one's session closed")
	}
	testkit.EventuallyNil(t, 10*time.Second, func() error { return testkit.Holds(leaders.n.Load() == 1, "one leader") })
	leaders.errs.check(t)
}

// A leader whose replica is cut off from the quorum steps down (Lost,
// ErrSuspended) before the ensemble expires its session and elects another.
func TestElectionIsolatedLeaderStepsDown(t *testing.T) {
	c := newCluster(t, 3)
	ctx := testkit.ContextFor(t, 2*time.Minute)
	const dir = "/t1/elect/isolated"
	victim := (c.WaitLeader() + 1) % 3
	old, _ := NewElection(session(t, c, victim), dir)
	if err := old.Campaign(ctx, []byte("old")); err != nil {
		t.Fatal(err)
	}
	ns := session(t, c, c.WaitLeader())
	next, _ := NewElection(ns, dir)
	var lostAt, electedAt atomic.Int64
	go func() {
		if err := next.Campaign(ctx, []byte("next")); err != nil {
			t.Errorf("next: %v", err)
			return
		}
		electedAt.Store(time.Now().UnixNano())
	}()
	testkit.EventuallyNil(t, 30*time.Second, func() error { return testkit.Holds(len(children(t, ns, dir)) == 2, "next queued") })
	go func() {
		<-old.Lost()
		lostAt.Store(time.Now().UnixNano())
	}()
	c.Isolate(victim)
	testkit.EventuallyNil(t, time.Minute, func() error { return testkit.Holds(electedAt.Load() != 0, "a new leader") })
	if l, e := lostAt.Load(), electedAt.Load(); l == 0 || l > e {
		t.Errorf("old leader stepped down at %d, after the new one was elected at %d", l, e)
	}
	if old.IsLeader() {
		t.Error("old leader still IsLeader")
	}
	c.Heal()
	// Stepping down freed the value: it may campaign again (on a new session:
	// this one expired).
	testkit.EventuallyNil(t, time.Minute, func() error { return testkit.Holds(old.s.Err() != nil, "the old session to end") })
	if err := old.Campaign(ctx, nil); !errors.Is(err, zoo.ErrSessionExpired) {
		t.Errorf("Campaign on the expired session: %v", err)
	}
}

func TestElectionObserveLeaderProclaim(t *testing.T) {
	c := newCluster(t, 3)
	ctx := testkit.ContextFor(t, time.Minute)
	const dir = "/t1/elect/observe"
	obsS := session(t, c, 0)
	obs, _ := NewElection(obsS, dir)
	if _, err := obs.Leader(ctx); !errors.Is(err, ErrNoLeader) {
		t.Fatalf("Leader of an empty election: %v", err)
	}
	octx, ocancel := context.WithCancel(ctx)
	ch := obs.Observe(octx)
	next := func(want string) LeaderInfo {
		t.Helper()
		select {
		case info, ok := <-ch:
			if !ok || string(info.Value) != want {
				t.Fatalf("observed %q (open %v), want %q", info.Value, ok, want)
			}
			return info
		case <-ctx.Done():
			t.Fatalf("nothing observed, want %q", want)
		}
		return LeaderInfo{}
	}
	s1, s2 := session(t, c, 1), session(t, c, 2)
	e1, _ := NewElection(s1, dir)
	e2, _ := NewElection(s2, dir)
	if err := e1.Proclaim(ctx, []byte("x")); !errors.Is(err, ErrNotLeader) {
		t.Errorf("Proclaim by a non-leader: %v", err)
	}
	if err := e1.Campaign(ctx, []byte("a")); err != nil {
		t.Fatal(err)
	}
	i1 := next("a")
	if i1.Session != s1.ID() || i1.Token != e1.Token() || i1.Node != e1.Node() {
		t.Errorf("observed %+v; e1 token %d node %s", i1, e1.Token(), e1.Node())
	}
	got := make(chan error, 1)
	go func() { got <- e2.Campaign(ctx, []byte("b")) }()
	testkit.EventuallyNil(t, 30*time.Second, func() error { return testkit.Holds(len(children(t, s2, dir)) == 2, "e2 queued") })
	if err := e1.Proclaim(ctx, []byte("a2")); err != nil {
		t.Fatal(err)
	}
	if i := next("a2"); i.Version != 1 || i.Node != i1.Node {
		t.Errorf("after Proclaim: %+v", i)
	}
	if err := e1.Resign(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	if i := next("b"); i.Token <= i1.Token {
		t.Errorf("new leader's token %d <= old %d", i.Token, i1.Token)
	}
	mustSync(t, obsS)
	if info, err := obs.Leader(ctx); err != nil || string(info.Value) != "b" {
		t.Errorf("Leader() = %+v, %v", info, err)
	}
	ocancel()
	for range ch {
	}
}

func TestElectionResignAndReentrancy(t *testing.T) {
	c := newCluster(t, 3)
	ctx := testkit.ContextFor(t, time.Minute)
	const dir = "/t1/elect/resign"
	s1, s2 := session(t, c, 1), session(t, c, 2)
	e1, _ := NewElection(s1, dir)
	e2, _ := NewElection(s2, dir)
	if err := e1.Resign(ctx); err != nil {
		t.Errorf("Resign when idle: %v", err)
	}
	if err := e1.Campaign(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if err := e1.Campaign(ctx, nil); !errors.Is(err, ErrNotReentrant) {
		t.Errorf("second Campaign: %v, want ErrNotReentrant", err)
	}
	got := make(chan error, 1)
	go func() { got <- e2.Campaign(ctx, nil) }()
	testkit.EventuallyNil(t, 30*time.Second, func() error { return testkit.Holds(len(children(t, s2, dir)) == 2, "e2 queued") })
	// Resign from another goroutine stops e2's campaign.
	if err := e2.Resign(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-got; !errors.Is(err, ErrResigned) {
		t.Fatalf("stopped Campaign: %v, want ErrResigned", err)
	}
	testkit.EventuallyNil(t, 30*time.Second, func() error {
		left := children(t, s2, dir)
		return testkit.Holds(len(left) == 1, fmt.Sprintf("the stopped campaign's node to go: %v", left))
	})
	lost := e1.Lost()
	if err := e1.Resign(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-lost:
	default:
		t.Error("Resign did not close Lost")
	}
	if e1.IsLeader() || e1.Token() != 0 || e1.Node() != "" {
		t.Error("still reports leadership after Resign")
	}
	noneLeft(t, s2, dir)
}

// Someone deletes the leader's node: the leader is told at once and the next
// campaigner leads; the old leader can campaign again.
func TestElectionNodeDeletedBySomeone(t *testing.T) {
	c := newCluster(t, 3)
	ctx := testkit.ContextFor(t, time.Minute)
	const dir = "/t1/elect/deleted"
	e1, _ := NewElection(session(t, c, 0), dir)
	e2, _ := NewElection(session(t, c, 1), dir)
	admin := session(t, c, 2)
	if err := e1.Campaign(ctx, []byte("1")); err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() { got <- e2.Campaign(ctx, []byte("2")) }()
	testkit.EventuallyNil(t, 30*time.Second, func() error { return testkit.Holds(len(children(t, admin, dir)) == 2, "e2 queued") })
	mustDelete(t, admin, e1.Node())
	select {
	case <-e1.Lost():
	case <-ctx.Done():
		t.Fatal("leader not told its node was deleted")
	}
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	testkit.EventuallyNil(t, 10*time.Second, func() error { return testkit.Holds(!e1.IsLeader(), "e1 to step down") })
	again := make(chan error, 1)
	go func() { again <- e1.Campaign(ctx, []byte("1")) }()
	testkit.EventuallyNil(t, 30*time.Second, func() error { return testkit.Holds(len(children(t, admin, dir)) == 2, "e1 queued again") })
	if err := e2.Resign(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-again; err != nil {
		t.Fatal(err)
	}
}

// Lead cancels the work's context when leadership is lost, with ErrLost as
// its cause, and reports the loss.
func TestElectionLeadCancelledOnLoss(t *testing.T) {
	c := newCluster(t, 3)
	ctx := testkit.ContextFor(t, time.Minute)
	s := session(t, c, 1)
	e, _ := NewElection(s, "/t1/elect/lead")
	started := make(chan struct{})
	var cause error
	err := e.Lead(ctx, nil, func(wctx context.Context) error {
		close(started)
		go func() { _ = zootest.Retry(ctx, func() error { return s.Close(ctx) }) }()
		<-wctx.Done()
		cause = context.Cause(wctx)
		return wctx.Err()
	})
	if !errors.Is(err, ErrLost) || !errors.Is(err, zoo.ErrClosed) {
		t.Errorf("Lead: %v, want ErrLost and ErrClosed", err)
	}
	if !errors.Is(cause, ErrLost) {
		t.Errorf("work context's cause %v, want ErrLost", cause)
	}
}

// LeadLoop requeues after every term: two campaigners both lead several
// times, never together.
func TestElectionLeadLoopRequeues(t *testing.T) {
	c := newCluster(t, 3)
	ctx := testkit.ContextFor(t, 2*time.Minute)
	lctx, stop := context.WithCancel(ctx)
	var (
		leading atomic.Int32
		terms   [2]atomic.Int32
		errs    errList
		wg      sync.WaitGroup
	)
	for i := range 2 {
		e, _ := NewElection(session(t, c, i+1), "/t1/elect/loop")
		wg.Go(func() {
			err := e.LeadLoop(lctx, nil, func(context.Context) error {
				if n := leading.Add(1); n != 1 {
					errs.add("%d leaders", n)
				}
				terms[i].Add(1)
				time.Sleep(10 * time.Millisecond)
				leading.Add(-1)
				return nil
			})
			if !errors.Is(err, context.Canceled) {
				errs.add("LeadLoop: %v", err)
			}
		})
	}
	testkit.EventuallyNil(t, time.Minute, func() error {
		return testkit.Holds(terms[0].Load() >= 3 && terms[1].Load() >= 3, "both to lead 3 times")
	})
	stop()
	wg.Wait()
	errs.check(t)
	noneLeft(t, session(t, c, 0), "/t1/elect/loop")
	// A work error ends the loop with that error.
	e, _ := NewElection(session(t, c, 0), "/t1/elect/loop")
	boom := errors.New("boom")
	if err := e.LeadLoop(ctx, nil, func(context.Context) error { return boom }); !errors.Is(err, boom) {
		t.Errorf("LeadLoop: %v, want boom", err)
	}
}
