package zoo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"github.com/hashicorp/raft-wal/verifier"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/zooraft/zoo/internal/memnet"
	"github.com/zooraft/zoo/internal/peer"
)

// Ensemble is one replica of a zoo ensemble. It serves sessions created on it:
// reads from its local copy of the tree, writes through the raft leader.
type Ensemble struct {
	cfg         Config
	logger      *slog.Logger
	raft        *raft.Raft
	fsm         *fsm
	watches     *watchRegistry
	transport   Transport
	notices     *noticeTransport // slips commit notices into raft (commit_notice_follower.go)
	logs        raft.LogStore
	closeLogs   func() error  // the log store (the WAL, or raft.db)
	closeStable func() error  // raft.db
	logPath     string        // where the raft log is, for errors
	raftLease   time.Duration // raft's LeaderLeaseTimeout (leader_loss.go)
	reloadMu    sync.Mutex    // orders changes to raft's reloadable config (reloadRaft)
	tracker     *sessionTracker

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine the ensemble starts

	mu       sync.Mutex // guards sessions, clients, readOnly
	sessions map[int64]*Session
	clients  map[raft.ServerAddress]*peer.Client
	readOnly map[*Session]struct{} // live read-only handles (readonly.go); nil when none yet

	commits *commitBroadcaster // leader: tells followers of commits at once

	// admitting is raft once started, for the transport's admission checks
	// (links.go), which run on the transport's goroutines.
	admitting atomic.Pointer[raft.Raft]

	leaderMu    sync.Mutex // guards the leadership last seen, for Status.LeaderSince
	leaderTerm  uint64
	leaderID    raft.ServerID
	leaderSince time.Time

	closed         atomic.Bool
	failed         atomic.Pointer[error] // set when the replica stopped serving for good (integrity.go)
	instance       []byte                // this data dir's instance id; nil in memory (identity.go)
	verifier       *verifier.LogStore    // checks raft.db online; nil in memory (integrity_verifier.go)
	verifierCounts verifierCounts        // its reports
	verified       atomic.Bool           // the ensemble's record of this replica names instance
	stable         raft.StableStore      // raft.db's stable store; nil in memory
	// ensembleID is the ensemble's id as stored in stable, nil until known
	// (identity_ensemble.go).
	ensembleID atomic.Pointer[[]byte]
	stopped    chan struct{} // closed then
	closeOnce  sync.Once
	closeErr   error
}

// Open starts a replica. With a fresh Dir it bootstraps the ensemble from
// Peers (or joins, with Join); with a Dir that holds state it restarts from it.
// Open does not wait for a leader: calls wait for one, up to their context.
func Open(cfg Config) (*Ensemble, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	e := &Ensemble{cfg: cfg, logger: cfg.Logger.With("replica", cfg.ID),
		sessions: map[int64]*Session{}, clients: map[raft.ServerAddress]*peer.Client{}, stopped: make(chan struct{})}
	e.ctx, e.cancel = context.WithCancel(context.Background())
	if err := e.open(); err != nil {
		e.cancel()
		e.release()
		return nil, err
	}
	return e, nil
}

// open starts the replica's parts in order; on error, release undoes them.
func (e *Ensemble) open() error {
	hlog := newHCLogger(e.cfg.Logger, "raft")
	stable, snaps, err := e.openStores(hlog)
	if err != nil {
		return err
	}
	if err := e.openTransport(hlog); err != nil {
		return err
	}
	raftTrans, notices := newNoticeTransport(e.transport.Raft(), e.holdVote)
	e.notices = notices
	e.newStateMachine()
	rc := e.raftConfig(hlog)
	if err := e.bootstrapIfNew(rc, stable, snaps, raftTrans); err != nil {
		return err
	}
	guard, _ := snaps.(*snapshotGuard)
	if guard != nil {
		e.fsm.onRestoreFailed = guard.restoreFailed
	}
	r, err := raft.NewRaft(rc, e.fsm, e.logs, stable, snaps, raftTrans)
	err = e.checkStart(guard, err)
	if err == nil {
		err = e.checkEnsembleOfState() // raft restored the newest snapshot
	}
	if err != nil {
		if r != nil {
			r.Shutdown().Error()
		}
		return err
	}
	e.raft = r
	e.admitting.Store(r)
	notices.setLastIndex(r.LastIndex)
	e.startLoops(hlog)
	return nil
}

// openStores opens raft.db (the stable store), the raft log (logstore.go)
// behind a cache of recent entries, and the snapshots in Dir, or all in
// memory without one.
func (e *Ensemble) openStores(hlog hclog.Logger) (raft.StableStore, raft.SnapshotStore, error) {
	cfg := e.cfg
	if cfg.Dir == "" {
		mem := raft.NewInmemStore()
		e.logs, e.logPath = mem, "the in-memory raft log"
		return mem, raft.NewInmemSnapshotStore(), nil
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, nil, fmt.Errorf("zoo: create data dir: %w", err)
	}
	path := filepath.Join(cfg.Dir, "raft.db")
	store, err := openBoltStore(path)
	if err != nil {
		if errors.Is(err, bolterrors.ErrTimeout) {
			return nil, nil, fmt.Errorf("%w: %s", ErrDirLocked, cfg.Dir)
		}
		return nil, nil, fmt.Errorf("zoo: open raft log %s: %w", path, err)
	}
	e.closeStable = store.Close
	logs, logPath, err := e.openLogStore(store, hlog)
	if err != nil {
		return nil, nil, err
	}
	e.logPath = logPath
	// Recent entries from memory: the leader reads every entry back to
	// replicate it, and followers check the previous entry of each append.
	// raft -> the cache -> the verifier -> the log store: the verifier sees
	// every entry written and reads back from disk, never from the cache.
	var reads raft.LogStore
	if wl, ok := logs.(*walLog); ok {
		// The verifier reads the WAL back its own way (logstore_readback.go).
		e.verifier = e.verifiedLog(&walReadBack{walLog: wl})
		reads = readSplit{e.verifier, wl}
	} else {
		e.verifier = e.verifiedLog(logs)
		reads = e.verifier
	}
	e.closeLogs = e.verifier.Close // and the log store
	cached, err := raft.NewLogCache(logCacheSize, reads)
	if err != nil {
		return nil, nil, fmt.Errorf("zoo: raft log cache: %w", err)
	}
	e.logs = cached
	snaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.Dir, cfg.SnapshotsRetained, hlog)
	if err != nil {
		return nil, nil, fmt.Errorf("zoo: open snapshots in %s: %w", cfg.Dir, err)
	}
	guard := &snapshotGuard{SnapshotStore: snaps, logs: e.logs, dir: cfg.Dir}
	existing, err := raft.HasExistingState(e.logs, store, guard)
	if err != nil {
		return nil, nil, fmt.Errorf("zoo: inspect data dir %s: %w", cfg.Dir, err)
	}
	if e.instance, err = claimDir(store, cfg.ID, cfg.Dir, existing); err != nil {
		return nil, nil, err
	}
	if f, ok := logs.(*walLog); ok {
		if err := claimWAL(f.WAL, store, cfg.ID, cfg.Dir, e.instance); err != nil {
			return nil, nil, err
		}
		if err := f.checkFloor(); err != nil {
			return nil, nil, err
		}
	}
	id, err := loadEnsembleID(store)
	if err != nil {
		return nil, nil, fmt.Errorf("zoo: data dir %s: %w", cfg.Dir, err)
	}
	if id != nil {
		e.ensembleID.Store(&id)
	}
	e.stable = store
	return store, guard, nil
}

// openTransport takes the configured transport, opens the TCP port, or, for
// a lone in-memory replica that nobody will ever dial, an in-memory one.
func (e *Ensemble) openTransport(hlog hclog.Logger) error {
	switch {
	case e.cfg.Transport != nil:
		e.transport = e.cfg.Transport
	case e.cfg.BindAddr == "":
		ep, err := memnet.New().Endpoint(raft.ServerAddress("zoo-" + e.cfg.ID))
		if err != nil {
			return err
		}
		e.transport = ep
	default:
		t, err := e.openTCPTransport(hlog)
		if err != nil {
			return err
		}
		e.transport = t
	}
	return nil
}

// newStateMachine builds the FSM with its watch registry, and the leader's
// commit notices that follow its applies.
func (e *Ensemble) newStateMachine() {
	e.watches = newWatchRegistry()
	e.fsm = newFSM(e.watches, e.logger)
	e.fsm.onSessionsEnded = e.sessionsEnded
	e.fsm.store = e.logPath
	e.fsm.onBroken = func(c *CorruptionError) { e.stopServing(c) }
	e.commits = newCommitBroadcaster(e)
	if e.cfg.hooks == nil || !e.cfg.hooks.noCommitBroadcast {
		e.fsm.onApplied = e.commits.applied
	}
}

// raftConfig derives raft's timing from TickTime.
func (e *Ensemble) raftConfig(hlog hclog.Logger) *raft.Config {
	cfg := e.cfg
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.ID)
	rc.Logger = hlog
	half := cfg.TickTime / 2
	rc.HeartbeatTimeout = half
	rc.ElectionTimeout = half
	// A lease as long as the heartbeat timeout for short ticks: a shorter one
	// makes a leader on a busy machine step down for a single late heartbeat
	// round. From a 1 s heartbeat timeout up (the default tick), half of it,
	// raft's own ratio and still five heartbeat rounds: a follower that
	// finds its leader dead lowers its timeout to the lease (leader_loss.go).
	rc.LeaderLeaseTimeout = half
	if half >= time.Second {
		rc.LeaderLeaseTimeout = half / 2
	}
	rc.CommitTimeout = min(rc.CommitTimeout, half/2)
	rc.SnapshotThreshold = cfg.SnapshotThreshold
	rc.SnapshotInterval = max(cfg.TickTime*5, time.Second)
	rc.TrailingLogs = max(cfg.SnapshotThreshold, 64)
	rc.MaxAppendEntries = 256
	rc.BatchApplyCh = true
	rc.NoSnapshotRestoreOnStart = false
	if cfg.hooks != nil && cfg.hooks.tuneRaft != nil {
		cfg.hooks.tuneRaft(rc)
	}
	e.raftLease = rc.LeaderLeaseTimeout
	return rc
}

// reloadRaft changes raft's reloadable config: the snapshot threshold
// (snapshot_schedule.go) and the heartbeat timeout (leader_loss.go) move
// independently, and raft's ReloadConfig replaces every field at once, so
// each change reads the config afresh under one lock.
func (e *Ensemble) reloadRaft(change func(*raft.ReloadableConfig)) error {
	e.reloadMu.Lock()
	defer e.reloadMu.Unlock()
	rc := e.raft.ReloadableConfig()
	change(&rc)
	return e.raft.ReloadConfig(rc)
}

// bootstrapIfNew writes the initial configuration (Peers, or this replica
// alone) into stores that hold no state, unless the replica joins.
//
// Bootstrap writes into the stores before raft starts. Bootstrapping a
// running raft instead races with the members that started first: their
// leader may already have replicated to us, and the bootstrap then fails with
// "bootstrap only works on new clusters".
func (e *Ensemble) bootstrapIfNew(rc *raft.Config, stable raft.StableStore, snaps raft.SnapshotStore, trans raft.Transport) error {
	cfg := e.cfg
	existing, err := raft.HasExistingState(e.logs, stable, snaps)
	if err != nil {
		return fmt.Errorf("zoo: inspect data dir: %w", err)
	}
	if existing || cfg.Join {
		return nil
	}
	if err := checkSelfListed(cfg, string(e.transport.Raft().LocalAddr())); err != nil {
		return err
	}
	peers := cfg.Peers
	if len(peers) == 0 {
		peers = []Peer{{ID: cfg.ID, Addr: string(e.transport.Raft().LocalAddr())}}
	}
	var servers []raft.Server
	for _, p := range peers {
		s := raft.Server{ID: raft.ServerID(p.ID), Address: raft.ServerAddress(p.Addr), Suffrage: raft.Voter}
		if p.Observer {
			s.Suffrage = raft.Nonvoter
		}
		servers = append(servers, s)
	}
	if err := raft.BootstrapCluster(rc, e.logs, stable, snaps, trans, raft.Configuration{Servers: servers}); err != nil {
		return fmt.Errorf("zoo: bootstrap: %w", err)
	}
	return nil
}

// startLoops starts what runs beside raft: the peer RPC server, session
// liveness and expiry, reaping, commit notices and the leader watch.
func (e *Ensemble) startLoops(hlog hclog.Logger) {
	e.tracker = newSessionTracker(e)
	e.goRun(func() {
		peer.Serve(e.ctx, e.transport.Listener(), e.handleRPC, e.startRPC, rpcCodeOf, hlog.Named("rpc"))
	})
	e.goRun(e.tracker.run)
	e.goRun(e.touchLoop)
	e.goRun(e.reapLoop)
	e.goRun(e.commits.run)
	e.goRun(e.watchLeader)
	e.goRun(e.leaveOnFailure)
	e.goRun(e.registerLoop)
	e.goRun(e.ensembleLoop)
	e.goRun(e.checkpointLoop)
	e.goRun(e.snapshotLoop)
	e.goRun(e.leaderLossLoop)
}

// checkSelfListed refuses Peers that list this replica on another port than
// the one it advertises (say it was bound to a free port): the other members
// could never reach it. Hosts may differ ("localhost" for "127.0.0.1", a name
// for an address), so only ports are compared.
func checkSelfListed(cfg Config, advertised string) error {
	_, port, err := net.SplitHostPort(advertised)
	if err != nil {
		return nil // not host:port (an in-memory transport)
	}
	for i, p := range cfg.Peers {
		if _, listed, err := net.SplitHostPort(p.Addr); p.ID == cfg.ID && err == nil && listed != port {
			return &ConfigError{fmt.Sprintf("Peers[%d]", i), fmt.Sprintf(
				"lists this replica at %q but it advertises %q: the other members could not reach it", p.Addr, advertised)}
		}
	}
	return nil
}

// logCacheSize is how many recent raft log entries are kept in memory: twice
// raft's MaxAppendEntries, so the entries in flight are read from memory. It
// pins at most that many commands (each at most 1 MiB of data) beyond what the
// tree holds.
const logCacheSize = 512

// goRun starts a goroutine that Close waits for.
func (e *Ensemble) goRun(fn func()) {
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		fn()
	}()
}

// Close stops this replica. It does not close the sessions it serves: like a
// crashed ZooKeeper server's clients, they expire on the surviving replicas
// after their timeout (close them first for prompt cleanup). Close is
// idempotent; afterwards every method returns ErrClosed.
func (e *Ensemble) Close() error {
	e.closeOnce.Do(func() {
		e.closed.Store(true)
		e.cancel()
		if e.raft != nil {
			if err := e.raft.Shutdown().Error(); err != nil {
				e.closeErr = err
			}
		}
		e.release()
		e.wg.Wait()
		e.mu.Lock()
		local := make([]*Session, 0, len(e.sessions))
		for _, s := range e.sessions {
			local = append(local, s)
		}
		e.sessions = map[int64]*Session{}
		e.mu.Unlock()
		for _, s := range local {
			s.end(ErrClosed)
		}
		e.closeReadOnly()
	})
	return e.closeErr
}

// release frees the transport, peer clients and the log store.
func (e *Ensemble) release() {
	e.mu.Lock()
	for _, c := range e.clients {
		c.Close()
	}
	e.clients = map[raft.ServerAddress]*peer.Client{}
	e.mu.Unlock()
	if e.notices != nil {
		e.notices.shutdown()
	}
	if e.transport != nil {
		e.transport.Close()
	}
	if e.closeLogs != nil {
		if err := e.closeLogs(); err != nil && e.closeErr == nil {
			e.closeErr = err
		}
		e.closeLogs = nil
	}
	if e.closeStable != nil {
		if err := e.closeStable(); err != nil && e.closeErr == nil {
			e.closeErr = err
		}
		e.closeStable = nil
	}
}

// ID returns this replica's ID.
func (e *Ensemble) ID() string { return e.cfg.ID }

// Addr returns the address other replicas use to reach this one.
func (e *Ensemble) Addr() string { return string(e.transport.Raft().LocalAddr()) }

// waitForLeaderTime bounds how long a call waits for a leader before it
// reports ErrNotServing: a few election rounds.
func (e *Ensemble) waitForLeaderTime() time.Duration { return 4 * e.cfg.TickTime }

// propose replicates cmd through the leader and returns once this replica has
// applied it, so the caller reads its own write and has seen its watch events.
// After ErrConnectionLoss the outcome is unknown: the write may have committed.
func (e *Ensemble) propose(ctx context.Context, c *command) (*applyResult, error) {
	slot := slotFrom(ctx)
	if slot != nil {
		if err := slot.awaitTurn(ctx); err != nil {
			return nil, err
		}
	}
	b := encodeCommand(c)
	var noLeaderSince time.Time
	for attempt := 0; ; attempt++ {
		if e.closed.Load() {
			return nil, ErrClosed
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		addr, id := e.raft.LeaderWithID()
		var res *applyResult
		var err error
		if slot != nil && id != "" {
			if err := slot.admit(ctx, id, e.raft.CurrentTerm()); err != nil {
				return nil, err
			}
		}
		submitted := func() {
			if slot != nil {
				slot.markSubmitted(id, e.raft.CurrentTerm())
			}
		}
		switch {
		case id == "":
			err = errNoLeader
		case id == raft.ServerID(e.cfg.ID):
			f := e.startApply(ctx, b)
			submitted()
			res, err = e.finishApply(f)
		default:
			res, err = e.forwardApply(ctx, addr, b, submitted)
			if err == nil {
				e.noticeCommit(commitNotice{index: res.index, term: res.term, leaderID: id, leaderAddr: addr})
			}
		}
		if err == nil {
			if slot != nil {
				slot.finish(false) // committed: a later write may go anywhere
			}
			if werr := e.waitLocalApply(ctx, res.index); werr != nil {
				return nil, werr
			}
			return res, nil
		}
		if slot != nil && slot.wasSubmitted() {
			refused := errors.Is(err, errNoLeader) || errors.Is(err, errNotLeader)
			if !refused || !slot.retract() {
				// A later write may already be on its way: retrying could
				// reorder them. The outcome is not known.
				slot.finish(true)
				if refused {
					return nil, fmt.Errorf("%w: the leader changed under pipelined writes", ErrConnectionLoss)
				}
				return nil, err
			}
			// Refused, and nothing was sent after it: send it again below.
		}
		if !errors.Is(err, errNoLeader) && !errors.Is(err, errNotLeader) {
			return nil, err
		}
		// Nothing was sent, or the receiver refused it: safe to retry.
		if noLeaderSince.IsZero() {
			noLeaderSince = time.Now()
		} else if time.Since(noLeaderSince) > e.waitForLeaderTime() {
			return nil, ErrNotServing
		}
		if !e.sleep(ctx, e.retryDelay(attempt)) {
			if e.closed.Load() {
				return nil, ErrClosed
			}
			return nil, ctx.Err()
		}
	}
}

// waitLocalApply waits until this replica applied a write the leader
// committed. A replica cut off right after the commit cannot show the write to
// its session, so after a bound it reports ErrConnectionLoss: the write did
// commit, but this replica cannot confirm it.
func (e *Ensemble) waitLocalApply(ctx context.Context, index uint64) error {
	ctx, cancel := context.WithTimeout(ctx, e.cfg.MaxSessionTimeout)
	defer cancel()
	stop := context.AfterFunc(e.ctx, cancel)
	defer stop()
	if err := e.fsm.waitApplied(ctx, index); err != nil {
		if e.closed.Load() {
			return ErrClosed
		}
		return fmt.Errorf("%w: committed at %d but not applied here: %v", ErrConnectionLoss, index, err)
	}
	return nil
}

func (e *Ensemble) retryDelay(attempt int) time.Duration {
	return min(time.Duration(attempt+1)*5*time.Millisecond, e.cfg.TickTime/4)
}

// sleep waits d, or until ctx or the ensemble ends (then false).
func (e *Ensemble) sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-e.ctx.Done():
		return false
	}
}

var (
	// errNoLeader: no leader is known right now; nothing was sent.
	errNoLeader = errors.New("zoo: no leader")
	// errNotLeader: the receiver is not the leader and did not apply the command.
	errNotLeader = errors.New("zoo: not the leader")
)

// applyAsLeader stamps the command as leader (startApply) and applies it.
func (e *Ensemble) applyAsLeader(ctx context.Context, b []byte) (*applyResult, error) {
	return e.finishApply(e.startApply(ctx, b))
}

// startApply stamps the leader's time and tree digest into the command and
// hands it to raft: commands started one after another are appended in that
// order.
func (e *Ensemble) startApply(ctx context.Context, b []byte) raft.ApplyFuture {
	b = append([]byte(nil), b...)
	at, digest := e.fsm.digestNow()
	stampLeader(b, time.Now(), at, digest)
	timeout := 30 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		timeout = max(time.Until(dl), time.Millisecond)
	}
	return e.raft.Apply(b, timeout)
}

// finishApply waits for a started command's result.
func (e *Ensemble) finishApply(f raft.ApplyFuture) (*applyResult, error) {
	if err := e.await(f); err != nil {
		switch {
		case errors.Is(err, raft.ErrNotLeader):
			return nil, errNotLeader
		case errors.Is(err, raft.ErrRaftShutdown):
			return nil, ErrClosed
		case errors.Is(err, raft.ErrEnqueueTimeout):
			return nil, fmt.Errorf("%w: not enqueued in time", ErrOperationTimeout)
		}
		// ErrLeadershipLost and friends: the entry may still commit.
		return nil, fmt.Errorf("%w: %v", ErrConnectionLoss, err)
	}
	res, ok := f.Response().(*applyResult)
	if !ok {
		return nil, fmt.Errorf("%w: unexpected FSM response %T", ErrSystemError, f.Response())
	}
	return res, nil
}

// await waits for a raft future, or until this replica closes (ErrClosed).
// raft never answers a future still queued when it shuts down (an Apply in
// its buffered applyCh, or a committed batch not yet handed to the FSM;
// hashicorp/raft#498), so f.Error() alone could block its caller forever.
// The helper goroutine is not tracked by e.wg on purpose: in that case it
// stays blocked after Close, which is the lesser evil.
func (e *Ensemble) await(f raft.Future) error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		return err
	case <-e.ctx.Done():
		return ErrClosed
	}
}
