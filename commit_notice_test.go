package zoo

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/zooraft/zoo/internal/memnet"
)

// fakeRaftTransport feeds noticeTransport by hand. Only Consumer and
// EncodePeer are used.
type fakeRaftTransport struct {
	raft.Transport
	ch chan raft.RPC
}

func (f *fakeRaftTransport) Consumer() <-chan raft.RPC { return f.ch }
func (f *fakeRaftTransport) EncodePeer(_ raft.ServerID, a raft.ServerAddress) []byte {
	return []byte(a)
}

func newTestNoticeTransport(t *testing.T, lastIndex uint64) (*fakeRaftTransport, *noticeTransport) {
	t.Helper()
	inner := &fakeRaftTransport{ch: make(chan raft.RPC)}
	_, nt := newNoticeTransport(inner, nil)
	nt.setLastIndex(func() uint64 { return lastIndex })
	t.Cleanup(nt.shutdown)
	return inner, nt
}

// notifyAndSettle hands nt a notice and returns once its loop has taken it:
// the loop handles one thing at a time, so what the test sends next comes after.
func notifyAndSettle(t *testing.T, nt *noticeTransport, n commitNotice) {
	t.Helper()
	nt.notify(n)
	deadline := time.Now().Add(10 * time.Second)
	for len(nt.notices) > 0 {
		if time.Now().After(deadline) {
			t.Fatal("notice not taken")
		}
		time.Sleep(time.Millisecond)
	}
}

func nextRPC(t *testing.T, nt *noticeTransport) raft.RPC {
	t.Helper()
	select {
	case rpc := <-nt.Consumer():
		return rpc
	case <-time.After(10 * time.Second):
		t.Fatal("no RPC reached raft")
		return raft.RPC{}
	}
}

// feed sends one RPC from the "network" and returns it as raft receives it.
func feed(t *testing.T, inner *fakeRaftTransport, nt *noticeTransport, cmd any) raft.RPC {
	t.Helper()
	go func() { inner.ch <- raft.RPC{Command: cmd, RespChan: make(chan raft.RPCResponse, 1)} }()
	return nextRPC(t, nt)
}

func wantNotice(t *testing.T, rpc raft.RPC, index, term uint64) {
	t.Helper()
	ae, ok := rpc.Command.(*raft.AppendEntriesRequest)
	if !ok {
		t.Fatalf("got %T, want a commit notice", rpc.Command)
	}
	if ae.Term != term || ae.PrevLogEntry != index || ae.PrevLogTerm != term || ae.LeaderCommitIndex != index ||
		len(ae.Entries) != 0 || string(ae.ID) != "L" || string(ae.Addr) != "addr-L" {
		t.Fatalf("notice = %+v, want term %d, prev %d/%d, commit %d, no entries, from L", ae, term, index, term, index)
	}
}

func TestNoticeOfStoredEntryGoesToRaftAtOnce(t *testing.T) {
	_, nt := newTestNoticeTransport(t, 10)
	nt.notify(commitNotice{index: 7, term: 2, leaderID: "L", leaderAddr: "addr-L"})
	wantNotice(t, nextRPC(t, nt), 7, 2)
}

func TestNoticeWaitsForTheEntryToArrive(t *testing.T) {
	inner, nt := newTestNoticeTransport(t, 10)
	notifyAndSettle(t, nt, commitNotice{index: 12, term: 3, leaderID: "L", leaderAddr: "addr-L"})

	// Entries up to 11 do not hold it yet: the real request passes alone.
	ae := &raft.AppendEntriesRequest{Term: 3, LeaderCommitIndex: 9, Entries: []*raft.Log{{Index: 11, Term: 3}}}
	if got := feed(t, inner, nt, ae); got.Command != ae {
		t.Fatalf("got %+v, want the leader's request", got.Command)
	}
	// The request bringing 12 goes first, the notice right after it.
	ae = &raft.AppendEntriesRequest{Term: 3, LeaderCommitIndex: 10, Entries: []*raft.Log{{Index: 12, Term: 3}, {Index: 13, Term: 3}}}
	if got := feed(t, inner, nt, ae); got.Command != ae {
		t.Fatalf("got %+v, want the leader's request", got.Command)
	}
	wantNotice(t, nextRPC(t, nt), 12, 3)
}

// A notice no higher than one raft already got from this term is dropped: a
// follower hears of its forwarded write's commit twice (reply and broadcast).
func TestNoticeNoHigherThanOneSentIsDropped(t *testing.T) {
	inner, nt := newTestNoticeTransport(t, 20)
	nt.notify(commitNotice{index: 12, term: 3, leaderID: "L", leaderAddr: "addr-L"})
	wantNotice(t, nextRPC(t, nt), 12, 3)
	notifyAndSettle(t, nt, commitNotice{index: 12, term: 3, leaderID: "L", leaderAddr: "addr-L"})
	notifyAndSettle(t, nt, commitNotice{index: 11, term: 3, leaderID: "L", leaderAddr: "addr-L"})
	probe := &raft.RequestVoteRequest{Term: 5}
	if got := feed(t, inner, nt, probe); got.Command != probe {
		t.Fatalf("got %+v, want the probe: the repeated notices were handed over", got.Command)
	}
	nt.notify(commitNotice{index: 13, term: 3, leaderID: "L", leaderAddr: "addr-L"})
	wantNotice(t, nextRPC(t, nt), 13, 3)
}

// A late notice of an older term does not displace a pending one of a newer
// term, whatever its index.
func TestNoticeOfOlderTermDoesNotDisplaceNewer(t *testing.T) {
	inner, nt := newTestNoticeTransport(t, 10)
	notifyAndSettle(t, nt, commitNotice{index: 12, term: 4, leaderID: "L", leaderAddr: "addr-L"})
	notifyAndSettle(t, nt, commitNotice{index: 20, term: 3, leaderID: "L", leaderAddr: "addr-L"})
	ae := &raft.AppendEntriesRequest{Term: 4, LeaderCommitIndex: 10, Entries: []*raft.Log{{Index: 12, Term: 4}}}
	if got := feed(t, inner, nt, ae); got.Command != ae {
		t.Fatalf("got %+v, want the leader's request", got.Command)
	}
	wantNotice(t, nextRPC(t, nt), 12, 4)
}

func TestNoticeDroppedOnceRaftKnowsOrTermMovesOn(t *testing.T) {
	for _, tc := range []struct {
		name string
		ae   *raft.AppendEntriesRequest
	}{
		{"commit reached", &raft.AppendEntriesRequest{Term: 3, LeaderCommitIndex: 12}},
		{"newer term", &raft.AppendEntriesRequest{Term: 4, LeaderCommitIndex: 1, Entries: []*raft.Log{{Index: 12, Term: 4}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inner, nt := newTestNoticeTransport(t, 10)
			notifyAndSettle(t, nt, commitNotice{index: 12, term: 3, leaderID: "L", leaderAddr: "addr-L"})
			if got := feed(t, inner, nt, tc.ae); got.Command != tc.ae {
				t.Fatalf("got %+v, want the leader's request", got.Command)
			}
			// An entry of term 3 at 12 arriving now must not bring the notice back.
			later := &raft.AppendEntriesRequest{Term: 3, Entries: []*raft.Log{{Index: 12, Term: 3}}}
			if got := feed(t, inner, nt, later); got.Command != later {
				t.Fatalf("got %+v, want the leader's request", got.Command)
			}
			probe := &raft.RequestVoteRequest{Term: 5}
			if got := feed(t, inner, nt, probe); got.Command != probe {
				t.Fatalf("got %+v after the pending notice was dropped, want the probe", got.Command)
			}
		})
	}
}

// noticeEnsemble is three replicas on an in-memory network whose raft never
// sends the commit index on its own (CommitTimeout of an hour, so only
// requests carrying new entries carry it): a follower applies an entry only
// through commit notices, or when a later entry is replicated.
func noticeEnsemble(t *testing.T, broadcast bool) (leader *Ensemble, followers []*Ensemble) {
	t.Helper()
	return hookedEnsemble(t, &testHooks{
		tuneRaft:          func(c *raft.Config) { c.CommitTimeout = time.Hour },
		noCommitBroadcast: !broadcast,
	})
}

// hookedEnsemble is three replicas on an in-memory network, with hooks.
func hookedEnsemble(t *testing.T, hooks *testHooks) (leader *Ensemble, followers []*Ensemble) {
	t.Helper()
	net := memnet.New()
	ids := []string{"1", "2", "3"}
	var peers []Peer
	for _, id := range ids {
		peers = append(peers, Peer{ID: id, Addr: "zoo-" + id})
	}
	base := t.TempDir()
	var all []*Ensemble
	for _, id := range ids {
		ep, err := net.Endpoint(raft.ServerAddress("zoo-" + id))
		if err != nil {
			t.Fatal(err)
		}
		e, err := Open(Config{ID: id, Dir: filepath.Join(base, id), Transport: ep, Peers: peers,
			TickTime: 250 * time.Millisecond, hooks: hooks})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.Close() })
		all = append(all, e)
	}
	deadline := time.Now().Add(20 * time.Second)
	for leader == nil {
		if time.Now().After(deadline) {
			t.Fatal("no leader")
		}
		for _, e := range all {
			if e.raft.State() == raft.Leader {
				leader = e
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, e := range all {
		if e != leader {
			followers = append(followers, e)
		}
	}
	return leader, followers
}

// A write forwarded by a follower returns once that follower applied it: the
// leader's reply carries the commit notice.
func TestForwardedWriteAppliedThroughNotice(t *testing.T) {
	leader, followers := noticeEnsemble(t, false)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = leader
	s, err := followers[0].NewSession(ctx) // createSession is a forwarded write too
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		p := fmt.Sprintf("/n%d", i)
		if _, err := s.Create(ctx, p, []byte("x"), ModePersistent, nil); err != nil {
			t.Fatalf("create %s from a follower: %v", p, err)
		}
		if _, _, err := s.Get(ctx, p); err != nil {
			t.Fatalf("get %s after creating it: %v", p, err)
		}
	}
}

// Sync on a follower returns once it applied what the leader had committed:
// the leader's answer carries a commit notice.
func TestSyncAppliedThroughNotice(t *testing.T) {
	leader, followers := noticeEnsemble(t, false)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ls, err := leader.NewSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ls.Create(ctx, "/synced", nil, ModePersistent, nil); err != nil {
		t.Fatal(err)
	}
	want := leader.fsm.appliedIndex()
	if err := followers[1].WaitServing(ctx); err != nil { // WaitServing syncs
		t.Fatal(err)
	}
	if got := followers[1].fsm.appliedIndex(); got < want {
		t.Fatalf("follower applied %d after sync, the leader had %d", got, want)
	}
}

// A watch on one follower fires for a write made on the leader: the leader
// broadcasts commit notices after each batch it applies.
func TestWatchOnFollowerFiresThroughBroadcast(t *testing.T) {
	leader, followers := noticeEnsemble(t, true)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	fs, err := followers[1].NewSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ok, _, ch, err := fs.ExistsW(ctx, "/w")
	if err != nil || ok {
		t.Fatalf("ExistsW = %v, %v", ok, err)
	}
	ls, err := leader.NewSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ls.Create(ctx, "/w", nil, ModePersistent, nil); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-ch:
		if ev.Type != EventNodeCreated || ev.Path != "/w" {
			t.Fatalf("event = %+v", ev)
		}
	case <-ctx.Done():
		t.Fatal("the follower's watch never fired")
	}
}

// Raft's own checks decide what a notice does: one of an older term commits
// nothing, the right one commits.
func TestNoticeOfOlderTermIsHarmless(t *testing.T) {
	leader, followers := noticeEnsemble(t, false)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ls, err := leader.NewSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ls.Create(ctx, "/n", nil, ModePersistent, nil); err != nil {
		t.Fatal(err)
	}
	// Entry n (the create) is of the leader's term and known committed only
	// to the leader: nothing after it carries the commit index.
	n, term := leader.fsm.lastApplied()
	f := followers[0]
	for f.raft.LastIndex() < n {
		if ctx.Err() != nil {
			t.Fatal("the follower never stored the entry")
		}
		time.Sleep(time.Millisecond)
	}
	// raft's verdict on a notice, handed to it as noticeTransport does.
	verdict := func(n commitNotice) bool {
		t.Helper()
		rpc := n.rpc(f.notices)
		resp := make(chan raft.RPCResponse, 1)
		rpc.RespChan = resp
		select {
		case f.notices.out <- rpc:
		case <-ctx.Done():
			t.Fatal("raft took no RPC")
		}
		select {
		case r := <-resp:
			return r.Error == nil && r.Response.(*raft.AppendEntriesResponse).Success
		case <-ctx.Done():
			t.Fatal("raft did not answer")
			return false
		}
	}
	lid, laddr := raft.ServerID(leader.ID()), raft.ServerAddress(leader.Addr())
	if verdict(commitNotice{index: n, term: term - 1, leaderID: lid, leaderAddr: laddr}) {
		t.Fatal("raft accepted a notice of an older term")
	}
	if got := f.raft.CommitIndex(); got >= n {
		t.Fatalf("an older term's notice moved the follower's commit index to %d", got)
	}
	if !verdict(commitNotice{index: n, term: term, leaderID: lid, leaderAddr: laddr}) {
		t.Fatal("raft refused the leader's notice")
	}
	if err := f.fsm.waitApplied(ctx, n); err != nil {
		t.Fatalf("the follower never applied %d: %v", n, err)
	}
}

// A replica deposed between verifying its leadership and answering a sync
// must not answer: its commit index may by then end in its successor's term,
// and a notice naming it leader of that term makes the successor step down
// (raft treats a same-term AppendEntries at a leader as another leader's).
// The hook stalls the old leader right after its check, as a GC pause could.
func TestSyncAnswerNeverSpeaksForASuccessorsTerm(t *testing.T) {
	var armed atomic.Bool
	paused, release := make(chan struct{}), make(chan struct{})
	x, followers := hookedEnsemble(t, &testHooks{afterVerifyLeader: func() {
		if armed.CompareAndSwap(true, false) {
			paused <- struct{}{}
			<-release
		}
	}})
	f := followers[0]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := f.WaitServing(ctx); err != nil {
		t.Fatal(err)
	}
	type answer struct {
		commit, term uint64
		err          error
	}
	answered := make(chan answer, 1)
	armed.Store(true)
	go func() {
		_, commit, term, err := x.leaderSyncIndex()
		answered <- answer{commit, term, err}
	}()
	<-paused
	if err := x.raft.LeadershipTransferToServer(raft.ServerID(f.ID()), raft.ServerAddress(f.Addr())).Error(); err != nil {
		close(release)
		t.Fatal(err)
	}
	// The old leader learns that its successor's no-op committed.
	for {
		var l raft.Log
		c := x.raft.CommitIndex()
		if f.raft.State() == raft.Leader && x.logs.GetLog(c, &l) == nil && l.Term == f.raft.CurrentTerm() {
			break
		}
		if ctx.Err() != nil {
			close(release)
			t.Fatal("the old leader never learned its successor's first commit")
		}
		time.Sleep(time.Millisecond)
	}
	close(release)
	a := <-answered
	if !errors.Is(a.err, errNotLeader) {
		t.Fatalf("the deposed leader answered a sync with commit %d of term %d (%v), want errNotLeader", a.commit, a.term, a.err)
	}
}
