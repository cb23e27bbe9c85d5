package zoocfg

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"
)

// DefaultTickTime is ZooKeeper's tickTime when zoo.cfg has none.
const DefaultTickTime = 3 * time.Second

// Server is one server.N line: server.N=host:quorumPort:electionPort[:role][;[clientHost:]clientPort].
type Server struct {
	// ID is N from server.N, in canonical decimal form (server.01 has ID "1").
	ID string
	// Host is the address the other servers reach this one at; IPv6 without
	// its brackets.
	Host string
	// QuorumPort is the port followers talk to the leader on (ZooKeeper's
	// 2888); ElectionPort the leader election port (3888). Both 1-65535 and
	// different from each other.
	QuorumPort, ElectionPort int
	// Observer is true for the role ":observer"; the default role is
	// participant (a voter).
	Observer bool
	// ClientHost and ClientPort are the client address after ';'. ClientHost
	// is empty when only a port is given (all interfaces); ClientPort is 0 when
	// the line has no client part.
	ClientHost string
	ClientPort int
}

// Config is a parsed zoo.cfg. Parse fills every field, defaults included, so a
// zero field means what ZooKeeper means by zero.
type Config struct {
	// TickTime is tickTime (milliseconds in the file), > 0. Default
	// [DefaultTickTime] (3s), with a warning.
	TickTime time.Duration
	// InitLimit and SyncLimit are in ticks. Required (> 0) when the servers
	// form an ensemble (see [Config.Distributed]); 0 if absent otherwise.
	InitLimit, SyncLimit int
	// DataDir is where myid lives. Required. DataLogDir defaults to DataDir.
	DataDir, DataLogDir string
	// ClientPort is clientPort; 0 if absent, which is allowed only when every
	// server line carries a client port or SecureClientPort is set (then
	// clients are served over TLS alone). After [Load] it is the port this
	// server serves clients on: clientPort or, if absent, the one on its
	// server.N line.
	ClientPort int
	// ClientPortAddress is clientPortAddress: the address to bind ClientPort
	// on; empty means all interfaces. After [Load], the host on this server's
	// server.N line (if any) takes its place, as in ZooKeeper.
	ClientPortAddress string
	// Servers are the server.N lines, sorted by numeric ID.
	Servers []Server
	// MyID is the first line of dataDir/myid, trimmed, in canonical decimal.
	// Set by [Load] when servers are listed; Parse leaves it empty.
	MyID string
	// MaxClientCnxns is maxClientCnxns, the limit of connections per client
	// IP address. Default 60; 0 means unlimited.
	MaxClientCnxns int
	// MinSessionTimeout and MaxSessionTimeout are minSessionTimeout and
	// maxSessionTimeout (milliseconds in the file). 0 (or -1 in the file)
	// means ZooKeeper's default, 2 and 20 TickTimes: see
	// [Config.SessionTimeouts].
	MinSessionTimeout, MaxSessionTimeout time.Duration
	// FourLetterWords is 4lw.commands.whitelist split on commas, trimmed,
	// empty entries dropped ("*" means all). Nil if the key is absent, which
	// in ZooKeeper enables srvr only (plus isro with read-only mode); empty but
	// not nil if the key is present with nothing in it.
	FourLetterWords []string
	// AutopurgeSnapRetainCount is autopurge.snapRetainCount. Default 3, which
	// is also the minimum: smaller values are raised to 3 with a warning.
	AutopurgeSnapRetainCount int
	// AutopurgePurgeInterval is autopurge.purgeInterval (hours in the file).
	// 0, the default, disables purging; negative values read as 0.
	AutopurgePurgeInterval time.Duration
	// AdminEnabled is admin.enableServer, default true. AdminPort is
	// admin.serverPort, default 8080. AdminAddress is admin.serverAddress,
	// default "0.0.0.0".
	AdminEnabled bool
	AdminPort    int
	AdminAddress string
	// PeerType is peerType: "participant" (default) or "observer". After
	// [Load], the role on this server's server.N line wins over peerType, with
	// a warning if they differ, as in ZooKeeper.
	PeerType string
	// ReconfigEnabled is reconfigEnabled, default false.
	ReconfigEnabled bool
	// Standalone is standaloneEnabled, default true: a config with a single
	// participant runs as one server rather than an ensemble.
	Standalone bool
	// DynamicConfigFile is dynamicConfigFile, the file that holds the
	// server.N lines once ZooKeeper's dynamic reconfiguration has been used.
	// [Load] reads it into Servers; Parse leaves Servers empty when it is set.
	DynamicConfigFile string
	// AuthProviders maps N to the class name of each authProvider.N key; nil
	// if there is none.
	AuthProviders map[string]string
	// SuperDigest is DigestAuthenticationProvider.superDigest (also accepted
	// with a "zookeeper." prefix): "user:base64digest".
	SuperDigest string
	// ExtendedTypesEnabled is extendedTypesEnabled (also accepted with a
	// "zookeeper." prefix): TTL nodes. Default false.
	ExtendedTypesEnabled bool
	// ReadOnlyMode is readonlymode.enabled. Default false.
	ReadOnlyMode bool
	// SecureClientPort is secureClientPort: the TLS client port, 0 if none.
	// SecureClientPortAddress is secureClientPortAddress, the address to bind
	// it on (empty: all interfaces).
	SecureClientPort        int
	SecureClientPortAddress string
	// ClientTLS are the ssl.* keys: the secure client port's TLS, and the
	// AdminServer's HTTPS when ssl.keyStore.location is set.
	ClientTLS TLS
	// SSLQuorum is sslQuorum: the links between servers are mutual TLS with
	// QuorumTLS, the ssl.quorum.* keys.
	SSLQuorum bool
	QuorumTLS TLS
	// QuorumCertsReadOnce is sslQuorumReloadCertFiles=false: the ssl.quorum.*
	// files are read at start only. Unset (or true), a changed file is read
	// again, as ZooKeeper does with true.
	QuorumCertsReadOnce bool
	// X509SuperUser is X509AuthenticationProvider.superUser: the x509 id
	// (certificate subject in RFC 2253 form) that bypasses every ACL.
	X509SuperUser string
	// AdminForceHTTPS is admin.forceHttps and AdminNeedClientAuth
	// admin.needClientAuth: the AdminServer serves HTTPS (and requires a
	// client certificate from the ssl.trustStore CAs). HTTPS is also served
	// whenever ssl.keyStore.location is set.
	AdminForceHTTPS     bool
	AdminNeedClientAuth bool
	// Warnings are what was accepted but deserves a look, one line each in
	// the form "zoo.cfg:LINE: message": unknown keys ("unknown key \"x\"
	// ignored"), ZooKeeper features zoo does not have, backslash escapes that
	// change a value, values ZooKeeper corrects (autopurge.snapRetainCount
	// below 3) and ensembles that tolerate no failure.
	Warnings []string
}

// Error is a refused config: which file, line (0 when the problem is a key
// that is missing) and key, and why.
type Error struct {
	File string
	Line int
	Key  string
	Msg  string
	err  error // underlying cause, for errors.Is / errors.As
}

// Error formats as "zoo.cfg:12: tickTime: not a number: \"abc\"", leaving
// out the line when it is 0 and the key when it is empty.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap returns the error that caused e, if any (such as a failure to read
// the myid file).
func (e *Error) Unwrap() error { return e.err }

// Self returns the server.N entry whose N is MyID.
func (c *Config) Self() (Server, bool) {
	if c.MyID == "" {
		return Server{}, false
	}
	for _, s := range c.Servers {
		if s.ID == c.MyID {
			return s, true
		}
	}
	return Server{}, false
}

// Distributed reports whether the servers form an ensemble, as ZooKeeper's
// QuorumPeerConfig.isDistributed: more than one participant, or any servers
// with standaloneEnabled=false. Otherwise ZooKeeper runs a single standalone
// server (with one participant listed and standaloneEnabled=true it ignores
// the line).
func (c *Config) Distributed() bool {
	return countParticipants(c.Servers) > 1 || (!c.Standalone && len(c.Servers) > 0)
}

// SessionTimeouts returns the session timeout bounds with ZooKeeper's
// defaults applied: MinSessionTimeout or 2 ticks, MaxSessionTimeout or 20.
func (c *Config) SessionTimeouts() (min, max time.Duration) {
	min, max = c.MinSessionTimeout, c.MaxSessionTimeout
	if min == 0 {
		min = 2 * c.TickTime
	}
	if max == 0 {
		max = 20 * c.TickTime
	}
	return min, max
}

func countParticipants(servers []Server) int {
	n := 0
	for _, s := range servers {
		if !s.Observer {
			n++
		}
	}
	return n
}

// Parse reads a zoo.cfg from r; name is the file name used in errors and
// warnings ("zoo.cfg" if empty). It does not read myid (see [Load]). The
// error, if any, is an [*Error] naming the first problem found.
func Parse(r io.Reader, name string) (*Config, error) {
	c, _, err := parse(r, name)
	return c, err
}

// parser carries what validation needs beyond the Config: where each key was.
type parser struct {
	file string
	// lines maps each canonical key (server.N with N canonical) to its line.
	lines map[string]int
	// serverLine maps a server ID to the line of its server.N, in serverFile
	// (empty: file).
	serverLine     map[string]int
	serverFile     string
	multiAddress   bool
	warnedPrefix   map[string]bool // unsupported key families warned about once
	warnings       []string
	peerTypeSet    bool
	snapRetainLine int
}

func (p *parser) errorf(line int, key, format string, args ...any) *Error {
	return &Error{File: p.file, Line: line, Key: key, Msg: fmt.Sprintf(format, args...)}
}

func (p *parser) warnf(line int, format string, args ...any) {
	prefix := p.file + ": "
	if line > 0 {
		prefix = fmt.Sprintf("%s:%d: ", p.file, line)
	}
	p.warnings = append(p.warnings, prefix+fmt.Sprintf(format, args...))
}

func parse(r io.Reader, name string) (*Config, *parser, error) {
	if name == "" {
		name = "zoo.cfg"
	}
	p := &parser{file: name, lines: map[string]int{}, serverLine: map[string]int{}, warnedPrefix: map[string]bool{}}
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, nil, &Error{File: name, Msg: "read: " + err.Error(), err: err}
	}
	props, err := readProperties(string(data))
	if err != nil {
		if e, ok := err.(*Error); ok {
			e.File = name
		}
		return nil, nil, err
	}
	c := &Config{
		MaxClientCnxns:           60,
		AutopurgeSnapRetainCount: 3,
		AdminEnabled:             true,
		AdminPort:                8080,
		AdminAddress:             "0.0.0.0",
		PeerType:                 "participant",
		Standalone:               true,
		ClientTLS:                defaultTLS(),
		QuorumTLS:                defaultTLS(),
	}
	for _, prop := range props {
		if err := p.apply(c, prop, false); err != nil {
			return nil, nil, err
		}
	}
	if err := p.finish(c); err != nil {
		return nil, nil, err
	}
	if c.DynamicConfigFile == "" {
		if err := p.checkServers(c); err != nil {
			return nil, nil, err
		}
	}
	c.Warnings = p.warnings
	return c, p, nil
}

// apply records one property. dynamic is true for the lines of a
// dynamicConfigFile, which may hold only server.N and version.
func (p *parser) apply(c *Config, prop property, dynamic bool) error {
	key, canon := prop.key, canonicalKey(prop.key)
	if strings.HasPrefix(key, "server.") {
		id, err := parseID(key[len("server."):])
		if err != nil {
			return p.errorf(prop.line, key, "server ID %s", err)
		}
		canon = "server." + id
		if first, dup := p.serverLine[id]; dup {
			return p.errorf(prop.line, key, "duplicate server ID %s (first on line %d)", id, first)
		}
		p.serverLine[id] = prop.line
	} else if first, dup := p.lines[canon]; dup {
		return p.errorf(prop.line, key, "duplicate key (first set on line %d)", first)
	}
	p.lines[canon] = prop.line
	if prop.escape != "" {
		p.warnf(prop.line, "%s: Java properties read %s; write \\\\ or / for a backslash", key, prop.escape)
	}

	if dynamic && !strings.HasPrefix(key, "server.") && key != "version" &&
		!strings.HasPrefix(key, "group.") && !strings.HasPrefix(key, "weight.") {
		p.warnf(prop.line, "unknown key %q ignored (a dynamic config file holds server.N lines)", key)
		return nil
	}
	if h, ok := handlers[canon]; ok {
		return h(p, c, prop)
	}
	for _, ph := range prefixHandlers {
		if strings.HasPrefix(key, ph.prefix) {
			return ph.handle(p, c, prop)
		}
	}
	if ignoredKeys[key] {
		return nil
	}
	for _, prefix := range ignoredPrefixes {
		if strings.HasPrefix(key, prefix) {
			return nil
		}
	}
	if r, ok := refusedKeys[canon]; ok {
		if harmless := r.harmless; harmless == nil && !isOff(prop.value) || harmless != nil && !harmless(prop.value) {
			return p.errorf(prop.line, key, "%s", r.reason)
		}
		return nil
	}
	if u, ok := unsupportedKeys[key]; ok {
		p.unsupported(prop, u)
		return nil
	}
	for _, up := range unsupportedPrefixes {
		if strings.HasPrefix(key, up.prefix) {
			if !p.warnedPrefix[up.prefix] && p.unsupported(prop, up.unsupported) {
				p.warnedPrefix[up.prefix] = true
			}
			return nil
		}
	}
	msg := fmt.Sprintf("unknown key %q ignored", key)
	if known := suggest(key); known != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", known)
	}
	p.warnf(prop.line, "%s", msg)
	return nil
}

// unsupported warns about prop unless its value leaves the feature off, and
// reports whether it warned.
func (p *parser) unsupported(prop property, u unsupported) bool {
	harmless := u.harmless
	if harmless == nil {
		harmless = isOff
	}
	if harmless(prop.value) {
		return false
	}
	p.warnf(prop.line, "%s: %s; ignored", prop.key, u.reason)
	return true
}

// finish applies the checks and defaults that need the whole file, except
// those about servers.
func (p *parser) finish(c *Config) error {
	if _, ok := p.lines["tickTime"]; !ok {
		// ZooKeeper's QuorumPeerConfig starts from ZooKeeperServer.DEFAULT_TICK_TIME,
		// and Kafka's shipped zookeeper.properties relies on it.
		c.TickTime = DefaultTickTime
		p.warnf(0, "tickTime: missing; using ZooKeeper's default %v", DefaultTickTime)
	}
	if _, ok := p.lines["dataDir"]; !ok {
		return p.errorf(0, "dataDir", "missing: the directory for snapshots and myid is required")
	}
	if c.DataLogDir == "" {
		c.DataLogDir = c.DataDir
	}
	if line, ok := p.lines["clientPortAddress"]; ok && c.ClientPort == 0 {
		if _, ok := p.lines["clientPort"]; !ok {
			return p.errorf(line, "clientPortAddress", "set but clientPort is not")
		}
	}
	if minT, maxT := c.SessionTimeouts(); minT > maxT {
		key := "minSessionTimeout"
		if _, ok := p.lines[key]; !ok {
			key = "maxSessionTimeout"
		}
		return p.errorf(p.lines[key], key, "minimum %v is above maximum %v (defaults are 2 and 20 tickTimes)", minT, maxT)
	}
	if c.AutopurgeSnapRetainCount < 3 {
		p.warnf(p.snapRetainLine, "autopurge.snapRetainCount: %d is below the minimum 3; using 3", c.AutopurgeSnapRetainCount)
		c.AutopurgeSnapRetainCount = 3
	}
	if err := p.finishTLS(c); err != nil {
		return err
	}
	if c.DynamicConfigFile != "" && len(p.serverLine) > 0 {
		line, key := p.firstServer()
		return p.errorf(line, key, "server.N lines belong in the dynamic config file %q when dynamicConfigFile is set", c.DynamicConfigFile)
	}
	return nil
}

func (p *parser) serverFileName() string {
	if p.serverFile != "" {
		return p.serverFile
	}
	return p.file
}

// serverErrorf reports a problem with the server.N line of id.
func (p *parser) serverErrorf(id, format string, args ...any) *Error {
	return &Error{File: p.serverFileName(), Line: p.serverLine[id], Key: "server." + id, Msg: fmt.Sprintf(format, args...)}
}

// serverWarnf warns about the server list as a whole.
func (p *parser) serverWarnf(format string, args ...any) {
	p.warnings = append(p.warnings, p.serverFileName()+": "+fmt.Sprintf(format, args...))
}

// firstServer returns the line and key of the earliest server.N line.
func (p *parser) firstServer() (int, string) {
	line, key := 0, ""
	for id, l := range p.serverLine {
		if line == 0 || l < line {
			line, key = l, "server."+id
		}
	}
	return line, key
}

// checkServers validates the server list as a whole, once it is complete.
func (p *parser) checkServers(c *Config) error {
	sort.Slice(c.Servers, func(i, j int) bool { return idLess(c.Servers[i].ID, c.Servers[j].ID) })
	parts := countParticipants(c.Servers)
	observers := len(c.Servers) - parts
	firstObserver := ""
	for _, s := range c.Servers {
		if s.Observer {
			firstObserver = s.ID
			break
		}
	}
	switch {
	case len(c.Servers) == 0 && !c.Standalone:
		return p.errorf(p.lines["standaloneEnabled"], "standaloneEnabled", "false, but no server.N lines are listed")
	case parts == 0 && observers > 0:
		return p.serverErrorf(firstObserver, "observers without participants: at least one server must be a participant")
	case parts == 1 && c.Standalone && observers > 0:
		return p.serverErrorf(firstObserver, "observers with a single participant: set standaloneEnabled=false or add participants")
	case parts == 2:
		p.serverWarnf("only 2 participants: no server failure will be tolerated; 3 are needed for that")
	case parts > 2 && parts%2 == 0:
		p.serverWarnf("%d participants tolerate no more failures than %d; an odd number is better", parts, parts-1)
	}
	if c.ClientPort == 0 && c.SecureClientPort == 0 { // TLS alone is fine
		for _, s := range c.Servers {
			if s.ClientPort == 0 {
				return p.errorf(0, "clientPort", "missing, and server.%s (%s:%d) has no ;clientPort",
					s.ID, p.serverFileName(), p.serverLine[s.ID])
			}
		}
		if len(c.Servers) == 0 {
			return p.errorf(0, "clientPort", "missing (e.g. clientPort=2181)")
		}
	}
	if c.Distributed() {
		for _, key := range []string{"initLimit", "syncLimit"} {
			if _, ok := p.lines[key]; !ok {
				return p.errorf(0, key, "missing: required when servers form an ensemble (e.g. initLimit=10, syncLimit=5)")
			}
		}
	}
	return nil
}

// parseID parses the N of server.N or the content of myid: a non-negative
// decimal integer (ZooKeeper parses a Java long), returned in canonical form.
func parseID(s string) (string, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return "", fmt.Errorf("%q is not a non-negative integer", s)
	}
	return strconv.FormatInt(n, 10), nil
}

// idLess orders canonical IDs numerically.
func idLess(a, b string) bool {
	if len(a) != len(b) {
		return len(a) < len(b)
	}
	return a < b
}
