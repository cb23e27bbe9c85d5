package zkwire

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zooraft/zoo/internal/lincheck"
)

// TestWireLinearizableUnderFaults is the library's linearizability test
// through the wire: go-zookeeper clients, each on one connection that fails
// over between the three servers, set, compare-and-set and sync-then-get
// three znodes while replicas are cut off and healed (their servers drop
// their clients while out of quorum, and pipelined writes in flight are
// lost). porcupine then checks the history.
func TestWireLinearizableUnderFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("runs faults for several seconds")
	}
	const keys, clients = 3, 6
	c := newCluster(t, Config{})
	setup, _ := connectZK(t, c.addrs, 10*time.Second)
	for k := range keys {
		if _, err := setup.Create(fmt.Sprintf("/reg%d", k), []byte{}, 0, zk.WorldACL(zk.PermAll)); err != nil {
			t.Fatal(err)
		}
	}

	h := lincheck.NewHistory()
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var conns []*zk.Conn
	for id := range clients {
		// Each client starts on its own server; go-zookeeper moves on when
		// that one drops it.
		addrs := append(append([]string(nil), c.addrs[id%3:]...), c.addrs[:id%3]...)
		conn, _ := connectZK(t, addrs, 4*time.Second)
		conns = append(conns, conn)
		wg.Add(1)
		go func() {
			defer wg.Done()
			runWireClient(ctx, conn, id, keys, h)
		}()
	}

	rng := rand.New(rand.NewPCG(3, 4))
	deadline := time.Now().Add(8 * time.Second)
	for time.Now().Before(deadline) {
		time.Sleep(400 * time.Millisecond)
		if l := c.Leader(); l >= 0 && rng.IntN(2) == 0 {
			c.Isolate(l) // the others elect a new leader
		} else {
			c.Isolate(rng.IntN(3))
		}
		time.Sleep(time.Duration(300+rng.IntN(700)) * time.Millisecond)
		c.Heal()
	}
	c.Heal()
	stop()
	for _, conn := range conns {
		conn.Close() // ends calls still waiting for a server
	}
	wg.Wait()

	reads, writes, unknown := h.Counts()
	t.Logf("history: %d synced reads, %d writes with a known outcome, %d unknown", reads, writes, unknown)
	if reads < 50 || writes < 50 {
		t.Fatalf("too few operations completed to check anything (%d reads, %d writes)", reads, writes)
	}
	if err := h.Check(2 * time.Minute); err != nil {
		t.Fatal(err)
	}
}

// runWireClient issues random operations on conn until ctx ends.
func runWireClient(ctx context.Context, conn *zk.Conn, id, keys int, h *lincheck.History) {
	rng := rand.New(rand.NewPCG(uint64(id), 11))
	for n := 0; ctx.Err() == nil; n++ {
		key := rng.IntN(keys)
		path := fmt.Sprintf("/reg%d", key)
		in := lincheck.Input{Key: key, Op: lincheck.Op(rng.IntN(3))}
		call := h.Now()
		switch in.Op {
		case lincheck.Read:
			if _, err := conn.Sync(path); err != nil {
				continue // a failed read changed nothing
			}
			data, st, err := conn.Get(path)
			if err != nil {
				continue
			}
			h.Add(id, in, call, lincheck.Output{Value: string(data), Version: st.Version})
		case lincheck.Write, lincheck.CAS:
			in.Value = fmt.Sprintf("c%d-%d", id, n)
			in.Version = -1
			if in.Op == lincheck.CAS {
				// A plain read picks the version to expect; it may be stale,
				// which only makes the CAS fail.
				_, st, err := conn.Get(path)
				if err != nil {
					continue // nothing was sent
				}
				in.Version = st.Version
				call = h.Now()
			}
			st, err := conn.Set(path, []byte(in.Value), in.Version)
			var out lincheck.Output
			switch {
			case err == nil:
				out = lincheck.Output{OK: true, Version: st.Version}
			case in.Op == lincheck.CAS && errors.Is(err, zk.ErrBadVersion):
				out = lincheck.Output{OK: false}
			default:
				out = lincheck.Output{Unknown: true}
			}
			h.Add(id, in, call, out)
		}
	}
}
