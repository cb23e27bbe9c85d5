package recipe

import (
	"testing"
	"time"

	"github.com/zooraft/zoo"
	"github.com/zooraft/zoo/internal/testkit"
)

// A claim's create whose outcome was unknown may leave duplicates carrying
// its id: find keeps one, wait deletes the others instead of waiting for
// them, and release removes them all. (One replica: the test makes the
// duplicates itself and counts on no create of its own being repeated.)
func TestSeqClaimDuplicates(t *testing.T) {
	c := newCluster(t, 1)
	ctx := testkit.ContextFor(t, time.Minute)
	s := session(t, c, 0)
	must(t, ensurePath(ctx, s, "/t1/dup"))
	dup := func(cl *seqClaim) string {
		p, err := s.Create(ctx, "/t1/dup/"+cl.id+mutexMarker, nil, zoo.ModeEphemeralSequential, nil)
		must(t, err)
		return p
	}
	exists := func(p string) bool {
		ok, _, err := s.Exists(ctx, p)
		must(t, err)
		return ok
	}
	cl := seqNewClaim(s, "/t1/dup", mutexMarker, nil)
	// Two creates "committed unseen".
	first, second := dup(cl), dup(cl)
	cl.unknown = true
	found, err := cl.find(ctx)
	if err != nil || !found {
		t.Fatalf("find = %v, %v", found, err)
	}
	if cl.path != first || cl.czxid == 0 {
		t.Fatalf("find kept %s (czxid %d), want %s", cl.path, cl.czxid, first)
	}
	if exists(second) {
		t.Fatalf("find left the duplicate %s", second)
	}
	// A late duplicate (after ours) is deleted by wait, which then proceeds.
	late := dup(cl)
	if err := cl.wait(ctx, mutexExclusive.match, seqPredecessor, false); err != nil {
		t.Fatalf("wait: %v", err)
	}
	if exists(late) {
		t.Fatalf("wait left the duplicate %s", late)
	}
	// A duplicate *before* ours would have been waited for forever.
	cl2 := seqNewClaim(s, "/t1/dup", mutexMarker, nil)
	dup(cl2)
	must(t, cl.release(ctx))
	must(t, cl2.create(ctx))
	if err := cl2.wait(ctx, mutexExclusive.match, seqPredecessor, true); err != nil {
		t.Fatalf("wait behind our own duplicate: %v", err)
	}
	dup(cl2)
	must(t, cl2.release(ctx))
	if got := children(t, s, "/t1/dup"); len(got) != 0 {
		t.Fatalf("left after release: %v", got)
	}
	// A claim whose node someone deleted queues again at the end of the line.
	cl3 := seqNewClaim(s, "/t1/dup", mutexMarker, nil)
	must(t, cl3.create(ctx))
	gone := cl3.path
	must(t, deleteNode(ctx, s, gone))
	must(t, cl3.wait(ctx, mutexExclusive.match, seqPredecessor, true))
	if cl3.path == gone || !exists(cl3.path) {
		t.Fatalf("claim at %s after its node %s was deleted", cl3.path, gone)
	}
	must(t, cl3.release(ctx))
}
