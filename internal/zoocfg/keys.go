package zoocfg

import (
	"encoding/base64"
	"math"
	"strings"
	"time"
)

// handler records one key's value in the Config, or refuses it.
type handler func(p *parser, c *Config, prop property) error

// aliases maps spellings of a key to the one handlers uses. ZooKeeper itself
// honours only the unprefixed forms in zoo.cfg (it forwards unknown keys as
// system properties with "zookeeper." prepended), but users also write the
// system property name.
var aliases = map[string]string{
	"zookeeper.DigestAuthenticationProvider.superDigest": "DigestAuthenticationProvider.superDigest",
	"zookeeper.extendedTypesEnabled":                     "extendedTypesEnabled",
	"zookeeper.X509AuthenticationProvider.superUser":     "X509AuthenticationProvider.superUser",
	"zookeeper.DigestAuthenticationProvider.enabled":     "DigestAuthenticationProvider.enabled",
	"zookeeper.sessionRequireClientSASLAuth":             "sessionRequireClientSASLAuth",
	"zookeeper.enforce.auth.enabled":                     "enforce.auth.enabled",
}

func canonicalKey(key string) string {
	if k, ok := aliases[key]; ok {
		return k
	}
	return key
}

// handlers are the keys zoo reads.
var handlers = map[string]handler{
	"tickTime": func(p *parser, c *Config, prop property) error {
		n, err := p.positive(prop)
		c.TickTime = time.Duration(n) * time.Millisecond
		return err
	},
	"initLimit": func(p *parser, c *Config, prop property) (err error) {
		c.InitLimit, err = p.positive(prop)
		return err
	},
	"syncLimit": func(p *parser, c *Config, prop property) (err error) {
		c.SyncLimit, err = p.positive(prop)
		return err
	},
	"dataDir": func(p *parser, c *Config, prop property) (err error) {
		c.DataDir, err = p.nonEmpty(prop)
		return err
	},
	"dataLogDir": func(p *parser, c *Config, prop property) (err error) {
		c.DataLogDir, err = p.nonEmpty(prop)
		return err
	},
	"clientPort": func(p *parser, c *Config, prop property) (err error) {
		c.ClientPort, err = p.portVal(prop)
		return err
	},
	"clientPortAddress": func(p *parser, c *Config, prop property) (err error) {
		c.ClientPortAddress, err = p.address(prop)
		return err
	},
	"maxClientCnxns": func(p *parser, c *Config, prop property) error {
		n, err := p.intVal(prop)
		if err == nil && n < 0 {
			err = p.errorf(prop.line, prop.key, "must be >= 0 (0 means unlimited): %q", prop.value)
		}
		c.MaxClientCnxns = n
		return err
	},
	"minSessionTimeout": func(p *parser, c *Config, prop property) (err error) {
		c.MinSessionTimeout, err = p.sessionTimeout(prop)
		return err
	},
	"maxSessionTimeout": func(p *parser, c *Config, prop property) (err error) {
		c.MaxSessionTimeout, err = p.sessionTimeout(prop)
		return err
	},
	"4lw.commands.whitelist": func(p *parser, c *Config, prop property) error {
		c.FourLetterWords = []string{}
		for _, w := range strings.Split(prop.value, ",") {
			if w = strings.TrimSpace(w); w == "" {
				continue
			}
			if w != "*" && !fourLetterWords[w] {
				p.warnf(prop.line, "4lw.commands.whitelist: unknown command %q", w)
			}
			c.FourLetterWords = append(c.FourLetterWords, w)
		}
		return nil
	},
	"autopurge.snapRetainCount": func(p *parser, c *Config, prop property) (err error) {
		p.snapRetainLine = prop.line
		c.AutopurgeSnapRetainCount, err = p.intVal(prop)
		return err
	},
	"autopurge.purgeInterval": func(p *parser, c *Config, prop property) error {
		n, err := p.intVal(prop)
		if err != nil {
			return err
		}
		if n > math.MaxInt64/int(time.Hour) {
			return p.errorf(prop.line, prop.key, "out of range: %q", prop.value)
		}
		c.AutopurgePurgeInterval = time.Duration(max(n, 0)) * time.Hour
		return nil
	},
	"admin.enableServer": func(p *parser, c *Config, prop property) (err error) {
		c.AdminEnabled, err = p.boolVal(prop)
		return err
	},
	"admin.serverPort": func(p *parser, c *Config, prop property) (err error) {
		c.AdminPort, err = p.portVal(prop)
		return err
	},
	"admin.serverAddress": func(p *parser, c *Config, prop property) (err error) {
		c.AdminAddress, err = p.address(prop)
		return err
	},
	"peerType": func(p *parser, c *Config, prop property) error {
		switch v := strings.ToLower(prop.value); v {
		case "participant", "observer":
			c.PeerType = v
			p.peerTypeSet = true
			return nil
		}
		return p.errorf(prop.line, prop.key, "unknown peer type %q (want participant or observer)", prop.value)
	},
	"reconfigEnabled": func(p *parser, c *Config, prop property) (err error) {
		c.ReconfigEnabled, err = p.boolVal(prop)
		return err
	},
	"standaloneEnabled": func(p *parser, c *Config, prop property) (err error) {
		c.Standalone, err = p.boolVal(prop)
		return err
	},
	"dynamicConfigFile": func(p *parser, c *Config, prop property) (err error) {
		c.DynamicConfigFile, err = p.nonEmpty(prop)
		return err
	},
	"DigestAuthenticationProvider.superDigest": func(p *parser, c *Config, prop property) error {
		user, digest, ok := strings.Cut(prop.value, ":")
		if _, err := base64.StdEncoding.DecodeString(digest); !ok || user == "" || digest == "" || err != nil {
			return p.errorf(prop.line, prop.key, "want user:base64digest, as DigestAuthenticationProvider user:password prints it, got %q", prop.value)
		}
		c.SuperDigest = prop.value
		return nil
	},
	"extendedTypesEnabled": func(p *parser, c *Config, prop property) (err error) {
		c.ExtendedTypesEnabled, err = p.boolVal(prop)
		return err
	},
	"readonlymode.enabled": func(p *parser, c *Config, prop property) (err error) {
		c.ReadOnlyMode, err = p.boolVal(prop)
		return err
	},
	"electionAlg": func(p *parser, c *Config, prop property) error {
		n, err := p.intVal(prop)
		if err == nil && n != 3 {
			err = p.errorf(prop.line, prop.key, "only 3 is supported (as in ZooKeeper 3.6+), got %q", prop.value)
		}
		return err
	},
	"multiAddress.enabled": func(p *parser, c *Config, prop property) (err error) {
		p.multiAddress, err = p.boolVal(prop)
		return err
	},
	"secureClientPort": func(p *parser, c *Config, prop property) (err error) {
		if prop.value == "0" {
			return nil // ZooKeeper's "no secure port"
		}
		c.SecureClientPort, err = p.portVal(prop)
		return err
	},
	"secureClientPortAddress": func(p *parser, c *Config, prop property) (err error) {
		c.SecureClientPortAddress, err = p.address(prop)
		return err
	},
	"sslQuorum": func(p *parser, c *Config, prop property) (err error) {
		c.SSLQuorum, err = p.boolVal(prop)
		return err
	},
	"sslQuorumReloadCertFiles": func(p *parser, c *Config, prop property) error {
		// ZooKeeper's default is false; zoo's is to re-read changed files, so
		// only an explicit false changes anything.
		reload, err := p.boolVal(prop)
		c.QuorumCertsReadOnce = !reload
		return err
	},
	"X509AuthenticationProvider.superUser": func(p *parser, c *Config, prop property) (err error) {
		c.X509SuperUser, err = p.nonEmpty(prop)
		return err
	},
	"admin.forceHttps": func(p *parser, c *Config, prop property) (err error) {
		c.AdminForceHTTPS, err = p.boolVal(prop)
		return err
	},
	"admin.needClientAuth": func(p *parser, c *Config, prop property) (err error) {
		c.AdminNeedClientAuth, err = p.boolVal(prop)
		return err
	},
}

// prefixHandlers are families of keys zoo reads, tried in order.
var prefixHandlers = []struct {
	prefix string
	handle handler
}{
	{"server.", func(p *parser, c *Config, prop property) error {
		id, _ := parseID(prop.key[len("server."):]) // checked by apply
		s, err := parseServer(id, prop.value, p.multiAddress)
		if err != nil {
			return p.errorf(prop.line, prop.key, "%s", err)
		}
		c.Servers = append(c.Servers, s)
		return nil
	}},
	{"authProvider.", func(p *parser, c *Config, prop property) error {
		n := prop.key[len("authProvider."):]
		if prop.value == "" {
			return p.errorf(prop.line, prop.key, "empty class name")
		}
		if err := p.authProvider(prop); err != nil {
			return err
		}
		if c.AuthProviders == nil {
			c.AuthProviders = map[string]string{}
		}
		c.AuthProviders[n] = prop.value
		return nil
	}},
	{"ssl.", tlsKey},
	{"zookeeper.ssl.", tlsKey},
	{"group.", hierarchical},
	{"weight.", hierarchical},
}

func hierarchical(p *parser, c *Config, prop property) error {
	return p.errorf(prop.line, prop.key, "hierarchical quorums (group.N, weight.N) are not supported by zoo: every participant has one vote")
}

// ignoredKeys are keys ZooKeeper reads that zoo ignores without a warning:
// storage, performance and JVM tuning, and features whose absence changes no
// behaviour a client or operator relies on.
var ignoredKeys = setOf(
	// Transaction log and snapshot tuning: zoo keeps a raft log and snapshots.
	"snapCount", "preAllocSize", "commitLogCount", "snapSizeLimitInKb", "txnLogSizeLimitInKb",
	"fsync.warningthresholdms", "forceSync", "syncEnabled", "snapshot.trust.empty",
	"snapshot.compression.method", "digest.enabled",
	// Request pipeline and network tuning.
	"jute.maxbuffer", "globalOutstandingLimit", "maxResponseCacheSize", "maxGetChildrenResponseCacheSize",
	"flushDelay", "maxWriteQueuePollTime", "maxBatchSize", "requestThrottleLimit",
	"requestThrottleStallTime", "requestThrottleDropStale", "requestStaleLatencyCheck",
	"requestStaleConnectionCheck", "advancedFlowControlEnabled", "clientPortListenBacklog",
	"serverCnxnFactory", "netty.server.outboundBuffer.delayMillis", "tcpKeepAlive", "clientTcpKeepAlive",
	// Quorum plumbing that raft replaces.
	"quorumListenOnAllIPs", "cnxTimeout", "quorum.cnxn.threads.size", "electionPortBindRetry",
	"connectToLearnerMasterLimit", "leaderServes", "observerMasterPort", "observer.reconnectDelayMs",
	"observer.election.DelayMs", "learner.closeSocketAsync", "leader.closeSocketAsync",
	"multiAddress.reachabilityCheckTimeoutMs", "multiAddress.reachabilityCheckEnabled",
	// Local sessions only restrict what a session may do; zoo's are all global.
	"localSessionsEnabled", "localSessionsUpgradingEnabled",
	// Audit log, admin server idle timeout, dynamic config version.
	"audit.enable", "admin.idleTimeout", "version",
)

// ignoredPrefixes are families of keys ignored without a warning: metrics
// provider (zoo's metrics are on the admin server) and JVM pause monitor.
var ignoredPrefixes = []string{"metricsProvider.", "jvm.pause."}

// unsupported describes a ZooKeeper feature zoo lacks; setting its key warns
// unless the value leaves the feature off.
type unsupported struct {
	reason string
	// harmless reports whether the value leaves the feature off; nil means
	// isOff.
	harmless func(string) bool
}

func isOff(v string) bool {
	switch strings.ToLower(v) {
	case "", "false", "no", "0":
		return true
	}
	return false
}

const noSASL = "SASL is not supported by zoo"

// unsupportedKeys warn: what they ask for zoo lacks, but lacking it takes
// no protection away (or zoo gives more, as ACLs that are never skipped).
var unsupportedKeys = map[string]unsupported{
	"client.secure": {reason: "a client setting (zoo's clients use secureClientPort)",
		harmless: func(string) bool { return false }},
	"admin.portUnification": {reason: "zoo's AdminServer serves HTTPS alone whenever ssl.keyStore.location is set, plain HTTP otherwise",
		harmless: func(string) bool { return false }},
	"skipACL": {reason: "skipping ACL checks is not supported by zoo: ACLs are enforced",
		harmless: func(v string) bool { return v != "yes" }}, // ZooKeeper's test
	"enforce.auth.schemes": {reason: "enforcing client authentication is not implemented by zoo",
		harmless: func(string) bool { return false }},
	"maxCnxns":           {reason: "a global connection limit is not supported by zoo (maxClientCnxns is)"},
	"oraclePath":         {reason: "the two-server oracle is not supported by zoo"},
	"enforceQuota":       {reason: "hard quota enforcement is not supported by zoo"},
	"emulate353TTLNodes": {reason: "ZooKeeper 3.5.3's TTL node encoding is not supported by zoo"},
	"admin.commandURL": {reason: "zoo's admin server serves /commands only",
		harmless: func(v string) bool { return v == "" || v == "/commands" }},
	"DigestAuthenticationProvider.digestAlg": {reason: "zoo's digests are SHA1",
		harmless: func(v string) bool { return v == "" || strings.EqualFold(v, "SHA1") || strings.EqualFold(v, "SHA-1") }},
}

var unsupportedPrefixes = []struct {
	prefix string
	unsupported
}{
	{"quorum.auth.", unsupported{reason: "quorum " + noSASL}},
}

// refusedKeys stop the server: each asks for authentication or encryption
// that zoo does not implement, and running without it would be running less
// safe than the operator asked. A value that leaves the feature off passes.
var refusedKeys = map[string]unsupported{
	"quorum.auth.enableSasl":         {reason: "quorum " + noSASL + "; authenticate servers with sslQuorum=true and ssl.quorum.* certificates"},
	"quorum.auth.learnerRequireSasl": {reason: "quorum " + noSASL + "; authenticate servers with sslQuorum=true and ssl.quorum.* certificates"},
	"quorum.auth.serverRequireSasl":  {reason: "quorum " + noSASL + "; authenticate servers with sslQuorum=true and ssl.quorum.* certificates"},
	"sessionRequireClientSASLAuth":   {reason: noSASL + "; authenticate clients with certificates (secureClientPort, x509 ACLs)"},
	"enforce.auth.enabled":           {reason: "enforcing client authentication is not implemented by zoo; use secureClientPort with ssl.clientAuth=need"},
	"portUnification": {reason: "TLS and plaintext on one client port is not supported by zoo; serve TLS on secureClientPort",
		harmless: isOff},
	"client.portUnification": {reason: "TLS and plaintext on one client port is not supported by zoo; serve TLS on secureClientPort",
		harmless: isOff},
	"DigestAuthenticationProvider.enabled": {reason: "digest authentication cannot be turned off in zoo: addauth digest would still log clients in",
		harmless: func(v string) bool { return !strings.EqualFold(v, "false") }},
}

// authProvider refuses authProvider.N classes zoo cannot stand in for: zoo
// has digest, ip and x509 built in, and loads no Java class.
func (p *parser) authProvider(prop property) error {
	switch prop.value {
	case "org.apache.zookeeper.server.auth.DigestAuthenticationProvider",
		"org.apache.zookeeper.server.auth.IPAuthenticationProvider",
		"org.apache.zookeeper.server.auth.X509AuthenticationProvider":
		return nil
	case "org.apache.zookeeper.server.auth.SASLAuthenticationProvider":
		return p.errorf(prop.line, prop.key, "%s; authenticate clients with certificates (secureClientPort, x509 ACLs)", noSASL)
	}
	return p.errorf(prop.line, prop.key, "zoo cannot load the Java class %q: its built-in schemes are digest, ip and x509", prop.value)
}

// fourLetterWords are the commands 4lw.commands.whitelist may name.
var fourLetterWords = setOf("conf", "cons", "crst", "dirs", "dump", "envi", "gtmk", "ruok", "stmk",
	"srst", "srvr", "stat", "wchc", "wchp", "wchs", "mntr", "isro", "hash")

func setOf(keys ...string) map[string]bool {
	m := make(map[string]bool, len(keys))
	for _, k := range keys {
		m[k] = true
	}
	return m
}

// suggest returns the known key that key differs from only in case, if any.
func suggest(key string) string {
	lower := strings.ToLower(key)
	if strings.HasPrefix(lower, "server.") {
		return "server." + key[len("server."):]
	}
	for k := range handlers {
		if strings.ToLower(k) == lower {
			return k
		}
	}
	for k := range aliases {
		if strings.ToLower(k) == lower {
			return k
		}
	}
	for k := range ignoredKeys {
		if strings.ToLower(k) == lower {
			return k
		}
	}
	for k := range unsupportedKeys {
		if strings.ToLower(k) == lower {
			return k
		}
	}
	for k := range refusedKeys {
		if strings.ToLower(k) == lower {
			return k
		}
	}
	return ""
}

// Value parsers. Each returns an *Error naming the line and key.

func (p *parser) intVal(prop property) (int, error) {
	n, err := parseInt(prop.value)
	if err != nil {
		return 0, p.errorf(prop.line, prop.key, "%s", err)
	}
	return n, nil
}

func (p *parser) positive(prop property) (int, error) {
	n, err := p.intVal(prop)
	if err == nil && n <= 0 {
		return 0, p.errorf(prop.line, prop.key, "must be > 0: %q", prop.value)
	}
	return n, err
}

func (p *parser) portVal(prop property) (int, error) {
	n, err := port(prop.value)
	if err != nil {
		return 0, p.errorf(prop.line, prop.key, "%s", err)
	}
	return n, nil
}

// boolVal parses true or false in any case, as ZooKeeper's parseBoolean; unlike
// ZooKeeper it also refuses other values for keys that ZooKeeper forwards as
// system properties (where "yes" would silently mean false).
func (p *parser) boolVal(prop property) (bool, error) {
	switch strings.ToLower(prop.value) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, p.errorf(prop.line, prop.key, "want true or false, got %q", prop.value)
}

func (p *parser) nonEmpty(prop property) (string, error) {
	if prop.value == "" {
		return "", p.errorf(prop.line, prop.key, "empty value")
	}
	return prop.value, nil
}

// address parses a host name or IP address, IPv6 with or without brackets.
func (p *parser) address(prop property) (string, error) {
	v := prop.value
	if strings.HasPrefix(v, "[") && strings.HasSuffix(v, "]") {
		v = v[1 : len(v)-1]
	}
	h, err := host(v)
	if err != nil {
		return "", p.errorf(prop.line, prop.key, "%s", err)
	}
	return h, nil
}

// sessionTimeout parses milliseconds; -1, ZooKeeper's "unset", reads as 0.
func (p *parser) sessionTimeout(prop property) (time.Duration, error) {
	n, err := p.intVal(prop)
	if err != nil {
		return 0, err
	}
	if n < -1 {
		return 0, p.errorf(prop.line, prop.key, "must be >= 0 (or -1 for the default): %q", prop.value)
	}
	return time.Duration(max(n, 0)) * time.Millisecond, nil
}
