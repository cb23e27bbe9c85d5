// Lock shows recipe.Mutex guarding a shared resource with its fencing token.
// The resource is a counter znode that stores, next to the count, the highest
// token that wrote it, and refuses a write with a lower one. Workers on
// different replicas take the lock in turn and increment the counter; then a
// holder freezes (its session's heartbeats stop, as in a long GC pause), the
// ensemble expires its session, the lock passes on, and the frozen holder's
// late write is refused by its stale token.
//
// One process, three replicas on loopback (no flags):
//
//	go run ./examples/lock
//
// Three processes, one replica and one worker each (kill -9 the holder and
// watch the lock pass on once its session expires):
//
//	go run ./examples/lock -id 1 -peers 1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003 -dir /tmp/zoo-lock/1
//	go run ./examples/lock -id 2 -peers 1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003 -dir /tmp/zoo-lock/2
//	go run ./examples/lock -id 3 -peers 1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003 -dir /tmp/zoo-lock/3
//
// With -once each worker increments the counter three times, and all exit
// when all are done.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zooraft/zoo"
	"github.com/zooraft/zoo/examples/internal/demo"
	"github.com/zooraft/zoo/recipe"
)

const (
	lockPath    = "/examples/lock/mutex"
	counterPath = "/examples/lock/counter"
	rounds      = 3 // lock-increment-unlock rounds per worker
)

func main() { demo.Main("lock", run, runReplica) }

// record is the counter znode's data.
type record struct {
	Count int64  `json:"count"`
	Token int64  `json:"token"` // the fencing token of the last write
	By    string `json:"by"`
}

func (r record) String() string {
	b, _ := json.Marshal(r)
	return string(b)
}

// errStaleToken: a write carried an older token than one already written.
var errStaleToken = errors.New("stale fencing token")

// ensureCounter creates the counter znode (and its parent) if it is missing.
func ensureCounter(ctx context.Context, s *zoo.Session) error {
	ctx, cancel := context.WithTimeout(ctx, demo.CallTimeout)
	defer cancel()
	for _, p := range []string{"/examples", "/examples/lock"} {
		if _, err := s.Create(ctx, p, nil, zoo.ModePersistent, nil); err != nil && !errors.Is(err, zoo.ErrNodeExists) {
			return err
		}
	}
	data, _ := json.Marshal(record{})
	if _, err := s.Create(ctx, counterPath, data, zoo.ModePersistent, nil); err != nil && !errors.Is(err, zoo.ErrNodeExists) {
		return err
	}
	return nil
}

// fencedIncrement is the resource's side of fencing: it adds one to the
// counter if token is at least the token of the last write, as a versioned
// compare-and-set (read, check, write at the version read; retried if someone
// wrote in between). It returns the record before and after the write.
func fencedIncrement(ctx context.Context, s *zoo.Session, by string, token int64) (before, after record, err error) {
	ctx, cancel := context.WithTimeout(ctx, demo.CallTimeout)
	defer cancel()
	for {
		data, st, err := s.Get(ctx, counterPath)
		if err != nil {
			return before, after, err
		}
		if err := json.Unmarshal(data, &before); err != nil {
			return before, after, fmt.Errorf("counter %s: %w", counterPath, err)
		}
		if token < before.Token {
			return before, after, fmt.Errorf("%w: %d is older than %d, written by %s", errStaleToken, token, before.Token, before.By)
		}
		after = record{Count: before.Count + 1, Token: token, By: by}
		data, _ = json.Marshal(after)
		_, err = s.Set(ctx, counterPath, data, st.Version)
		if errors.Is(err, zoo.ErrBadVersion) {
			continue // someone wrote since the read: check again
		}
		return before, after, err
	}
}

// worker is one participant of the one-process demo: its own session on its
// own replica, kept alive by a heartbeat it can stop (see freeze).
type worker struct {
	name    string
	replica string
	s       *zoo.ServerSession
	m       *recipe.Mutex
	stop    chan struct{} // closed to stop the heartbeat
	once    sync.Once
}

func (w *worker) String() string { return fmt.Sprintf("[%s @ replica %s]", w.name, w.replica) }

// heartbeat keeps the session alive the way a client's pings keep a
// ZooKeeper session alive: it is a server session (the kind zkwire holds
// for a remote client), so it expires a timeout after the last Touch.
func (w *worker) heartbeat(every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			w.s.Touch()
		case <-w.stop:
			return
		}
	}
}

// freeze stops the heartbeat, as a stop-the-world pause would.
func (w *worker) freeze() { w.once.Do(func() { close(w.stop) }) }

// run is the one-process demo.
func run(ctx context.Context, out io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	log := demo.NewLog(out)

	cl, err := demo.StartCluster(ctx, 3)
	if err != nil {
		return err
	}
	defer cl.Close()
	log.Printf("%s", cl.Describe())

	var ws []*worker
	for i := range cl.Replicas {
		s, err := cl.ServerSession(ctx, i)
		if err != nil {
			return err
		}
		w := &worker{name: fmt.Sprintf("worker-%d", i+1), replica: cl.Replicas[i].ID(), s: s, stop: make(chan struct{})}
		if w.m, err = recipe.NewMutex(s.Session, lockPath, recipe.WithNodeData([]byte(w.name))); err != nil {
			return err
		}
		go w.heartbeat(demo.DefaultTick / 2)
		defer w.freeze()
		defer demo.CloseSession(s.Session)
		ws = append(ws, w)
	}
	if err := ensureCounter(ctx, ws[0].s.Session); err != nil {
		return err
	}
	log.Printf("counter %s = %s", counterPath, record{})

	// Part 1: every worker increments the counter three times under the
	// lock. inside counts the holders in the critical section: never more
	// than one.
	var inside atomic.Int32
	var mu sync.Mutex
	var tokens []int64 // tokens in the order they were written
	errc := make(chan error, len(ws))
	for _, w := range ws {
		go func() {
			errc <- func() error {
				for range rounds {
					lctx, cancel := context.WithTimeout(ctx, 20*time.Second)
					err := w.m.Lock(lctx)
					cancel()
					if err != nil {
						return fmt.Errorf("%s lock: %w", w, err)
					}
					if n := inside.Add(1); n != 1 {
						log.Printf("%s VIOLATION: %d holders at once", w, n)
					}
					before, after, err := fencedIncrement(ctx, w.s.Session, w.name, w.m.Token())
					if err != nil {
						return fmt.Errorf("%s increment: %w", w, err)
					}
					mu.Lock()
					tokens = append(tokens, after.Token)
					mu.Unlock()
					log.Printf("%s holds the lock with token %d (last written: %d): count %d -> %d",
						w, after.Token, before.Token, before.Count, after.Count)
					time.Sleep(20 * time.Millisecond) // the work the lock protects
					inside.Add(-1)
					uctx, cancel := context.WithTimeout(ctx, demo.CallTimeout)
					err = w.m.Unlock(uctx)
					cancel()
					if err != nil {
						return fmt.Errorf("%s unlock: %w", w, err)
					}
				}
				return nil
			}()
		}()
	}
	for range ws {
		if err := <-errc; err != nil {
			return err
		}
	}
	rising := true
	for i := 1; i < len(tokens); i++ {
		rising = rising && tokens[i] > tokens[i-1]
	}
	final, err := readCounter(ctx, ws[0].s.Session)
	if err != nil {
		return err
	}
	log.Printf("%d increments by %d workers: count = %d, one holder at a time, tokens rose with every holder: %v",
		len(tokens), len(ws), final.Count, rising)
	if final.Count != int64(len(tokens)) || !rising {
		return fmt.Errorf("mutual exclusion broken: count %d after %d increments, tokens %v", final.Count, len(tokens), tokens)
	}

	// Part 2: a holder freezes, its session expires, the lock passes on.
	frozen, next := ws[2], ws[0]
	lctx, lcancel := context.WithTimeout(ctx, demo.CallTimeout)
	err = frozen.m.Lock(lctx)
	lcancel()
	if err != nil {
		return err
	}
	staleToken := frozen.m.Token()
	log.Printf("%s holds the lock with token %d, then freezes (a long GC pause: its session's heartbeats stop)",
		frozen, staleToken)
	frozen.freeze()
	start := time.Now()
	log.Printf("%s waits for the lock", next)
	lctx, lcancel = context.WithTimeout(ctx, 20*time.Second)
	err = next.m.Lock(lctx)
	lcancel()
	if err != nil {
		return fmt.Errorf("%s lock: %w", next, err)
	}
	before, after, err := fencedIncrement(ctx, next.s.Session, next.name, next.m.Token())
	if err != nil {
		return fmt.Errorf("%s increment: %w", next, err)
	}
	log.Printf("%s got the lock %v later, once the ensemble expired %s's session: token %d; count %d -> %d",
		next, time.Since(start).Round(100*time.Millisecond), frozen.name, after.Token, before.Count, after.Count)
	uctx, ucancel := context.WithTimeout(ctx, demo.CallTimeout)
	err = next.m.Unlock(uctx)
	ucancel()
	if err != nil {
		return fmt.Errorf("%s unlock: %w", next, err)
	}

	// The frozen worker wakes. Had it watched its Lost channel it would
	// know the lock is gone; it does not, gets a new session (its old one
	// expired) and writes with the token it had.
	// (Its replica learns of the expiry when it applies it, which may be a
	// moment after worker-1's replica did.)
	select {
	case <-frozen.m.Lost():
		log.Printf("%s wakes up; its Lost channel closed while it was frozen, but it writes anyway (new session, token %d)",
			frozen, staleToken)
	case <-time.After(demo.CallTimeout):
		return fmt.Errorf("%s still holds the lock after its session expired", frozen)
	}
	zombie, err := cl.Session(ctx, 2)
	if err != nil {
		return err
	}
	defer demo.CloseSession(zombie)
	_, _, err = fencedIncrement(ctx, zombie, frozen.name, staleToken)
	if !errors.Is(err, errStaleToken) {
		return fmt.Errorf("stale write was not refused: %v", err)
	}
	log.Printf("%s write refused: %v", frozen, err)
	uctx, ucancel = context.WithTimeout(ctx, demo.CallTimeout)
	err = frozen.m.Unlock(uctx)
	ucancel()
	log.Printf("%s Unlock: %v", frozen, err)
	if !errors.Is(err, recipe.ErrLost) {
		return fmt.Errorf("unlock after expiry: %v", err)
	}
	final, err = readCounter(ctx, next.s.Session)
	if err != nil {
		return err
	}
	log.Printf("final counter %s = %s", counterPath, final)
	return nil
}

func readCounter(ctx context.Context, s *zoo.Session) (record, error) {
	ctx, cancel := context.WithTimeout(ctx, demo.CallTimeout)
	defer cancel()
	var r record
	if err := s.Sync(ctx, counterPath); err != nil {
		return r, err
	}
	data, _, err := s.Get(ctx, counterPath)
	if err != nil {
		return r, err
	}
	return r, json.Unmarshal(data, &r)
}

// runReplica is one process of a real ensemble: it hosts replica f.ID and
// runs worker-<id>, which takes the lock, increments the counter, holds the
// lock a moment and lets it go, again and again (three times with -once).
func runReplica(ctx context.Context, out io.Writer, f *demo.Flags) error {
	log := demo.NewLog(out)
	me := "worker-" + f.ID
	e, s, err := f.Join(ctx, log)
	if err != nil {
		return err
	}
	defer func() {
		if err := demo.Shutdown(e, s); err != nil {
			log.Printf("[%s] %v", me, err)
		}
	}()
	if err := ensureCounter(ctx, s); err != nil {
		return err
	}
	m, err := recipe.NewMutex(s, lockPath, recipe.WithNodeData([]byte(me)))
	if err != nil {
		return err
	}
	hold := 5 * f.Tick
	for done := 0; !f.Once || done < rounds; done++ {
		start := time.Now()
		// Others may hold the lock for long: bound each wait and say so.
		lctx, cancel := context.WithTimeout(ctx, time.Minute)
		err := m.Lock(lctx)
		cancel()
		switch {
		case err == nil:
		case ctx.Err() != nil:
			log.Printf("[%s] signal: stopped waiting, closing", me)
			return nil
		case errors.Is(err, context.DeadlineExceeded):
			log.Printf("[%s] no lock within a minute; still waiting", me)
			done--
			continue
		default:
			return fmt.Errorf("lock: %w", err)
		}
		before, after, err := fencedIncrement(ctx, s, me, m.Token())
		if err != nil {
			return fmt.Errorf("increment: %w", err)
		}
		by := before.By
		if by == "" {
			by = "nobody"
		}
		log.Printf("[%s] got the lock after %v, token %d (last written: %d by %s): count %d -> %d",
			me, time.Since(start).Round(10*time.Millisecond), after.Token, before.Token, by, before.Count, after.Count)
		select {
		case <-time.After(hold): // the work the lock protects
		case <-m.Lost():
			log.Printf("[%s] lost the lock while holding it (session: %v)", me, s.Err())
		case <-ctx.Done():
		}
		uctx, cancel := f.ReleaseContext(ctx)
		err = m.Unlock(uctx)
		cancel()
		switch {
		case ctx.Err() != nil && err != nil:
			log.Printf("[%s] signal: could not release the lock (%v): it goes with the session; closing", me, err)
			return nil
		case ctx.Err() != nil:
			log.Printf("[%s] signal: released the lock, closing", me)
			return nil
		case errors.Is(err, recipe.ErrLost) && s.Err() == nil:
			// Suspended (out of quorum too long): the lock is gone, the
			// session lives; take it again.
		case err != nil:
			return fmt.Errorf("unlock: %w", err)
		}
		log.Printf("[%s] released the lock", me)
		select {
		case <-time.After(f.Tick): // let the others in before queueing again
		case <-ctx.Done():
			log.Printf("[%s] signal: closing", me)
			return nil
		}
	}
	if err := demo.AllDone(ctx, s, "/examples/lock/done", len(f.Peers), f.Tick); err != nil {
		return err
	}
	final, err := readCounter(ctx, s)
	if err != nil {
		return err
	}
	log.Printf("[%s] every worker is done: counter = %s", me, final)
	return nil
}
