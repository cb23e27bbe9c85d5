package zoo

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"strconv"
	"testing"

	"github.com/hashicorp/raft"
)

// Tree micro benchmarks: the znode store alone, no raft, no locks.

const treeBenchDataSize = 100

// benchPaths returns n paths spread over parents of fanout children each:
// /p000000/c000000, /p000000/c000001, ...
func benchPaths(n, fanout int) (parents, paths []string) {
	for i := 0; i < n; i++ {
		if i%fanout == 0 {
			parents = append(parents, fmt.Sprintf("/p%06d", i/fanout))
		}
		paths = append(paths, fmt.Sprintf("%s/c%06d", parents[len(parents)-1], i%fanout))
	}
	return parents, paths
}

// buildTree creates parents and paths, each node with its own 100-byte data
// slice (as the FSM's decoder gives every command its own copy).
func buildTree(tb testing.TB, parents, paths []string) *tree {
	tb.Helper()
	t := newTree()
	x := &txnCtx{time: 1}
	create := func(p string, data []byte) {
		x.zxid++
		x.changes = x.changes[:0]
		if _, err := t.create(x, createReq{path: p, data: data, acl: OpenACL, mode: ModePersistent}); err != nil {
			tb.Fatal(err)
		}
	}
	for _, p := range parents {
		create(p, nil)
	}
	for _, p := range paths {
		create(p, make([]byte, treeBenchDataSize))
	}
	return t
}

func BenchmarkTreeCreate(b *testing.B) {
	t := newTree()
	x := &txnCtx{zxid: 1, time: 1}
	if _, err := t.create(x, createReq{path: "/b", acl: OpenACL}); err != nil {
		b.Fatal(err)
	}
	data := make([]byte, treeBenchDataSize)
	buf := []byte("/b/")
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		x.zxid++
		x.changes = x.changes[:0]
		p := string(strconv.AppendInt(buf, int64(i), 10))
		if _, err := t.create(x, createReq{path: p, data: data, acl: OpenACL, mode: ModePersistent}); err != nil {
			b.Fatal(err)
		}
	}
}

// benchTreeSize is the node count of the read and setData benchmarks' tree.
const benchTreeSize = 100_000

func BenchmarkTreeGet(b *testing.B) {
	parents, paths := benchPaths(benchTreeSize, 100)
	t := buildTree(b, parents, paths)
	r := rand.New(rand.NewPCG(1, 2))
	order := make([]int, 1<<16)
	for i := range order {
		order[i] = r.IntN(len(paths))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if t.get(paths[order[i&(len(order)-1)]]) == nil {
			b.Fatal("missing node")
		}
	}
}

func BenchmarkTreeChildren(b *testing.B) {
	for _, fanout := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("children=%d", fanout), func(b *testing.B) {
			// Enough parents that the listed one has neighbours in the B-tree.
			parents, paths := benchPaths(max(benchTreeSize/10, 10*fanout), fanout)
			t := buildTree(b, parents, paths)
			target := parents[len(parents)/2]
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if n := len(t.children(target)); n != fanout {
					b.Fatalf("%d children, want %d", n, fanout)
				}
			}
		})
	}
}

func BenchmarkTreeSetData(b *testing.B) {
	parents, paths := benchPaths(benchTreeSize, 100)
	t := buildTree(b, parents, paths)
	x := &txnCtx{zxid: 1 << 20, time: 2}
	data := make([]byte, treeBenchDataSize)
	r := rand.New(rand.NewPCG(1, 2))
	order := make([]int, 1<<16)
	for i := range order {
		order[i] = r.IntN(len(paths))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		x.zxid++
		x.changes = x.changes[:0]
		if _, err := t.setData(x, paths[order[i&(len(order)-1)]], data, -1); err != nil {
			b.Fatal(err)
		}
	}
}

// heapAfterGC returns the live heap after a full collection.
func heapAfterGC() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

const memBenchNodes = 1_000_000

// build1MTree builds a tree of memBenchNodes znodes with 100 bytes of data
// each (1000 parents of 1000 children; paths like /p000123/c000456) and
// returns it with its last zxid.
func build1MTree(b *testing.B) (*tree, int64) {
	t := newTree()
	x := &txnCtx{time: 1}
	for p := 0; p < memBenchNodes/1000; p++ {
		parent := fmt.Sprintf("/p%06d", p)
		for c := -1; c < 1000; c++ {
			path, data := parent, []byte(nil)
			if c >= 0 {
				path, data = fmt.Sprintf("%s/c%06d", parent, c), make([]byte, treeBenchDataSize)
			}
			x.zxid++
			x.changes = x.changes[:0]
			if _, err := t.create(x, createReq{path: path, data: data, acl: OpenACL, mode: ModePersistent}); err != nil {
				b.Fatal(err)
			}
		}
	}
	return t, x.zxid
}

// BenchmarkTreeMemory1M builds the 1M-znode tree (build1MTree) and reports
// the live heap per znode: node, path, data, ACL and B-tree overhead. Run it with
// -benchtime=1x: each iteration builds a whole tree.
func BenchmarkTreeMemory1M(b *testing.B) {
	for i := 0; i < b.N; i++ {
		before := heapAfterGC()
		t, _ := build1MTree(b)
		after := heapAfterGC()
		if got := t.nodes.Len(); got < memBenchNodes {
			b.Fatalf("tree has %d nodes", got)
		}
		b.ReportMetric(float64(after-before)/memBenchNodes, "bytes/znode")
		runtime.KeepAlive(t)
	}
}

// BenchmarkFSMMemory1M is BenchmarkTreeMemory1M through the FSM: encoded
// create commands applied in batches of 256, as raft delivers them (the
// command buffers are garbage afterwards, as raft's are once applied).
func BenchmarkFSMMemory1M(b *testing.B) {
	data := make([]byte, treeBenchDataSize)
	for i := 0; i < b.N; i++ {
		before := heapAfterGC()
		f := newFSM(newWatchRegistry(), slog.New(slog.DiscardHandler))
		index := uint64(0)
		batch := make([]*raft.Log, 0, 256)
		flush := func() {
			for j, res := range f.ApplyBatch(batch) {
				if r := res.(*applyResult); r.err != nil || r.results[0].Err != nil {
					b.Fatalf("entry %d: %v %v", batch[j].Index, r.err, r.results[0].Err)
				}
			}
			batch = batch[:0]
		}
		add := func(path string, data []byte) {
			index++
			cmd := encodeCommand(&command{op: opCreate, time: 1, ops: []Op{CreateOp{Path: path, Data: data}}})
			batch = append(batch, &raft.Log{Index: index, Type: raft.LogCommand, Data: cmd})
			if len(batch) == cap(batch) {
				flush()
			}
		}
		for p := 0; p < memBenchNodes/1000; p++ {
			parent := fmt.Sprintf("/p%06d", p)
			add(parent, nil)
			for c := 0; c < 1000; c++ {
				add(fmt.Sprintf("%s/c%06d", parent, c), data)
			}
		}
		flush()
		after := heapAfterGC()
		b.ReportMetric(float64(after-before)/memBenchNodes, "bytes/znode")
		runtime.KeepAlive(f)
	}
}

// BenchmarkRestore1M times what a restart spends on the tree: a snapshot of
// 1M znodes (as BenchmarkTreeMemory1M builds them) read, checked, decoded
// and installed by the FSM. Run it with -benchtime=1x.
func BenchmarkRestore1M(b *testing.B) {
	t, zxid := build1MTree(b)
	var buf bytes.Buffer
	if err := (&fsmSnapshot{nodes: t.nodes.Clone(), applied: uint64(zxid)}).writeTo(&buf); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	b.ReportMetric(float64(buf.Len())/(1<<20), "snapshot-MiB")
	for i := 0; i < b.N; i++ {
		f := newFSM(newWatchRegistry(), slog.New(slog.DiscardHandler))
		if err := f.Restore(io.NopCloser(bytes.NewReader(buf.Bytes()))); err != nil {
			b.Fatal(err)
		}
		if got := f.tree.nodes.Len(); got < memBenchNodes {
			b.Fatalf("restored %d nodes", got)
		}
	}
}
