package zoo_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/zooraft/zoo"
)

// Sessions and their ephemerals through replica processes under the
// nemesis. One client per replica keeps a session there with an ephemeral
// node, and now and then closes it and opens another. Two rules are checked:
//
//   - No ephemeral outlives its session: once a Close returned, or a
//     session was seen to end, a synced read through any replica finds its
//     ephemeral gone.
//   - A session is never expired while its replica is healthy: a replica
//     that was not paused, killed, cut off or removed around the time its
//     session ended must not see it end. Leader changes (transfers, the
//     leader killed, paused or cut off elsewhere) do not count: the next
//     leader must keep the sessions that kept reporting.

// sessionTimeout is what the sessions ask for: the ensemble's maximum
// (20 ticks of the process tests' 300 ms).
const sessionTimeout = 6 * time.Second

// sessionInfo is the JSON of POST /session.
type sessionInfo struct {
	Session   int64
	Ephemeral string
}

// endedSession is a session that ended without being closed, as GET
// /sessions/ended reports it.
type endedSession struct {
	Client    string
	Session   int64
	Ephemeral string
	At        time.Time // when the replica process saw it end
	Err       string
}

// sessionClients are the session load's sessions in a replica process.
type sessionClients struct {
	e *zoo.Ensemble

	mu      sync.Mutex // guards live, closing, ended
	live    map[string]*sessionInfoLive
	ended   []endedSession
	closing map[int64]bool
}

type sessionInfoLive struct {
	s   *zoo.Session
	eph string
}

// ensure is POST /session?op=ensure&client=C: C's live session with its
// ephemeral, opened if there is none. 200 with a sessionInfo.
func (sc *sessionClients) ensure(ctx context.Context, client string) (sessionInfo, error) {
	sc.mu.Lock()
	l := sc.live[client]
	sc.mu.Unlock()
	if l != nil && l.s.Err() == nil {
		return sessionInfo{Session: l.s.ID(), Ephemeral: l.eph}, nil
	}
	s, err := sc.e.NewSession(ctx, zoo.WithSessionTimeout(sessionTimeout))
	if err != nil {
		return sessionInfo{}, err
	}
	eph := fmt.Sprintf("/eph/%s-%x", client, s.ID())
	if _, err := s.Create(ctx, eph, nil, zoo.ModeEphemeral, nil); err != nil {
		s.Close(context.WithoutCancel(ctx))
		return sessionInfo{}, err
	}
	sc.mu.Lock()
	if sc.live == nil {
		sc.live, sc.closing = map[string]*sessionInfoLive{}, map[int64]bool{}
	}
	sc.live[client] = &sessionInfoLive{s: s, eph: eph}
	sc.mu.Unlock()
	go func() {
		<-s.Done()
		at := time.Now()
		sc.mu.Lock()
		defer sc.mu.Unlock()
		if !sc.closing[s.ID()] {
			sc.ended = append(sc.ended, endedSession{Client: client, Session: s.ID(), Ephemeral: eph, At: at, Err: fmt.Sprint(s.Err())})
		}
	}()
	return sessionInfo{Session: s.ID(), Ephemeral: eph}, nil
}

// close is POST /session?op=close&client=C: close C's session. 200 with
// its sessionInfo only once Close succeeded.
func (sc *sessionClients) close(ctx context.Context, client string) (sessionInfo, error) {
	sc.mu.Lock()
	l := sc.live[client]
	if l == nil {
		sc.mu.Unlock()
		return sessionInfo{}, fmt.Errorf("client %s has no session", client)
	}
	sc.closing[l.s.ID()] = true
	delete(sc.live, client)
	sc.mu.Unlock()
	if err := l.s.Close(ctx); err != nil {
		return sessionInfo{}, err
	}
	return sessionInfo{Session: l.s.ID(), Ephemeral: l.eph}, nil
}

func (sc *sessionClients) handle(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	client := r.URL.Query().Get("client")
	var info sessionInfo
	var err error
	switch r.URL.Query().Get("op") {
	case "ensure":
		info, err = sc.ensure(ctx, client)
	case "close":
		info, err = sc.close(ctx, client)
	default:
		http.Error(w, "op: ensure or close", http.StatusBadRequest)
		return
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	json.NewEncoder(w).Encode(info)
}

func (sc *sessionClients) handleEnded(w http.ResponseWriter, _ *http.Request) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	json.NewEncoder(w).Encode(sc.ended)
}

// sessionLoad runs one session client per replica of pc until ctx ends,
// and reports ephemerals found after their session was closed.
type sessionLoad struct {
	pc *processCluster

	mu         sync.Mutex // guards the fields below
	closed     int        // sessions closed, and their ephemerals checked
	violations []string
	last       map[string]sessionInfo // each client's session, as last seen
	replaced   []endedSession         // sessions seen replaced without a Close: they ended
}

func (sl *sessionLoad) run(ctx context.Context, seed uint64, wg *sync.WaitGroup) {
	for i, p := range sl.pc.procs {
		client := fmt.Sprintf("s%d", i)
		rng := rand.New(rand.NewPCG(seed, uint64(2000+i)))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				time.Sleep(time.Duration(100+rng.IntN(400)) * time.Millisecond)
				if !p.alive.Load() {
					continue
				}
				op := "ensure"
				if rng.IntN(5) == 0 {
					op = "close"
				}
				octx, cancel := context.WithTimeout(ctx, 8*time.Second)
				code, body, err := sl.pc.do(octx, http.MethodPost, p, "session", url.Values{"op": {op}, "client": {client}}, "")
				cancel()
				if op == "close" { // whatever came of it, the next session is not a replacement
					sl.mu.Lock()
					delete(sl.last, client)
					sl.mu.Unlock()
				}
				var info sessionInfo
				if err != nil || code != http.StatusOK || json.Unmarshal([]byte(body), &info) != nil {
					continue
				}
				if op == "ensure" {
					sl.seen(client, info)
					continue
				}
				if present, ok := sl.present(ctx, rng, info.Ephemeral); ok && present {
					sl.violation("ephemeral %s of session %#x found after its Close returned", info.Ephemeral, info.Session)
				}
				sl.mu.Lock()
				sl.closed++
				sl.mu.Unlock()
			}
		}()
	}
}

// seen notes the session a client has now; another than before, not
// closed by the client, means the one before ended (the replica may have
// died with it: the replica's own report is gone then).
func (sl *sessionLoad) seen(client string, info sessionInfo) {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	if sl.last == nil {
		sl.last = map[string]sessionInfo{}
	}
	if before, ok := sl.last[client]; ok && before.Session != info.Session {
		sl.replaced = append(sl.replaced, endedSession{Client: client, Session: before.Session,
			Ephemeral: before.Ephemeral, At: time.Now(), Err: "replaced by another session"})
	}
	sl.last[client] = info
}

// present reads path after a sync through a random live replica; ok is
// false if no answer came.
func (sl *sessionLoad) present(ctx context.Context, rng *rand.Rand, path string) (present, ok bool) {
	p := sl.pc.procs[rng.IntN(len(sl.pc.procs))]
	if !p.alive.Load() {
		return false, false
	}
	octx, cancel := context.WithTimeout(ctx, 8*time.Second)
	defer cancel()
	code, _, err := sl.pc.do(octx, http.MethodGet, p, "znode", url.Values{"path": {path}}, "")
	switch {
	case err != nil:
		return false, false
	case code == http.StatusNotFound:
		return false, true
	case code == http.StatusOK:
		return true, true
	}
	return false, false
}

func (sl *sessionLoad) violation(format string, args ...any) {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	sl.violations = append(sl.violations, fmt.Sprintf(format, args...))
}

// check, once the load stopped on a healed ensemble whose leader holds
// since quiet: every session that ended (a replica saw it, or its client
// saw it replaced) had its ephemeral gone within a timeout (and a grace) of
// when the end was seen or of quiet, whichever is later, and ended while,
// or just after, its replica was disturbed.
func (sl *sessionLoad) check(t *testing.T, n *nemesis, quiet time.Time) {
	t.Helper()
	byID := map[int64]endedSession{}
	procOf := map[string]*replicaProc{}
	for i, p := range sl.pc.procs {
		procOf[fmt.Sprintf("s%d", i)] = p
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		code, body, err := sl.pc.do(ctx, http.MethodGet, p, "sessions/ended", nil, "")
		cancel()
		var ended []endedSession
		if err != nil || code != http.StatusOK || json.Unmarshal([]byte(body), &ended) != nil {
			t.Errorf("replica %s: ended sessions: %d %v", p.spec.ID, code, err)
			continue
		}
		for _, e := range ended {
			byID[e.Session] = e
		}
	}
	sl.mu.Lock()
	for _, e := range sl.replaced {
		if _, ok := byID[e.Session]; !ok {
			byID[e.Session] = e
		}
	}
	sl.mu.Unlock()
	for _, e := range byID {
		p := procOf[e.Client]
		rng := rand.New(rand.NewPCG(uint64(e.Session), 0))
		// A session is over when the ensemble expires it: a timeout after
		// its end was seen, or, since every new leader grants each session a
		// full timeout, after the last leader change (the faults' end).
		deadline := e.At
		if quiet.After(deadline) {
			deadline = quiet
		}
		deadline = deadline.Add(sessionTimeout + 5*time.Second)
		for {
			present, ok := sl.present(context.Background(), rng, e.Ephemeral)
			if ok && !present {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("replica %s: ephemeral %s of session %#x, which ended by %s (%s), still there at %s (answered %v)",
					p.spec.ID, e.Ephemeral, e.Session, e.At.Format("15:04:05.000"), e.Err, time.Now().Format("15:04:05.000"), ok)
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		// Its end may be seen up to a timeout (and a grace for the
		// replica to learn of it) after the disturbance began.
		from := e.At.Add(-sessionTimeout - 3*time.Second)
		if !n.disturbedBetween(p, from, e.At) {
			t.Errorf("replica %s: session %#x ended by %s (%s) while its replica was undisturbed since %s",
				p.spec.ID, e.Session, e.At.Format("15:04:05.000"), e.Err, from.Format("15:04:05.000"))
		}
	}
	sl.mu.Lock()
	defer sl.mu.Unlock()
	for _, v := range sl.violations {
		t.Error(v)
	}
	t.Logf("sessions: %d closed and their ephemerals checked gone, %d ended by the ensemble (each during a disturbance of its replica)", sl.closed, len(byID))
	if sl.closed < 5 {
		t.Errorf("only %d sessions closed: too little to check", sl.closed)
	}
}
