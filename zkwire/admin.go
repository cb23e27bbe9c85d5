package zkwire

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"html"
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/zooraft/zoo"
)

// AdminHandler returns an http.Handler serving ZooKeeper's AdminServer API
// (admin.enableServer, port 8080 by default) for this server's replica:
//
//	GET /commands         an HTML page linking every command
//	GET /commands/<name>  a command's JSON answer; <name> is a command's name
//	                      or one of its aliases (mntr, srvr, cons, ...)
//	GET /metrics          the monitor numbers in Prometheus text format
//
// Answers have ZooKeeper's JSON field names, plus "command" (the command's
// primary name) and "error" (null on success). The commands that reveal
// sessions, client addresses, watched paths, configuration or environment,
// or reset counters, answer only when their four-letter word is in
// Config.FourLetterWords (4lw.commands.whitelist), as the words themselves
// do: cons, stat, dump, wchc, wchp, conf (also for initial_configuration,
// voting_view and observers: they list the replicas' addresses), envi
// (also for system_properties), crst and srst; otherwise they are a 403
// saying which word enables them. The rest (srvr, mntr, ruok, isro, leader,
// watch_summary, ...) and /metrics always answer. An unknown command is a 404,
// a ZooKeeper command zoo cannot answer (hash, dirs, snapshot, ...) a 501,
// and a command that needs a serving replica (ruok, srvr, cons, leader, ...)
// is a 503 while the replica is cut off from its quorum (unless the server is
// in read-only mode: a read-only server answers them); each has the reason
// in "error".
//
// The caller runs the http.Server; the handler may be used before Serve and
// after Close.
func (s *Server) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /commands", s.adminList)
	mux.HandleFunc("GET /commands/{$}", s.adminList)
	mux.HandleFunc("GET /commands/{name...}", s.adminCommand)
	mux.HandleFunc("GET /metrics", s.adminMetrics)
	return mux
}

// adminCmd is one AdminServer command.
type adminCmd struct {
	names []string // the primary name, then the aliases
	// serving: the command needs a serving replica (ZooKeeper's
	// isServerRequired); otherwise it also answers during an election.
	serving bool
	run     func(s *Server, st zoo.Status) object
}

// adminGates maps the commands that reveal what only an operator should
// see (or reset counters) to the four-letter word that must be whitelisted
// for them to answer.
var adminGates = map[string]string{
	"connections": "cons", "stats": "stat", "dump": "dump", "watches": "wchc", "watches_by_path": "wchp",
	"configuration": "conf", "initial_configuration": "conf", "voting_view": "conf", "observers": "conf",
	"environment": "envi", "system_properties": "envi",
	"connection_stat_reset": "crst", "stat_reset": "srst",
}

// adminCmds are the commands zoo answers, with ZooKeeper's names.
var adminCmds = []adminCmd{
	{[]string{"configuration", "conf", "config"}, false, (*Server).adminConf},
	{[]string{"connection_stat_reset", "crst"}, false, func(s *Server, _ zoo.Status) object {
		s.resetConnStats()
		return nil
	}},
	{[]string{"connections", "cons"}, true, func(s *Server, _ zoo.Status) object {
		plain, secure := s.connInfos(false)
		return object{{"connections", plain}, {"secure_connections", secure}}
	}},
	{[]string{"dump"}, true, (*Server).adminDump},
	{[]string{"environment", "env", "envi"}, false, func(s *Server, _ zoo.Status) object {
		var o object
		for _, kv := range s.environment() {
			o = append(o, field{kv[0], kv[1]})
		}
		return o
	}},
	{[]string{"get_trace_mask", "gtmk"}, false, func(*Server, zoo.Status) object {
		return object{{"tracemask", 0}} // zoo has no trace mask, as gtmk says
	}},
	{[]string{"initial_configuration", "icfg"}, false, func(s *Server, st zoo.Status) object {
		return object{{"initial_configuration", membershipText(st)}}
	}},
	{[]string{"is_read_only", "isro"}, true, func(s *Server, st zoo.Status) object {
		return object{{"read_only", s.inReadOnlyMode(st)}}
	}},
	{[]string{"leader", "lead"}, true, func(_ *Server, st zoo.Status) object {
		return object{{"is_leader", st.Role == zoo.RoleLeader}, {"leader_id", serverID(st.LeaderID)},
			{"leader_ip", hostOf(st.LeaderAddr)}}
	}},
	{[]string{"monitor", "mntr"}, false, func(s *Server, st zoo.Status) object {
		var o object
		for _, m := range s.monitorValues(st) {
			o = append(o, field{m.name, m.value})
		}
		return o
	}},
	{[]string{"observers", "obsr"}, true, (*Server).adminObservers},
	{[]string{"ruok"}, true, func(*Server, zoo.Status) object { return nil }},
	{[]string{"server_stats", "srvr"}, true, func(s *Server, st zoo.Status) object { return s.adminSrvr(st, false) }},
	{[]string{"stat_reset", "srst"}, false, func(s *Server, _ zoo.Status) object {
		s.resetServerStats()
		return nil
	}},
	{[]string{"stats", "stat"}, true, func(s *Server, st zoo.Status) object { return s.adminSrvr(st, true) }},
	{[]string{"system_properties", "sysp"}, false, (*Server).adminSysProps},
	{[]string{"voting_view"}, false, func(_ *Server, st zoo.Status) object {
		view := map[string]string{}
		for _, m := range st.Members {
			if m.Voter {
				view[m.ID] = m.Addr + ":participant"
			}
		}
		return object{{"current_config", view}}
	}},
	{[]string{"watch_summary", "wchs"}, true, func(s *Server, _ zoo.Status) object {
		bySession, byPath, total := s.watchIndex()
		return object{{"num_connections", len(bySession)}, {"num_paths", len(byPath)}, {"num_total_watches", total}}
	}},
	{[]string{"watches", "wchc"}, true, func(s *Server, _ zoo.Status) object {
		bySession, _, _ := s.watchIndex()
		m := map[int64][]string{}
		for _, e := range bySession {
			m[e.sid] = e.paths
		}
		return object{{"session_id_to_watched_paths", m}}
	}},
	{[]string{"watches_by_path", "wchp"}, true, func(s *Server, _ zoo.Status) object {
		_, byPath, _ := s.watchIndex()
		return object{{"path_to_session_ids", byPath}}
	}},
}

// adminUnsupported are ZooKeeper's commands that zoo does not answer, by
// name and alias, mapped to their primary name.
var adminUnsupported = map[string]string{
	"dirs": "dirs", "hash": "hash", "zabstate": "zabstate",
	"last_snapshot": "last_snapshot", "lsnp": "last_snapshot",
	"observer_connection_stat_reset": "observer_connection_stat_reset", "orst": "observer_connection_stat_reset",
	"restore": "restore", "rest": "restore",
	"set_trace_mask": "set_trace_mask", "stmk": "set_trace_mask",
	"snapshot": "snapshot", "snap": "snapshot",
}

func findAdminCmd(name string) *adminCmd {
	for i := range adminCmds {
		if slices.Contains(adminCmds[i].names, name) {
			return &adminCmds[i]
		}
	}
	return nil
}

// adminList links every command by its primary name, as ZooKeeper's
// /commands page does.
func (s *Server) adminList(w http.ResponseWriter, _ *http.Request) {
	var b strings.Builder
	b.WriteString("<html><head><title>zoo AdminServer commands</title></head><body>\n")
	for _, c := range adminCmds {
		n := html.EscapeString(c.names[0])
		fmt.Fprintf(&b, "<a href=\"/commands/%s\">%s</a><br/>\n", n, n)
	}
	b.WriteString("</body></html>\n")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write([]byte(b.String()))
}

// adminCommand runs /commands/<name>.
func (s *Server) adminCommand(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	cmd := findAdminCmd(name)
	if cmd == nil {
		if primary, ok := adminUnsupported[name]; ok {
			writeJSON(w, http.StatusNotImplemented, object{{"command", primary}, {"error", primary + " is not supported by zoo"}})
			return
		}
		writeJSON(w, http.StatusNotFound, object{{"command", name}, {"error", "Unknown command: " + name}})
		return
	}
	if word := adminGates[cmd.names[0]]; word != "" && !s.wordAllowed(word) {
		writeJSON(w, http.StatusForbidden, object{{"command", cmd.names[0]},
			{"error", fmt.Sprintf("%s is not enabled: add %s to 4lw.commands.whitelist", cmd.names[0], word)}})
		return
	}
	st, err := s.ens.Status()
	if cmd.serving && (err != nil || !st.Serving && !s.inReadOnlyMode(st)) {
		writeJSON(w, http.StatusServiceUnavailable, object{{"command", cmd.names[0]},
			{"error", strings.TrimSuffix(notServing, "\n")}})
		return
	}
	resp := cmd.run(s, st)
	writeJSON(w, http.StatusOK, append(resp, field{"command", cmd.names[0]}, field{"error", nil}))
}

func writeJSON(w http.ResponseWriter, code int, o object) {
	b, err := json.MarshalIndent(o, "", "  ")
	if err != nil {
		code = http.StatusInternalServerError
		b = []byte(`{"error": "zoo: encoding the command's answer: ` + strings.ReplaceAll(err.Error(), `"`, `'`) + `"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

// object is a JSON object that keeps its keys in order, as ZooKeeper's
// answers do (data first, then "command" and "error").
type object []field

type field struct {
	key   string
	value any
}

func (o object) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, f := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := json.Marshal(f.key)
		if err != nil {
			return nil, err
		}
		v, err := json.Marshal(f.value)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.key, err)
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// adminSrvr is server_stats (srvr) and, with connections, stats (stat).
func (s *Server) adminSrvr(st zoo.Status, connections bool) object {
	lmin, lavg, lmax := s.lat.get()
	conns := s.connList()
	o := object{
		{"version", s.versionLine()},
		{"read_only", s.inReadOnlyMode(st)},
		{"server_stats", object{
			{"packets_sent", s.sent.Load()},
			{"packets_received", s.received.Load()},
			{"max_latency", lmax},
			{"min_latency", lmin},
			{"avg_latency", lavg},
			{"outstanding_requests", s.outstanding.Load()},
			{"last_processed_zxid", st.AppliedIndex},
			{"server_state", s.modeName(st)},
			{"num_alive_client_connections", len(conns)},
			{"uptime", time.Since(s.started).Milliseconds()},
		}},
		{"node_count", st.Nodes},
	}
	if connections {
		plain, secure := s.connInfos(true)
		o = append(o, field{"connections", plain}, field{"secure_connections", secure})
	}
	return o
}

// connInfos describes the connections that have a session, oldest first, as
// ZooKeeper's getConnectionInfo does (brief: the counters only).
// ZooKeeper lists TLS connections apart, as secure_connections.
func (s *Server) connInfos(brief bool) (plain, secure []object) {
	plain, secure = []object{}, []object{}
	for _, c := range s.connList() {
		switch {
		case !c.established():
		case c.tls:
			secure = append(secure, c.info(brief))
		default:
			plain = append(plain, c.info(brief))
		}
	}
	return plain, secure
}

func (c *conn) info(brief bool) object {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := &c.st
	o := object{
		{"remote_socket_address", c.remote},
		{"packets_received", st.recved},
		{"packets_sent", st.sent},
	}
	if brief || c.sess == nil {
		return o
	}
	avg := int64(0)
	if st.numLat > 0 {
		avg = st.totLat / st.numLat
	}
	lresp := int64(0)
	if !st.lastResp.IsZero() {
		lresp = st.lastResp.UnixMilli()
	}
	return append(o,
		field{"session_id", c.sess.ID()},
		field{"last_operation", st.lastOp},
		field{"established", c.est.UnixMilli()},
		field{"session_timeout", c.timeout.Milliseconds()},
		field{"last_cxid", st.lastCxid},
		field{"last_zxid", st.lastZxid},
		field{"last_response_time", lresp},
		field{"last_latency", st.lastLat},
		field{"min_latency", st.minLat},
		field{"avg_latency", avg},
		field{"max_latency", st.maxLat},
	)
}

// adminConf is configuration: what this server knows of ZooKeeper's
// ZooKeeperServerConf, plus the client-port settings.
func (s *Server) adminConf(st zoo.Status) object {
	o := object{}
	if a, ok := s.Addr().(*net.TCPAddr); ok {
		o = append(o, field{"client_port", a.Port})
	}
	return append(o,
		field{"max_client_cnxns", s.cfg.MaxClientCnxns},
		field{"server_id", serverID(st.ID)},
		field{"jute_maxbuffer", s.cfg.MaxFrameSize},
		field{"extended_types_enabled", s.cfg.ExtendedTypesEnabled},
		field{"four_letter_word_whitelist", s.cfg.FourLetterWords},
	)
}

// adminDump is dump: the ephemerals of this server's sessions. zoo does not
// expose session deadlines, so expiry_time_to_session_ids stays empty (as on
// a ZooKeeper follower) and session_id_to_timeout gives the timeouts instead.
func (s *Server) adminDump(zoo.Status) object {
	ctx, cancel := context.WithTimeout(s.ctx, time.Second)
	defer cancel()
	timeouts := map[int64]int64{}
	ephemerals := map[int64][]string{}
	for _, c := range s.connList() {
		sess := c.session()
		if sess == nil {
			continue
		}
		timeouts[sess.ID()] = sess.Timeout().Milliseconds()
		if paths, err := sess.GetEphemerals(ctx, "/"); err == nil && len(paths) > 0 {
			ephemerals[sess.ID()] = paths
		}
	}
	return object{
		{"expiry_time_to_session_ids", map[int64][]int64{}},
		{"session_id_to_ephemeral_paths", ephemerals},
		{"session_id_to_timeout", timeouts},
	}
}

// adminObservers is observers: on the leader, the non-voting members.
func (s *Server) adminObservers(st zoo.Status) object {
	observers := []object{}
	if st.Role == zoo.RoleLeader {
		for _, m := range st.Members {
			if !m.Voter && m.ID != st.ID {
				observers = append(observers, object{{"remote_socket_address", m.Addr}, {"sid", serverID(m.ID)}})
			}
		}
	}
	return object{{"synced_observers", len(observers)}, {"observers", observers}}
}

// adminSysProps is system_properties. Go has no system properties: these are
// the ZooKeeper properties this server honours and the process's environment,
// sorted by name as ZooKeeper sorts them.
func (s *Server) adminSysProps(zoo.Status) object {
	props := map[string]string{
		"jute.maxbuffer":                   strconv.Itoa(s.cfg.MaxFrameSize),
		"zookeeper.4lw.commands.whitelist": strings.Join(s.cfg.FourLetterWords, ","),
		"zookeeper.extendedTypesEnabled":   strconv.FormatBool(s.cfg.ExtendedTypesEnabled),
	}
	for _, kv := range s.environment() {
		props[kv[0]] = kv[1]
	}
	var o object
	for _, k := range slices.Sorted(maps.Keys(props)) {
		o = append(o, field{k, props[k]})
	}
	return o
}

// membershipText lists the members as server.<id>=<addr>:<role> lines, the
// shape of ZooKeeper's dynamic configuration.
func membershipText(st zoo.Status) string {
	var b strings.Builder
	for _, m := range st.Members {
		b.WriteString(memberLine(m) + "\n")
	}
	return b.String()
}

// serverID is a member id as ZooKeeper reports it: a number (myid) when it is
// one, else the string.
func serverID(id string) any {
	if n, err := strconv.ParseInt(id, 10, 64); err == nil {
		return n
	}
	return id
}

// hostOf is the host of a host:port address, or the address itself.
func hostOf(addr string) string {
	if host, _, err := net.SplitHostPort(addr); err == nil {
		return host
	}
	return addr
}

// metricHelp documents the /metrics gauges; names not here are documented
// by their own name.
var metricHelp = map[string]string{
	"avg_latency":                    "Average client request latency in milliseconds",
	"max_latency":                    "Maximum client request latency in milliseconds",
	"min_latency":                    "Minimum client request latency in milliseconds",
	"packets_received":               "Client packets received since start or the last srst",
	"packets_sent":                   "Client packets sent since start or the last srst",
	"num_alive_connections":          "Open client connections to this server",
	"outstanding_requests":           "Client requests being processed",
	"znode_count":                    "Znodes in this replica's tree",
	"watch_count":                    "Watches set on this replica",
	"ephemerals_count":               "Ephemerals owned by the sessions connected to this server",
	"global_sessions":                "Live sessions in the ensemble",
	"local_sessions":                 "Sessions served by this replica",
	"uptime":                         "Milliseconds since this server started",
	"quorum_size":                    "Voting members in the ensemble",
	"open_file_descriptor_count":     "Open file descriptors of this process",
	"max_file_descriptor_count":      "Open file descriptor limit of this process",
	"followers":                      "Other members of the ensemble (leader only)",
	"synced_followers":               "Other voting members of the ensemble (leader only)",
	"pending_syncs":                  "Pending follower syncs (leader only)",
	"leader_uptime":                  "Milliseconds since this replica became leader (leader only)",
	"digest_mismatches_count":        "Tree digest mismatches with the leader (a replica stops at the first)",
	"log_ranges_verified":            "Log ranges read back from raft.db as the leader wrote them",
	"log_ranges_inflight_mismatches": "Log ranges written with another checksum than the leader's (logged, not fatal)",
	"log_ranges_storage_mismatches":  "Log ranges read back from raft.db with another checksum than written",
}

// adminMetrics serves the monitor values in Prometheus's text exposition
// format, named as ZooKeeper's Prometheus metrics provider names them.
func (s *Server) adminMetrics(w http.ResponseWriter, _ *http.Request) {
	st, err := s.ens.Status()
	if err != nil {
		http.Error(w, "zoo: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	var b strings.Builder
	gauge := func(name, help, value string) {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s gauge\n%s %s\n", name, help, name, name, value)
	}
	for _, m := range s.monitorValues(st) {
		var v string
		switch x := m.value.(type) {
		case int64:
			v = strconv.FormatInt(x, 10)
		case float64:
			v = strconv.FormatFloat(x, 'g', -1, 64)
		default:
			continue // version, server_state
		}
		help := metricHelp[m.name]
		if help == "" {
			help = m.name
		}
		gauge(m.name, help, v)
	}
	gauge("zoo_applied_index", "The last zxid (raft index) this replica applied", strconv.FormatUint(st.AppliedIndex, 10))
	serving := "0"
	if st.Serving {
		serving = "1"
	}
	gauge("zoo_serving", "1 if this replica knows a leader and serves clients, else 0", serving)
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	_, _ = w.Write([]byte(b.String()))
}
