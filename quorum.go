package zoo

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
)

// Role is a replica's part in the ensemble, as "Mode:" in ZooKeeper's srvr
// output.
type Role int

const (
	// RoleNotServing: no leader is known (an election runs, or no quorum is reachable).
	RoleNotServing Role = iota
	RoleLeader
	RoleFollower
	RoleObserver
)

func (r Role) String() string {
	switch r {
	case RoleLeader:
		return "leader"
	case RoleFollower:
		return "follower"
	case RoleObserver:
		return "observer"
	}
	return "not serving"
}

// Member is one replica in the ensemble's configuration.
type Member struct {
	ID    string
	Addr  string
	Voter bool // false: a non-voting observer
	// DataDir identifies the data dir the member registered, as this
	// replica's state records it (hex; "" until it registered, or for a
	// replica without one). A member whose data dir is wiped gets a new one
	// and is refused until it is removed and added back (identity.go).
	DataDir string
}

// Status describes this replica.
type Status struct {
	ID            string
	Role          Role
	LeaderID      string
	LeaderAddr    string
	Members       []Member
	AppliedIndex  uint64    // the last zxid this replica applied
	LeaderSince   time.Time // when this replica learned of the current leadership (zero when none)
	Serving       bool
	Sessions      int // live sessions in the ensemble
	LocalSessions int // sessions served by this replica
	Nodes         int
	Watches       int
	// LogVerifier counts the online log verifier's reports (on disk only).
	LogVerifier LogVerifierCounts
	// Ensemble is the ensemble's id (hex) as this replica stored it, empty
	// until known or in memory; replicas of another ensemble are refused on
	// every link (identity_ensemble.go).
	Ensemble string
}

// Serving reports whether this replica is part of a working quorum (it knows a
// leader). Cheap enough to poll.
func (e *Ensemble) Serving() bool { return e.serving() }

// LastZxid returns the zxid of the last transaction this replica applied.
func (e *Ensemble) LastZxid() int64 { return int64(e.fsm.appliedIndex()) }

// serving reports whether this replica can serve: it knows a leader (a leader
// that lost its quorum steps down after its lease).
func (e *Ensemble) serving() bool {
	if e.closed.Load() || e.failure() != nil {
		return false
	}
	_, id := e.raft.LeaderWithID()
	return id != ""
}

// Status returns this replica's view of the ensemble.
func (e *Ensemble) Status() (Status, error) {
	if e.closed.Load() {
		return Status{}, ErrClosed
	}
	addr, leader := e.raft.LeaderWithID()
	st := Status{ID: e.cfg.ID, LeaderID: string(leader), LeaderAddr: string(addr), Serving: leader != "",
		Ensemble: hex.EncodeToString(e.storedEnsemble()), LogVerifier: e.verifierCounts.snapshot()}
	if f := e.raft.GetConfiguration(); f.Error() == nil {
		for _, s := range f.Configuration().Servers {
			m := Member{ID: string(s.ID), Addr: string(s.Address), Voter: s.Suffrage == raft.Voter}
			if inst, ok := e.fsm.memberRecord(m.ID); ok {
				m.DataDir = hex.EncodeToString(inst)
			}
			st.Members = append(st.Members, m)
			if string(s.ID) == e.cfg.ID && s.Suffrage != raft.Voter && leader != "" {
				st.Role = RoleObserver
			}
		}
	}
	switch {
	case leader == "":
		st.Role = RoleNotServing
	case string(leader) == e.cfg.ID:
		st.Role = RoleLeader
	case st.Role != RoleObserver:
		st.Role = RoleFollower
	}
	e.fsm.mu.RLock()
	st.AppliedIndex, st.Sessions, st.Nodes = e.fsm.applied, len(e.fsm.sessions), e.fsm.tree.nodes.Len()
	e.fsm.mu.RUnlock()
	e.watches.mu.Lock()
	st.Watches = e.watches.count
	e.watches.mu.Unlock()
	e.mu.Lock()
	st.LocalSessions = len(e.sessions)
	e.mu.Unlock()
	e.leaderMu.Lock()
	if leader != "" && leader == e.leaderID {
		st.LeaderSince = e.leaderSince
	}
	e.leaderMu.Unlock()
	return st, nil
}

// watchLeader records when the leadership changes (a new leader, or the same
// one in a new term), from raft's leader observations.
func (e *Ensemble) watchLeader() {
	ch := make(chan raft.Observation, 64)
	obs := raft.NewObserver(ch, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	})
	e.raft.RegisterObserver(obs)
	defer e.raft.DeregisterObserver(obs)
	e.noteLeader()
	for {
		select {
		case <-e.ctx.Done():
			return
		case <-ch:
			e.noteLeader()
		}
	}
}

func (e *Ensemble) noteLeader() {
	_, id := e.raft.LeaderWithID()
	term := e.raft.CurrentTerm()
	e.leaderMu.Lock()
	defer e.leaderMu.Unlock()
	if id != e.leaderID || term != e.leaderTerm {
		e.leaderID, e.leaderTerm, e.leaderSince = id, term, time.Now()
	}
}

// WaitServing blocks until this replica knows a leader and has applied
// everything the leader had committed, or ctx ends.
func (e *Ensemble) WaitServing(ctx context.Context) error {
	for {
		if e.closed.Load() {
			return ErrClosed
		}
		if e.serving() {
			if err := e.sync(ctx); err == nil {
				return nil
			}
		}
		if !e.sleep(ctx, 10*time.Millisecond) {
			if e.closed.Load() {
				return ErrClosed
			}
			return ctx.Err()
		}
	}
}

// sync waits until this replica has applied every entry the leader had
// committed when sync was called: the leader confirms it still leads (one
// heartbeat round, no disk write), reports its commit index, and we wait.
func (e *Ensemble) sync(ctx context.Context) error {
	var since time.Time
	for attempt := 0; ; attempt++ {
		if e.closed.Load() {
			return ErrClosed
		}
		addr, id := e.raft.LeaderWithID()
		var target uint64
		var err error
		switch {
		case id == "":
			err = errNoLeader
		case id == raft.ServerID(e.cfg.ID):
			target, _, _, err = e.leaderSyncIndex()
		default:
			target, err = e.askSyncIndex(ctx, id, addr)
		}
		if err == nil {
			return e.fsm.waitApplied(ctx, target)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if since.IsZero() {
			since = time.Now()
		} else if time.Since(since) > e.waitForLeaderTime() {
			return ErrNotServing
		}
		if !e.sleep(ctx, e.retryDelay(attempt)) {
			if e.closed.Load() {
				return ErrClosed
			}
			return ctx.Err()
		}
	}
}

// leaderSyncIndex returns the index a syncing replica must reach, and the
// leader's commit index with its term (the leader's own), for a commit notice.
// Entries the FSM never sees (raft's no-op after an election) are skipped back
// to the last one it does see, or the replica would wait for an index it never
// applies.
func (e *Ensemble) leaderSyncIndex() (target, commit, term uint64, err error) {
	// The term is read before leadership is verified and checked again after:
	// the answer speaks for the leader of that term, and a replica deposed in
	// between must not vouch for its successor's term (the notice would make
	// the successor step down).
	term0 := e.raft.CurrentTerm()
	if err := e.await(e.raft.VerifyLeader()); err != nil { // not .Error(): see await
		return 0, 0, 0, errNotLeader
	}
	if h := e.cfg.hooks; h != nil && h.afterVerifyLeader != nil {
		h.afterVerifyLeader()
	}
	commit = e.raft.CommitIndex()
	// Until a new leader has committed an entry of its own term (the no-op
	// raft appends on election), its commit index may lag writes that its
	// predecessor already acknowledged: a sync to it could miss them. Refuse
	// for now; the caller retries (Raft thesis 6.4).
	var head raft.Log
	if commit == 0 || e.logs.GetLog(commit, &head) != nil || head.Term != term0 || e.raft.CurrentTerm() != term0 {
		return 0, 0, 0, errNotLeader
	}
	for i := commit; i > 0; i-- {
		var l raft.Log
		if err := e.logs.GetLog(i, &l); err != nil {
			// Compacted into a snapshot: everything up to here is in it.
			return min(i, e.fsm.appliedIndex()), commit, head.Term, nil
		}
		if l.Type == raft.LogCommand || l.Type == raft.LogConfiguration {
			return i, commit, head.Term, nil
		}
	}
	return 0, commit, head.Term, nil
}

// Membership changes. Each is forwarded to the leader when needed and returns
// once the new configuration is committed.
const (
	memberAddVoter byte = iota + 1
	memberAddObserver
	memberRemove
	memberTransfer
)

// AddVoter adds a voting member (or promotes an observer). The new replica must
// be running with Join set; it catches up from the leader's log or snapshot.
func (e *Ensemble) AddVoter(ctx context.Context, id, addr string) error {
	return e.membership(ctx, memberAddVoter, id, addr)
}

// AddObserver adds a non-voting member: it replicates and serves reads but does
// not count toward the quorum.
func (e *Ensemble) AddObserver(ctx context.Context, id, addr string) error {
	return e.membership(ctx, memberAddObserver, id, addr)
}

// RemoveMember removes a member from the configuration.
func (e *Ensemble) RemoveMember(ctx context.Context, id string) error {
	return e.membership(ctx, memberRemove, id, "")
}

// TransferLeadership asks the leader to hand over to the member id ("" = any
// up-to-date voter) and waits until a new leader is elected.
func (e *Ensemble) TransferLeadership(ctx context.Context, id string) error {
	addr := ""
	if id != "" {
		found := false
		if f := e.raft.GetConfiguration(); f.Error() == nil {
			for _, s := range f.Configuration().Servers {
				if string(s.ID) == id {
					addr, found = string(s.Address), true
				}
			}
		}
		if !found {
			return fmt.Errorf("%w: no member %q", ErrBadArguments, id)
		}
	}
	return e.membership(ctx, memberTransfer, id, addr)
}

func (e *Ensemble) membership(ctx context.Context, op byte, id, addr string) error {
	if id == "" && op != memberTransfer {
		return fmt.Errorf("%w: member id is empty", ErrBadArguments)
	}
	if addr == "" && (op == memberAddVoter || op == memberAddObserver) {
		return fmt.Errorf("%w: member address is empty", ErrBadArguments)
	}
	req := encodeMembership(op, id, addr)
	var since time.Time
	for attempt := 0; ; attempt++ {
		if e.closed.Load() {
			return ErrClosed
		}
		leaderAddr, leader := e.raft.LeaderWithID()
		var err error
		switch {
		case leader == "":
			err = errNoLeader
		case leader == raft.ServerID(e.cfg.ID):
			err = e.applyMembership(req)
		default:
			err = e.forwardMembership(ctx, leaderAddr, req)
		}
		if err == nil || !(errors.Is(err, errNoLeader) || errors.Is(err, errNotLeader)) {
			return err
		}
		if since.IsZero() {
			since = time.Now()
		} else if time.Since(since) > e.waitForLeaderTime() {
			return ErrNotServing
		}
		if !e.sleep(ctx, e.retryDelay(attempt)) {
			if e.closed.Load() {
				return ErrClosed // not ctx.Err(): that is nil when Close woke us
			}
			return ctx.Err()
		}
	}
}

// applyMembership runs a membership change on the leader.
func (e *Ensemble) applyMembership(payload []byte) error {
	op, id, addr, err := decodeMembership(payload)
	if err != nil {
		return err
	}
	if e.raft.State() != raft.Leader {
		return errNotLeader
	}
	timeout := 10 * e.cfg.TickTime
	switch op {
	case memberAddVoter:
		err = e.await(e.raft.AddVoter(id, addr, 0, timeout))
	case memberAddObserver:
		err = e.await(e.raft.AddNonvoter(id, addr, 0, timeout))
	case memberRemove:
		err = e.await(e.raft.RemoveServer(id, 0, timeout))
	case memberTransfer:
		if id == "" {
			err = e.await(e.raft.LeadershipTransfer())
		} else {
			err = e.await(e.raft.LeadershipTransferToServer(id, addr))
		}
	default:
		return ErrUnimplemented
	}
	if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
		return errNotLeader
	}
	if errors.Is(err, ErrClosed) || errors.Is(err, raft.ErrRaftShutdown) {
		return ErrClosed
	}
	if err != nil {
		return fmt.Errorf("%w: %v", ErrSystemError, err)
	}
	return nil
}
