package recipe_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/zooraft/zoo"
	"github.com/zooraft/zoo/recipe"
)

// A Mutex per participant; the holder stops acting on the lock when Lost
// closes, and tags its writes with the fencing token.
func ExampleMutex() {
	// A one-replica, in-memory ensemble; a short TickTime lets it elect
	// itself quickly.
	e, err := zoo.Open(zoo.Config{TickTime: 100 * time.Millisecond})
	if err != nil {
		log.Fatal(err)
	}
	defer e.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := e.NewSession(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close(ctx)

	m, err := recipe.NewMutex(s, "/locks/report")
	if err != nil {
		log.Fatal(err)
	}
	if err := m.Lock(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println("held:", m.Held(), "token > 0:", m.Token() > 0)

	// Another participant (it could be on another replica, in another process).
	other, _ := recipe.NewMutex(s, "/locks/report")
	fmt.Println("other TryLock:", errors.Is(other.TryLock(ctx), recipe.ErrLocked))

	select {
	case <-m.Lost():
		fmt.Println("lost the lock: stop working")
	default:
		fmt.Println("still held: do the work")
	}
	if err := m.Unlock(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println("other TryLock after Unlock:", other.TryLock(ctx) == nil)
	_ = other.Unlock(ctx)
	// Output:
	// held: true token > 0: true
	// other TryLock: true
	// still held: do the work
	// other TryLock after Unlock: true
}

// Selector style: each service instance calls Lead; one at a time runs the
// work, with a context cancelled if it loses leadership, then hands over.
func ExampleElection() {
	e, err := zoo.Open(zoo.Config{TickTime: 100 * time.Millisecond})
	if err != nil {
		log.Fatal(err)
	}
	defer e.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := e.NewSession(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close(ctx)

	// Someone following the election.
	watcher, _ := recipe.NewElection(s, "/election/scheduler")
	octx, stopObserving := context.WithCancel(ctx)
	observed := watcher.Observe(octx)

	for _, name := range []string{"alpha", "beta"} {
		el, err := recipe.NewElection(s, "/election/scheduler")
		if err != nil {
			log.Fatal(err)
		}
		err = el.Lead(ctx, []byte(name), func(ctx context.Context) error {
			info := <-observed
			fmt.Printf("%s leads (observed %s)\n", name, info.Value)
			return nil // returning hands leadership over
		})
		if err != nil {
			log.Fatal(err)
		}
	}
	stopObserving()
	_, err = watcher.Leader(ctx)
	fmt.Println("leader now:", err)
	// Output:
	// alpha leads (observed alpha)
	// beta leads (observed beta)
	// leader now: recipe: election has no leader
}
