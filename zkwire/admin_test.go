package zkwire

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/zooraft/zoo/internal/testkit"
)

// adminServer serves srv's AdminHandler over HTTP for the test.
func adminServer(t *testing.T, srv *Server) *httptest.Server {
	t.Helper()
	ts := httptest.NewServer(srv.AdminHandler())
	t.Cleanup(ts.Close)
	return ts
}

// adminGet GETs path and decodes the JSON answer, numbers as json.Number.
func adminGet(t *testing.T, ts *httptest.Server, path string) (int, map[string]any) {
	t.Helper()
	resp, err := ts.Client().Get(ts.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%s: Content-Type %q", path, ct)
	}
	dec := json.NewDecoder(resp.Body)
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return resp.StatusCode, m
}

// adminOK GETs a command that must succeed and checks command and error.
func adminOK(t *testing.T, ts *httptest.Server, name, primary string) map[string]any {
	t.Helper()
	code, m := adminGet(t, ts, "/commands/"+name)
	if code != http.StatusOK {
		t.Fatalf("%s: status %d: %v", name, code, m)
	}
	if e, ok := m["error"]; !ok || e != nil {
		t.Fatalf("%s: error = %v (present %t), want null", name, e, ok)
	}
	if m["command"] != primary {
		t.Fatalf("%s: command = %v, want %s", name, m["command"], primary)
	}
	return m
}

// num reads a JSON number field as int64.
func num(t *testing.T, m map[string]any, key string) int64 {
	t.Helper()
	n, ok := m[key].(json.Number)
	if !ok {
		t.Fatalf("%s = %#v, want a number (in %v)", key, m[key], m)
	}
	i, err := n.Int64()
	if err != nil {
		t.Fatalf("%s = %s: %v", key, n, err)
	}
	return i
}

func TestAdminCommands(t *testing.T) {
	t.Parallel()
	ens := openSingle(t)
	srv, addr := serve(t, ens, Config{Version: "3.9.4-test", FourLetterWords: []string{"*"}})
	ts := adminServer(t, srv)

	conn, _ := connectZK(t, []string{addr}, 10*time.Second)
	if _, err := conn.Create("/adm", nil, zk.FlagEphemeral, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := conn.GetW("/adm"); err != nil {
		t.Fatal(err)
	}
	sid := strconv.FormatInt(conn.SessionID(), 10)

	m := adminOK(t, ts, "mntr", "monitor")
	if m["server_state"] != "leader" || m["version"] != "3.9.4-test, built on "+buildDate {
		t.Errorf("monitor: %v", m)
	}
	for key, want := range map[string]int64{"ephemerals_count": 1, "watch_count": 1, "quorum_size": 1, "followers": 0} {
		if got := num(t, m, key); got != want {
			t.Errorf("monitor %s = %d, want %d", key, got, want)
		}
	}
	if num(t, m, "znode_count") < 2 || num(t, m, "num_alive_connections") < 1 {
		t.Errorf("monitor: %v", m)
	}
	if _, err := m["avg_latency"].(json.Number).Float64(); err != nil {
		t.Errorf("monitor avg_latency: %v", err)
	}

	m = adminOK(t, ts, "srvr", "server_stats")
	stats, ok := m["server_stats"].(map[string]any)
	if !ok || stats["server_state"] != "leader" || m["read_only"] != false || num(t, m, "node_count") < 2 ||
		num(t, stats, "packets_received") < 2 || num(t, stats, "last_processed_zxid") < 1 {
		t.Errorf("server_stats: %v", m)
	}

	m = adminOK(t, ts, "stat", "stats")
	if cs, ok := m["connections"].([]any); !ok || len(cs) != 1 {
		t.Errorf("stats connections: %v", m["connections"])
	}

	m = adminOK(t, ts, "cons", "connections")
	cs, ok := m["connections"].([]any)
	if !ok || len(cs) != 1 {
		t.Fatalf("connections: %v", m)
	}
	c0 := cs[0].(map[string]any)
	if c0["session_id"].(json.Number).String() != sid || num(t, c0, "session_timeout") <= 0 ||
		num(t, c0, "packets_received") < 2 || !strings.HasPrefix(c0["remote_socket_address"].(string), "127.0.0.1:") {
		t.Errorf("connection: %v, session %s", c0, sid)
	}

	m = adminOK(t, ts, "conf", "configuration")
	if num(t, m, "max_client_cnxns") != 60 || num(t, m, "server_id") != 1 ||
		strconv.FormatInt(num(t, m, "client_port"), 10) != addr[strings.LastIndexByte(addr, ':')+1:] {
		t.Errorf("configuration: %v (client port %s)", m, addr)
	}

	m = adminOK(t, ts, "envi", "environment")
	if !strings.HasPrefix(m["zookeeper.version"].(string), "3.9.4-test, built on") {
		t.Errorf("environment: %v", m)
	}

	m = adminOK(t, ts, "wchs", "watch_summary")
	for _, key := range []string{"num_connections", "num_paths", "num_total_watches"} {
		if num(t, m, key) != 1 {
			t.Errorf("watch_summary: %v", m)
		}
	}
	m = adminOK(t, ts, "wchc", "watches")
	if got := m["session_id_to_watched_paths"].(map[string]any)[sid]; !jsonEqual(got, []any{"/adm"}) {
		t.Errorf("watches: %v, session %s", m, sid)
	}
	m = adminOK(t, ts, "wchp", "watches_by_path")
	if got := m["path_to_session_ids"].(map[string]any)["/adm"]; !jsonEqual(got, []any{json.Number(sid)}) {
		t.Errorf("watches_by_path: %v, session %s", m, sid)
	}
	m = adminOK(t, ts, "dump", "dump")
	if got := m["session_id_to_ephemeral_paths"].(map[string]any)[sid]; !jsonEqual(got, []any{"/adm"}) {
		t.Errorf("dump: %v, session %s", m, sid)
	}

	m = adminOK(t, ts, "lead", "leader")
	if m["is_leader"] != true || num(t, m, "leader_id") != 1 {
		t.Errorf("leader: %v", m)
	}
	m = adminOK(t, ts, "isro", "is_read_only")
	if m["read_only"] != false {
		t.Errorf("is_read_only: %v", m)
	}
	m = adminOK(t, ts, "voting_view", "voting_view")
	if v, ok := m["current_config"].(map[string]any); !ok || len(v) != 1 || !strings.HasSuffix(v["1"].(string), ":participant") {
		t.Errorf("voting_view: %v", m)
	}
	m = adminOK(t, ts, "icfg", "initial_configuration")
	if !strings.HasPrefix(m["initial_configuration"].(string), "server.1=") {
		t.Errorf("initial_configuration: %v", m)
	}
	m = adminOK(t, ts, "obsr", "observers")
	if num(t, m, "synced_observers") != 0 || !jsonEqual(m["observers"], []any{}) {
		t.Errorf("observers: %v", m)
	}
	m = adminOK(t, ts, "sysp", "system_properties")
	if m["jute.maxbuffer"] != "1048575" {
		t.Errorf("system_properties: %v", m)
	}
	if m := adminOK(t, ts, "ruok", "ruok"); len(m) != 2 {
		t.Errorf("ruok: %v, want only command and error", m)
	}

	for _, tc := range []struct {
		path, command, err string
		code               int
	}{
		{"/commands/bogus", "bogus", "Unknown command: bogus", http.StatusNotFound},
		{"/commands/mntr/x", "mntr/x", "Unknown command: mntr/x", http.StatusNotFound},
		{"/commands/hash", "hash", "hash is not supported by zoo", http.StatusNotImplemented},
		{"/commands/lsnp", "last_snapshot", "last_snapshot is not supported by zoo", http.StatusNotImplemented},
	} {
		code, m := adminGet(t, ts, tc.path)
		if code != tc.code || m["command"] != tc.command || m["error"] != tc.err || len(m) != 2 {
			t.Errorf("%s: %d %v, want %d command %q error %q", tc.path, code, m, tc.code, tc.command, tc.err)
		}
	}
	// Every name and alias answers under the primary name (last: this
	// runs crst and srst).
	for _, c := range adminCmds {
		for _, name := range c.names {
			adminOK(t, ts, name, c.names[0])
		}
	}

	resp, err := ts.Client().Post(ts.URL+"/commands/ruok", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", resp.StatusCode)
	}
}

// /commands links every command, and every link answers.
func TestAdminCommandList(t *testing.T) {
	t.Parallel()
	srv, _ := serve(t, openSingle(t), Config{FourLetterWords: []string{"*"}})
	ts := adminServer(t, srv)
	for _, path := range []string{"/commands", "/commands/"} {
		resp, err := ts.Client().Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		links := regexp.MustCompile(`<a href="/commands/([a-z_]+)">([a-z_]+)</a>`).FindAllStringSubmatch(string(body), -1)
		if len(links) != len(adminCmds) {
			t.Fatalf("%s: %d links, want %d:\n%s", path, len(links), len(adminCmds), body)
		}
		for _, l := range links {
			if l[1] != l[2] {
				t.Errorf("link %q", l[0])
			}
			adminOK(t, ts, l[1], l[1])
		}
	}
}

// metricLine is a Prometheus text-format sample: name{labels} value.
var metricLine = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$`)

// scrape fetches /metrics and parses it, checking the text format.
func scrape(t *testing.T, ts *httptest.Server) map[string]float64 {
	t.Helper()
	resp, err := ts.Client().Get(ts.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Fatalf("/metrics: %d, Content-Type %q", resp.StatusCode, ct)
	}
	out := map[string]float64{}
	typed := map[string]bool{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "# TYPE "); ok {
			f := strings.Fields(rest)
			if len(f) != 2 || f[1] != "gauge" && f[1] != "counter" {
				t.Fatalf("bad TYPE line %q", line)
			}
			typed[f[0]] = true
			continue
		}
		if strings.HasPrefix(line, "#") {
			continue
		}
		sm := metricLine.FindStringSubmatch(line)
		if sm == nil {
			t.Fatalf("bad sample line %q", line)
		}
		v, err := strconv.ParseFloat(sm[3], 64)
		if err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		if !typed[sm[1]] {
			t.Errorf("%s has no TYPE line before it", sm[1])
		}
		if _, dup := out[sm[1]]; dup {
			t.Errorf("%s twice", sm[1])
		}
		out[sm[1]] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestAdminMetrics(t *testing.T) {
	t.Parallel()
	ens := openSingle(t)
	srv, addr := serve(t, ens, Config{})
	ts := adminServer(t, srv)
	conn, _ := connectZK(t, []string{addr}, 10*time.Second)
	if _, err := conn.Create("/m", nil, zk.FlagEphemeral, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}
	got := scrape(t, ts)
	for _, name := range []string{"znode_count", "watch_count", "ephemerals_count", "num_alive_connections",
		"packets_received", "packets_sent", "avg_latency", "min_latency", "max_latency", "outstanding_requests",
		"quorum_size", "uptime", "zoo_applied_index", "zoo_serving"} {
		if _, ok := got[name]; !ok {
			t.Errorf("/metrics lacks %s: %v", name, got)
		}
	}
	if got["ephemerals_count"] != 1 || got["quorum_size"] != 1 || got["zoo_serving"] != 1 ||
		got["zoo_applied_index"] < 1 || got["num_alive_connections"] < 1 || got["packets_received"] < 1 {
		t.Errorf("/metrics: %v", got)
	}
}

// Each replica's admin server reports its own role; a replica cut off from
// its quorum says it is not serving.
func TestAdminCluster(t *testing.T) {
	t.Parallel()
	c := newCluster(t, Config{FourLetterWords: []string{"*"}})
	var ts []*httptest.Server
	for _, srv := range c.srvs {
		ts = append(ts, adminServer(t, srv))
	}
	leader := c.WaitLeader()
	for i := range ts {
		m := adminOK(t, ts[i], "monitor", "monitor")
		want := "follower"
		if i == leader {
			want = "leader"
		}
		if m["server_state"] != want || num(t, m, "quorum_size") != 3 {
			t.Errorf("replica %d (leader %d) monitor: %v", i, leader, m)
		}
		_, hasFollowers := m["followers"]
		if _, has := m["leader_uptime"]; has != (i == leader) || i == leader && num(t, m, "leader_uptime") < 0 {
			t.Errorf("replica %d (leader %d) monitor leader_uptime: %v", i, leader, m)
		}
		if i == leader && (num(t, m, "followers") != 2 || num(t, m, "synced_followers") != 2 || num(t, m, "pending_syncs") != 0) ||
			i != leader && hasFollowers {
			t.Errorf("replica %d (leader %d) monitor followers: %v", i, leader, m)
		}
		m = adminOK(t, ts[i], "leader", "leader")
		if m["is_leader"] != (i == leader) || strconv.FormatInt(num(t, m, "leader_id"), 10) != c.ID(leader) ||
			m["leader_ip"] != "zoo-"+c.ID(leader) {
			t.Errorf("replica %d (leader %d) leader: %v", i, leader, m)
		}
		m = adminOK(t, ts[i], "voting_view", "voting_view")
		if v, ok := m["current_config"].(map[string]any); !ok || len(v) != 3 {
			t.Errorf("replica %d voting_view: %v", i, m)
		}
		if got := scrape(t, ts[i]); got["quorum_size"] != 3 || got["zoo_serving"] != 1 {
			t.Errorf("replica %d /metrics: %v", i, got)
		}
	}

	alone := (leader + 1) % 3
	c.Isolate(alone)
	testkit.Eventually(t, 15*time.Second, "ruok on the isolated replica is refused", func() bool {
		code, _ := adminGet(t, ts[alone], "/commands/ruok")
		return code == http.StatusServiceUnavailable
	})
	code, m := adminGet(t, ts[alone], "/commands/srvr")
	if code != http.StatusServiceUnavailable || m["command"] != "server_stats" ||
		m["error"] != "This ZooKeeper instance is not currently serving requests" {
		t.Errorf("srvr while not serving: %d %v", code, m)
	}
	// monitor answers without a quorum, as in ZooKeeper, so dashboards see the state.
	if m := adminOK(t, ts[alone], "monitor", "monitor"); m["server_state"] != "not serving" {
		t.Errorf("monitor while not serving: %v", m)
	}
	if got := scrape(t, ts[alone]); got["zoo_serving"] != 0 {
		t.Errorf("/metrics while not serving: %v", got)
	}
}

// jsonEqual compares decoded JSON values.
func jsonEqual(a, b any) bool {
	x, err1 := json.Marshal(a)
	y, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(x) == string(y)
}

// What reveals sessions, addresses, paths, configuration or environment
// answers only when its four-letter word is whitelisted; the rest always.
func TestAdminGatesSensitiveCommandsByTheWhitelist(t *testing.T) {
	t.Parallel()
	srv, addr := serve(t, openSingle(t), Config{FourLetterWords: []string{"srvr", "dump"}})
	ts := adminServer(t, srv)
	conn, _ := connectZK(t, []string{addr}, 10*time.Second)
	if _, err := conn.Create("/secret-path", nil, zk.FlagEphemeral, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}
	for name, word := range adminGates {
		code, m := adminGet(t, ts, "/commands/"+name)
		switch {
		case word == "dump":
			if code != http.StatusOK {
				t.Errorf("%s with %s whitelisted: %d %v", name, word, code, m)
			}
		case code != http.StatusForbidden || !strings.Contains(fmt.Sprint(m["error"]), "add "+word+" to 4lw.commands.whitelist"):
			t.Errorf("%s: %d %v, want 403 naming %s", name, code, m, word)
		}
	}
	for _, alias := range []string{"cons", "envi", "wchp", "conf", "stat"} {
		if code, _ := adminGet(t, ts, "/commands/"+alias); code != http.StatusForbidden {
			t.Errorf("alias %s: %d, want 403", alias, code)
		}
	}
	for _, name := range []string{"srvr", "mntr", "ruok", "leader", "watch_summary"} {
		adminOK(t, ts, name, findAdminCmd(name).names[0])
	}
	if got := scrape(t, ts); len(got) == 0 {
		t.Error("/metrics is empty")
	}
}
