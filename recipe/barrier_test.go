package recipe

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zooraft/zoo"
	"github.com/zooraft/zoo/internal/testkit"
)

func TestBarrierWaitReleasedOnRemove(t *testing.T) {
	cl := newCluster(t, 3)
	ctx := testkit.ContextFor(t, 120*time.Second)
	setter, err := NewBarrier(session(t, cl, 0), "/barriers/b1")
	must(t, err)

	// Not set: Wait returns at once; Remove of an unset barrier is fine.
	must(t, setter.Wait(ctx))
	must(t, setter.Remove(ctx))
	must(t, setter.Set(ctx))
	must(t, setter.Set(ctx)) // idempotent
	if ok, err := setter.IsSet(ctx); !ok || err != nil {
		t.Fatalf("IsSet = %v, %v", ok, err)
	}

	done := make(chan error, 4)
	for i := range 4 {
		s := session(t, cl, i%3)
		mustSync(t, s)
		b, err := NewBarrier(s, "/barriers/b1")
		must(t, err)
		go func() { done <- b.Wait(ctx) }()
	}
	blocked(t, done, "Wait on a set barrier")
	must(t, setter.Remove(ctx))
	for range 4 {
		if err := recv(t, done, "Wait"); err != nil {
			t.Fatalf("Wait: %v", err)
		}
	}

	// Context and session end release a waiter with their error.
	must(t, setter.Set(ctx))
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if err := setter.Wait(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait past its deadline: %v", err)
	}
	s := session(t, cl, 1)
	b, err := NewBarrier(s, "/barriers/b1")
	must(t, err)
	mustSync(t, s)
	go func() { done <- b.Wait(ctx) }()
	blocked(t, done, "Wait")
	mustClose(t, s)
	if err := recv(t, done, "Wait"); !errors.Is(err, zoo.ErrClosed) {
		t.Fatalf("Wait after session close: %v", err)
	}

	for _, bad := range []string{"", "/", "x", "/a/"} {
		if _, err := NewBarrier(s, bad); !errors.Is(err, zoo.ErrBadArguments) {
			t.Errorf("NewBarrier(%q): %v", bad, err)
		}
	}
}

// TestDoubleBarrier: n participants on sessions spread over 3 replicas; no
// Enter returns before all n entered, no Leave before all n called Leave;
// and the barrier is reusable for a second round.
func TestDoubleBarrier(t *testing.T) {
	cl := newCluster(t, 3)
	ctx := testkit.ContextFor(t, 120*time.Second)
	const n = 5
	parts := make([]*DoubleBarrier, n)
	for i := range parts {
		b, err := NewDoubleBarrier(session(t, cl, i%3), "/dbar", n)
		must(t, err)
		parts[i] = b
	}
	for round := range 2 {
		var entering, leaving atomic.Int32
		var wg sync.WaitGroup
		errs := make(chan error, 2*n)
		for i, b := range parts {
			wg.Go(func() {
				// Stagger the arrivals.
				time.Sleep(time.Duration(i) * 50 * time.Millisecond)
				entering.Add(1)
				if err := b.Enter(ctx); err != nil {
					errs <- fmt.Errorf("round %d: enter %d: %w", round, i, err)
					return
				}
				if got := entering.Load(); got != n {
					errs <- fmt.Errorf("round %d: participant %d entered with %d of %d in", round, i, got, n)
				}
				time.Sleep(time.Duration(n-i) * 30 * time.Millisecond)
				leaving.Add(1)
				if err := b.Leave(ctx); err != nil {
					errs <- fmt.Errorf("round %d: leave %d: %w", round, i, err)
					return
				}
				if got := leaving.Load(); got != n {
					errs <- fmt.Errorf("round %d: participant %d left with %d of %d leaving", round, i, got, n)
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if t.Failed() {
			t.FailNow()
		}
	}
	// Everything is cleaned up between rounds.
	s := session(t, cl, 0)
	if names := children(t, s, "/dbar"); len(names) != 0 {
		t.Fatalf("left behind: %v", names)
	}
	if err := parts[0].Leave(ctx); !errors.Is(err, ErrBarrierNotEntered) {
		t.Fatalf("Leave without Enter: %v", err)
	}
	if _, err := NewDoubleBarrier(s, "/dbar", 0); !errors.Is(err, zoo.ErrBadArguments) {
		t.Fatalf("n = 0: %v", err)
	}
}

// TestDoubleBarrierDeadParticipants: a participant that dies before the
// barrier opens stops counting; one that dies after it opened does not
// block Leave; one whose Enter is cancelled takes its node back; a ready
// node left by a dead round does not let anyone through.
func TestDoubleBarrierDeadParticipants(t *testing.T) {
	cl := newCluster(t, 3)
	ctx := testkit.ContextFor(t, 120*time.Second)
	newPart := func(i int, path string, n int) (*DoubleBarrier, *zoo.Session) {
		s := session(t, cl, i%3)
		b, err := NewDoubleBarrier(s, path, n)
		must(t, err)
		return b, s
	}
	enter := func(b *DoubleBarrier) <-chan error {
		ch := make(chan error, 1)
		go func() { ch <- b.Enter(ctx) }()
		return ch
	}
	admin := session(t, cl, 0)
	// participants counts the participant nodes at path (none while
	// path does not exist yet).
	participants := func(path string) int { return len(barrierParse(children(t, admin, path))) }

	// Dies while waiting to enter: no longer counted.
	a, sa := newPart(0, "/dead1", 3)
	aIn := enter(a)
	testkit.EventuallyNil(t, 30*time.Second, func() error { return testkit.Holds(participants("/dead1") == 1, "a to be in") })
	mustClose(t, sa)
	if err := recv(t, aIn, "Enter"); !errors.Is(err, zoo.ErrClosed) {
		t.Fatalf("Enter of a closed session: %v", err)
	}
	b, _ := newPart(1, "/dead1", 3)
	c, _ := newPart(2, "/dead1", 3)
	bIn, cIn := enter(b), enter(c)
	blocked(t, bIn, "Enter with 2 live of 3")
	d, sd := newPart(0, "/dead1", 3)
	dIn := enter(d)
	for _, ch := range []<-chan error{bIn, cIn, dIn} {
		must(t, recv(t, ch, "Enter"))
	}
	// d dies inside: the others still leave.
	mustClose(t, sd)
	leave := make(chan error, 2)
	go func() { leave <- b.Leave(ctx) }()
	go func() { leave <- c.Leave(ctx) }()
	for range 2 {
		must(t, recv(t, leave, "Leave"))
	}

	// A cancelled Enter takes its node back.
	e, _ := newPart(1, "/dead2", 2)
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if err := e.Enter(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Enter past its deadline: %v", err)
	}
	// (A create still in flight when the context ended may commit after
	// Enter returned: such a node is deleted in the background.)
	testkit.EventuallyNil(t, 30*time.Second, func() error {
		return testkit.Holds(participants("/dead2") == 0, "no participant nodes after a cancelled Enter")
	})

	// A stale ready node (its round all gone) does not open the barrier.
	mustCreate(t, admin, "/dead3/ready", nil)
	f, _ := newPart(2, "/dead3", 2)
	fIn := enter(f)
	blocked(t, fIn, "Enter past a stale ready node")
	g, _ := newPart(0, "/dead3", 2)
	gIn := enter(g)
	must(t, recv(t, fIn, "Enter"))
	must(t, recv(t, gIn, "Enter"))
	go func() { leave <- f.Leave(ctx) }()
	go func() { leave <- g.Leave(ctx) }()
	for range 2 {
		must(t, recv(t, leave, "Leave"))
	}
	names := children(t, admin, "/dead3")
	for _, n := range names {
		if strings.HasPrefix(n, barrierPrefix) || n == barrierReady {
			t.Fatalf("left behind: %v", names)
		}
	}
}
