package zoo_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/zooraft/zoo"
)

// Watch delivery through replica processes under the nemesis. One client
// per replica keeps a persistent recursive watch on the znode load's parent
// (/zn), with a session of its own, made again whenever it ends. Each watch
// knows the range of zxids it covers completely: from the replica's applied
// zxid once it was added, to its last event if it ended (its session did,
// or a snapshot reset it), or, at the end of the run, to the replica's
// applied zxid once its events settled. Checked: each
// watch's events come in zxid order, and any two watches, on any replicas,
// saw exactly the same events over the zxids both covered: no gaps, no
// extras, no reordering.

// watchedEvent is one event as reported.
type watchedEvent struct {
	Zxid int64
	Type string
	Path string
}

// watchReport is one watch's record, as GET /watches reports it.
type watchReport struct {
	Client   string
	From, To int64 // (From, To]: every change in it is in Events
	Events   []watchedEvent
	Err      string // why it ended, if it did
}

// watchClients are the watch load's watches in a replica process.
type watchClients struct {
	e *zoo.Ensemble

	mu      sync.Mutex // guards watches, live
	watches []*watchReport
	live    map[string]*watchReport
}

// ensure is POST /watch?client=C: C's watch, added if it has none live.
func (wc *watchClients) ensure(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	client := r.URL.Query().Get("client")
	wc.mu.Lock()
	if wc.live[client] != nil {
		wc.mu.Unlock()
		return
	}
	wc.mu.Unlock()
	s, err := wc.e.NewSession(ctx, zoo.WithSessionTimeout(sessionTimeout))
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	pw, err := s.AddWatch(ctx, "/zn", zoo.WatchPersistentRecursive)
	if err != nil {
		s.Close(context.WithoutCancel(ctx))
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	// Every change applied after the watch was added reaches it.
	rep := &watchReport{Client: client, From: wc.e.LastZxid(), To: -1}
	wc.mu.Lock()
	if wc.live == nil {
		wc.live = map[string]*watchReport{}
	}
	wc.live[client] = rep
	wc.watches = append(wc.watches, rep)
	wc.mu.Unlock()
	go func() {
		for ev := range pw.Events() {
			wc.mu.Lock()
			rep.Events = append(rep.Events, watchedEvent{Zxid: ev.Zxid, Type: ev.Type.String(), Path: ev.Path})
			wc.mu.Unlock()
		}
		// The watch ended (its session did, or it was reset): it covered,
		// for sure, up to its last event.
		wc.mu.Lock()
		rep.To, rep.Err = rep.From, fmt.Sprint(pw.Err())
		if n := len(rep.Events); n > 0 {
			rep.To = rep.Events[n-1].Zxid
		}
		delete(wc.live, client)
		wc.mu.Unlock()
	}()
}

// report is GET /watches: every watch of this process; live ones cover up
// to the applied zxid once no event came for half a second.
func (wc *watchClients) report(w http.ResponseWriter, _ *http.Request) {
	count := func() int {
		wc.mu.Lock()
		defer wc.mu.Unlock()
		n := 0
		for _, r := range wc.watches {
			n += len(r.Events)
		}
		return n
	}
	for n := -1; n != count(); {
		n = count()
		time.Sleep(500 * time.Millisecond)
	}
	applied := wc.e.LastZxid()
	wc.mu.Lock()
	defer wc.mu.Unlock()
	out := make([]watchReport, 0, len(wc.watches))
	for _, r := range wc.watches {
		c := *r
		c.Events = slices.Clone(r.Events)
		if wc.live[r.Client] == r {
			c.To = applied
		}
		out = append(out, c)
	}
	json.NewEncoder(w).Encode(out)
}

// runWatchers keeps one watch client per replica of pc until ctx ends.
func runWatchers(ctx context.Context, pc *processCluster, wg *sync.WaitGroup) {
	for i, p := range pc.procs {
		client := fmt.Sprintf("w%d", i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if p.alive.Load() {
					octx, cancel := context.WithTimeout(ctx, 8*time.Second)
					pc.do(octx, http.MethodPost, p, "watch", url.Values{"client": {client}}, "")
					cancel()
				}
				time.Sleep(300 * time.Millisecond)
			}
		}()
	}
}

// checkWatches gathers every replica's watches (on a healed ensemble, after
// the load) and compares them.
func checkWatches(t *testing.T, pc *processCluster) {
	t.Helper()
	var all []watchReport
	for _, p := range pc.procs {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if code, _, err := pc.do(ctx, http.MethodPost, p, "sync", nil, ""); err != nil || code != http.StatusOK {
			t.Errorf("replica %s: sync: %d %v", p.spec.ID, code, err)
		}
		code, body, err := pc.do(ctx, http.MethodGet, p, "watches", nil, "")
		cancel()
		var reps []watchReport
		if err != nil || code != http.StatusOK || json.Unmarshal([]byte(body), &reps) != nil {
			t.Errorf("replica %s: watches: %d %v", p.spec.ID, code, err)
			continue
		}
		all = append(all, reps...)
	}
	events, pairs, err := compareWatches(all)
	if err != nil {
		t.Error(err)
	}
	t.Logf("watches: %d, %d events, %d pairs compared", len(all), events, pairs)
	if pairs == 0 || events == 0 {
		t.Errorf("no two watches to compare (%d watches, %d events)", len(all), events)
	}
}

// compareWatches checks each watch's order and every pair's agreement.
func compareWatches(all []watchReport) (events, pairs int, err error) {
	within := func(r watchReport, from, to int64) []watchedEvent {
		var out []watchedEvent
		for _, e := range r.Events {
			if e.Zxid > from && e.Zxid <= to {
				out = append(out, e)
			}
		}
		return out
	}
	for i, a := range all {
		events += len(a.Events)
		for k := 1; k < len(a.Events); k++ {
			if a.Events[k].Zxid < a.Events[k-1].Zxid {
				return events, pairs, fmt.Errorf("watch %d (%s): event at zxid %#x after one at %#x", i, a.Client, a.Events[k].Zxid, a.Events[k-1].Zxid)
			}
		}
		for j := range i {
			b := all[j]
			from, to := max(a.From, b.From), min(a.To, b.To)
			if to <= from {
				continue
			}
			pairs++
			ea, eb := within(a, from, to), within(b, from, to)
			if !slices.Equal(ea, eb) {
				return events, pairs, fmt.Errorf("watches %s and %s disagree over zxids (%#x, %#x]: %d and %d events; first difference: %s",
					a.Client, b.Client, from, to, len(ea), len(eb), firstDifference(ea, eb))
			}
		}
	}
	return events, pairs, nil
}

func firstDifference(a, b []watchedEvent) string {
	for k := range max(len(a), len(b)) {
		switch {
		case k >= len(a):
			return fmt.Sprintf("only the second saw %+v", b[k])
		case k >= len(b):
			return fmt.Sprintf("only the first saw %+v", a[k])
		case a[k] != b[k]:
			return fmt.Sprintf("%+v against %+v", a[k], b[k])
		}
	}
	return "none"
}

func TestCompareWatchesFindsGaps(t *testing.T) {
	ev := func(z int64) watchedEvent { return watchedEvent{Zxid: z, Type: "NodeDataChanged", Path: "/zn/k1"} }
	a := watchReport{Client: "a", From: 10, To: 20, Events: []watchedEvent{ev(11), ev(14), ev(19)}}
	b := watchReport{Client: "b", From: 12, To: 30, Events: []watchedEvent{ev(14), ev(19), ev(25)}}
	if _, pairs, err := compareWatches([]watchReport{a, b}); err != nil || pairs != 1 {
		t.Fatalf("agreeing watches: %d pairs, %v", pairs, err)
	}
	gap := watchReport{Client: "gap", From: 12, To: 30, Events: []watchedEvent{ev(19), ev(25)}}
	if _, _, err := compareWatches([]watchReport{a, gap}); err == nil {
		t.Fatal("a gap was not found")
	}
	backwards := watchReport{Client: "back", From: 0, To: 30, Events: []watchedEvent{ev(19), ev(14)}}
	if _, _, err := compareWatches([]watchReport{backwards}); err == nil {
		t.Fatal("events out of order were not found")
	}
}
