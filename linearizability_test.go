package zoo_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/zooraft/zoo"
	"github.com/zooraft/zoo/zootest"
)

// A register is one znode: its data and its version.
type register struct {
	value   string
	version int32
}

type regOp int

const (
	regRead  regOp = iota // Sync, then Get
	regWrite              // Set with version -1
	regCAS                // Set with an expected version
)

type regInput struct {
	key     int
	op      regOp
	value   string // written (regWrite, regCAS)
	version int32  // expected (regCAS)
}

type regOutput struct {
	value   string // read
	version int32  // read, or the version a successful write made
	ok      bool   // the write happened (false: BadVersion)
	unknown bool   // the write's outcome is unknown (any other error)
}

// registerModel is the sequential specification the history must match: a
// set (unconditional or compare-and-set on the version) bumps the version, a
// synced read sees the latest. A write whose outcome is unknown may or may
// not have happened, at any time after it was called.
var registerModel = porcupine.NondeterministicModel{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[int][]porcupine.Operation{}
		for _, op := range history {
			k := op.Input.(regInput).key
			byKey[k] = append(byKey[k], op)
		}
		var out [][]porcupine.Operation
		for _, ops := range byKey {
			out = append(out, ops)
		}
		return out
	},
	Init: func() []any { return []any{register{}} },
	Step: func(state, input, output any) []any {
		s, in, out := state.(register), input.(regInput), output.(regOutput)
		next := register{in.value, s.version + 1}
		switch {
		case in.op == regRead:
			if out.value == s.value && out.version == s.version {
				return []any{s}
			}
			return nil
		case in.op == regCAS && in.version != s.version:
			if out.unknown || !out.ok {
				return []any{s} // it cannot have happened here
			}
			return nil
		case out.unknown:
			return []any{s, next}
		case out.ok && out.version == next.version:
			return []any{next}
		}
		return nil
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(regInput), output.(regOutput)
		switch in.op {
		case regRead:
			return fmt.Sprintf("k%d read -> %q v%d", in.key, out.value, out.version)
		case regWrite:
			return fmt.Sprintf("k%d set %q -> ok=%v v%d unknown=%v", in.key, in.value, out.ok, out.version, out.unknown)
		}
		return fmt.Sprintf("k%d cas(v%d) %q -> ok=%v v%d unknown=%v", in.key, in.version, in.value, out.ok, out.version, out.unknown)
	},
}

// TestLinearizableUnderFaults has clients on every replica write, compare-and-
// set and sync-then-read three znodes while replicas are cut off, healed,
// stopped and restarted, then checks with porcupine that the history is
// linearizable: every acknowledged write took effect exactly once, between
// its call and its return, and every synced read saw the latest of them.
// (Plain reads are sequentially consistent, as in ZooKeeper, not linearizable:
// they are not checked here.)
func TestLinearizableUnderFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("runs faults for several seconds")
	}
	const keys, clients = 3, 6
	c := newCluster(t, 3, zootest.Options{})
	setup := c.Session(0)
	ctx := testCtx(t)
	for k := range keys {
		mustCreate(t, ctx, setup, fmt.Sprintf("/reg%d", k), []byte{}, zoo.ModePersistent)
	}

	start := time.Now()
	now := func() int64 { return int64(time.Since(start)) }
	var mu sync.Mutex
	var history []porcupine.Operation
	record := func(op porcupine.Operation) {
		mu.Lock()
		history = append(history, op)
		mu.Unlock()
	}

	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for id := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runClient(runCtx, c, id, keys, now, record)
		}()
	}

	// Faults, from the test goroutine (zootest fails the test from here).
	rng := rand.New(rand.NewPCG(1, 2))
	deadline := time.Now().Add(8 * time.Second)
	for time.Now().Before(deadline) {
		time.Sleep(400 * time.Millisecond)
		switch rng.IntN(3) {
		case 0: // cut the leader off, let the others elect, heal
			if l := c.Leader(); l >= 0 {
				c.Isolate(l)
				time.Sleep(time.Duration(300+rng.IntN(700)) * time.Millisecond)
				c.Heal()
			}
		case 1: // cut a random replica off
			c.Isolate(rng.IntN(3))
			time.Sleep(time.Duration(200+rng.IntN(500)) * time.Millisecond)
			c.Heal()
		case 2: // crash the leader and bring it back
			if l := c.Leader(); l >= 0 {
				c.Stop(l)
				time.Sleep(time.Duration(200+rng.IntN(400)) * time.Millisecond)
				c.Restart(l)
			}
		}
	}
	c.Heal()
	stop()
	wg.Wait()

	var writes, unknown, reads int
	for _, op := range history {
		in, out := op.Input.(regInput), op.Output.(regOutput)
		switch {
		case in.op == regRead:
			reads++
		case out.unknown:
			unknown++
		default:
			writes++
		}
	}
	t.Logf("history: %d synced reads, %d writes with a known outcome, %d unknown", reads, writes, unknown)
	if reads < 50 || writes < 50 {
		t.Fatalf("too few operations completed to check anything (%d reads, %d writes)", reads, writes)
	}
	res, info := porcupine.CheckOperationsVerbose(registerModel.ToModel(), history, 2*time.Minute)
	switch res {
	case porcupine.Ok:
	case porcupine.Illegal:
		for k, part := range info.PartialLinearizations() {
			if len(part) > 0 {
				t.Logf("partition %d: longest linearizable prefix has %d operations", k, len(part[0]))
			}
		}
		t.Fatal("history is not linearizable")
	default:
		t.Fatalf("linearizability check inconclusive (%s) on %d operations", res, len(history))
	}
}

// runClient issues random operations from one session on replica id%3 until
// ctx ends, opening a new session whenever its replica ended the old one.
func runClient(ctx context.Context, c *zootest.Cluster, id, keys int, now func() int64, record func(porcupine.Operation)) {
	rng := rand.New(rand.NewPCG(uint64(id), 7))
	replica := id % c.Size()
	var s *zoo.Session
	for n := 0; ctx.Err() == nil; n++ {
		if s == nil {
			e := c.Replica(replica)
			if e == nil { // stopped: wait for its restart
				time.Sleep(20 * time.Millisecond)
				continue
			}
			sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			s, _ = e.NewSession(sctx)
			cancel()
			continue
		}
		key := rng.IntN(keys)
		path := fmt.Sprintf("/reg%d", key)
		opCtx, cancel := context.WithTimeout(ctx, 3*time.Second)
		in := regInput{key: key, op: regOp(rng.IntN(3))}
		var out regOutput
		var err error
		keep := false // whether the operation belongs in the history
		call := now()
		switch in.op {
		case regRead:
			if err = s.Sync(opCtx, path); err == nil {
				var data []byte
				var st zoo.Stat
				if data, st, err = s.Get(opCtx, path); err == nil {
					// A failed read changed nothing: only successful ones count.
					out, keep = regOutput{value: string(data), version: st.Version}, true
				}
			}
		case regWrite, regCAS:
			in.value = fmt.Sprintf("c%d-%d", id, n)
			in.version = -1
			if in.op == regCAS {
				// A local read picks the version to expect; it may be stale,
				// which only makes the CAS fail.
				var st zoo.Stat
				if _, st, err = s.Get(opCtx, path); err != nil {
					break // nothing was sent
				}
				in.version = st.Version
				call = now()
			}
			var st zoo.Stat
			st, err = s.Set(opCtx, path, []byte(in.value), in.version)
			keep = true
			switch {
			case err == nil:
				out = regOutput{ok: true, version: st.Version}
			case in.op == regCAS && errors.Is(err, zoo.ErrBadVersion):
				out = regOutput{ok: false}
			default:
				out = regOutput{unknown: true}
			}
		}
		ret := now()
		cancel()
		if keep {
			if out.unknown {
				ret = math.MaxInt64 // it may still take effect, at any later time
			}
			record(porcupine.Operation{ClientId: id, Input: in, Call: call, Output: out, Return: ret})
		}
		if errors.Is(err, zoo.ErrSessionExpired) || errors.Is(err, zoo.ErrClosed) {
			s = nil
		}
	}
}
