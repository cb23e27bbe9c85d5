package zoo

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"time"

	"github.com/hashicorp/raft"

	"github.com/zooraft/zoo/internal/peer"
)

// This file is everything replicas say to each other besides raft itself,
// over the peer RPC of internal/peer: the methods, the handler that serves
// them, the calls that send them, and their encodings.
//
//	method           sent by               to          carries
//	rpcApply         a follower            the leader  a session's write (forwarded), answered by its result
//	rpcTouch         every replica         the leader  its sessions' liveness (session_tracker.go)
//	rpcSyncIndex     a syncing replica     the leader  nothing; answered by the index to reach and a commit notice
//	rpcMembership    any replica           the leader  a membership change or leadership transfer (quorum.go)
//	rpcCommitNotice  the leader            followers   "index N of term T committed" (commit_notice_follower.go)
//	rpcMemberRecord  a replica about to    a candidate the data dir the candidate's state records for it (identity.go)
//	                 vote
//
// A forwarded write may be retried elsewhere only when the peer client says
// it was not sent (peer.ErrNotSent); after it left, its outcome is unknown.

// Peer RPC methods.
const (
	rpcApply byte = iota + 1
	rpcTouch
	rpcSyncIndex
	rpcMembership
	rpcCommitNotice
	rpcMemberRecord
)

// rpcCodeOf maps errors onto the wire of the peer RPC: ZooKeeper codes, plus
// two private positive codes that must not be confused with any of them.
func rpcCodeOf(err error) int32 {
	switch {
	case errors.Is(err, errNotLeader), errors.Is(err, errNoLeader):
		return 1
	case errors.Is(err, ErrClosed):
		return 2
	case errors.Is(err, ErrNotServing):
		return 3
	}
	return int32(CodeOf(err))
}

func rpcErrFromCode(code int32, msg string) error {
	switch code {
	case 1:
		return errNotLeader
	case 2, 3:
		// The peer is shutting down or lost its quorum: retry elsewhere.
		return errNotLeader
	}
	return remoteErr(Code(code), msg)
}

// startRPC starts a forwarded write in the order it arrived (see rpcStarter):
// writes a follower forwards one after another are appended in that order.
func (e *Ensemble) startRPC(ctx context.Context, method byte, payload []byte) func() ([]byte, error) {
	if method != rpcApply {
		return nil
	}
	if e.closed.Load() {
		return func() ([]byte, error) { return nil, ErrClosed }
	}
	if e.raft.State() != raft.Leader {
		return func() ([]byte, error) { return nil, errNotLeader }
	}
	// What enters the log must decode on every replica, or it would stop
	// them all: a forwarded command is checked before the leader seals it.
	if _, err := decodeCommand(payload); err != nil {
		return func() ([]byte, error) { return nil, fmt.Errorf("%w: forwarded command: %v", ErrMarshallingError, err) }
	}
	f := e.startApply(ctx, payload)
	return func() ([]byte, error) {
		res, err := e.finishApply(f)
		if err != nil {
			return nil, err
		}
		return encodeResult(res), nil
	}
}

// forwardApply sends a write to the leader; queued, if not nil, is called
// once the request is queued on the connection (see peer.Client.CallQueued). If
// the connection breaks after the request left, the outcome is unknown
// (ErrConnectionLoss).
func (e *Ensemble) forwardApply(ctx context.Context, leader raft.ServerAddress, b []byte, queued func()) (*applyResult, error) {
	out, err := e.client(leader).CallQueued(ctx, rpcApply, b, queued)
	if err != nil {
		if errors.Is(err, peer.ErrNotSent) {
			return nil, errNoLeader // nothing left this replica: retry
		}
		if errors.Is(err, peer.ErrUnavailable) {
			return nil, fmt.Errorf("%w: leader %s: %v", ErrConnectionLoss, leader, err)
		}
		return nil, err
	}
	return decodeResult(out)
}

func (e *Ensemble) client(addr raft.ServerAddress) *peer.Client {
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.clients[addr]
	if c == nil {
		c = peer.NewClient(func(ctx context.Context) (net.Conn, error) { return e.transport.Dial(ctx, addr) }, rpcErrFromCode)
		e.clients[addr] = c
	}
	return c
}

// handleRPC serves requests from other replicas.
func (e *Ensemble) handleRPC(ctx context.Context, method byte, payload []byte) ([]byte, error) {
	if e.closed.Load() {
		return nil, ErrClosed
	}
	switch method {
	case rpcTouch:
		touches, err := decodeTouches(payload)
		if err != nil {
			return nil, err
		}
		if e.raft.State() != raft.Leader {
			return nil, errNotLeader
		}
		e.tracker.touch(touches)
		return nil, nil
	case rpcSyncIndex:
		target, commit, term, err := e.leaderSyncIndex()
		if err != nil {
			return nil, err
		}
		return encodeSyncIndex(target, commit, term), nil
	case rpcMembership:
		return nil, e.applyMembership(payload)
	case rpcMemberRecord:
		inst, ok := e.recordedDataDir(string(payload))
		return encodeMemberRecord(inst, ok), nil
	case rpcCommitNotice:
		n, err := decodeCommitNotice(payload)
		if err != nil {
			return nil, err
		}
		e.noticeCommit(n)
		return nil, nil
	}
	return nil, ErrUnimplemented
}

// askSyncIndex asks the leader (id at addr) which index a sync must reach, and
// takes the commit notice that comes with the answer.
func (e *Ensemble) askSyncIndex(ctx context.Context, id raft.ServerID, addr raft.ServerAddress) (uint64, error) {
	out, err := e.client(addr).Call(ctx, rpcSyncIndex, nil)
	if err != nil {
		return 0, err
	}
	target, commit, term, err := decodeSyncIndex(out)
	if err != nil {
		return 0, err
	}
	e.noticeCommit(commitNotice{index: commit, term: term, leaderID: id, leaderAddr: addr})
	return target, nil
}

func decodeSyncIndex(b []byte) (target, commit, term uint64, err error) {
	d := &dec{b: b}
	target, commit, term = d.u64(), d.u64(), d.u64()
	if d.err == nil && len(d.b) != 0 {
		d.err = fmt.Errorf("%w: %d trailing bytes in a sync index", errCorrupt, len(d.b))
	}
	return target, commit, term, d.err
}

func encodeSyncIndex(target, commit, term uint64) []byte {
	enc := &enc{}
	enc.u64(target)
	enc.u64(commit)
	enc.u64(term)
	return enc.b
}

// forwardMembership sends a membership change to the leader.
func (e *Ensemble) forwardMembership(ctx context.Context, leader raft.ServerAddress, req []byte) error {
	_, err := e.client(leader).Call(ctx, rpcMembership, req)
	switch {
	case errors.Is(err, peer.ErrNotSent):
		return errNoLeader // the leader is gone; nothing was sent: retry
	case errors.Is(err, peer.ErrUnavailable):
		return fmt.Errorf("%w: leader %s: %v", ErrConnectionLoss, leader, err)
	}
	return err
}

func encodeMembership(op byte, id, addr string) []byte {
	b := &enc{}
	b.u8(op)
	b.str(id)
	b.str(addr)
	return b.b
}

func decodeMembership(p []byte) (op byte, id raft.ServerID, addr raft.ServerAddress, err error) {
	d := &dec{b: p}
	op, id, addr = d.u8(), raft.ServerID(d.str()), raft.ServerAddress(d.str())
	if d.err != nil || len(d.b) != 0 {
		return 0, "", "", ErrMarshallingError
	}
	return op, id, addr, nil
}

// sendTouches reports this replica's live sessions to the leader at addr,
// within half a tick (the next round sends them again).
func (e *Ensemble) sendTouches(addr raft.ServerAddress, touches []sessionTouch) error {
	ctx, cancel := context.WithTimeout(e.ctx, e.cfg.TickTime/2)
	defer cancel()
	_, err := e.client(addr).Call(ctx, rpcTouch, encodeTouches(touches))
	return err
}

func encodeTouches(touches []sessionTouch) []byte {
	b := &enc{}
	b.u32(uint32(len(touches)))
	for _, tc := range touches {
		b.i64(tc.id)
		b.i64(tc.idle.Milliseconds())
	}
	return b.b
}

// maxIdleMillis is the longest idle time a touch can carry.
const maxIdleMillis = int64(math.MaxInt64 / time.Millisecond)

func decodeTouches(p []byte) ([]sessionTouch, error) {
	d := &dec{b: p}
	n := d.count(16)
	out := make([]sessionTouch, 0, n)
	for i := 0; i < n; i++ {
		id, ms := d.i64(), d.i64()
		if ms < 0 || ms > maxIdleMillis {
			return nil, ErrMarshallingError // a Duration cannot hold it
		}
		out = append(out, sessionTouch{id: id, idle: time.Duration(ms) * time.Millisecond})
	}
	if d.err != nil || len(d.b) != 0 {
		return nil, ErrMarshallingError
	}
	return out, nil
}

// sendCommitNotice tells the follower at addr of a commit, within a tick.
func (e *Ensemble) sendCommitNotice(addr raft.ServerAddress, n commitNotice) error {
	ctx, cancel := context.WithTimeout(e.ctx, e.cfg.TickTime)
	defer cancel()
	_, err := e.client(addr).Call(ctx, rpcCommitNotice, encodeCommitNotice(n))
	return err
}

func encodeCommitNotice(n commitNotice) []byte {
	e := &enc{}
	e.u64(n.index)
	e.u64(n.term)
	e.str(string(n.leaderID))
	e.str(string(n.leaderAddr))
	return e.b
}

func decodeCommitNotice(b []byte) (commitNotice, error) {
	d := &dec{b: b}
	n := commitNotice{index: d.u64(), term: d.u64(), leaderID: raft.ServerID(d.str()), leaderAddr: raft.ServerAddress(d.str())}
	if d.err != nil {
		return commitNotice{}, d.err
	}
	if len(d.b) != 0 {
		return commitNotice{}, fmt.Errorf("%w: %d trailing bytes in a commit notice", errCorrupt, len(d.b))
	}
	return n, nil
}

// askMemberRecord asks the replica at addr which data dir its state records
// for this replica.
func (e *Ensemble) askMemberRecord(ctx context.Context, addr raft.ServerAddress) (instance []byte, known bool, err error) {
	out, err := e.client(addr).Call(ctx, rpcMemberRecord, []byte(e.cfg.ID))
	if err != nil {
		return nil, false, err
	}
	return decodeMemberRecord(out)
}

func decodeMemberRecord(b []byte) (instance []byte, known bool, err error) {
	d := &dec{b: b}
	flag := d.u8()
	known, instance = flag == 1, d.bytes()
	if d.err == nil && flag > 1 {
		d.err = fmt.Errorf("%w: member record flag %d", errCorrupt, flag)
	}
	if d.err == nil && len(d.b) != 0 {
		d.err = fmt.Errorf("%w: %d trailing bytes in a member record", errCorrupt, len(d.b))
	}
	if d.err != nil {
		return nil, false, d.err
	}
	return instance, known, nil
}

func encodeMemberRecord(instance []byte, known bool) []byte {
	b := &enc{}
	if known {
		b.u8(1)
	} else {
		b.u8(0)
	}
	b.bytes(instance)
	return b.b
}
