package zoo

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

// This file is who a data dir belongs to, so that a replica never votes or
// acknowledges writes with state it no longer has.
//
// A replica whose data dir was wiped looks new: it would bootstrap from its
// Peers, vote for a candidate whose log lacks writes it had acknowledged, and
// an acknowledged write would be lost. So every data dir holds an instance
// id, made at random when the dir is first used, and the replica it belongs
// to (raft.db's stable store, so that wiping raft.db wipes them too). Once
// serving, each replica records its instance id in the replicated state
// (opRegister); a configuration without the replica drops its record, so a
// member removed and added back registers afresh. A replica that finds
// another instance recorded for itself, in its own state or in a
// candidate's answer before it votes, stops serving with an IdentityError.

// Keys of raft's stable store that say whose data dir this is, and which
// zoo can read it.
var (
	keyMember   = []byte("zoo.member")
	keyInstance = []byte("zoo.instance")
	keyFormat   = []byte("zoo.format")
)

// dataFormat is the data dir format this zoo writes: log entries of
// commandVersion, snapshots of snapshotVersion. A dir of a newer format is
// refused at Open rather than misread.
const dataFormat = 1

// instanceIDBytes is the length of an instance id.
const instanceIDBytes = 16

// errOtherInstance is an opRegister's result when the ensemble recorded
// another data dir for the replica.
var errOtherInstance = errors.New("zoo: the ensemble recorded another data dir for this replica")

// IdentityError says a data dir is not the one this replica had: it belongs
// to another replica, or it was wiped or replaced while the ensemble
// remembers the one before. The replica refuses to start, or stops serving,
// rather than vote or acknowledge with state it no longer has.
type IdentityError struct {
	Member string // this replica's ID
	Dir    string // its data dir
	Reason string // what was found
}

func (e *IdentityError) Error() string {
	return fmt.Sprintf("zoo: replica %s, data dir %s: %s; a replica must not vote or acknowledge writes with "+
		"state it no longer has: give it back its own data dir, or remove it from the ensemble and add it "+
		"back as a new member (Join)", e.Member, e.Dir, e.Reason)
}

// memberRecord is one replica's registered data dir.
type memberRecord struct {
	id       string
	instance []byte
}

// claimDir checks that the data dir's stable store belongs to this replica,
// and returns its instance id, making both on the dir's first use.
// existing says whether raft found state (logs or snapshots) in the dir.
func claimDir(stable *raftboltdb.BoltStore, member, dir string, existing bool) ([]byte, error) {
	format, err := stable.GetUint64(keyFormat)
	switch {
	case err != nil && !errors.Is(err, raftboltdb.ErrKeyNotFound):
		return nil, err
	case format > dataFormat:
		return nil, fmt.Errorf("zoo: data dir %s was written by a newer zoo (data format %d; this one reads up to %d): "+
			"run that version, or a later one", dir, format, dataFormat)
	case format < dataFormat:
		if err := stable.SetUint64(keyFormat, dataFormat); err != nil {
			return nil, err
		}
	}
	owner, err := stable.Get(keyMember)
	if err != nil && !errors.Is(err, raftboltdb.ErrKeyNotFound) {
		return nil, err
	}
	if len(owner) > 0 && string(owner) != member {
		return nil, &IdentityError{member, dir, fmt.Sprintf("it belongs to replica %s (a wrong myid or ID?)", owner)}
	}
	inst, err := stable.Get(keyInstance)
	if err != nil && !errors.Is(err, raftboltdb.ErrKeyNotFound) {
		return nil, err
	}
	if len(inst) == instanceIDBytes && len(owner) > 0 {
		return inst, nil
	}
	// First use of this dir, or a dir of a zoo without instance ids. Snapshots
	// without a raft.db that remembers a term are a raft.db lost or wiped.
	if existing {
		if term, err := stable.GetUint64([]byte("CurrentTerm")); err != nil || term == 0 {
			return nil, &IdentityError{member, dir, "its snapshots remain but raft.db remembers no term: raft.db was lost or wiped"}
		}
	}
	inst = make([]byte, instanceIDBytes)
	if _, err := rand.Read(inst); err != nil {
		return nil, err
	}
	if err := stable.Set(keyInstance, inst); err != nil {
		return nil, err
	}
	if err := stable.Set(keyMember, []byte(member)); err != nil {
		return nil, err
	}
	return inst, nil
}

// register records member's data dir; another one already recorded is
// errOtherInstance.
func (f *fsm) register(member string, instance []byte) error {
	have, ok := f.members[member]
	switch {
	case !ok:
		f.members[member] = bytes.Clone(instance)
	case !bytes.Equal(have, instance):
		return errOtherInstance
	}
	return nil
}

// applyConfiguration drops the records of replicas a configuration no
// longer holds, so that one added back registers its new data dir.
func (f *fsm) applyConfiguration(data []byte) (err error) {
	defer func() {
		if p := recover(); p != nil { // raft.DecodeConfiguration panics on bad bytes
			err = fmt.Errorf("%w: configuration entry: %v", errCorrupt, p)
		}
	}()
	conf := raft.DecodeConfiguration(data)
	in := make(map[string]bool, len(conf.Servers))
	for _, s := range conf.Servers {
		in[string(s.ID)] = true
	}
	for id := range f.members {
		if !in[id] {
			delete(f.members, id)
		}
	}
	return nil
}

// memberRecord returns the data dir instance recorded for member.
func (f *fsm) memberRecord(member string) ([]byte, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	inst, ok := f.members[member]
	return inst, ok
}

// recordedDataDir returns the data dir this replica's durable state records
// for member: its log beyond what the FSM applied (newest first), then the
// FSM. A replica that just restarted has applied only its snapshot until a
// leader tells it the commit index, but its log holds what it stored.
func (e *Ensemble) recordedDataDir(member string) ([]byte, bool) {
	applied := e.fsm.appliedIndex()
	last, err := e.logs.LastIndex()
	if err == nil {
		for i := last; i > applied; i-- {
			var l raft.Log
			if e.logs.GetLog(i, &l) != nil || l.Type != raft.LogCommand {
				continue
			}
			if c, err := decodeCommand(l.Data); err == nil && c.op == opRegister && c.member == member {
				return c.instance, true
			}
		}
	}
	return e.fsm.memberRecord(member)
}

// otherDir is the IdentityError of a replica whose recorded data dir is not
// the one it runs on.
func (e *Ensemble) otherDir() error {
	return &IdentityError{e.cfg.ID, e.cfg.Dir, "the ensemble recorded another data dir for this replica: " +
		"this one was wiped or replaced"}
}

// registerLoop records this replica's data dir whenever it serves, is a
// member, and the ensemble has no record of it (at first, and again after
// it was removed and added back while running), and checks the record it
// finds: another one stops the replica.
func (e *Ensemble) registerLoop() {
	if e.instance == nil {
		return // in memory: nothing survives a restart to be mistaken
	}
	tick := time.NewTicker(e.cfg.TickTime)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
		case <-e.ctx.Done():
			return
		}
		if inst, ok := e.fsm.memberRecord(e.cfg.ID); ok && bytes.Equal(inst, e.instance) {
			continue // recorded, as it should be
		}
		if !e.serving() || !e.isMember() {
			continue
		}
		ctx, cancel := context.WithTimeout(e.ctx, 10*e.cfg.TickTime)
		done, err := e.register(ctx)
		cancel()
		if err != nil {
			e.stopServing(err)
			return
		}
		if done {
			e.logger.Info("zoo: this replica's data dir is the one the ensemble records", "data-dir-id", fmt.Sprintf("%x", e.instance))
		}
	}
}

// register checks and makes this replica's record: done once it holds this
// data dir, an error if it holds another.
func (e *Ensemble) register(ctx context.Context) (done bool, err error) {
	if err := e.sync(ctx); err != nil {
		return false, nil // try again later
	}
	if inst, ok := e.fsm.memberRecord(e.cfg.ID); ok {
		if !bytes.Equal(inst, e.instance) {
			return false, e.otherDir()
		}
		e.verified.Store(true)
		return true, nil
	}
	res, err := e.propose(ctx, &command{op: opRegister, member: e.cfg.ID, instance: e.instance})
	switch {
	case err != nil:
		return false, nil
	case errors.Is(res.err, errOtherInstance):
		return false, e.otherDir()
	case res.err != nil:
		return false, nil
	}
	e.verified.Store(true)
	return true, nil
}

// isMember reports whether this replica is in raft's latest configuration.
func (e *Ensemble) isMember() bool {
	f := e.raft.GetConfiguration()
	if f.Error() != nil {
		return false
	}
	for _, s := range f.Configuration().Servers {
		if string(s.ID) == e.cfg.ID {
			return true
		}
	}
	return false
}

// holdVote keeps back a vote request while this replica does not know that
// its data dir is the one the ensemble recorded for it, unless the candidate
// holds nothing beyond the bootstrap configuration (a new ensemble's first
// election). It asks the candidate for the record first (checkVote).
// send hands the request to raft later: it is the transport's, as
// e.notices is not set yet when the first request may arrive.
func (e *Ensemble) holdVote(rpc raft.RPC, send func(raft.RPC) bool) bool {
	req, ok := rpc.Command.(*raft.RequestVoteRequest)
	if !ok || e.instance == nil || e.verified.Load() || req.LastLogIndex <= 1 {
		return false
	}
	candidate := raft.ServerAddress(append([]byte(nil), req.Addr...))
	go e.checkVote(rpc, candidate, send)
	return true
}

// checkVote asks the candidate what it recorded for this replica: nothing or
// this data dir, and raft gets the request; another dir stops the replica;
// no answer refuses the vote.
func (e *Ensemble) checkVote(rpc raft.RPC, candidate raft.ServerAddress, send func(raft.RPC) bool) {
	ctx, cancel := context.WithTimeout(e.ctx, e.cfg.TickTime)
	defer cancel()
	inst, known, err := e.askMemberRecord(ctx, candidate)
	switch {
	case err != nil:
		rpc.Respond(nil, fmt.Errorf("zoo: vote held back: cannot ask %s whether this replica's data dir is its own: %w", candidate, err))
	case known && !bytes.Equal(inst, e.instance):
		err := e.otherDir()
		rpc.Respond(nil, err)
		e.stopServing(err)
	default:
		if known {
			e.verified.Store(true)
		}
		send(rpc)
	}
}
