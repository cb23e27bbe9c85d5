package zoo

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

// The digest kept change by change (creates, sets, deletes, multis that roll
// back, session ends) is the digest of the tree summed afresh, and a
// snapshot restores it.
func TestDigestFollowsEveryChange(t *testing.T) {
	g := newCommandGen(7)
	h := newTestFSM(t)
	for step := range 3000 {
		h.applyRaw(encodeCommand(g.next()))
		if step%500 == 0 || step == 2999 {
			kept := h.f.tree.digest
			h.f.tree.recomputeDigest()
			if kept != h.f.tree.digest {
				t.Fatalf("step %d: kept digest %016x, summed afresh %016x", step, kept, h.f.tree.digest)
			}
		}
	}
	dst := newTestFSM(t)
	if err := dst.f.Restore(readCloser(snapshotBytes(t, h.f))); err != nil {
		t.Fatal(err)
	}
	if dst.f.tree.digest != h.f.tree.digest {
		t.Fatalf("restored digest %016x, want %016x", dst.f.tree.digest, h.f.tree.digest)
	}
	if h.f.tree.digest == newTree().digest {
		t.Fatal("3000 changes left the digest of an empty tree")
	}
}

// A replica whose tree differs from the leader's (here a node's data changed
// behind apply's back) stops at the first command that carries the leader's
// digest for an index it applied: it is neither applied nor skipped.
func TestDivergedTreeStopsTheReplica(t *testing.T) {
	leader, follower := newTestFSM(t), newTestFSM(t)
	for _, h := range []*testFSM{leader, follower} {
		h.mustCreate("/a", []byte("same"))
	}
	follower.replaceNode("/a", func(n *znode) { n.data = []byte("diff") })
	for _, h := range []*testFSM{leader, follower} {
		h.mustCreate("/after", nil) // both record their digest after this entry
	}

	at, digest := leader.f.digestNow()
	b := encodeCommand(&command{op: opCreate, time: timeAt(3), ops: []Op{CreateOp{Path: "/b"}}})
	stampLeader(b, time.UnixMilli(timeAt(3)), at, digest)
	if r := leader.applyRaw(b); r.err != nil {
		t.Fatalf("the leader's own check: %v", r.err)
	}
	r := follower.applyRaw(b)
	var ce *CorruptionError
	if !errors.As(r.err, &ce) || !errors.Is(r.err, ErrDiverged) || ce.Index != at {
		t.Fatalf("diverged follower: %v, want a CorruptionError for the tree after entry %d", r.err, at)
	}
	if follower.exists("/b") {
		t.Fatal("the diverged follower applied the command")
	}
	// A digest for an index it no longer remembers is not checked.
	far := encodeCommand(&command{op: opCreate, ops: []Op{CreateOp{Path: "/c"}}})
	stampLeader(far, time.UnixMilli(timeAt(3)), at+digestHistorySize*2, 1)
	if r := leader.applyRaw(far); r.err != nil {
		t.Fatalf("a digest at an index not remembered: %v", r.err)
	}
}

// BenchmarkApplyDigest is the digest's cost on the write path: the FSM
// applying sets of 100 bytes and creates, on a tree of 10,000 nodes, with
// the digest kept and checked and without. Compare the two in one run:
//
//	go test -run XXX -bench ApplyDigest -count 6 .
func BenchmarkApplyDigest(b *testing.B) {
	for _, on := range []bool{true, false} {
		name := "off"
		if on {
			name = "on"
		}
		b.Run(name, func(b *testing.B) {
			h := newTestFSM(b)
			h.f.noDigest = !on
			h.f.tree.noDigest = !on
			h.f.tree.recomputeDigest()
			h.mustCreate("/p", nil)
			for i := range 10000 {
				h.mustCreate(fmt.Sprintf("/p/n%05d", i), make([]byte, 100))
			}
			data := make([]byte, 100)
			b.ResetTimer()
			for i := range b.N {
				at, digest := h.f.digestNow()
				var c []byte
				if i%2 == 0 {
					c = encodeCommand(&command{op: opSetData, ops: []Op{SetDataOp{Path: fmt.Sprintf("/p/n%05d", i%10000), Data: data, Version: -1}}})
				} else {
					c = encodeCommand(&command{op: opCreate, ops: []Op{CreateOp{Path: fmt.Sprintf("/p/m%09d", i), Data: data}}})
				}
				stampLeader(c, time.UnixMilli(timeAt(h.index+1)), at, digest)
				if r := h.applyRaw(c); r.err != nil {
					b.Fatal(r.err)
				}
			}
		})
	}
}
