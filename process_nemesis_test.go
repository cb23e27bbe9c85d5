package zoo_test

import (
	"context"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync"
	"syscall"
	"testing"
	"time"
)

// nemesis is the faults the process tests inflict on a processCluster, one
// at a time. Each method does its fault, waits out its length, undoes it,
// and returns its name for the tally; a fault that cannot happen now (no
// leader to isolate) says so in its name instead of failing the test.
type nemesis struct {
	t  *testing.T
	pc *processCluster

	mu        sync.Mutex // guards disturbed
	disturbed map[*replicaProc][][2]time.Time
}

// disturb records that p was paused, killed, cut off or removed from
// from to to.
func (n *nemesis) disturb(p *replicaProc, from, to time.Time) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.disturbed == nil {
		n.disturbed = map[*replicaProc][][2]time.Time{}
	}
	n.disturbed[p] = append(n.disturbed[p], [2]time.Time{from, to})
}

// disturbedBetween reports whether p was disturbed at some time in [from, to].
func (n *nemesis) disturbedBetween(p *replicaProc, from, to time.Time) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, d := range n.disturbed[p] {
		if !d[0].After(to) && !d[1].Before(from) {
			return true
		}
	}
	return false
}

func (n *nemesis) anyProc(rng *rand.Rand) *replicaProc {
	return n.pc.procs[rng.IntN(len(n.pc.procs))]
}

// length is a random fault length in [min, max).
func length(rng *rand.Rand, minLen, maxLen time.Duration) time.Duration {
	return minLen + time.Duration(rng.Int64N(int64(maxLen-minLen)))
}

// pause stops victim with SIGSTOP and resumes it with SIGCONT.
func (n *nemesis) pause(rng *rand.Rand, victim *replicaProc, minLen, maxLen time.Duration) string {
	if victim.cmd == nil {
		return "pause (not running)"
	}
	d := length(rng, minLen, maxLen)
	n.t.Logf("SIGSTOP replica %s for %v", victim.spec.ID, d)
	start := time.Now()
	victim.cmd.Process.Signal(syscall.SIGSTOP)
	time.Sleep(d) // the fault's length is the point
	victim.cmd.Process.Signal(syscall.SIGCONT)
	n.disturb(victim, start, time.Now())
	if d > 5*time.Second {
		return "long pause"
	}
	return "pause"
}

// killRestart SIGKILLs victim and restarts it from its data dir.
func (n *nemesis) killRestart(rng *rand.Rand, victim *replicaProc) string {
	d := length(rng, 500*time.Millisecond, 3*time.Second)
	n.t.Logf("SIGKILL replica %s, restart after %v", victim.spec.ID, d)
	start := time.Now()
	n.pc.kill(victim)
	time.Sleep(d)
	n.pc.start(victim)
	n.disturb(victim, start, time.Now())
	return "kill"
}

// transfer asks whichever replica leads now to hand leadership over;
// refused (no leader, or none up to date) is fine: it is a fault, not a
// check.
func (n *nemesis) transfer() string {
	leader := n.pc.leaderNow()
	if leader == nil {
		return "transfer (no leader)"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	code, _, err := n.pc.do(ctx, http.MethodPost, leader, "transfer", nil, "")
	n.t.Logf("leadership transfer from replica %s: %d %v", leader.spec.ID, code, err)
	return "transfer"
}

// cut applies a network fault that disturbs victims for a while, then
// heals every cut.
func (n *nemesis) cut(rng *rand.Rand, what string, apply func() error, victims ...*replicaProc) string {
	d := length(rng, time.Second, 4*time.Second)
	n.t.Logf("%s for %v", what, d)
	start := time.Now()
	if err := apply(); err != nil {
		n.t.Fatal(err)
	}
	time.Sleep(d)
	if err := n.pc.net.Heal(); err != nil {
		n.t.Fatal(err)
	}
	for _, v := range victims {
		n.disturb(v, start, time.Now())
	}
	return what
}

// isolateLeader cuts the leader off from every other replica, both ways;
// its clients still reach it.
func (n *nemesis) isolateLeader(rng *rand.Rand) string {
	leader := n.pc.leaderNow()
	if leader == nil {
		return "isolate leader (no leader)"
	}
	return n.cut(rng, "isolate leader", func() error { return n.pc.net.Isolate(leader.host) }, leader)
}

// cutOneWay drops what one replica sends another, the leader one side of
// it half the time.
func (n *nemesis) cutOneWay(rng *rand.Rand) string {
	from, to := n.anyProc(rng), n.anyProc(rng)
	for to == from {
		to = n.anyProc(rng)
	}
	if leader := n.pc.leaderNow(); leader != nil && rng.IntN(2) == 0 {
		if rng.IntN(2) == 0 {
			from = leader
		} else {
			to = leader
		}
		if from == to {
			return "one-way cut (none)"
		}
	}
	return n.cut(rng, "one-way cut", func() error { return n.pc.net.Cut(from.host, to.host) }, from, to)
}

// splitMinority cuts a random minority off from the rest, both ways.
func (n *nemesis) splitMinority(rng *rand.Rand) string {
	order := rng.Perm(len(n.pc.procs))
	minority, majority := order[:(len(order)-1)/2], order[(len(order)-1)/2:]
	var victims []*replicaProc
	for _, i := range minority {
		victims = append(victims, n.pc.procs[i])
	}
	return n.cut(rng, "minority split", func() error {
		for _, a := range minority {
			for _, b := range majority {
				if err := n.pc.net.Cut(n.pc.procs[a].host, n.pc.procs[b].host); err != nil {
					return err
				}
				if err := n.pc.net.Cut(n.pc.procs[b].host, n.pc.procs[a].host); err != nil {
					return err
				}
			}
		}
		return nil
	}, victims...)
}

// removeAndAddBack takes a follower out of the configuration, keeps it
// running, and adds it back: a membership change while the load runs.
func (n *nemesis) removeAndAddBack(rng *rand.Rand) string {
	leader := n.pc.leaderNow()
	if leader == nil {
		return "remove and add back (no leader)"
	}
	victim := n.anyProc(rng)
	for victim == leader {
		victim = n.anyProc(rng)
	}
	ask := func(op string, q url.Values) bool {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		code, body, err := n.pc.do(ctx, http.MethodPost, leader, op, q, "")
		n.t.Logf("%s replica %s through replica %s: %d %v %s", op, victim.spec.ID, leader.spec.ID, code, err, body)
		return err == nil && code == http.StatusOK
	}
	start := time.Now()
	defer func() { n.disturb(victim, start, time.Now()) }()
	if !ask("remove", url.Values{"id": {victim.spec.ID}}) {
		return "remove (refused)"
	}
	time.Sleep(length(rng, time.Second, 3*time.Second))
	// Added back until it is in: the leader may have changed meanwhile.
	n.pc.poll(60*time.Second, "replica "+victim.spec.ID+" added back", func() bool {
		if l := n.pc.leaderNow(); l != nil {
			leader = l
		}
		return ask("add", url.Values{"id": {victim.spec.ID}, "addr": {victim.spec.Bind}})
	})
	return "remove and add back"
}
