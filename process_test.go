package zoo_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zooraft/zoo"
	"github.com/zooraft/zoo/internal/netns"
	"github.com/zooraft/zoo/internal/testkit"
)

// The crash test runs each replica as a separate OS process: the test binary
// re-executes itself with replicaEnv set, and TestMain turns it into a replica
// instead of running tests. No extra binary has to be built.
//
// TestMain is the only one allowed in this test binary (package zoo's internal
// tests included): a later need for one must be merged into it.
const replicaEnv = "ZOO_PROCESS_TEST_REPLICA"

func TestMain(m *testing.M) {
	if spec := os.Getenv(replicaEnv); spec != "" {
		os.Exit(replicaMain(spec))
	}
	os.Exit(m.Run())
}

// replicaSpec is what a replica process is told, as JSON in replicaEnv.
type replicaSpec struct {
	ID       string
	Dir      string
	Bind     string
	Peers    []zoo.Peer
	TickTime time.Duration
	// CtlHost is the address the control server listens on (127.0.0.1
	// unless the replica runs in a host of its own, internal/netns).
	CtlHost string
	// CtlFile receives the control server's host:port once it listens
	// (written to a temporary name, then renamed, so it is never seen half written).
	CtlFile string
}

// replicaMain runs one replica with a control HTTP server on a free loopback
// port. It never returns while serving: the test ends it with SIGKILL, or it
// exits when its stdin reaches EOF (the test process died).
func replicaMain(raw string) int {
	var spec replicaSpec
	if err := json.Unmarshal([]byte(raw), &spec); err != nil {
		fmt.Fprintln(os.Stderr, "replica: bad spec:", err)
		return 2
	}
	go func() {
		io.Copy(io.Discard, os.Stdin)
		fmt.Fprintln(os.Stderr, "replica: stdin closed, exiting")
		os.Exit(3)
	}()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	e, err := zoo.Open(zoo.Config{ID: spec.ID, Dir: spec.Dir, BindAddr: spec.Bind, Peers: spec.Peers,
		TickTime: spec.TickTime, Logger: logger})
	if err != nil {
		fmt.Fprintln(os.Stderr, "replica: open:", err)
		return 1
	}
	ctlHost := spec.CtlHost
	if ctlHost == "" {
		ctlHost = "127.0.0.1"
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(ctlHost, "0"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "replica: control listen:", err)
		return 1
	}
	tmp := spec.CtlFile + ".tmp"
	if err := os.WriteFile(tmp, []byte(ln.Addr().String()), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "replica:", err)
		return 1
	}
	if err := os.Rename(tmp, spec.CtlFile); err != nil {
		fmt.Fprintln(os.Stderr, "replica:", err)
		return 1
	}
	r := &controlServer{e: e, holds: &holdClients{e: e}, sessions: &sessionClients{e: e}, watches: &watchClients{e: e}}
	fmt.Fprintln(os.Stderr, "replica: control server on", ln.Addr())
	err = http.Serve(ln, r.handler())
	fmt.Fprintln(os.Stderr, "replica: control server:", err)
	return 1
}

// controlServer is the test's window into a replica process. Every znode
// operation goes through one zoo Session on this replica, created on first use
// and again if it ended.
type controlServer struct {
	e        *zoo.Ensemble
	holds    *holdClients    // the recipe load's sessions (process_recipes_test.go)
	sessions *sessionClients // the session load's (process_sessions_test.go)
	watches  *watchClients   // the watch load's (process_watches_test.go)

	mu   sync.Mutex // guards sess; held while a session is being created
	sess *zoo.Session
}

func (c *controlServer) session(ctx context.Context) (*zoo.Session, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sess != nil && c.sess.Err() == nil {
		return c.sess, nil
	}
	s, err := c.e.NewSession(ctx)
	if err != nil {
		return nil, err
	}
	c.sess = s
	return s, nil
}

// controlStatus is the JSON of GET /status.
type controlStatus struct {
	ID           string
	Role         string
	LeaderID     string
	Serving      bool
	AppliedIndex uint64
}

// controlStatusOf is the HTTP status of a failed control request: 404 no
// node, 409 node exists, 412 bad version (each: the write did not
// happen), 503 anything else (the outcome may be unknown).
func controlStatusOf(err error) int {
	switch {
	case errors.Is(err, zoo.ErrNoNode):
		return http.StatusNotFound
	case errors.Is(err, zoo.ErrNodeExists):
		return http.StatusConflict
	case errors.Is(err, zoo.ErrBadVersion):
		return http.StatusPreconditionFailed
	}
	return http.StatusServiceUnavailable
}

func (c *controlServer) handler() http.Handler {
	mux := http.NewServeMux()
	// Writes answer 200 only after zoo returned success, else
	// controlStatusOf's code.
	write := func(w http.ResponseWriter, r *http.Request, op func(context.Context, *zoo.Session, []byte) error) {
		ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
		defer cancel()
		data, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s, err := c.session(ctx)
		if err == nil {
			err = op(ctx, s, data)
		}
		if err != nil {
			http.Error(w, err.Error(), controlStatusOf(err))
		}
	}
	// POST /create?path=P, body = data: a persistent create.
	mux.HandleFunc("POST /create", func(w http.ResponseWriter, r *http.Request) {
		write(w, r, func(ctx context.Context, s *zoo.Session, data []byte) error {
			_, err := s.Create(ctx, r.URL.Query().Get("path"), data, zoo.ModePersistent, nil)
			return err
		})
	})
	// POST /set?path=P, body = data: setData, any version.
	mux.HandleFunc("POST /set", func(w http.ResponseWriter, r *http.Request) {
		write(w, r, func(ctx context.Context, s *zoo.Session, data []byte) error {
			_, err := s.Set(ctx, r.URL.Query().Get("path"), data, -1)
			return err
		})
	})
	// POST /delete?path=P: delete, any version.
	mux.HandleFunc("POST /delete", func(w http.ResponseWriter, r *http.Request) {
		write(w, r, func(ctx context.Context, s *zoo.Session, _ []byte) error {
			return s.Delete(ctx, r.URL.Query().Get("path"), -1)
		})
	})
	// POST /multi?path=A&path=B..., body = data: one multi creating every
	// path as a persistent node with that data.
	mux.HandleFunc("POST /multi", func(w http.ResponseWriter, r *http.Request) {
		write(w, r, func(ctx context.Context, s *zoo.Session, data []byte) error {
			var ops []zoo.Op
			for _, p := range r.URL.Query()["path"] {
				ops = append(ops, zoo.CreateOp{Path: p, Data: data})
			}
			_, err := s.Multi(ctx, ops...)
			return err
		})
	})
	// POST /sync: catch this replica up with the leader.
	mux.HandleFunc("POST /sync", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
		defer cancel()
		s, err := c.session(ctx)
		if err == nil {
			err = s.Sync(ctx, "/")
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
		}
	})
	// GET /get?path=P: the node's data; 404 if absent.
	mux.HandleFunc("GET /get", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
		defer cancel()
		s, err := c.session(ctx)
		var data []byte
		if err == nil {
			data, _, err = s.Get(ctx, r.URL.Query().Get("path"))
		}
		switch {
		case err == nil:
			w.Write(data)
		case errors.Is(err, zoo.ErrNoNode):
			http.Error(w, err.Error(), http.StatusNotFound)
		default:
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
		}
	})
	// GET /dump?path=P: JSON {child path: {Data, Version}} of P's children,
	// read from this replica's local tree.
	mux.HandleFunc("GET /dump", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
		defer cancel()
		parent := r.URL.Query().Get("path")
		s, err := c.session(ctx)
		var out map[string]dumpNode
		if err == nil {
			out, err = dumpChildren(ctx, s, parent)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		json.NewEncoder(w).Encode(out)
	})
	// POST /znode?op=create|set|delete&path=P&version=V, body = data: one
	// write of the register and znode loads (version -1: any); 200 with the
	// version made, else controlStatusOf's code.
	mux.HandleFunc("POST /znode", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
		defer cancel()
		data, _ := io.ReadAll(r.Body)
		q := r.URL.Query()
		version, err := strconv.Atoi(q.Get("version"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s, err := c.session(ctx)
		var st zoo.Stat
		if err == nil {
			switch q.Get("op") {
			case "create":
				_, err = s.Create(ctx, q.Get("path"), data, zoo.ModePersistent, nil)
			case "set":
				st, err = s.Set(ctx, q.Get("path"), data, int32(version))
			case "delete":
				err = s.Delete(ctx, q.Get("path"), int32(version))
			default:
				http.Error(w, "op: create, set or delete", http.StatusBadRequest)
				return
			}
		}
		if err != nil {
			http.Error(w, err.Error(), controlStatusOf(err))
			return
		}
		json.NewEncoder(w).Encode(regState{Version: st.Version})
	})
	// GET /znode?path=P: sync, then the node's data and version; 404 if
	// absent.
	mux.HandleFunc("GET /znode", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
		defer cancel()
		s, err := c.session(ctx)
		if err == nil {
			err = s.Sync(ctx, "/")
		}
		var data []byte
		var st zoo.Stat
		if err == nil {
			data, st, err = s.Get(ctx, r.URL.Query().Get("path"))
		}
		if err != nil {
			http.Error(w, err.Error(), controlStatusOf(err))
			return
		}
		json.NewEncoder(w).Encode(regState{Data: string(data), Version: st.Version})
	})
	// POST /transfer: hand leadership to another up-to-date voter.
	mux.HandleFunc("POST /transfer", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
		defer cancel()
		if err := c.e.TransferLeadership(ctx, ""); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
		}
	})
	// POST /session?op=ensure|close&client=C and GET /sessions/ended: the
	// session load.
	mux.HandleFunc("POST /session", c.sessions.handle)
	mux.HandleFunc("GET /sessions/ended", c.sessions.handleEnded)
	// POST /watch?client=C and GET /watches: the watch load.
	mux.HandleFunc("POST /watch", c.watches.ensure)
	mux.HandleFunc("GET /watches", c.watches.report)
	// POST /hold?kind=K&client=C: one hold of a recipe, with guarded writes.
	mux.HandleFunc("POST /hold", c.holds.holdOnce)
	// POST /remove?id=N: take replica N out of the configuration.
	mux.HandleFunc("POST /remove", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
		defer cancel()
		if err := c.e.RemoveMember(ctx, r.URL.Query().Get("id")); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
		}
	})
	// POST /add?id=N&addr=A: add replica N, at A, as a voter.
	mux.HandleFunc("POST /add", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
		defer cancel()
		if err := c.e.AddVoter(ctx, r.URL.Query().Get("id"), r.URL.Query().Get("addr")); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
		}
	})
	// GET /status: this replica's role and view of the leader.
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		st, err := c.e.Status()
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		json.NewEncoder(w).Encode(controlStatus{ID: st.ID, Role: st.Role.String(), LeaderID: st.LeaderID,
			Serving: st.Serving, AppliedIndex: st.AppliedIndex})
	})
	return mux
}

// regState is a znode's data and version, as /znode answers.
type regState struct {
	Data    string
	Version int32
}

// dumpNode is what a dump shows of one node.
type dumpNode struct {
	Data    string
	Version int32
	Czxid   int64 `json:",omitempty"`
}

func dumpChildren(ctx context.Context, s *zoo.Session, parent string) (map[string]dumpNode, error) {
	res, err := s.MultiRead(ctx, zoo.GetChildrenOp{Path: parent})
	if err != nil {
		return nil, err
	}
	if errors.Is(res[0].Err, zoo.ErrNoNode) {
		return map[string]dumpNode{}, nil // so a lost parent reports every write as missing
	}
	if res[0].Err != nil {
		return nil, res[0].Err
	}
	ops := make([]zoo.ReadOp, 0, len(res[0].Children))
	for _, name := range res[0].Children {
		ops = append(ops, zoo.GetDataOp{Path: strings.TrimSuffix(parent, "/") + "/" + name})
	}
	// No writes run while the test dumps, so a second read is as consistent as one.
	res, err = s.MultiRead(ctx, ops...)
	if err != nil {
		return nil, err
	}
	out := make(map[string]dumpNode, len(res))
	for i, r := range res {
		if r.Err != nil {
			return nil, r.Err
		}
		out[ops[i].(zoo.GetDataOp).Path] = dumpNode{Data: string(r.Data), Version: r.Stat.Version, Czxid: r.Stat.Czxid}
	}
	return out, nil
}

// freeLoopbackAddrs returns n distinct 127.0.0.1 addresses that were free a
// moment ago, below the ephemeral port range (testkit.FreePorts).
func freeLoopbackAddrs(tb testing.TB, n int) []string {
	tb.Helper()
	var addrs []string
	for _, p := range testkit.FreePorts(tb, n) {
		addrs = append(addrs, fmt.Sprintf("127.0.0.1:%d", p))
	}
	return addrs
}

// replicaProc is one replica process as the test sees it.
type replicaProc struct {
	spec    replicaSpec
	logPath string
	host    int // its host in the cluster's netns.Net, if it has one

	alive atomic.Bool // false from just before it is killed
	cmd   *exec.Cmd
	stdin io.WriteCloser         // held open: its EOF tells the child the test died
	done  chan struct{}          // closed when the process has been reaped
	ctl   atomic.Pointer[string] // "http://host:port" of its control server; a restart changes it while clients run
}

// processCluster is a set of replica processes sharing one HTTP client.
type processCluster struct {
	t      *testing.T
	exe    string
	procs  []*replicaProc
	client *http.Client
	net    *netns.Net // each replica in a host of its own; nil: all on loopback
}

// newProcessCluster plans n replicas on loopback addresses.
func newProcessCluster(t *testing.T, n int, tick time.Duration) *processCluster {
	return newProcessClusterOn(t, nil, n, tick)
}

// newNetnsProcessCluster plans n replicas, each in a host of its own private
// network, where the test can cut links between them (internal/netns).
func newNetnsProcessCluster(t *testing.T, n int, tick time.Duration) *processCluster {
	if err := netns.Available(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI runs as root with iproute2: %v", err)
		}
		t.Skip(err)
	}
	nt, err := netns.New(n)
	if err != nil {
		t.Fatal(err)
	}
	return newProcessClusterOn(t, nt, n, tick)
}

func newProcessClusterOn(t *testing.T, nt *netns.Net, n int, tick time.Duration) *processCluster {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	pc := &processCluster{t: t, exe: exe, net: nt, client: &http.Client{
		Timeout:   20 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true},
	}}
	base := t.TempDir()
	var addrs []string
	if nt == nil {
		addrs = freeLoopbackAddrs(t, n)
	} else {
		for i := range n {
			addrs = append(addrs, net.JoinHostPort(nt.Addr(i), "7000")) // a port space per host
		}
	}
	var peers []zoo.Peer
	for i := range n {
		peers = append(peers, zoo.Peer{ID: fmt.Sprint(i + 1), Addr: addrs[i]})
	}
	for i := range n {
		dir := filepath.Join(base, "replica-"+peers[i].ID)
		p := &replicaProc{
			spec: replicaSpec{ID: peers[i].ID, Dir: filepath.Join(dir, "data"), Bind: addrs[i], Peers: peers,
				TickTime: tick, CtlFile: filepath.Join(dir, "ctl-addr")},
			logPath: filepath.Join(dir, "replica.log"),
			host:    i,
		}
		if nt != nil {
			p.spec.CtlHost = nt.Addr(i)
		}
		pc.procs = append(pc.procs, p)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, p := range pc.procs {
			pc.kill(p)
		}
		pc.client.CloseIdleConnections()
		pc.checkLogs()
		if nt != nil {
			if err := nt.Close(); err != nil {
				t.Error(err)
			}
		}
	})
	return pc
}

// start launches p and waits for its control server.
func (pc *processCluster) start(p *replicaProc) {
	t := pc.t
	t.Helper()
	spec, err := json.Marshal(p.spec)
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(p.spec.CtlFile)
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close() // the child has its own copy
	fmt.Fprintf(logf, "=== test: starting replica %s\n", p.spec.ID)
	cmd := exec.Command(pc.exe)
	if pc.net != nil {
		cmd = pc.net.Command(p.host, pc.exe)
	}
	cmd.Env = append(os.Environ(), replicaEnv+"="+string(spec))
	cmd.Stdout, cmd.Stderr = logf, logf
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.cmd, p.stdin, p.done = cmd, stdin, make(chan struct{})
	p.alive.Store(true)
	done := p.done
	go func() {
		cmd.Wait()
		close(done)
	}()
	pc.poll(30*time.Second, "replica "+p.spec.ID+" control server", func() bool {
		select {
		case <-done:
			t.Fatalf("replica %s exited during start-up; log in %s", p.spec.ID, p.logPath)
		default:
		}
		b, err := os.ReadFile(p.spec.CtlFile)
		if err != nil {
			return false
		}
		url := "http://" + string(b)
		p.ctl.Store(&url)
		return true
	})
}

// kill SIGKILLs p (if running) and reaps it.
func (pc *processCluster) kill(p *replicaProc) {
	p.alive.Store(false)
	if p.cmd == nil {
		return
	}
	p.cmd.Process.Kill() // SIGKILL on Unix: no cleanup runs in the child
	<-p.done
	p.cmd = nil
}

// poll calls cond until it is true, failing the test after timeout.
func (pc *processCluster) poll(timeout time.Duration, what string, cond func() bool) {
	pc.t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			pc.t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		<-tick.C
	}
}

// do sends one control request and returns its status code and body.
func (pc *processCluster) do(ctx context.Context, method string, p *replicaProc, op string, q url.Values, body string) (int, string, error) {
	ctl := p.ctl.Load()
	if ctl == nil {
		return 0, "", errors.New("replica not started")
	}
	req, err := http.NewRequestWithContext(ctx, method, *ctl+"/"+op+"?"+q.Encode(), strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	resp, err := pc.client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, "", err
	}
	return resp.StatusCode, string(b), nil
}

func (pc *processCluster) status(p *replicaProc) (controlStatus, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	code, body, err := pc.do(ctx, http.MethodGet, p, "status", nil, "")
	var st controlStatus
	if err != nil || code != http.StatusOK || json.Unmarshal([]byte(body), &st) != nil {
		return st, false
	}
	return st, true
}

// waitLeader waits until every replica in procs is serving and names the same
// leader, one of procs, and returns it.
func (pc *processCluster) waitLeader(procs []*replicaProc, timeout time.Duration) *replicaProc {
	pc.t.Helper()
	var leader *replicaProc
	pc.poll(timeout, "an agreed leader", func() bool {
		leaderID := ""
		for _, p := range procs {
			st, ok := pc.status(p)
			if !ok || !st.Serving || (leaderID != "" && st.LeaderID != leaderID) {
				return false
			}
			leaderID = st.LeaderID
		}
		for _, p := range procs {
			if p.spec.ID == leaderID {
				leader = p
				return true
			}
		}
		return false
	})
	return leader
}

// checkLogs fails the test if a replica's race detector or runtime complained,
// and shows the end of every log when the test failed.
func (pc *processCluster) checkLogs() {
	for _, p := range pc.procs {
		b, err := os.ReadFile(p.logPath)
		if err != nil {
			continue
		}
		log := string(b)
		for _, bad := range []string{"WARNING: DATA RACE", "panic:", "fatal error:"} {
			if strings.Contains(log, bad) {
				pc.t.Errorf("replica %s log contains %q", p.spec.ID, bad)
			}
		}
		if pc.t.Failed() {
			lines := strings.Split(strings.TrimRight(log, "\n"), "\n")
			pc.t.Logf("--- last lines of replica %s's log (%s):\n%s", p.spec.ID, p.logPath,
				strings.Join(lines[max(0, len(lines)-80):], "\n"))
		}
	}
}

// nodeState is one state a load node may be found in after the crash.
type nodeState struct {
	Exists  bool
	Data    string
	Version int32
}

var absentNode = nodeState{}

// loadKinds are the kinds of write in the load, as the ledger counts them.
var loadKinds = []string{"create", "set", "delete", "multi"}

// ledger records every write of the load and what it allows the final state
// of each node to be.
type ledger struct {
	mu       sync.Mutex             // guards allowed, pairs, anomaly, acked, attempts
	allowed  map[string][]nodeState // for every node any write touched: the states it may end in
	pairs    [][]string             // the paths of every multi attempted: all exist or none
	anomaly  []string               // acknowledged state found wrong while the load ran
	acked    map[string]int         // by kind
	attempts map[string]int         // by kind

	count    atomic.Int64 // acknowledged writes of any kind
	unknown  atomic.Int64 // transport errors, timeouts, 5xx: may or may not have committed
	conflict atomic.Int64 // 409 on a fresh path (a write applied twice?)
}

func newLedger() *ledger {
	return &ledger{allowed: map[string][]nodeState{}, acked: map[string]int{}, attempts: map[string]int{}}
}

// outcome is what a control request's result says of its write:
// acknowledged, unknown (it may or may not have committed), or refused by
// zoo (404 no node, 409 node exists: it did not commit).
type outcome int

const (
	outcomeAcked outcome = iota
	outcomeUnknown
	outcomeRefused
)

func (l *ledger) classify(code int, err error) outcome {
	switch {
	case err == nil && code == http.StatusOK:
		l.count.Add(1)
		return outcomeAcked
	case err == nil && (code == http.StatusConflict || code == http.StatusNotFound):
		return outcomeRefused
	default:
		l.unknown.Add(1)
		return outcomeUnknown
	}
}

// record sets the states path may end in ("" for none), and counts one
// write of kind ("" for none).
func (l *ledger) record(kind string, o outcome, path string, states ...nodeState) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if kind != "" {
		l.attempts[kind]++
		if o == outcomeAcked {
			l.acked[kind]++
		}
	}
	if path != "" {
		l.allowed[path] = states
	}
}

func (l *ledger) recordPair(paths []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pairs = append(l.pairs, paths)
}

func (l *ledger) anomalyf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.anomaly = append(l.anomaly, fmt.Sprintf(format, args...))
}

// runWriter is one load writer on replica p until ctx ends or p is killed.
// It cycles through creates, setData and deletes of nodes it created (each
// node changed at most once, so every outcome leaves a known set of possible
// states) and two-node multis.
func runWriter(ctx context.Context, pc *processCluster, p *replicaProc, w int, l *ledger) {
	var mine []string           // acknowledged creates not yet set or deleted
	made := map[string]string{} // data of the nodes in mine
	take := func() string {
		path := mine[0]
		mine = mine[1:]
		return path
	}
	for seq := 0; ctx.Err() == nil && p.alive.Load(); seq++ {
		base := fmt.Sprintf("/load/r%s-w%d-%06d", p.spec.ID, w, seq)
		switch kind := seq % 6; {
		case kind == 2 && len(mine) > 0:
			path := take()
			old, data := made[path], "set of "+path
			code, _, err := pc.do(ctx, http.MethodPost, p, "set", url.Values{"path": {path}}, data)
			switch o := l.classify(code, err); o {
			case outcomeAcked:
				l.record("set", o, path, nodeState{true, data, 1})
			case outcomeUnknown:
				l.record("set", o, path, nodeState{true, old, 0}, nodeState{true, data, 1})
			default:
				l.anomalyf("set of acknowledged %s: status %d", path, code)
				l.record("set", o, "")
			}
		case kind == 4 && len(mine) > 0:
			path := take()
			code, _, err := pc.do(ctx, http.MethodPost, p, "delete", url.Values{"path": {path}}, "")
			switch o := l.classify(code, err); o {
			case outcomeAcked:
				l.record("delete", o, path, absentNode)
			case outcomeUnknown:
				l.record("delete", o, path, nodeState{true, made[path], 0}, absentNode)
			default:
				l.anomalyf("delete of acknowledged %s: status %d", path, code)
				l.record("delete", o, "")
			}
		case kind == 5:
			paths := []string{base + "-a", base + "-b"}
			data := "multi of " + base
			l.recordPair(paths)
			code, _, err := pc.do(ctx, http.MethodPost, p, "multi", url.Values{"path": paths}, data)
			o := l.classify(code, err)
			if o == outcomeRefused {
				l.conflict.Add(1)
			}
			for i, path := range paths {
				kind := ""
				if i == 0 {
					kind = "multi" // count the multi once
				}
				if o == outcomeAcked {
					l.record(kind, o, path, nodeState{true, data, 0})
				} else {
					l.record(kind, o, path, nodeState{true, data, 0}, absentNode)
				}
			}
		default:
			path, data := base, "data of "+base
			code, _, err := pc.do(ctx, http.MethodPost, p, "create", url.Values{"path": {path}}, data)
			switch o := l.classify(code, err); o {
			case outcomeAcked:
				l.record("create", o, path, nodeState{true, data, 0})
				mine = append(mine, path)
				made[path] = data
			default:
				if o == outcomeRefused {
					l.conflict.Add(1)
				}
				l.record("create", o, path, nodeState{true, data, 0}, absentNode)
			}
		}
	}
}

// TestProcessCrashDurability runs a 3-replica ensemble as 3 OS processes over
// TCP with bbolt data dirs, SIGKILLs the leader in the middle of a concurrent
// write load (creates, setData, deletes and multis), keeps writing through
// the survivors, SIGKILLs everything, restarts all three from their dirs and
// checks that every replica holds every acknowledged write (created nodes
// with their data, set nodes with the new data and version 1, deleted nodes
// gone, both nodes of a multi), that a write of unknown outcome left one of
// its possible states (a multi all or nothing), and that all replicas agree.
func TestProcessCrashDurability(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns replica processes; skipped with -short")
	}
	const (
		tick           = 300 * time.Millisecond
		writersPerProc = 4
		ackedBefore    = 500 // acknowledged writes before the leader is killed
		ackedAfter     = 500 // more, through the survivors, before the full crash
		phaseTimeout   = 60 * time.Second
	)
	began := time.Now()
	logf := func(format string, args ...any) {
		t.Helper()
		t.Logf("[%5.1fs] "+format, append([]any{time.Since(began).Seconds()}, args...)...)
	}
	pc := newProcessCluster(t, 3, tick)
	for _, p := range pc.procs {
		pc.start(p)
	}
	logf("leader %s elected", pc.waitLeader(pc.procs, phaseTimeout).spec.ID)

	// The parent of every load node.
	pc.poll(phaseTimeout, "/load created", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		code, _, err := pc.do(ctx, http.MethodPost, pc.procs[0], "create", url.Values{"path": {"/load"}}, "")
		return err == nil && (code == http.StatusOK || code == http.StatusConflict)
	})

	acks := newLedger()
	loadCtx, stopLoad := context.WithCancel(context.Background())
	var writers sync.WaitGroup
	defer func() {
		stopLoad()
		writers.Wait()
	}()
	for _, p := range pc.procs {
		for w := range writersPerProc {
			writers.Add(1)
			go func() {
				defer writers.Done()
				runWriter(loadCtx, pc, p, w, acks)
			}()
		}
	}

	pc.poll(phaseTimeout, fmt.Sprintf("%d acknowledged writes", ackedBefore), func() bool {
		return acks.count.Load() >= ackedBefore
	})
	leader := pc.waitLeader(pc.procs, phaseTimeout)
	pc.kill(leader)
	killedAt := acks.count.Load()
	logf("killed leader %s after %d acknowledged writes", leader.spec.ID, killedAt)

	var survivors []*replicaProc
	for _, p := range pc.procs {
		if p != leader {
			survivors = append(survivors, p)
		}
	}
	newLeader := pc.waitLeader(survivors, phaseTimeout)
	logf("replica %s took over", newLeader.spec.ID)
	pc.poll(phaseTimeout, fmt.Sprintf("%d acknowledged writes after the leader died", ackedAfter), func() bool {
		return acks.count.Load() >= killedAt+ackedAfter
	})
	logf("%d acknowledged writes after the kill", acks.count.Load()-killedAt)

	// Crash everything with writes still in flight, then stop the writers:
	// those in flight now end with an unknown outcome.
	for _, p := range survivors {
		pc.kill(p)
	}
	stopLoad()
	writers.Wait()
	logf("killed all; acknowledged %d writes %v of %v attempted; %d unknown outcomes; %d conflicts",
		acks.count.Load(), acks.acked, acks.attempts, acks.unknown.Load(), acks.conflict.Load())
	for _, a := range acks.anomaly {
		t.Errorf("during the load: %s", a)
	}
	for _, kind := range loadKinds {
		// The load is a few hundred writes of each kind: a kind with none
		// acknowledged would make its checks below vacuous.
		if acks.acked[kind] < 20 {
			t.Errorf("only %d %s writes acknowledged, want at least 20", acks.acked[kind], kind)
		}
	}

	for _, p := range pc.procs {
		pc.start(p)
	}
	logf("restarted; leader %s elected", pc.waitLeader(pc.procs, phaseTimeout).spec.ID)

	var dumps []map[string]dumpNode
	for _, p := range pc.procs {
		var dump map[string]dumpNode
		pc.poll(phaseTimeout, "sync and dump of replica "+p.spec.ID, func() bool {
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			code, _, err := pc.do(ctx, http.MethodPost, p, "sync", nil, "")
			if err != nil || code != http.StatusOK {
				return false
			}
			code, body, err := pc.do(ctx, http.MethodGet, p, "dump", url.Values{"path": {"/load"}}, "")
			if err != nil || code != http.StatusOK {
				return false
			}
			dump = nil
			return json.Unmarshal([]byte(body), &dump) == nil
		})
		dumps = append(dumps, dump)
	}

	for i, dump := range dumps {
		id := pc.procs[i].spec.ID
		if bad := checkDump(acks, dump); len(bad) > 0 {
			t.Errorf("replica %s: %d nodes in a state no acknowledged or unknown write allows, e.g.\n%s",
				id, len(bad), strings.Join(bad[:min(10, len(bad))], "\n"))
		}
		logf("replica %s holds %d load nodes", id, len(dump))
	}
	// Synced with no writes running, all replicas must hold the same nodes,
	// including the same choice for every write of unknown outcome.
	for i := 1; i < len(dumps); i++ {
		if diff := diffKeys(dumps[0], dumps[i]); diff != "" {
			t.Errorf("replicas %s and %s differ: %s", pc.procs[0].spec.ID, pc.procs[i].spec.ID, diff)
		}
	}
}

// TestProcessDirLocked: a data dir held by a live replica in another process
// makes Open fail fast with ErrDirLocked (bbolt's flock is per process, so
// TestOpenLockedDir's one-process case does not show this), the holder is
// unaffected, and once the holder is gone (SIGKILL: no clean release) the
// dir opens again with the holder's data.
func TestProcessDirLocked(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a replica process; skipped with -short")
	}
	pc := newProcessCluster(t, 1, 100*time.Millisecond)
	holder := pc.procs[0]
	pc.start(holder) // its control server listens only after Open succeeded
	pc.waitLeader(pc.procs, 60*time.Second)
	pc.poll(60*time.Second, "/held created by the holder", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		code, _, err := pc.do(ctx, http.MethodPost, holder, "create", url.Values{"path": {"/held"}}, "by the holder")
		return err == nil && (code == http.StatusOK || code == http.StatusConflict)
	})

	cfg := zoo.Config{ID: holder.spec.ID, Dir: holder.spec.Dir, BindAddr: holder.spec.Bind, Peers: holder.spec.Peers,
		TickTime: holder.spec.TickTime}
	type result struct {
		e   *zoo.Ensemble
		err error
	}
	done := make(chan result, 1)
	go func() {
		e, err := zoo.Open(cfg)
		done <- result{e, err}
	}()
	select {
	case r := <-done:
		if r.err == nil {
			r.e.Close()
			t.Fatal("Open of a dir held by another process succeeded")
		}
		if !errors.Is(r.err, zoo.ErrDirLocked) {
			t.Fatalf("Open of a dir held by another process: %v, want ErrDirLocked", r.err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Open of a dir held by another process hangs")
	}

	// The holder is unaffected.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if code, body, err := pc.do(ctx, http.MethodGet, holder, "get", url.Values{"path": {"/held"}}, ""); err != nil ||
		code != http.StatusOK || body != "by the holder" {
		t.Fatalf("holder after the refused Open: %d %q %v", code, body, err)
	}

	pc.kill(holder)
	e, err := zoo.Open(cfg)
	if err != nil {
		t.Fatalf("Open after the holder died: %v", err)
	}
	defer e.Close()
	var data []byte
	pc.poll(30*time.Second, "/held read after reopening", func() bool {
		s, err := e.NewSession(ctx)
		if err != nil {
			return false
		}
		defer s.Close(ctx)
		data, _, err = s.Get(ctx, "/held")
		return err == nil
	})
	if string(data) != "by the holder" {
		t.Fatalf("/held after reopening: %q", data)
	}
}

// checkDump returns, sorted, a description of every node of dump whose state
// the ledger does not allow, and of every multi that was applied in part.
func checkDump(l *ledger, dump map[string]dumpNode) []string {
	var bad []string
	for path, allowed := range l.allowed {
		got := absentNode
		if n, ok := dump[path]; ok {
			got = nodeState{true, n.Data, n.Version}
		}
		if !slices.Contains(allowed, got) {
			bad = append(bad, fmt.Sprintf("%s is %+v, want one of %+v", path, got, allowed))
		}
	}
	for path := range dump {
		if _, ok := l.allowed[path]; !ok {
			bad = append(bad, path+" exists but no write created it")
		}
	}
	for _, pair := range l.pairs {
		_, a := dump[pair[0]]
		_, b := dump[pair[1]]
		if a != b {
			bad = append(bad, fmt.Sprintf("multi applied in part: %s exists %v, %s exists %v", pair[0], a, pair[1], b))
		}
	}
	slices.Sort(bad)
	return bad
}

// diffKeys describes how two dumps differ, or returns "".
func diffKeys(a, b map[string]dumpNode) string {
	var onlyA, onlyB, differ []string
	for k, v := range a {
		if w, ok := b[k]; !ok {
			onlyA = append(onlyA, k)
		} else if v != w {
			differ = append(differ, k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			onlyB = append(onlyB, k)
		}
	}
	if len(onlyA)+len(onlyB)+len(differ) == 0 {
		return ""
	}
	slices.Sort(onlyA)
	slices.Sort(onlyB)
	slices.Sort(differ)
	return fmt.Sprintf("%d only in the first %v; %d only in the second %v; %d with different data or version %v",
		len(onlyA), onlyA[:min(5, len(onlyA))], len(onlyB), onlyB[:min(5, len(onlyB))], len(differ), differ[:min(5, len(differ))])
}
