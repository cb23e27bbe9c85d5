package zoo_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/zooraft/zoo/internal/lincheck"
)

// Linearizable registers through three replica processes over real TCP and
// bbolt while a nemesis pauses (SIGSTOP/SIGCONT) and kills (SIGKILL, then a
// restart) one replica at a time, leader or follower, or transfers
// leadership: every read (after a sync) and every write (plain or
// compare-and-set) through any replica is checked with porcupine. The seed
// is printed; ZOO_NEMESIS_SEED replays one.
func TestProcessesLinearizableUnderPausesAndKills(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns replica processes; skipped with -short")
	}
	pc := newProcessCluster(t, 3, 300*time.Millisecond)
	n := &nemesis{t: t, pc: pc}
	runLinearizable(t, pc, n, func(rng *rand.Rand) string {
		switch rng.IntN(3) {
		case 0:
			return n.pause(rng, n.anyProc(rng), 500*time.Millisecond, 3*time.Second)
		case 1:
			return n.killRestart(rng, n.anyProc(rng))
		}
		return n.transfer()
	})
}

// The same registers through five replica processes, each in a network
// namespace of its own (internal/netns), under a nemesis that also cuts the
// network at the IP level (the leader isolated, one direction between two
// replicas, a minority split off), changes the membership (a replica
// removed, then added back), and pauses a replica for longer than its
// sessions' timeout.
func TestProcessesLinearizableUnderPartitionsAndMembershipChanges(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns replica processes; skipped with -short")
	}
	pc := newNetnsProcessCluster(t, 5, 300*time.Millisecond)
	n := &nemesis{t: t, pc: pc}
	runLinearizable(t, pc, n, func(rng *rand.Rand) string {
		switch rng.IntN(9) {
		case 0:
			return n.pause(rng, n.anyProc(rng), 500*time.Millisecond, 3*time.Second)
		case 1:
			// Longer than the sessions' timeout (20 ticks): the replica's
			// sessions expire while it cannot tell.
			return n.pause(rng, n.anyProc(rng), 7*time.Second, 8*time.Second)
		case 2:
			return n.killRestart(rng, n.anyProc(rng))
		case 3:
			return n.transfer()
		case 4, 5:
			return n.isolateLeader(rng)
		case 6:
			return n.cutOneWay(rng)
		case 7:
			return n.splitMinority(rng)
		}
		return n.removeAndAddBack(rng)
	})
}

// runLinearizable runs the register and znode load, the recipe load of
// process_recipes_test.go and the session load of process_sessions_test.go
// and the watch load of process_watches_test.go on every replica of pc
// while fault
// (one fault at a time, returning what it did) runs for 20 s, or
// ZOO_NEMESIS_DURATION; heals, waits for a leader, and checks the register
// history, the recipes' guarded writes, the sessions' rules and the
// watches' events.
func runLinearizable(t *testing.T, pc *processCluster, n *nemesis, fault func(*rand.Rand) string) {
	const (
		keys      = 10 // registers: porcupine checks each apart
		perProc   = 2
		opTimeout = 3 * time.Second
	)
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("ZOO_NEMESIS_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	faultFor := 20 * time.Second // a soak sets ZOO_NEMESIS_DURATION (docs/soak.md)
	if d, err := time.ParseDuration(os.Getenv("ZOO_NEMESIS_DURATION")); err == nil && d > 0 {
		faultFor = d
	}
	t.Logf("nemesis seed %d (ZOO_NEMESIS_SEED=%d replays it)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 1))

	for _, p := range pc.procs {
		pc.start(p)
	}
	pc.waitLeader(pc.procs, 60*time.Second)
	createHoldDirs(pc)
	for _, path := range append([]string{"/lin", "/zn", "/eph"}, regPaths(keys)...) {
		pc.poll(60*time.Second, path+" created", func() bool {
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			code, _, err := pc.do(ctx, http.MethodPost, pc.procs[0], "create", url.Values{"path": {path}}, "")
			return err == nil && (code == http.StatusOK || code == http.StatusConflict)
		})
	}

	h := lincheck.NewHistory()
	loadCtx, stopLoad := context.WithCancel(context.Background())
	var clients sync.WaitGroup
	for i, p := range pc.procs {
		for j := range perProc {
			id := i*perProc + j
			crng := rand.New(rand.NewPCG(seed, uint64(id)+2))
			clients.Add(1)
			go func() {
				defer clients.Done()
				for n := 0; loadCtx.Err() == nil; n++ {
					value := fmt.Sprintf("c%d-%d", id, n)
					if crng.IntN(2) == 0 {
						regOp(pc, p, h, id, crng, value, keys, opTimeout)
					} else {
						znodeOp(pc, p, h, id, crng, value, keys, opTimeout)
					}
					time.Sleep(5 * time.Millisecond) // a history porcupine can check in time
				}
			}()
		}
	}

	holds := map[string]int{}
	var holdsMu sync.Mutex
	runHolders(loadCtx, pc, seed, &clients, holds, &holdsMu)
	sessions := &sessionLoad{pc: pc}
	sessions.run(loadCtx, seed, &clients)
	runWatchers(loadCtx, pc, &clients)

	faults := map[string]int{}
	total := 0
	for end := time.Now().Add(faultFor); time.Now().Before(end); total++ {
		faults[fault(rng)]++
		time.Sleep(time.Duration(200+rng.IntN(800)) * time.Millisecond) // a healthy stretch between faults
	}
	if pc.net != nil {
		if err := pc.net.Heal(); err != nil {
			t.Fatal(err)
		}
	}
	pc.waitLeader(pc.procs, 60*time.Second)
	quiet := time.Now()     // no leader change from here on
	time.Sleep(time.Second) // load on a healed ensemble
	stopLoad()
	clients.Wait()

	reads, writes, unknown := h.Counts()
	t.Logf("history: %d synced reads, %d writes with a known outcome, %d unknown, under %d faults %v",
		reads, writes, unknown, total, faults)
	if reads < 50 || writes < 50 {
		t.Fatalf("too little load to check: %d reads, %d writes", reads, writes)
	}
	if err := h.Check(2 * time.Minute); err != nil {
		t.Fatalf("seed %d: %v", seed, err)
	}
	checkHoldLogs(t, pc, holds)
	sessions.check(t, n, quiet)
	checkWatches(t, pc)
	if t.Failed() {
		t.Logf("seed %d", seed)
	}
}

func regPaths(keys int) []string {
	var out []string
	for k := range keys {
		out = append(out, fmt.Sprintf("/lin/k%d", k))
	}
	return out
}

// regOp runs one random register operation through replica p and records it.
func regOp(pc *processCluster, p *replicaProc, h *lincheck.History, client int, rng *rand.Rand, value string, keys int, timeout time.Duration) {
	key := rng.IntN(keys)
	path := fmt.Sprintf("/lin/k%d", key)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if !p.alive.Load() {
		time.Sleep(50 * time.Millisecond) // killed: give the nemesis time to restart it
		return
	}
	switch op := rng.IntN(3); op {
	case 0:
		call := h.Now()
		code, body, err := pc.do(ctx, http.MethodGet, p, "znode", url.Values{"path": {path}}, "")
		var st regState
		if err != nil || code != http.StatusOK || json.Unmarshal([]byte(body), &st) != nil {
			return // a failed read changed nothing
		}
		h.Add(client, lincheck.Input{Key: key, Op: lincheck.Read}, call, lincheck.Output{Value: st.Data, Version: st.Version})
	default:
		in := lincheck.Input{Key: key, Op: lincheck.Write, Value: value}
		version := int32(-1)
		if op == 2 {
			in.Op, in.Version = lincheck.CAS, int32(rng.IntN(4))
			version = in.Version
		}
		call := h.Now()
		code, body, err := pc.do(ctx, http.MethodPost, p, "znode",
			url.Values{"op": {"set"}, "path": {path}, "version": {strconv.Itoa(int(version))}}, value)
		var st regState
		switch {
		case err == nil && code == http.StatusOK && json.Unmarshal([]byte(body), &st) == nil:
			h.Add(client, in, call, lincheck.Output{OK: true, Version: st.Version})
		case err == nil && code == http.StatusPreconditionFailed:
			h.Add(client, in, call, lincheck.Output{OK: false})
		default:
			h.Add(client, in, call, lincheck.Output{Unknown: true})
		}
	}
}

// znodeOp runs one random operation on a znode that starts absent (created,
// set, compare-and-set, deleted, read after a sync) through replica p and
// records it.
func znodeOp(pc *processCluster, p *replicaProc, h *lincheck.History, client int, rng *rand.Rand, value string, keys int, timeout time.Duration) {
	key := rng.IntN(keys)
	path := fmt.Sprintf("/zn/k%d", key)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if !p.alive.Load() {
		time.Sleep(50 * time.Millisecond)
		return
	}
	in := lincheck.Input{Key: 1000 + key, Fresh: true, Value: value, Version: -1}
	var op string
	switch r := rng.IntN(10); {
	case r < 3:
		call := h.Now()
		code, body, err := pc.do(ctx, http.MethodGet, p, "znode", url.Values{"path": {path}}, "")
		var st regState
		switch {
		case err == nil && code == http.StatusNotFound:
			h.Add(client, lincheck.Input{Key: in.Key, Fresh: true, Op: lincheck.Read}, call, lincheck.Output{Absent: true})
		case err == nil && code == http.StatusOK && json.Unmarshal([]byte(body), &st) == nil:
			h.Add(client, lincheck.Input{Key: in.Key, Fresh: true, Op: lincheck.Read}, call, lincheck.Output{Value: st.Data, Version: st.Version})
		}
		return
	case r < 5:
		in.Op, op = lincheck.Create, "create"
	case r < 6:
		in.Op, op = lincheck.Write, "set"
	case r < 8:
		in.Op, op, in.Version = lincheck.CAS, "set", int32(rng.IntN(3))
	case r < 9:
		in.Op, op, in.Value = lincheck.Delete, "delete", ""
	default:
		in.Op, op, in.Value, in.Version = lincheck.Delete, "delete", "", int32(rng.IntN(3))
	}
	call := h.Now()
	code, body, err := pc.do(ctx, http.MethodPost, p, "znode",
		url.Values{"op": {op}, "path": {path}, "version": {strconv.Itoa(int(in.Version))}}, in.Value)
	var st regState
	out := lincheck.Output{Unknown: true}
	switch {
	case err != nil:
	case code == http.StatusOK && json.Unmarshal([]byte(body), &st) == nil:
		out = lincheck.Output{OK: true, Version: st.Version}
	case code == http.StatusNotFound:
		out = lincheck.Output{Err: lincheck.ErrNoNode}
	case code == http.StatusConflict:
		out = lincheck.Output{Err: lincheck.ErrNodeExists}
	case code == http.StatusPreconditionFailed:
		out = lincheck.Output{Err: lincheck.ErrBadVersion}
	}
	h.Add(client, in, call, out)
}

// leaderNow is the replica that says it leads, or nil.
func (pc *processCluster) leaderNow() *replicaProc {
	for _, p := range pc.procs {
		if st, ok := pc.status(p); ok && st.Role == "leader" {
			return p
		}
	}
	return nil
}
