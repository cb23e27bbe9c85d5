package zoo_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zooraft/zoo"
	"github.com/zooraft/zoo/recipe"
)

// Recipe safety through replica processes under the nemesis: clients take
// a Mutex, or win an Election, and while they believe they hold it they make
// guarded writes, each a multi that checks their own lock node still exists
// and appends a sequential node naming the hold and its fencing token
// (ZooKeeper's way of fencing a write with a lock). The appended log is the
// whole committed history, unknown outcomes included, so the check needs no
// clock: in log order, each hold's writes are contiguous (no two holders
// interleave at the guarded resource) and tokens never decrease (a later
// holder always has a larger token).

// The recipes the load exercises, and where each keeps its log.
var holdKinds = []string{"mutex", "election"}

func holdDir(kind string) string { return "/recipes/" + kind }
func holdLog(kind string) string { return "/recipes/" + kind + "-log" }

// holdResult is the JSON of POST /hold.
type holdResult struct {
	Token  int64
	Node   string
	Writes int
}

// holdClients are the recipe clients' sessions in a replica process, one per
// client, made again when one ends.
type holdClients struct {
	e *zoo.Ensemble

	mu       sync.Mutex // guards sessions
	sessions map[string]*zoo.Session
}

func (h *holdClients) session(ctx context.Context, client string) (*zoo.Session, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if s := h.sessions[client]; s != nil && s.Err() == nil {
		return s, nil
	}
	// A short timeout: a holder killed with its replica frees the lock soon.
	s, err := h.e.NewSession(ctx, zoo.WithSessionTimeout(2*time.Second))
	if err != nil {
		return nil, err
	}
	if h.sessions == nil {
		h.sessions = map[string]*zoo.Session{}
	}
	h.sessions[client] = s
	return s, nil
}

// holdOnce is POST /hold?kind=K&client=C: take the mutex, or win the
// election, with C's session; make up to three guarded writes; let go.
// 200 with a holdResult once held; 503 if it was not.
func (h *holdClients) holdOnce(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	kind, client := r.URL.Query().Get("kind"), r.URL.Query().Get("client")
	s, err := h.session(ctx, client)
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	var node string
	var token int64
	var release func(context.Context) error
	switch kind {
	case "mutex":
		m, err := recipe.NewMutex(s, holdDir(kind))
		if err == nil {
			err = m.Lock(ctx)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		node, token, release = m.Node(), m.Token(), m.Unlock
	case "election":
		e, err := recipe.NewElection(s, holdDir(kind))
		if err == nil {
			err = e.Campaign(ctx, []byte(client))
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		node, token, release = e.Node(), e.Token(), e.Resign
	default:
		http.Error(w, "kind: mutex or election", http.StatusBadRequest)
		return
	}
	res := holdResult{Token: token, Node: node}
	for i := range 3 {
		_, err := s.Multi(ctx, zoo.CheckOp{Path: node, Version: -1},
			zoo.CreateOp{Path: holdLog(kind) + "/w-", Data: fmt.Appendf(nil, "%d %s %d", token, node, i), Mode: zoo.ModePersistentSequential})
		if err != nil {
			break
		}
		res.Writes++
		time.Sleep(5 * time.Millisecond)
	}
	release(context.WithoutCancel(ctx))
	json.NewEncoder(w).Encode(res)
}

// runHolders runs one mutex and one election client on every replica of pc
// until ctx ends.
func runHolders(ctx context.Context, pc *processCluster, seed uint64, wg *sync.WaitGroup, holds map[string]int, mu *sync.Mutex) {
	for i, p := range pc.procs {
		for k, kind := range holdKinds {
			client := fmt.Sprintf("%s-%d", kind, i)
			rng := rand.New(rand.NewPCG(seed, uint64(1000+10*i+k)))
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ctx.Err() == nil {
					if !p.alive.Load() {
						time.Sleep(50 * time.Millisecond)
						continue
					}
					octx, cancel := context.WithTimeout(ctx, 8*time.Second)
					code, _, err := pc.do(octx, http.MethodPost, p, "hold", url.Values{"kind": {kind}, "client": {client}}, "")
					cancel()
					if err == nil && code == http.StatusOK {
						mu.Lock()
						holds[kind]++
						mu.Unlock()
					}
					time.Sleep(time.Duration(10+rng.IntN(40)) * time.Millisecond)
				}
			}()
		}
	}
}

// createHoldDirs makes the recipes' parents and logs.
func createHoldDirs(pc *processCluster) {
	for _, path := range []string{"/recipes", holdDir("mutex"), holdDir("election"), holdLog("mutex"), holdLog("election")} {
		pc.poll(60*time.Second, path+" created", func() bool {
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			code, _, err := pc.do(ctx, http.MethodPost, pc.procs[0], "create", url.Values{"path": {path}}, "")
			return err == nil && (code == http.StatusOK || code == http.StatusConflict)
		})
	}
}

// checkHoldLogs reads each recipe's log (after a sync) and checks it.
func checkHoldLogs(t *testing.T, pc *processCluster, holds map[string]int) {
	t.Helper()
	for _, kind := range holdKinds {
		var entries map[string]dumpNode
		pc.poll(60*time.Second, holdLog(kind)+" read", func() bool {
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			if code, _, err := pc.do(ctx, http.MethodPost, pc.procs[0], "sync", nil, ""); err != nil || code != http.StatusOK {
				return false
			}
			code, body, err := pc.do(ctx, http.MethodGet, pc.procs[0], "dump", url.Values{"path": {holdLog(kind)}}, "")
			return err == nil && code == http.StatusOK && json.Unmarshal([]byte(body), &entries) == nil
		})
		writes, err := checkHoldLog(entries)
		if err != nil {
			t.Errorf("%s: %v", kind, err)
			continue
		}
		t.Logf("%s: %d holds acknowledged, %d guarded writes committed", kind, holds[kind], writes)
		if writes < 3 {
			t.Errorf("%s: only %d guarded writes: too little to check", kind, writes)
		}
	}
}

// checkHoldLog checks a guarded-write log, {path: data "token node i"}: its
// sequential names increase with their creation zxids (a parent's sequence
// follows commit order); and in that order each hold's writes are
// contiguous and tokens never decrease.
func checkHoldLog(entries map[string]dumpNode) (int, error) {
	paths := make([]string, 0, len(entries))
	for p := range entries {
		paths = append(paths, p)
	}
	slices.Sort(paths) // sequential suffixes are zero-padded
	for k := 1; k < len(paths); k++ {
		if a, b := entries[paths[k-1]], entries[paths[k]]; b.Czxid <= a.Czxid {
			return 0, fmt.Errorf("%s (zxid %#x) comes after %s (zxid %#x): sequence numbers out of commit order",
				paths[k], b.Czxid, paths[k-1], a.Czxid)
		}
	}
	var lastToken int64
	lastNode := ""
	done := map[string]bool{} // holds whose writes are over
	for _, p := range paths {
		f := strings.Fields(entries[p].Data)
		if len(f) != 3 {
			return 0, fmt.Errorf("%s: malformed entry %q", p, entries[p].Data)
		}
		token, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %v", p, err)
		}
		node := f[1]
		switch {
		case node == lastNode:
		case done[node]:
			return 0, fmt.Errorf("%s: hold %s wrote again after another hold's write: two holders interleaved", p, node)
		default:
			if lastNode != "" {
				done[lastNode] = true
			}
			if token < lastToken {
				return 0, fmt.Errorf("%s: hold %s has token %d after a hold with token %d", p, node, token, lastToken)
			}
			lastNode = node
		}
		lastToken = token
	}
	return len(paths), nil
}

func TestCheckHoldLogFindsViolations(t *testing.T) {
	zxid := int64(100)
	entry := func(token int64, node string, i int) dumpNode {
		zxid++
		return dumpNode{Data: fmt.Sprintf("%d %s %d", token, node, i), Czxid: zxid}
	}
	good := map[string]dumpNode{
		"/l/w-0000000001": entry(5, "/m/a", 0), "/l/w-0000000002": entry(5, "/m/a", 1),
		"/l/w-0000000003": entry(9, "/m/b", 0), "/l/w-0000000004": entry(12, "/m/c", 0),
	}
	if n, err := checkHoldLog(good); err != nil || n != 4 {
		t.Fatalf("a good log: %d, %v", n, err)
	}
	interleaved := map[string]dumpNode{
		"/l/w-0000000001": entry(5, "/m/a", 0), "/l/w-0000000002": entry(9, "/m/b", 0), "/l/w-0000000003": entry(5, "/m/a", 1),
	}
	if _, err := checkHoldLog(interleaved); err == nil || !strings.Contains(err.Error(), "interleaved") {
		t.Fatalf("interleaved holders: %v", err)
	}
	backwards := map[string]dumpNode{"/l/w-0000000001": entry(9, "/m/b", 0), "/l/w-0000000002": entry(5, "/m/a", 0)}
	if _, err := checkHoldLog(backwards); err == nil || !strings.Contains(err.Error(), "token 5 after") {
		t.Fatalf("a token going back: %v", err)
	}
	first, second := entry(5, "/m/a", 0), entry(5, "/m/a", 1)
	reordered := map[string]dumpNode{"/l/w-0000000001": second, "/l/w-0000000002": first}
	if _, err := checkHoldLog(reordered); err == nil || !strings.Contains(err.Error(), "out of commit order") {
		t.Fatalf("sequence numbers out of commit order: %v", err)
	}
}
