package zoo_test

import (
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	wal "github.com/hashicorp/raft-wal"
)

// BenchmarkBareRaft is the floor zoo's writes are measured against (issue
// 11's embedded target): three hashicorp/raft nodes in this process with
// the stores a zoo replica uses (raft-wal for the log, raft-boltdb for the
// stable store, both syncing), raft's TCP transport on loopback, the same
// MaxAppendEntries and batching, and an FSM that does nothing. 256 callers
// on the leader each Apply a 100-byte command and wait for it, as
// BenchmarkSet's 256 sessions each wait for their write. Compare its ops/s
// with BenchmarkSet/callers=256, alternating:
//
//	go test -run '^$' -bench '^BenchmarkBareRaft$' -benchtime=3s .
//	go test -run '^$' -bench '^BenchmarkSet$/^callers=256$' -benchtime=3s .
func BenchmarkBareRaft(b *testing.B) {
	addrs := freeLoopbackAddrs(b, 3)
	var servers []raft.Server
	for i, a := range addrs {
		servers = append(servers, raft.Server{ID: raft.ServerID(string(rune('1' + i))), Address: raft.ServerAddress(a)})
	}
	base := b.TempDir()
	var nodes []*raft.Raft
	b.Cleanup(func() {
		for _, r := range nodes {
			r.Shutdown().Error()
		}
	})
	for i, s := range servers {
		dir := filepath.Join(base, string(s.ID))
		if err := os.MkdirAll(filepath.Join(dir, "wal"), 0o755); err != nil {
			b.Fatal(err)
		}
		logs, err := wal.Open(filepath.Join(dir, "wal"))
		if err != nil {
			b.Fatal(err)
		}
		stable, err := raftboltdb.NewBoltStore(filepath.Join(dir, "raft.db"))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { logs.Close(); stable.Close() })
		snaps, err := raft.NewFileSnapshotStore(dir, 2, io.Discard)
		if err != nil {
			b.Fatal(err)
		}
		trans, err := raft.NewTCPTransport(addrs[i], nil, 3, 10*time.Second, io.Discard)
		if err != nil {
			b.Fatal(err)
		}
		rc := raft.DefaultConfig()
		rc.LocalID = s.ID
		rc.LogOutput = io.Discard
		rc.HeartbeatTimeout, rc.ElectionTimeout, rc.LeaderLeaseTimeout = benchTick/2, benchTick/2, benchTick/2
		rc.MaxAppendEntries, rc.BatchApplyCh = 256, true
		cached, err := raft.NewLogCache(512, logs)
		if err != nil {
			b.Fatal(err)
		}
		if err := raft.BootstrapCluster(rc, cached, stable, snaps, trans, raft.Configuration{Servers: servers}); err != nil {
			b.Fatal(err)
		}
		r, err := raft.NewRaft(rc, noopFSM{}, cached, stable, snaps, trans)
		if err != nil {
			b.Fatal(err)
		}
		nodes = append(nodes, r)
	}
	var leader *raft.Raft
	deadline := time.Now().Add(30 * time.Second)
	for leader == nil {
		if time.Now().After(deadline) {
			b.Fatal("no leader within 30s")
		}
		for _, r := range nodes {
			if r.State() == raft.Leader {
				leader = r
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	data := benchData()
	const callers = 256
	var next atomic.Int64
	lat := make([][]time.Duration, callers)
	var wg sync.WaitGroup
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for c := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				t0 := time.Now()
				if err := leader.Apply(data, 10*time.Second).Error(); err != nil {
					b.Error(err)
					return
				}
				lat[c] = append(lat[c], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	reportCalls(b, lat, elapsed)
}

// noopFSM applies nothing and snapshots nothing.
type noopFSM struct{}

func (noopFSM) Apply(*raft.Log) any                 { return nil }
func (noopFSM) Snapshot() (raft.FSMSnapshot, error) { return noopSnapshot{}, nil }
func (noopFSM) Restore(rc io.ReadCloser) error      { return rc.Close() }

type noopSnapshot struct{}

func (noopSnapshot) Persist(sink raft.SnapshotSink) error { return sink.Close() }
func (noopSnapshot) Release()                             {}
