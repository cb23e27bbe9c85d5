package zkwire

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/zooraft/zoo"
)

// fourLetterWords are the words ZooKeeper knows (FourLetterCommands). A fresh
// connection whose first four bytes are one of them gets a plain-text answer
// and is closed.
var fourLetterWords = map[string]bool{
	"conf": true, "cons": true, "crst": true, "dirs": true, "dump": true, "envi": true,
	"gtmk": true, "ruok": true, "stmk": true, "srst": true, "srvr": true, "stat": true,
	"wchc": true, "wchp": true, "wchs": true, "mntr": true, "isro": true, "hash": true,
}

// notServing is what ZooKeeper prints for commands that need a running server.
const notServing = "This ZooKeeper instance is not currently serving requests\n"

// fourLetter answers a four-letter word on connection c, then closes it.
func (s *Server) fourLetter(c *conn, word string) {
	var text string
	switch {
	case !s.wordAllowed(word):
		text = word + " is not executed because it is not in the whitelist.\n"
	case word == "stmk":
		// stmk carries an 8-byte trace mask; zoo has no tracing: echo it.
		var b [8]byte
		if _, err := io.ReadFull(c.br, b[:]); err != nil {
			c.close()
			return
		}
		text = strconv.FormatInt(int64(binary.BigEndian.Uint64(b[:])), 10)
	default:
		text = s.runWord(c, word)
	}
	c.enqueue([]byte(text))
	c.finish()
}

func (s *Server) runWord(c *conn, word string) string {
	st, err := s.ens.Status()
	// A read-only server is running: it answers as one that serves.
	serving := err == nil && (st.Serving || s.inReadOnlyMode(st))
	switch word {
	case "ruok":
		return "imok"
	case "isro":
		switch {
		case err == nil && s.inReadOnlyMode(st):
			return "ro"
		case !serving:
			return "null"
		}
		return "rw"
	case "gtmk":
		return "0"
	case "conf":
		return s.conf(c, st)
	case "envi":
		return s.envi()
	case "dirs", "hash":
		return word + " is not supported by zoo.\n"
	case "crst":
		s.resetConnStats()
		return "Connection stats reset.\n"
	case "srst":
		s.resetServerStats()
		return "Server stats reset.\n"
	}
	if !serving {
		return notServing
	}
	switch word {
	case "srvr":
		return s.stats(st, false)
	case "stat":
		return s.stats(st, true)
	case "mntr":
		return s.mntr(st)
	case "cons":
		return s.cons()
	case "wchs", "wchc", "wchp":
		return s.watchReport(word)
	case "dump":
		return s.dump()
	}
	return ""
}

func (s *Server) versionLine() string { return s.cfg.Version + ", built on " + buildDate }

// resetConnStats is crst: every connection's cons counters start over.
func (s *Server) resetConnStats() {
	for _, c := range s.connList() {
		c.mu.Lock()
		c.st = connStats{lastOp: "NA", lastCxid: -1, lastZxid: -1}
		c.mu.Unlock()
	}
}

// resetServerStats is srst: the packet counters and latencies start over.
func (s *Server) resetServerStats() {
	s.received.Store(0)
	s.sent.Store(0)
	s.lat.reset()
}

// stats is srvr (and stat, with its Clients block) in ZooKeeper's format.
func (s *Server) stats(st zoo.Status, clients bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Zookeeper version: %s\n", s.versionLine())
	if clients {
		b.WriteString("Clients:\n")
		for _, c := range s.connList() {
			b.WriteString(c.brief())
		}
		b.WriteString("\n")
	}
	lmin, lavg, lmax := s.lat.get()
	fmt.Fprintf(&b, "Latency min/avg/max: %d/%.4f/%d\n", lmin, lavg, lmax)
	fmt.Fprintf(&b, "Received: %d\n", s.received.Load())
	fmt.Fprintf(&b, "Sent: %d\n", s.sent.Load())
	fmt.Fprintf(&b, "Connections: %d\n", len(s.connList()))
	fmt.Fprintf(&b, "Outstanding: %d\n", s.outstanding.Load())
	fmt.Fprintf(&b, "Zxid: 0x%x\n", st.AppliedIndex)
	fmt.Fprintf(&b, "Mode: %s\n", s.modeName(st))
	fmt.Fprintf(&b, "Node count: %d\n", st.Nodes)
	return b.String()
}

// brief is a connection's line in stat's Clients block.
func (c *conn) brief() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return fmt.Sprintf(" /%s[1](queued=%d,recved=%d,sent=%d)\n", c.remote, len(c.out), c.st.recved, c.st.sent)
}

// full is a connection's cons line, in the form go-zookeeper's FLWCons parses.
func (c *conn) full() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := &c.st
	avg := int64(0)
	if st.numLat > 0 {
		avg = st.totLat / st.numLat
	}
	lresp := int64(0)
	if !st.lastResp.IsZero() {
		lresp = st.lastResp.UnixMilli()
	}
	return fmt.Sprintf(" /%s[1](queued=%d,recved=%d,sent=%d,sid=0x%x,lop=%s,est=%d,to=%d,"+
		"lcxid=0x%x,lzxid=0x%x,lresp=%d,llat=%d,minlat=%d,avglat=%d,maxlat=%d)\n",
		c.remote, len(c.out), st.recved, st.sent, uint64(c.sess.ID()), st.lastOp, c.est.UnixMilli(),
		c.timeout.Milliseconds(), uint64(int64(st.lastCxid)), uint64(st.lastZxid), lresp,
		st.lastLat, st.minLat, avg, st.maxLat)
}

// cons lists the connections that have a session.
func (s *Server) cons() string {
	var b strings.Builder
	for _, c := range s.connList() {
		if c.established() {
			b.WriteString(c.full())
		}
	}
	b.WriteString("\n")
	return b.String()
}

// metric is one monitoring value, named as ZooKeeper's metrics are: mntr
// prints it as zk_<name>, the admin monitor command and /metrics use the name
// as it is. value is a string, an int64 or a float64.
type metric struct {
	name  string
	value any
}

// monitorValues are mntr's values, in mntr's order.
func (s *Server) monitorValues(st zoo.Status) []metric {
	lmin, lavg, lmax := s.lat.get()
	conns := s.connList()
	ms := []metric{
		{"version", s.versionLine()},
		{"server_state", s.modeName(st)},
		{"avg_latency", lavg},
		{"max_latency", lmax},
		{"min_latency", lmin},
		{"packets_received", s.received.Load()},
		{"packets_sent", s.sent.Load()},
		{"num_alive_connections", int64(len(conns))},
		{"outstanding_requests", s.outstanding.Load()},
		{"znode_count", int64(st.Nodes)},
		{"watch_count", int64(st.Watches)},
		// zoo does not report the ensemble's ephemeral count; this counts the
		// ephemerals of the sessions connected through this server.
		{"ephemerals_count", int64(s.localEphemerals(conns))},
		{"global_sessions", int64(st.Sessions)},
		{"local_sessions", int64(st.LocalSessions)},
		{"uptime", time.Since(s.started).Milliseconds()},
		{"quorum_size", int64(quorumSize(st))},
		// ZooKeeper's count of digest mismatches; zoo stops a replica at the
		// first, so it is 0 or 1.
		{"digest_mismatches_count", digestMismatches(s.ens.Failure())},
		// zoo's online log verifier (not in ZooKeeper): ranges of raft.db
		// read back as written, and checksum mismatches in flight and in
		// storage.
		{"log_ranges_verified", int64(st.LogVerifier.Verified)},
		{"log_ranges_inflight_mismatches", int64(st.LogVerifier.InFlightMismatches)},
		{"log_ranges_storage_mismatches", int64(st.LogVerifier.StorageMismatches)},
	}
	if n, ok := openFDs(); ok {
		ms = append(ms, metric{"open_file_descriptor_count", int64(n)})
	}
	if n, ok := maxFDs(); ok {
		ms = append(ms, metric{"max_file_descriptor_count", n})
	}
	if st.Role == zoo.RoleLeader {
		followers, voters := 0, 0
		for _, m := range st.Members {
			if m.ID != st.ID {
				followers++
				if m.Voter {
					voters++
				}
			}
		}
		ms = append(ms, metric{"followers", int64(followers)}, metric{"synced_followers", int64(voters)},
			metric{"pending_syncs", int64(0)})
		if !st.LeaderSince.IsZero() {
			ms = append(ms, metric{"leader_uptime", time.Since(st.LeaderSince).Milliseconds()})
		}
	}
	return ms
}

// quorumSize is the number of voting members.
func quorumSize(st zoo.Status) int {
	n := 0
	for _, m := range st.Members {
		if m.Voter {
			n++
		}
	}
	return n
}

// mntr is the key<TAB>value monitoring output.
func (s *Server) mntr(st zoo.Status) string {
	var b strings.Builder
	for _, m := range s.monitorValues(st) {
		v := fmt.Sprint(m.value)
		if f, ok := m.value.(float64); ok {
			v = strconv.FormatFloat(f, 'f', 4, 64)
		}
		fmt.Fprintf(&b, "zk_%s\t%s\n", m.name, v)
	}
	return b.String()
}

// localEphemerals counts the ephemerals owned by this server's sessions.
func (s *Server) localEphemerals(conns []*conn) int {
	ctx, cancel := context.WithTimeout(s.ctx, time.Second)
	defer cancel()
	n := 0
	for _, c := range conns {
		if sess := c.session(); sess != nil {
			if paths, err := sess.GetEphemerals(ctx, "/"); err == nil {
				n += len(paths)
			}
		}
	}
	return n
}

// conf prints the configuration a client port user may want.
func (s *Server) conf(c *conn, st zoo.Status) string {
	var b strings.Builder
	if a, ok := c.nc.LocalAddr().(*net.TCPAddr); ok {
		fmt.Fprintf(&b, "clientPort=%d\n", a.Port)
	}
	fmt.Fprintf(&b, "serverId=%s\n", st.ID)
	fmt.Fprintf(&b, "maxClientCnxns=%d\n", s.cfg.MaxClientCnxns)
	fmt.Fprintf(&b, "jute.maxbuffer=%d\n", s.cfg.MaxFrameSize)
	fmt.Fprintf(&b, "zookeeper.extendedTypesEnabled=%t\n", s.cfg.ExtendedTypesEnabled)
	fmt.Fprintf(&b, "4lw.commands.whitelist=%s\n", strings.Join(s.cfg.FourLetterWords, ","))
	for _, m := range st.Members {
		role := "participant"
		if !m.Voter {
			role = "observer"
		}
		fmt.Fprintf(&b, "server.%s=%s:%s\n", m.ID, m.Addr, role)
	}
	return b.String()
}

// envi prints the environment; kazoo's server_version parses zookeeper.version.
func (s *Server) envi() string {
	var b strings.Builder
	b.WriteString("Environment:\n")
	for _, kv := range s.environment() {
		fmt.Fprintf(&b, "%s=%s\n", kv[0], kv[1])
	}
	return b.String()
}

// environment is envi's key, value pairs, in order.
func (s *Server) environment() [][2]string {
	host, _ := os.Hostname()
	home, _ := os.UserHomeDir()
	wd, _ := os.Getwd()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return [][2]string{
		{"zookeeper.version", s.versionLine()},
		{"host.name", host},
		{"go.version", runtime.Version()},
		{"os.name", runtime.GOOS},
		{"os.arch", runtime.GOARCH},
		{"os.processors", strconv.Itoa(runtime.NumCPU())},
		{"user.name", os.Getenv("USER")},
		{"user.home", home},
		{"user.dir", wd},
		{"os.memory.total", fmt.Sprintf("%dMB", ms.Sys>>20)},
	}
}

// sessionWatches are the paths one session watches through this server.
type sessionWatches struct {
	sid   int64
	paths []string
}

// watchIndex gathers the watches of this server's connections: by session
// (in connection order), by path, and the total (one per kind per path).
func (s *Server) watchIndex() (bySession []sessionWatches, byPath map[string][]int64, total int) {
	byPath = map[string][]int64{}
	for _, c := range s.connList() {
		sess := c.session()
		if sess == nil {
			continue
		}
		paths, n := c.watchedPaths()
		if len(paths) == 0 {
			continue
		}
		total += n
		bySession = append(bySession, sessionWatches{sess.ID(), paths})
		for _, p := range paths {
			byPath[p] = append(byPath[p], sess.ID())
		}
	}
	return bySession, byPath, total
}

// watchReport is wchs (summary), wchc (by session) or wchp (by path) for the
// watches of this server's connections.
func (s *Server) watchReport(word string) string {
	entries, byPath, total := s.watchIndex()
	var b strings.Builder
	switch word {
	case "wchs":
		fmt.Fprintf(&b, "%d connections watching %d paths\nTotal watches:%d\n", len(entries), len(byPath), total)
	case "wchc":
		for _, e := range entries {
			fmt.Fprintf(&b, "0x%x\n", uint64(e.sid))
			for _, p := range e.paths {
				fmt.Fprintf(&b, "\t%s\n", p)
			}
		}
	case "wchp":
		for _, p := range slices.Sorted(maps.Keys(byPath)) {
			fmt.Fprintf(&b, "%s\n", p)
			for _, sid := range byPath[p] {
				fmt.Fprintf(&b, "\t0x%x\n", uint64(sid))
			}
		}
	}
	return b.String()
}

// dump lists this server's sessions and their ephemerals.
func (s *Server) dump() string {
	ctx, cancel := context.WithTimeout(s.ctx, time.Second)
	defer cancel()
	var b strings.Builder
	var sessions []*zoo.ServerSession
	for _, c := range s.connList() {
		if sess := c.session(); sess != nil {
			sessions = append(sessions, sess)
		}
	}
	b.WriteString("SessionTracker dump:\n")
	fmt.Fprintf(&b, "Sessions served by this server (%d):\n", len(sessions))
	for _, sess := range sessions {
		fmt.Fprintf(&b, "0x%x\t%dms\n", uint64(sess.ID()), sess.Timeout().Milliseconds())
	}
	b.WriteString("ephemeral nodes dump:\n")
	type eph struct {
		sid   int64
		paths []string
	}
	var withEph []eph
	for _, sess := range sessions {
		if paths, err := sess.GetEphemerals(ctx, "/"); err == nil && len(paths) > 0 {
			withEph = append(withEph, eph{sess.ID(), paths})
		}
	}
	fmt.Fprintf(&b, "Sessions with Ephemerals (%d):\n", len(withEph))
	for _, e := range withEph {
		fmt.Fprintf(&b, "0x%x:\n", uint64(e.sid))
		for _, p := range e.paths {
			fmt.Fprintf(&b, "\t%s\n", p)
		}
	}
	return b.String()
}

// openFDs counts this process's open file descriptors where /proc has them.
func openFDs() (int, bool) {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0, false
	}
	return len(entries), true
}

// maxFDs reads the soft open-files limit where /proc has it.
func maxFDs() (int64, bool) {
	f, err := os.Open("/proc/self/limits")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "Max open files"); ok {
			fields := strings.Fields(rest)
			if len(fields) > 0 {
				if n, err := strconv.ParseInt(fields[0], 10, 64); err == nil {
					return n, true
				}
			}
		}
	}
	return 0, false
}

// wordAllowed reports whether the whitelist enables word.
func (s *Server) wordAllowed(word string) bool { return s.allWords || s.words[word] }

// digestMismatches is 1 when the replica stopped because its tree diverged
// from the leader's.
func digestMismatches(failure error) int64 {
	if errors.Is(failure, zoo.ErrDiverged) {
		return 1
	}
	return 0
}
