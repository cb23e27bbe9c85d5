// Election shows recipe.Election: contenders campaign, one leads, the
// leader's replica crashes and the next in line takes over once the ensemble
// has expired the dead leader's session, and an observer that never campaigns
// sees every change (including a value the leader proclaims).
//
// One process, three replicas on loopback (no flags):
//
//	go run ./examples/election
//
// Three processes, one replica and one contender each (a real ensemble; kill
// the leader's process and watch another take over):
//
//	go run ./examples/election -id 1 -peers 1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003 -dir /tmp/zoo-election/1
//	go run ./examples/election -id 2 -peers 1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003 -dir /tmp/zoo-election/2
//	go run ./examples/election -id 3 -peers 1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003 -dir /tmp/zoo-election/3
//
// With -once each process leads once in turn (for a few ticks), resigns, and
// exits when all have.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/zooraft/zoo"
	"github.com/zooraft/zoo/examples/internal/demo"
	"github.com/zooraft/zoo/recipe"
)

// electionPath is where the contenders' nodes live.
const electionPath = "/examples/election/scheduler"

func main() { demo.Main("election", run, runReplica) }

// contender is one campaigner of the one-process demo: a name, its replica,
// its own session and Election value.
type contender struct {
	name    string
	replica string
	s       *zoo.Session
	el      *recipe.Election
	elected chan struct{} // closed when its Campaign has returned elected
}

func (c *contender) String() string { return fmt.Sprintf("[%s @ replica %s]", c.name, c.replica) }

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

	// alice runs next to the raft leader, so that her crash also makes the
	// ensemble elect a new raft leader; bob and carol are on the others.
	first := max(cl.Leader(), 0)
	var cs []*contender
	for i, name := range []string{"alice", "bob", "carol"} {
		r := (first + i) % 3
		s, err := cl.Session(ctx, r)
		if err != nil {
			return err
		}
		defer demo.CloseSession(s)
		el, err := recipe.NewElection(s, electionPath)
		if err != nil {
			return err
		}
		cs = append(cs, &contender{name: name, replica: cl.Replicas[r].ID(), s: s, el: el, elected: make(chan struct{})})
	}
	alice, bob, carol := cs[0], cs[1], cs[2]

	// The observer never campaigns. It sits on carol's replica, which
	// survives, and reports every leader it sees on seen.
	obs, err := cl.Session(ctx, (first+2)%3)
	if err != nil {
		return err
	}
	defer demo.CloseSession(obs)
	observer, err := recipe.NewElection(obs, electionPath)
	if err != nil {
		return err
	}
	octx, stopObserving := context.WithCancel(ctx)
	defer stopObserving()
	seen := make(chan recipe.LeaderInfo, 16)
	observed := observer.Observe(octx)
	go func() {
		defer close(seen)
		for info := range observed {
			log.Printf("observer @ replica %s: leader is %q (token %d, session 0x%x)",
				cl.Replicas[(first+2)%3].ID(), info.Value, info.Token, info.Session)
			select {
			case seen <- info:
			case <-octx.Done():
			}
		}
	}()
	// expect waits until the observer reports a leader whose value is v
	// and, if c is not nil, until c knows it leads.
	expect := func(v string, c *contender) (recipe.LeaderInfo, error) {
		wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		if c != nil {
			select {
			case <-c.elected:
			case <-wctx.Done():
				return recipe.LeaderInfo{}, fmt.Errorf("%s was never elected: %w", c, wctx.Err())
			}
		}
		for {
			select {
			case info, ok := <-seen:
				if !ok {
					return info, errors.New("observer stopped")
				}
				if string(info.Value) == v {
					return info, nil
				}
			case <-wctx.Done():
				return recipe.LeaderInfo{}, fmt.Errorf("observer never saw leader %q: %w", v, wctx.Err())
			}
		}
	}

	// Campaign in a known order: each contender's node is in line before
	// the next one starts, so leadership passes alice, bob, carol.
	errc := make(chan error, len(cs))
	for i, c := range cs {
		log.Printf("%s campaigns", c)
		go func() { errc <- campaign(ctx, log, c) }()
		if i == 0 {
			if _, err := expect(c.name, c); err != nil {
				return err
			}
			continue
		}
		if err := waitContenders(ctx, obs, i+1); err != nil {
			return err
		}
	}
	tokens := []int64{}
	info, err := leaderNow(ctx, observer)
	if err != nil {
		return err
	}
	tokens = append(tokens, info.Token)

	// The leader publishes news without a new election; observers see it.
	news := "alice: 12 jobs scheduled"
	log.Printf("%s proclaims %q", alice, news)
	pctx, pcancel := context.WithTimeout(ctx, demo.CallTimeout)
	err = alice.el.Proclaim(pctx, []byte(news))
	pcancel()
	if err != nil {
		return fmt.Errorf("proclaim: %w", err)
	}
	if _, err := expect(news, nil); err != nil {
		return err
	}

	// alice's replica crashes. The survivors elect a raft leader if it was
	// the leader, give every session a full timeout, then expire alice's:
	// her node vanishes and bob, next in line, is elected.
	what := "replica " + alice.replica
	if cl.Leader() == first {
		what += " (also the raft leader: the other two elect a new one)"
	}
	log.Printf("%s crashes, with alice's session on it: the ensemble expires the session after its %v timeout",
		what, alice.s.Timeout())
	start := time.Now()
	cl.Replicas[first].Close()
	if info, err = expect(bob.name, bob); err != nil {
		return err
	}
	tokens = append(tokens, info.Token)
	log.Printf("bob took over %v after the crash", time.Since(start).Round(100*time.Millisecond))

	// bob hands over on purpose: carol is next.
	log.Printf("%s resigns", bob)
	rctx, rcancel := context.WithTimeout(ctx, demo.CallTimeout)
	err = bob.el.Resign(rctx)
	rcancel()
	if err != nil {
		return fmt.Errorf("resign: %w", err)
	}
	if info, err = expect(carol.name, carol); err != nil {
		return err
	}
	tokens = append(tokens, info.Token)

	log.Printf("%s resigns", carol)
	rctx, rcancel = context.WithTimeout(ctx, demo.CallTimeout)
	err = carol.el.Resign(rctx)
	rcancel()
	if err != nil {
		return fmt.Errorf("resign: %w", err)
	}
	// Leader reads the observer's replica: Sync first to see carol's resign.
	sctx, scancel := context.WithTimeout(ctx, demo.CallTimeout)
	defer scancel()
	if err := obs.Sync(sctx, electionPath); err != nil {
		return err
	}
	if _, err := observer.Leader(sctx); !errors.Is(err, recipe.ErrNoLeader) {
		return fmt.Errorf("after every resign: leader %v", err)
	}
	log.Printf("no leader left; leadership went alice -> bob -> carol with tokens %v (each term's token is higher)", tokens)
	stopObserving()
	for range seen {
	}
	for range cs {
		if err := <-errc; err != nil {
			return err
		}
	}
	return nil
}

// campaign runs one contender of the one-process demo: it campaigns, reports
// its election, and waits for its term to end.
func campaign(ctx context.Context, log *demo.Log, c *contender) error {
	if err := c.el.Campaign(ctx, []byte(c.name)); err != nil {
		return fmt.Errorf("%s campaign: %w", c, err)
	}
	log.Printf("%s elected: leading with token %d", c, c.el.Token())
	close(c.elected)
	select {
	case <-c.el.Lost():
		if err := c.s.Err(); err != nil {
			log.Printf("%s term over: its session went with its replica (%v)", c, err)
		} else {
			log.Printf("%s term over", c)
		}
	case <-ctx.Done():
	}
	return nil
}

// waitContenders waits until n contenders are in line.
func waitContenders(ctx context.Context, s *zoo.Session, n int) error {
	ctx, cancel := context.WithTimeout(ctx, demo.CallTimeout)
	defer cancel()
	for {
		if err := s.Sync(ctx, electionPath); err != nil {
			return err
		}
		names, _, err := s.Children(ctx, electionPath)
		if err != nil && !errors.Is(err, zoo.ErrNoNode) {
			return err
		}
		if len(names) >= n {
			return nil
		}
		select {
		case <-time.After(20 * time.Millisecond):
		case <-ctx.Done():
			return fmt.Errorf("waiting for %d contenders: %w", n, ctx.Err())
		}
	}
}

func leaderNow(ctx context.Context, el *recipe.Election) (recipe.LeaderInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, demo.CallTimeout)
	defer cancel()
	return el.Leader(ctx)
}

// runReplica is one process of a real ensemble: it hosts replica f.ID,
// campaigns as node-<id>, and observes the election.
func runReplica(ctx context.Context, out io.Writer, f *demo.Flags) error {
	log := demo.NewLog(out)
	me := "node-" + f.ID
	e, s, err := f.Join(ctx, log)
	if err != nil {
		return err
	}
	defer func() {
		if err := demo.Shutdown(e, s); err != nil {
			log.Printf("[%s] %v", me, err)
		}
	}()

	observer, err := recipe.NewElection(s, electionPath)
	if err != nil {
		return err
	}
	octx, stopObserving := context.WithCancel(ctx)
	defer stopObserving()
	go func() {
		for info := range observer.Observe(octx) {
			log.Printf("[%s] observed: leader is %s (token %d)", me, info.Value, info.Token)
		}
	}()

	el, err := recipe.NewElection(s, electionPath)
	if err != nil {
		return err
	}
	value := []byte(me)
	hold := 10 * f.Tick // how long a -once leader leads
	for {
		log.Printf("[%s] campaigning in %s", me, electionPath)
		// A campaign may wait as long as others lead: bound each wait and
		// say so, rather than block silently.
		cctx, cancel := context.WithTimeout(ctx, time.Minute)
		err := el.Campaign(cctx, value)
		cancel()
		switch {
		case err == nil:
		case ctx.Err() != nil:
			log.Printf("[%s] signal: stopped campaigning, closing", me)
			return nil
		case errors.Is(err, context.DeadlineExceeded):
			log.Printf("[%s] not elected within a minute; still in line", me)
			continue
		default:
			return fmt.Errorf("campaign: %w", err)
		}
		log.Printf("[%s] elected: I lead now (token %d)", me, el.Token())
		var timeout <-chan time.Time
		if f.Once {
			timeout = time.After(hold)
		}
		select {
		case <-el.Lost():
			// The session ended, or the replica was out of quorum for
			// longer than the suspend grace: stop leading, campaign again.
			log.Printf("[%s] lost leadership (session: %v)", me, s.Err())
			if s.Err() != nil {
				return fmt.Errorf("session ended: %w", s.Err())
			}
			continue
		case <-timeout:
		case <-ctx.Done():
		}
		rctx, cancel := f.ReleaseContext(ctx)
		err = el.Resign(rctx)
		cancel()
		if ctx.Err() != nil {
			if err != nil {
				log.Printf("[%s] signal: could not resign (%v): the node goes with the session; closing", me, err)
			} else {
				log.Printf("[%s] signal: resigned, closing", me)
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("resign: %w", err)
		}
		log.Printf("[%s] resigned after %v (-once)", me, hold)
		break
	}
	if err := demo.AllDone(ctx, s, "/examples/election/done", len(f.Peers), f.Tick); err != nil {
		return err
	}
	log.Printf("[%s] every process has led once; exiting", me)
	return nil
}
