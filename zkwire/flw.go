package zkwire

import (
	"bufio"
	"context"
	"encoding/binary"
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
	case !s.allWords && !s.words[word]:
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
	serving := err == nil && st.Serving
	switch word {
	case "ruok":
		return "imok"
	case "isro":
		if !serving {
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
		for _, cc := range s.connList() {
			cc.mu.Lock()
			cc.st = connStats{lastOp: "NA", lastCxid: -1, lastZxid: -1}
			cc.mu.Unlock()
		}
		return "Connection stats reset.\n"
	case "srst":
		s.received.Store(0)
		s.sent.Store(0)
		s.lat.reset()
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
	fmt.Fprintf(&b, "Mode: %s\n", st.Mode)
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

// mntr is the key<TAB>value monitoring output.
func (s *Server) mntr(st zoo.Status) string {
	var b strings.Builder
	kv := func(k string, v any) { fmt.Fprintf(&b, "%s\t%v\n", k, v) }
	lmin, lavg, lmax := s.lat.get()
	conns := s.connList()
	kv("zk_version", s.versionLine())
	kv("zk_server_state", st.Mode)
	kv("zk_avg_latency", strconv.FormatFloat(lavg, 'f', 4, 64))
	kv("zk_max_latency", lmax)
	kv("zk_min_latency", lmin)
	kv("zk_packets_received", s.received.Load())
	kv("zk_packets_sent", s.sent.Load())
	kv("zk_num_alive_connections", len(conns))
	kv("zk_outstanding_requests", s.outstanding.Load())
	kv("zk_znode_count", st.Nodes)
	kv("zk_watch_count", st.Watches)
	// zoo does not report the ensemble's ephemeral count; this counts the
	// ephemerals of the sessions connected through this server.
	kv("zk_ephemerals_count", s.localEphemerals(conns))
	kv("zk_global_sessions", st.Sessions)
	kv("zk_local_sessions", st.LocalSessions)
	if n, ok := openFDs(); ok {
		kv("zk_open_file_descriptor_count", n)
	}
	if n, ok := maxFDs(); ok {
		kv("zk_max_file_descriptor_count", n)
	}
	if st.Mode == zoo.ModeLeader {
		followers, voters := 0, 0
		for _, m := range st.Members {
			if m.ID != st.ID {
				followers++
				if m.Voter {
					voters++
				}
			}
		}
		kv("zk_followers", followers)
		kv("zk_synced_followers", voters)
		kv("zk_pending_syncs", 0)
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
	fmt.Fprintf(&b, "zookeeper.version=%s\n", s.versionLine())
	host, _ := os.Hostname()
	fmt.Fprintf(&b, "host.name=%s\n", host)
	fmt.Fprintf(&b, "go.version=%s\n", runtime.Version())
	fmt.Fprintf(&b, "os.name=%s\n", runtime.GOOS)
	fmt.Fprintf(&b, "os.arch=%s\n", runtime.GOARCH)
	fmt.Fprintf(&b, "os.processors=%d\n", runtime.NumCPU())
	fmt.Fprintf(&b, "user.name=%s\n", os.Getenv("USER"))
	home, _ := os.UserHomeDir()
	fmt.Fprintf(&b, "user.home=%s\n", home)
	wd, _ := os.Getwd()
	fmt.Fprintf(&b, "user.dir=%s\n", wd)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Fprintf(&b, "os.memory.total=%dMB\n", ms.Sys>>20)
	return b.String()
}

// watchReport is wchs (summary), wchc (by session) or wchp (by path) for the
// watches of this server's connections.
func (s *Server) watchReport(word string) string {
	type entry struct {
		sid   int64
		paths []string
	}
	var entries []entry
	total := 0
	byPath := map[string][]int64{}
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
		entries = append(entries, entry{sess.ID(), paths})
		for _, p := range paths {
			byPath[p] = append(byPath[p], sess.ID())
		}
	}
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
	var sessions []*zoo.Session
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
