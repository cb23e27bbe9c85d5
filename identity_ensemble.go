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

// This file is which ensemble a replica belongs to, so that two ensembles
// never mix. A config that lists another ensemble's host or port, or a data
// dir copied from another ensemble, would otherwise let one ensemble's leader
// overwrite the other's log, or depose the other's leaders with its terms.
//
// The first leader names the ensemble with a random id (opEnsemble). Every
// member applies it, keeps it in its snapshots, and once applied stores it in
// raft.db's stable store (keyEnsemble), so that it knows the id before it
// replays anything at its next start. Every link between replicas begins
// with both sides' ids (internal/peer): a replica of another ensemble is
// refused before raft or the peer RPC hears a word from it. A replica that
// does not know its ensemble yet (new, or wiped) is let in; the data dir
// records of identity.go guard that case. A state whose id is not the stored
// one (a snapshot from elsewhere, found at Open or installed by a leader)
// stops the replica.

// keyEnsemble is the stable store key of the ensemble's id.
var keyEnsemble = []byte("zoo.ensemble")

// ensembleIDBytes is the length of an ensemble id.
const ensembleIDBytes = 16

// errEnsembleNamed is an opEnsemble's result when the ensemble already has
// another id: the first one stays.
var errEnsembleNamed = errors.New("zoo: the ensemble already has an id")

// nameEnsemble applies opEnsemble.
func (f *fsm) nameEnsemble(id []byte) error {
	switch {
	case len(id) != ensembleIDBytes:
		return fmt.Errorf("zoo: an ensemble id of %d bytes, want %d", len(id), ensembleIDBytes)
	case f.ensemble == nil:
		f.ensemble = bytes.Clone(id)
		return nil
	case bytes.Equal(f.ensemble, id):
		return nil
	}
	return errEnsembleNamed
}

// ensembleID is the id in the replicated state, nil before the first
// leader named the ensemble.
func (f *fsm) ensembleID() []byte {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.ensemble
}

// loadEnsembleID reads the stored ensemble id, nil if none is stored yet.
func loadEnsembleID(stable raft.StableStore) ([]byte, error) {
	id, err := stable.Get(keyEnsemble)
	switch {
	case errors.Is(err, raftboltdb.ErrKeyNotFound) || (err == nil && len(id) == 0):
		return nil, nil
	case err != nil:
		return nil, err
	case len(id) != ensembleIDBytes:
		return nil, fmt.Errorf("zoo: raft.db holds an ensemble id of %d bytes, want %d", len(id), ensembleIDBytes)
	}
	return id, nil
}

// storedEnsemble is the ensemble id this replica stored: what it tells and
// expects of every peer on a link. Nil when unknown.
func (e *Ensemble) storedEnsemble() []byte {
	if p := e.ensembleID.Load(); p != nil {
		return *p
	}
	return nil
}

// checkEnsembleOfState refuses a replicated state named for another
// ensemble than the one this replica stored.
func (e *Ensemble) checkEnsembleOfState() error {
	have, stored := e.fsm.ensembleID(), e.storedEnsemble()
	if have == nil || stored == nil || bytes.Equal(have, stored) {
		return nil
	}
	return &IdentityError{e.cfg.ID, e.cfg.Dir, fmt.Sprintf("its replicated state (its newest snapshot, or one a leader "+
		"sent) belongs to ensemble %x, but raft.db to ensemble %x: a snapshot of another ensemble is in this dir, "+
		"or another ensemble's leader reached this replica", have, stored)}
}

// ensembleLoop has the leader name a new ensemble, stores the id once
// applied, and stops the replica if its state ever names another ensemble.
func (e *Ensemble) ensembleLoop() {
	if e.stable == nil {
		return // in memory: nothing survives to be mixed up
	}
	tick := time.NewTicker(e.cfg.TickTime)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
		case <-e.ctx.Done():
			return
		}
		if err := e.checkEnsembleOfState(); err != nil {
			e.stopServing(err)
			return
		}
		have := e.fsm.ensembleID()
		switch {
		case have != nil && e.storedEnsemble() == nil:
			if err := e.stable.Set(keyEnsemble, have); err != nil {
				e.logger.Error("zoo: cannot store the ensemble id; will retry", "err", err)
				continue
			}
			e.ensembleID.Store(&have)
			e.logger.Info("zoo: this replica belongs to ensemble", "ensemble-id", fmt.Sprintf("%x", have))
		case have == nil && e.raft.State() == raft.Leader:
			e.nameEnsemble()
		}
	}
}

// nameEnsemble proposes the ensemble's id: the one this replica stored (an
// ensemble of an older zoo that has none in its state), or a new one.
func (e *Ensemble) nameEnsemble() {
	id := e.storedEnsemble()
	if id == nil {
		id = make([]byte, ensembleIDBytes)
		if _, err := rand.Read(id); err != nil {
			e.logger.Error("zoo: cannot make an ensemble id", "err", err)
			return
		}
	}
	ctx, cancel := context.WithTimeout(e.ctx, 10*e.cfg.TickTime)
	defer cancel()
	if _, err := e.propose(ctx, &command{op: opEnsemble, ensemble: id}); err != nil {
		e.logger.Debug("zoo: naming the ensemble; will retry", "err", err)
	}
}
