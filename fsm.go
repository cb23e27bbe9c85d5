package zoo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"
)

// fsm is the replicated state machine: the znode tree plus the session table.
// Apply is deterministic: it reads no clock, draws no random numbers and never
// iterates a map where order could leak into the result.
type fsm struct {
	mu          sync.RWMutex // guards tree, sessions, members, ensemble, applied, appliedTerm, appliedCh, broken
	tree        *tree
	sessions    map[int64]*sessionEntry
	members     map[string][]byte // replica id -> the instance id of the data dir it registered (identity.go)
	ensemble    []byte            // the ensemble's id, nil until its first leader names it (identity_ensemble.go)
	applied     uint64            // index of the last entry this FSM has seen (or restored)
	appliedTerm uint64            // its term; 0 after a restore (unknown)
	appliedCh   chan struct{}     // closed and replaced whenever applied advances

	// broken is set, once, by the first entry that fails its checksum or
	// cannot be decoded: from then on nothing is applied and applied stays
	// at the last good entry. The state is never advanced past an entry it
	// did not apply.
	broken *CorruptionError
	store  string // where entries are read from, for its message

	digests  digestHistory // the tree digest after recent indexes (tree_digest.go)
	noDigest bool          // no digest kept or checked (benchmarks of its cost)
	// lastDigest is the latest (applied index, digest), read without the
	// lock: the leader stamps it into every command it proposes, and must
	// not wait for a batch being applied.
	lastDigest atomic.Pointer[digestMark]

	watches *watchRegistry
	// onBroken is told, outside the lock, when the FSM stops at a corrupt entry.
	onBroken func(*CorruptionError)
	// onRestoreFailed is told why a snapshot did not restore (nil: nobody).
	onRestoreFailed func(error)
	// onSessionsEnded is told, outside the lock, which sessions a batch ended.
	onSessionsEnded func([]endedSession)
	// onApplied is called, outside the lock, after every batch.
	onApplied func()
	logger    *slog.Logger
}

// sessionEntry is one row of the replicated session table.
type sessionEntry struct {
	id         int64
	timeout    int32 // ms
	password   []byte
	ephemerals map[string]struct{} // derived from the tree; not in snapshots
}

// endedSession reports a session removed by a closeSession command.
type endedSession struct {
	id      int64
	expired bool
}

var _ raft.BatchingFSM = (*fsm)(nil)

func newFSM(watches *watchRegistry, logger *slog.Logger) *fsm {
	return &fsm{tree: newTree(), sessions: map[int64]*sessionEntry{}, members: map[string][]byte{}, appliedCh: make(chan struct{}),
		watches: watches, logger: logger, onBroken: func(*CorruptionError) {},
		onSessionsEnded: func([]endedSession) {}, onApplied: func() {}}
}

// Apply applies one log entry; raft calls ApplyBatch instead, this is for the interface.
func (f *fsm) Apply(l *raft.Log) interface{} { return f.ApplyBatch([]*raft.Log{l})[0] }

// ApplyBatch applies a batch of committed entries under one lock acquisition.
func (f *fsm) ApplyBatch(logs []*raft.Log) []interface{} {
	out := make([]interface{}, len(logs))
	var ended []endedSession
	f.mu.Lock()
	wasBroken := f.broken != nil
	for i, l := range logs {
		if f.broken != nil {
			out[i] = &applyResult{index: l.Index, term: l.Term, err: f.broken}
			continue
		}
		if l.Type == raft.LogCommand {
			c, err := decodeCommand(l.Data)
			if err != nil {
				f.broken = &CorruptionError{What: fmt.Sprintf("log entry %d", l.Index), Index: l.Index, Store: f.store, Err: err}
				out[i] = &applyResult{index: l.Index, term: l.Term, err: f.broken}
				continue
			}
			if err := f.checkDigest(c); err != nil {
				f.broken = err
				out[i] = &applyResult{index: l.Index, term: l.Term, err: f.broken}
				continue
			}
			r := f.applyEntry(l.Index, c, &ended)
			r.term = l.Term
			out[i] = r
		}
		if l.Type == raft.LogConfiguration {
			if err := f.applyConfiguration(l.Data); err != nil {
				f.broken = &CorruptionError{What: fmt.Sprintf("log entry %d", l.Index), Index: l.Index, Store: f.store, Err: err}
				continue
			}
		}
		if l.Index > f.applied {
			f.applied, f.appliedTerm = l.Index, l.Term
			f.digests.record(l.Index, f.tree.digest)
		}
	}
	broke := !wasBroken && f.broken != nil
	f.lastDigest.Store(&digestMark{at: f.applied, digest: f.tree.digest})
	close(f.appliedCh)
	f.appliedCh = make(chan struct{})
	f.mu.Unlock()
	if broke {
		f.onBroken(f.broken)
	}
	if len(ended) > 0 {
		f.onSessionsEnded(ended)
	}
	f.onApplied()
	return out
}

// checkDigest compares the leader's digest a command carries with this
// replica's own at the same index, if it still remembers it.
func (f *fsm) checkDigest(c *command) *CorruptionError {
	if c.digestAt == 0 || f.noDigest {
		return nil
	}
	mine, ok := f.digests.lookup(c.digestAt)
	if !ok || mine == c.digest {
		return nil
	}
	return &CorruptionError{What: fmt.Sprintf("the tree after log entry %d", c.digestAt), Index: c.digestAt, Store: f.store,
		Err: fmt.Errorf("%w: its digest is %016x, the leader's %016x", ErrDiverged, mine, c.digest)}
}

// digestNow returns the applied index and the tree digest after it, for the
// leader to put into a command it proposes (0, 0 without digests).
func (f *fsm) digestNow() (uint64, uint64) {
	m := f.lastDigest.Load()
	if m == nil || f.noDigest {
		return 0, 0
	}
	return m.at, m.digest
}

// failure returns the corruption that stopped the FSM, or nil.
func (f *fsm) failure() *CorruptionError {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.broken
}

func (f *fsm) applyEntry(index uint64, c *command, ended *[]endedSession) *applyResult {
	r := &applyResult{index: index}
	zxid := int64(index)
	switch c.op {
	case opCreateSession:
		f.sessions[zxid] = &sessionEntry{id: zxid, timeout: c.timeout, password: c.password,
			ephemerals: map[string]struct{}{}}
		r.sessionID = zxid
		return r
	case opCloseSession:
		s := f.sessions[c.session]
		if s == nil {
			r.err = ErrSessionExpired
			return r
		}
		x := &txnCtx{zxid: zxid, time: c.time}
		paths := make([]string, 0, len(s.ephemerals))
		for p := range s.ephemerals {
			paths = append(paths, p)
		}
		slices.Sort(paths)
		for _, p := range paths {
			n := f.tree.get(p)
			parentPath, _ := splitPath(p)
			if n != nil {
				f.tree.unlink(x, f.tree.get(parentPath), n)
			}
		}
		delete(f.sessions, c.session)
		f.publish(x)
		*ended = append(*ended, endedSession{c.session, c.expired})
		return r
	case opReap:
		x := &txnCtx{zxid: zxid, time: c.time}
		r.err = f.tree.reap(x, c.path)
		f.publish(x)
		return r
	case opRegister:
		r.err = f.register(c.member, c.instance)
		return r
	case opEnsemble:
		r.err = f.nameEnsemble(c.ensemble)
		return r
	case opCheckpoint:
		return r // for the log verifier only
	}
	if c.session != 0 && f.sessions[c.session] == nil {
		r.err = ErrSessionExpired
		return r
	}
	x := &txnCtx{zxid: zxid, time: c.time, session: c.session, ids: c.ids}
	if c.op != opMulti {
		res := f.applyOp(x, c.ops[0])
		r.results = []OpResult{res}
		if res.Err == nil {
			f.publish(x)
		}
		return r
	}
	f.tree.begin()
	r.results = make([]OpResult, len(c.ops))
	failed := -1
	for i, op := range c.ops {
		r.results[i] = f.applyOp(x, op)
		if r.results[i].Err != nil {
			failed = i
			break
		}
	}
	if failed < 0 {
		f.tree.commit()
		f.publish(x)
		return r
	}
	f.tree.rollback()
	for i := range r.results {
		switch {
		case i < failed:
			r.results[i] = OpResult{Err: ErrRolledBack}
		case i > failed:
			r.results[i] = OpResult{Err: ErrRuntimeInconsistency}
		}
	}
	return r
}

func (f *fsm) applyOp(x *txnCtx, op Op) OpResult {
	switch o := op.(type) {
	case CreateOp:
		if o.Mode.ephemeral() {
			// Checked here too, not only by the session filter above: the
			// owner must be a live session or the node would never be reaped.
			if f.sessions[x.session] == nil {
				return OpResult{Err: ErrSessionExpired}
			}
		}
		// A nil ACL became OpenACL in encodeOp; an empty one arrives as nil here.
		n, err := f.tree.create(x, createReq{path: o.Path, data: o.Data, acl: o.ACL, mode: o.Mode, ttl: o.TTL.Milliseconds()})
		if err != nil {
			return OpResult{Err: err}
		}
		st := n.stat()
		return OpResult{Path: n.path, Stat: &st}
	case DeleteOp:
		return OpResult{Err: f.tree.remove(x, o.Path, o.Version)}
	case SetDataOp:
		n, err := f.tree.setData(x, o.Path, o.Data, o.Version)
		if err != nil {
			return OpResult{Err: err}
		}
		st := n.stat()
		return OpResult{Path: o.Path, Stat: &st}
	case setACLOp:
		n, err := f.tree.setACL(x, o.path, o.acl, o.version)
		if err != nil {
			return OpResult{Err: err}
		}
		st := n.stat()
		return OpResult{Path: o.path, Stat: &st}
	case CheckOp:
		return OpResult{Path: o.Path, Err: f.tree.check(x, o.Path, o.Version)}
	}
	return OpResult{Err: ErrUnimplemented}
}

// publish commits a successful transaction's side effects: the ephemeral index
// and the watch events, in the order the changes happened.
func (f *fsm) publish(x *txnCtx) {
	for _, c := range x.changes {
		if isSessionOwner(c.owner) {
			if s := f.sessions[c.owner]; s != nil {
				if c.typ == EventNodeCreated {
					s.ephemerals[c.path] = struct{}{}
				} else if c.typ == EventNodeDeleted {
					delete(s.ephemerals, c.path)
				}
			}
		}
		f.watches.trigger(c, x.zxid)
	}
}

// appliedIndex returns the index of the last entry applied.
func (f *fsm) appliedIndex() uint64 {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.applied
}

// lastApplied returns the index and term of the last entry applied (term 0
// when unknown, after a snapshot restore).
func (f *fsm) lastApplied() (index, term uint64) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.applied, f.appliedTerm
}

// waitApplied blocks until the FSM has applied index, or ctx ends.
func (f *fsm) waitApplied(ctx context.Context, index uint64) error {
	for {
		f.mu.RLock()
		applied, ch := f.applied, f.appliedCh
		f.mu.RUnlock()
		if applied >= index {
			return nil
		}
		if c := f.failure(); c != nil {
			return c
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Snapshot clones the tree (O(1), copy-on-write) so Persist can write it while
// later entries keep applying.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.broken != nil {
		// Never persist a state that raft would take as covering the entries
		// after the corrupt one.
		return nil, f.broken
	}
	s := &fsmSnapshot{nodes: f.tree.nodes.Clone(), applied: f.applied, ensemble: f.ensemble}
	for id, inst := range f.members {
		s.members = append(s.members, memberRecord{id: id, instance: inst})
	}
	slices.SortFunc(s.members, func(a, b memberRecord) int { return strings.Compare(a.id, b.id) })
	for _, e := range f.sessions {
		s.sessions = append(s.sessions, sessionEntry{id: e.id, timeout: e.timeout, password: e.password})
	}
	slices.SortFunc(s.sessions, func(a, b sessionEntry) int { return compareInt64(a.id, b.id) })
	return s, nil
}

func compareInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Restore replaces all state with a snapshot, after verifying its checksum.
// Local sessions missing from the snapshot are reported ended; watches are
// caught up the way ZooKeeper's setWatches does after a reconnect.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	st, err := readSnapshot(rc)
	if err != nil {
		if f.onRestoreFailed != nil {
			f.onRestoreFailed(err)
		}
		return err
	}
	st.tree.noDigest = f.noDigest
	st.tree.recomputeDigest()
	f.mu.Lock()
	old := f.tree
	oldApplied := f.applied
	var ended []endedSession
	for id := range f.sessions {
		if _, ok := st.sessions[id]; !ok {
			ended = append(ended, endedSession{id: id, expired: true})
		}
	}
	f.tree, f.sessions, f.members, f.ensemble, f.applied, f.appliedTerm = st.tree, st.sessions, st.members, st.ensemble, st.applied, 0
	f.digests.reset()
	f.digests.record(f.applied, f.tree.digest)
	f.lastDigest.Store(&digestMark{at: f.applied, digest: f.tree.digest})
	f.watches.catchUp(old, f.tree, int64(oldApplied), int64(f.applied))
	close(f.appliedCh)
	f.appliedCh = make(chan struct{})
	f.mu.Unlock()
	slices.SortFunc(ended, func(a, b endedSession) int { return compareInt64(a.id, b.id) })
	if len(ended) > 0 {
		f.onSessionsEnded(ended)
	}
	return nil
}

// errSnapshotChecksum means a snapshot failed verification; raft then tries an older one.
var errSnapshotChecksum = errors.New("zoo: snapshot checksum mismatch")
