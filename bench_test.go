package zoo_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zooraft/zoo"
)

// Ensemble benchmarks: three replicas in this process, talking over real TCP
// on loopback, each with a data dir on disk (fsync on).
//
// Every caller is a goroutine with its own Session. Sessions are spread over
// the replicas in the order follower, leader, other follower, so with one
// caller every write is forwarded from a follower to the leader, and with
// many callers a third of them run on the leader. The "callers=1-leader"
// sub-benchmarks put the single session on the leader.
//
// Each sub-benchmark reports ops/s (all callers together) and the p50 and p99
// latency of one call in microseconds. B/op and allocs/op count every
// allocation in the process (all three replicas and raft), per call.
//
// ZOO_BENCH_LOG_STORE=bolt keeps the logs in raft.db instead of the WAL.
//
// Run:
//
//	go test -run '^$' -bench '^Benchmark(Create|Set|Get)$' -benchtime=1s -count=3 .
//	go test -run '^$' -bench '^BenchmarkTree(Create|Get|Children|SetData)$' -count=3 .
//	go test -run '^$' -bench 'Memory1M$' -benchtime=1x -count=3 .

const (
	benchTick     = 500 * time.Millisecond
	benchDataSize = 100
)

// benchEnsemble is a running 3-replica ensemble with a pool of sessions.
type benchEnsemble struct {
	replicas []*zoo.Ensemble
	order    []int // replica indexes: follower, leader, follower

	mu       sync.Mutex // guards sessions, onLeader
	sessions []*zoo.Session
	onLeader *zoo.Session
}

func newBenchEnsemble(b *testing.B) *benchEnsemble {
	b.Helper()
	addrs := freeLoopbackAddrs(b, 3)
	var peers []zoo.Peer
	for i, a := range addrs {
		peers = append(peers, zoo.Peer{ID: strconv.Itoa(i + 1), Addr: a})
	}
	base := b.TempDir()
	be := &benchEnsemble{}
	b.Cleanup(func() {
		for _, e := range be.replicas {
			e.Close()
		}
	})
	for _, p := range peers {
		e, err := zoo.Open(zoo.Config{ID: p.ID, Dir: filepath.Join(base, p.ID), BindAddr: p.Addr,
			Peers: peers, TickTime: benchTick, LogStore: zoo.LogStore(os.Getenv("ZOO_BENCH_LOG_STORE"))})
		if err != nil {
			b.Fatal(err)
		}
		if e.Addr() != p.Addr {
			b.Fatalf("replica %s advertises %s, want %s", p.ID, e.Addr(), p.Addr)
		}
		be.replicas = append(be.replicas, e)
	}
	leader := -1
	deadline := time.Now().Add(30 * time.Second)
	for leader < 0 {
		if time.Now().After(deadline) {
			b.Fatal("no leader within 30s")
		}
		for i, e := range be.replicas {
			if st, err := e.Status(); err == nil && st.Role == zoo.RoleLeader {
				leader = i
			}
		}
		time.Sleep(10 * time.Millisecond) // polling for the election, not waiting a fixed time
	}
	for i := range be.replicas {
		if i != leader {
			be.order = append(be.order, i)
		}
	}
	be.order = []int{be.order[0], leader, be.order[1]}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, e := range be.replicas {
		if err := e.WaitServing(ctx); err != nil {
			b.Fatal(err)
		}
	}
	return be
}

// sessionsFor returns n sessions (the first n of the pool, created as needed)
// for a sub-benchmark; leaderOnly returns one session on the leader instead.
func (be *benchEnsemble) sessionsFor(b *testing.B, n int, leaderOnly bool) []*zoo.Session {
	b.Helper()
	be.mu.Lock()
	defer be.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if leaderOnly {
		if be.onLeader == nil {
			s, err := be.replicas[be.order[1]].NewSession(ctx)
			if err != nil {
				b.Fatal(err)
			}
			be.onLeader = s
		}
		return []*zoo.Session{be.onLeader}
	}
	have := len(be.sessions)
	if have < n {
		more := make([]*zoo.Session, n-have)
		errs := make([]error, n-have)
		var wg sync.WaitGroup
		for i := range more {
			wg.Add(1)
			go func() {
				defer wg.Done()
				e := be.replicas[be.order[(have+i)%len(be.order)]]
				more[i], errs[i] = e.NewSession(ctx)
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				b.Fatal(err)
			}
		}
		be.sessions = append(be.sessions, more...)
	}
	return be.sessions[:n]
}

// benchCallers are the sub-benchmarks every ensemble benchmark runs.
var benchCallers = []struct {
	name       string
	callers    int
	leaderOnly bool
}{
	{"callers=1", 1, false},
	{"callers=1-leader", 1, true},
	{"callers=16", 16, false},
	{"callers=256", 256, false},
}

// runCallers runs b.N calls of op spread over one goroutine per session, and
// reports throughput and latency. op gets its caller's index and a per-caller
// sequence number.
//
// A call that fails with ErrNotServing (this replica knows no leader for a
// moment) is retried after a millisecond, as a client would, and counted in
// the "not-serving-retries" metric. Spinning readers on two cores can starve
// the goroutines that read raft's heartbeats off the network long enough for
// a follower to time out its leader: the
// latency and throughput then include the stall instead of failing the run.
func runCallers(b *testing.B, sessions []*zoo.Session, op func(ctx context.Context, s *zoo.Session, caller, seq int) error) {
	ctx := context.Background()
	var next, retries atomic.Int64
	lat := make([][]time.Duration, len(sessions))
	var wg sync.WaitGroup
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for c, s := range sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := 0; next.Add(1) <= int64(b.N); seq++ {
				t0 := time.Now()
				for {
					err := op(ctx, s, c, seq)
					if err == nil {
						break
					}
					if !errors.Is(err, zoo.ErrNotServing) || time.Since(t0) > 30*time.Second {
						b.Error(err)
						return
					}
					retries.Add(1)
					time.Sleep(time.Millisecond)
				}
				lat[c] = append(lat[c], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if reportCalls(b, lat, elapsed) {
		b.ReportMetric(float64(retries.Load()), "not-serving-retries")
	}
}

// reportCalls reports the throughput and the p50 and p99 latency of the
// calls whose latencies lat holds (one slice per caller), made in elapsed;
// false if there were none.
func reportCalls(b *testing.B, lat [][]time.Duration, elapsed time.Duration) bool {
	all := slices.Concat(lat...)
	slices.Sort(all)
	if len(all) == 0 {
		return false
	}
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "ops/s")
	b.ReportMetric(float64(all[len(all)/2].Nanoseconds())/1e3, "p50-us")
	b.ReportMetric(float64(all[len(all)*99/100].Nanoseconds())/1e3, "p99-us")
	return true
}

func benchData() []byte {
	d := make([]byte, benchDataSize)
	for i := range d {
		d[i] = byte('a' + i%26)
	}
	return d
}

// benchEnsure creates path (and tolerates its existence) through s.
func benchEnsure(b *testing.B, s *zoo.Session, path string, data []byte) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := s.Create(ctx, path, data, zoo.ModePersistent, nil); err != nil && !isNodeExists(err) {
		b.Fatal(err)
	}
}

func isNodeExists(err error) bool { return zoo.CodeOf(err) == zoo.CodeNodeExists }

// createPerCaller creates parent/<caller> through each caller's session, all
// at once (one by one, writes from followers would take most of the run), and
// returns the paths.
func createPerCaller(b *testing.B, sessions []*zoo.Session, parent string, data []byte) []string {
	b.Helper()
	paths := make([]string, len(sessions))
	errs := make([]error, len(sessions))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for c, s := range sessions {
		paths[c] = fmt.Sprintf("%s/%d", parent, c)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.Create(ctx, paths[c], data, zoo.ModePersistent, nil); err != nil && !isNodeExists(err) {
				errs[c] = err
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			b.Fatal(err)
		}
	}
	return paths
}

// BenchmarkCreate: persistent creates of unique paths with 100 bytes of data.
func BenchmarkCreate(b *testing.B) {
	be := newBenchEnsemble(b)
	data := benchData()
	for run, bc := range benchCallers {
		b.Run(bc.name, func(b *testing.B) {
			sessions := be.sessionsFor(b, bc.callers, bc.leaderOnly)
			parent := fmt.Sprintf("/create-%d", run)
			benchEnsure(b, sessions[0], parent, nil)
			// Each invocation (b.N ramps up) writes under a fresh prefix.
			iter := time.Now().UnixNano()
			runCallers(b, sessions, func(ctx context.Context, s *zoo.Session, caller, seq int) error {
				_, err := s.Create(ctx, fmt.Sprintf("%s/%d-%d-%d", parent, iter, caller, seq), data, zoo.ModePersistent, nil)
				return err
			})
		})
	}
}

// BenchmarkSet: setData (any version) of 100 bytes, each caller on its own node.
func BenchmarkSet(b *testing.B) {
	be := newBenchEnsemble(b)
	data := benchData()
	for run, bc := range benchCallers {
		b.Run(bc.name, func(b *testing.B) {
			sessions := be.sessionsFor(b, bc.callers, bc.leaderOnly)
			parent := fmt.Sprintf("/set-%d", run)
			benchEnsure(b, sessions[0], parent, nil)
			paths := createPerCaller(b, sessions, parent, data)
			runCallers(b, sessions, func(ctx context.Context, s *zoo.Session, caller, _ int) error {
				_, err := s.Set(ctx, paths[caller], data, -1)
				return err
			})
		})
	}
}

// BenchmarkGet: local reads of a 100-byte node, each caller its own node.
func BenchmarkGet(b *testing.B) {
	be := newBenchEnsemble(b)
	data := benchData()
	for run, bc := range benchCallers {
		b.Run(bc.name, func(b *testing.B) {
			sessions := be.sessionsFor(b, bc.callers, bc.leaderOnly)
			parent := fmt.Sprintf("/get-%d", run)
			benchEnsure(b, sessions[0], parent, nil)
			paths := createPerCaller(b, sessions, parent, data)
			// Every replica has the nodes: a session's own create was applied
			// locally before Create returned.
			runCallers(b, sessions, func(ctx context.Context, s *zoo.Session, caller, _ int) error {
				_, _, err := s.Get(ctx, paths[caller])
				return err
			})
		})
	}
}
