package zoo

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// sessionTracker decides session expiry. Only the leader's tracker acts, from
// its own monotonic clock: every replica reports ("touches") the sessions it
// serves, and a session that nobody touched for its timeout is expired by a
// replicated closeSession. A replica that becomes leader starts every session
// with a full timeout, so a failover expires nobody.
type sessionTracker struct {
	e        *Ensemble
	mu       sync.Mutex // guards deadlines, expiring, leading
	deadline map[int64]time.Time
	expiring map[int64]bool // closeSession proposed, not yet applied
	leading  bool
	term     uint64 // raft term of the leadership the deadlines belong to
}

func newSessionTracker(e *Ensemble) *sessionTracker {
	return &sessionTracker{e: e, deadline: map[int64]time.Time{}, expiring: map[int64]bool{}}
}

// sessionTouch reports one session alive; idle is how long ago its client was
// last heard from (0 for embedded sessions, which live as long as their handle).
type sessionTouch struct {
	id   int64
	idle time.Duration
}

// touch renews sessions reported alive: each now expires a full timeout after
// its client was last heard from, never earlier than already granted.
func (t *sessionTracker) touch(touches []sessionTouch) {
	now := time.Now()
	t.e.fsm.mu.RLock()
	t.mu.Lock()
	for _, tc := range touches {
		if s := t.e.fsm.sessions[tc.id]; s != nil && t.leading {
			dl := now.Add(time.Duration(s.timeout)*time.Millisecond - tc.idle)
			if dl.After(t.deadline[tc.id]) {
				t.deadline[tc.id] = dl
			}
		}
	}
	t.mu.Unlock()
	t.e.fsm.mu.RUnlock()
}

// run checks for expired sessions every half tick while this replica leads.
func (t *sessionTracker) run() {
	tick := time.NewTicker(t.e.cfg.TickTime / 2)
	defer tick.Stop()
	for {
		select {
		case <-t.e.ctx.Done():
			return
		case <-tick.C:
		}
		leading := t.e.raft.State() == raft.Leader
		for _, id := range t.check(leading, t.e.raft.CurrentTerm(), time.Now()) {
			t.e.goRun(func() { t.expire(id) })
		}
	}
}

// check reconciles the deadlines with the session table and returns the
// sessions now due to expire.
func (t *sessionTracker) check(leading bool, term uint64, now time.Time) []int64 {
	t.e.fsm.mu.RLock()
	defer t.e.fsm.mu.RUnlock()
	t.mu.Lock()
	defer t.mu.Unlock()
	if !leading || term != t.term {
		// Lost leadership, or lost and regained it between two checks: touches
		// may have gone to another leader meanwhile, so start afresh.
		clear(t.deadline)
		clear(t.expiring)
	}
	t.leading, t.term = leading, term
	if !leading {
		return nil
	}
	var due []int64
	for id, s := range t.e.fsm.sessions {
		dl, ok := t.deadline[id]
		if !ok {
			t.deadline[id] = now.Add(time.Duration(s.timeout) * time.Millisecond)
			continue
		}
		if now.After(dl) && !t.expiring[id] {
			t.expiring[id] = true
			due = append(due, id)
		}
	}
	for id := range t.deadline {
		if t.e.fsm.sessions[id] == nil {
			delete(t.deadline, id)
			delete(t.expiring, id)
		}
	}
	slices.Sort(due)
	return due
}

func (t *sessionTracker) expire(id int64) {
	ctx, cancel := context.WithTimeout(t.e.ctx, 10*t.e.cfg.TickTime)
	defer cancel()
	t.e.logger.Info("zoo: expiring session", "session", id)
	// Only as leader, never forwarded: a deposed leader's verdict is stale.
	_, err := t.e.applyAsLeader(ctx, encodeCommand(&command{op: opCloseSession, session: id, expired: true}))
	if err != nil {
		t.mu.Lock()
		delete(t.expiring, id) // try again next check
		t.mu.Unlock()
	}
}

// touchLoop reports this replica's live sessions to the leader every half tick.
func (e *Ensemble) touchLoop() {
	tick := time.NewTicker(e.cfg.TickTime / 2)
	defer tick.Stop()
	for {
		select {
		case <-e.ctx.Done():
			return
		case <-tick.C:
		}
		now := time.Now()
		e.mu.Lock()
		touches := make([]sessionTouch, 0, len(e.sessions))
		for id, s := range e.sessions {
			idle, ok := s.idle(now)
			if ok {
				touches = append(touches, sessionTouch{id: id, idle: idle})
			}
		}
		e.mu.Unlock()
		if len(touches) == 0 {
			continue
		}
		addr, id := e.raft.LeaderWithID()
		switch {
		case id == "":
		case id == raft.ServerID(e.cfg.ID):
			e.tracker.touch(touches)
		default:
			if err := e.sendTouches(addr, touches); err != nil {
				e.logger.Debug("zoo: touch failed", "leader", addr, "err", err)
			}
		}
	}
}

// reapLoop has the leader delete empty containers and expired TTL nodes.
func (e *Ensemble) reapLoop() {
	tick := time.NewTicker(e.cfg.ContainerCheckInterval)
	defer tick.Stop()
	for {
		select {
		case <-e.ctx.Done():
			return
		case <-tick.C:
		}
		if e.raft.State() != raft.Leader {
			continue
		}
		now := time.Now().UnixMilli()
		var due []string
		// Scan a copy-on-write clone (O(1) to take, under the write lock as
		// btree's Clone requires), so a big tree's scan never holds applies up.
		e.fsm.mu.Lock()
		nodes := e.fsm.tree.nodes.Clone()
		e.fsm.mu.Unlock()
		nodes.Ascend(func(n *znode) bool {
			if n.reapable(now) {
				due = append(due, n.path)
			}
			return len(due) < 10000 // ZooKeeper's default znode.container.maxPerMinute
		})
		for _, p := range due {
			ctx, cancel := context.WithTimeout(e.ctx, 10*e.cfg.TickTime)
			_, err := e.applyAsLeader(ctx, encodeCommand(&command{op: opReap, path: p}))
			cancel()
			if err != nil {
				break
			}
		}
	}
}
