package zoocfg

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// defaults returns the Config Parse gives for keys left out, with f applied.
func defaults(f func(c *Config)) *Config {
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
	f(c)
	return c
}

func parseFile(t *testing.T, name string) (*Config, error) {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return Parse(f, name)
}

func TestParseTestdata(t *testing.T) {
	tests := []struct {
		file string
		want *Config
	}{
		{"seed000_docker_3.4.14.cfg", defaults(func(c *Config) {
			c.ClientPort = 2181
			c.DataDir, c.DataLogDir = "/data", "/datalog"
			c.TickTime, c.InitLimit, c.SyncLimit = 2*time.Second, 5, 2
			c.Servers = []Server{
				{ID: "1", Host: "zookeeper1", QuorumPort: 2888, ElectionPort: 3888},
				{ID: "2", Host: "zookeeper2", QuorumPort: 2888, ElectionPort: 3888},
				{ID: "3", Host: "zookeeper3", QuorumPort: 2888, ElectionPort: 3888},
			}
		})},
		{"seed002_docker_3.7.0.cfg", defaults(func(c *Config) {
			c.DataDir, c.DataLogDir = "/data", "/datalog"
			c.TickTime, c.InitLimit, c.SyncLimit = 2*time.Second, 5, 2
			c.Servers = []Server{
				{ID: "1", Host: "zoo1", QuorumPort: 2888, ElectionPort: 3888, ClientPort: 2181},
				{ID: "2", Host: "zoo2", QuorumPort: 2888, ElectionPort: 3888, ClientPort: 2181},
				{ID: "3", Host: "zoo3", QuorumPort: 2888, ElectionPort: 3888, ClientPort: 2181},
			}
		})},
		{"seed002_docker_3.7.0_standalone.cfg", defaults(func(c *Config) {
			c.DataDir, c.DataLogDir = "/data", "/datalog"
			c.TickTime, c.InitLimit, c.SyncLimit = 2*time.Second, 5, 2
			c.Servers = []Server{{ID: "1", Host: "localhost", QuorumPort: 2888, ElectionPort: 3888, ClientPort: 2181}}
		})},
		{"seed003_homebrew.cfg", defaults(func(c *Config) {
			c.TickTime, c.InitLimit, c.SyncLimit = 2*time.Second, 10, 5
			c.DataDir = "/usr/local/var/run/zookeeper/data"
			c.DataLogDir = c.DataDir
			c.ClientPort = 2181
			c.Servers = []Server{
				{ID: "1", Host: "192.168.0.1", QuorumPort: 2888, ElectionPort: 3888},
				{ID: "2", Host: "192.168.0.2", QuorumPort: 2888, ElectionPort: 3888},
				{ID: "3", Host: "192.168.0.3", QuorumPort: 2888, ElectionPort: 3888},
			}
			// The blog's "..." elision is a key without a value to Java.
			c.Warnings = []string{`seed003_homebrew.cfg:18: unknown key "..." ignored`}
		})},
		{"kafka_zookeeper.properties", defaults(func(c *Config) {
			c.TickTime = 3 * time.Second
			c.DataDir, c.DataLogDir = "/tmp/zookeeper", "/tmp/zookeeper"
			c.ClientPort = 2181
			c.MaxClientCnxns = 0
			c.AdminEnabled = false
			c.Warnings = []string{"kafka_zookeeper.properties: tickTime: missing; using ZooKeeper's default 3s"}
		})},
		{"kafka_ensemble.properties", defaults(func(c *Config) {
			c.TickTime, c.InitLimit, c.SyncLimit = 3*time.Second, 5, 2
			c.DataDir, c.DataLogDir = "/var/lib/zookeeper", "/var/lib/zookeeper"
			c.ClientPort = 2181
			c.MaxClientCnxns = 0
			c.AdminEnabled = false
			c.Servers = []Server{
				{ID: "123", Host: "10.0.0.4", QuorumPort: 2888, ElectionPort: 3888},
				{ID: "125", Host: "0.0.0.0", QuorumPort: 2888, ElectionPort: 3888},
				{ID: "127", Host: "10.0.0.6", QuorumPort: 2888, ElectionPort: 3888},
			}
			c.Warnings = []string{"kafka_ensemble.properties: tickTime: missing; using ZooKeeper's default 3s"}
		})},
		{"getting_started.cfg", defaults(func(c *Config) {
			c.TickTime = 2 * time.Second
			c.DataDir, c.DataLogDir = "/var/lib/zookeeper", "/var/lib/zookeeper"
			c.ClientPort = 2181
		})},
		{"crlf.cfg", defaults(func(c *Config) {
			c.TickTime = 2 * time.Second
			c.DataDir, c.DataLogDir = "/var/lib/zookeeper", "/var/lib/zookeeper"
			c.ClientPort = 2181
		})},
		{"windows_path.properties", defaults(func(c *Config) {
			c.TickTime = 2 * time.Second
			c.DataDir, c.DataLogDir = "C:kafkazookeeper-data", "C:kafkazookeeper-data"
			c.ClientPort = 2181
			c.Warnings = []string{`windows_path.properties:1: dataDir: Java properties read "\k" as "k"; write \\ or / for a backslash`}
		})},
		{"full.cfg", &Config{
			TickTime: 2 * time.Second, InitLimit: 10, SyncLimit: 5,
			DataDir: "/var/lib/zookeeper/data", DataLogDir: "/var/lib/zookeeper/log",
			ClientPort: 2181, ClientPortAddress: "::1",
			Servers: []Server{
				{ID: "1", Host: "zk1.example.com", QuorumPort: 2888, ElectionPort: 3888, ClientHost: "0.0.0.0", ClientPort: 2181},
				{ID: "2", Host: "zk2.example.com", QuorumPort: 2888, ElectionPort: 3888, ClientPort: 2181},
				{ID: "3", Host: "2001:db8::3", QuorumPort: 2888, ElectionPort: 3888, ClientHost: "2001:db8::3", ClientPort: 2181},
				{ID: "10", Host: "zk10.example.com", QuorumPort: 2888, ElectionPort: 3888, Observer: true, ClientPort: 2181},
			},
			MaxClientCnxns:           100,
			MinSessionTimeout:        4 * time.Second,
			FourLetterWords:          []string{"srvr", "ruok", "mntr", "isro"},
			AutopurgeSnapRetainCount: 5,
			AutopurgePurgeInterval:   12 * time.Hour,
			AdminEnabled:             false,
			AdminPort:                9090,
			AdminAddress:             "127.0.0.1",
			PeerType:                 "participant",
			ReconfigEnabled:          true,
			Standalone:               false,
			AuthProviders: map[string]string{
				"1":    "org.apache.zookeeper.server.auth.DigestAuthenticationProvider",
				"x509": "org.apache.zookeeper.server.auth.X509AuthenticationProvider",
			},
			SuperDigest:          "super:D/InIHSb7yEEbrWz8b9l71RjZJU=",
			ExtendedTypesEnabled: true,
			ReadOnlyMode:         true,
			ClientTLS:            defaultTLS(),
			QuorumTLS:            defaultTLS(),
		}},
		{"continuation.cfg", defaults(func(c *Config) {
			c.TickTime, c.InitLimit, c.SyncLimit = 2*time.Second, 10, 5
			c.DataDir, c.DataLogDir = "/var/lib/zookeeper", "/var/lib/zookeeper"
			c.ClientPort = 2181
			c.FourLetterWords = []string{"srvr", "ruok", "mntr"}
			c.Servers = []Server{
				{ID: "1", Host: "zk1", QuorumPort: 2888, ElectionPort: 3888, ClientPort: 2181},
				{ID: "2", Host: "zk2", QuorumPort: 2888, ElectionPort: 3888, ClientPort: 2181},
				{ID: "3", Host: "zk3", QuorumPort: 2888, ElectionPort: 3888, ClientPort: 2181},
			}
		})},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := parseFile(t, tt.file)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Parse(%s)\n got %+v\nwant %+v", tt.file, got, tt.want)
			}
		})
	}
}

// base is a valid standalone config that error cases add lines to.
const base = "tickTime=2000\ndataDir=/d\nclientPort=2181\n"

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, cfg, want string
	}{
		{"tickTime not a number", "dataDir=/d\nclientPort=2181\ntickTime=abc\n", `zoo.cfg:3: tickTime: not a number: "abc"`},
		{"tickTime with unit", "tickTime=2000ms\n", `zoo.cfg:1: tickTime: not a number: "2000ms"`},
		{"tickTime zero", "tickTime=0\n", `zoo.cfg:1: tickTime: must be > 0: "0"`},
		{"tickTime negative", "tickTime=-5\n", `zoo.cfg:1: tickTime: must be > 0: "-5"`},
		{"tickTime overflow", "tickTime=99999999999\n", `zoo.cfg:1: tickTime: out of range: "99999999999"`},
		{"initLimit zero", base + "initLimit=0\n", `zoo.cfg:4: initLimit: must be > 0: "0"`},
		{"syncLimit negative", base + "syncLimit=-1\n", `zoo.cfg:4: syncLimit: must be > 0: "-1"`},
		{"syncLimit empty", base + "syncLimit=\n", `zoo.cfg:4: syncLimit: not a number: ""`},
		{"missing dataDir", "tickTime=2000\nclientPort=2181\n", `zoo.cfg: dataDir: missing: the directory for snapshots and myid is required`},
		{"empty dataDir", "tickTime=2000\ndataDir=\n", `zoo.cfg:2: dataDir: empty value`},
		{"missing clientPort", "tickTime=2000\ndataDir=/d\n", `zoo.cfg: clientPort: missing (e.g. clientPort=2181)`},
		{"clientPort zero", base + "# x\n", ""},
		{"clientPort out of range", "clientPort=0\n", `zoo.cfg:1: clientPort: port out of range 1-65535: "0"`},
		{"clientPort too big", "clientPort=65536\n", `zoo.cfg:1: clientPort: port out of range 1-65535: "65536"`},
		{"clientPort not a number", "\n\nclientPort=2181a\n", `zoo.cfg:3: clientPort: not a number: "2181a"`},
		{"admin port", base + "admin.serverPort=-8080\n", `zoo.cfg:4: admin.serverPort: port out of range 1-65535: "-8080"`},
		{"clientPortAddress without clientPort", "tickTime=2000\ndataDir=/d\nclientPortAddress=1.2.3.4\nserver.1=a:1:2;3\n",
			`zoo.cfg:3: clientPortAddress: set but clientPort is not`},
		{"duplicate key", base + "tickTime=3000\n", `zoo.cfg:4: tickTime: duplicate key (first set on line 1)`},
		{"duplicate alias", base + "extendedTypesEnabled=true\nzookeeper.extendedTypesEnabled=true\n",
			`zoo.cfg:5: zookeeper.extendedTypesEnabled: duplicate key (first set on line 4)`},
		{"duplicate unknown key", base + "foo=1\nfoo=2\n", `zoo.cfg:5: foo: duplicate key (first set on line 4)`},
		{"duplicate server", base + "server.1=a:1:2\nserver.2=b:1:2\nserver.01=c:1:2\n",
			`zoo.cfg:6: server.01: duplicate server ID 1 (first on line 4)`},
		{"server ID not a number", base + "server.a=h:1:2\n", `zoo.cfg:4: server.a: server ID "a" is not a non-negative integer`},
		{"server ID missing", base + "server.=h:1:2\n", `zoo.cfg:4: server.: server ID "" is not a non-negative integer`},
		{"server ID negative", base + "server.-1=h:1:2\n", `zoo.cfg:4: server.-1: server ID "-1" is not a non-negative integer`},
		{"server two parts", base + "server.1=zoo1:2888\n",
			`zoo.cfg:4: server.1: want host:quorumPort:electionPort[:participant|:observer][;[host:]clientPort], got "zoo1:2888"`},
		{"server five parts", base + "server.1=zoo1:2888:3888:observer:x\n",
			`zoo.cfg:4: server.1: want host:quorumPort:electionPort[:participant|:observer][;[host:]clientPort], got "zoo1:2888:3888:observer:x"`},
		{"server IPv6 without brackets", base + "server.1=::1:2888:3888\n",
			`zoo.cfg:4: server.1: want host:quorumPort:electionPort[:participant|:observer][;[host:]clientPort], got "::1:2888:3888" (an IPv6 address goes in brackets: [::1]:2888:3888)`},
		{"server IPv6 unclosed", base + "server.1=[::1:2888:3888\n", `zoo.cfg:4: server.1: "[::1:2888:3888" starts with '[' but has no matching ']'`},
		{"server IPv6 no colon", base + "server.1=[::1]2888:3888\n", `zoo.cfg:4: server.1: "[::1]2888:3888": want ':' and a port after ']'`},
		{"server two semicolons", base + "server.1=a:1:2;3;4\n",
			`zoo.cfg:4: server.1: want host:quorumPort:electionPort[:participant|:observer][;[host:]clientPort], got "a:1:2;3;4"`},
		{"server client part too long", base + "server.1=a:1:2;h:3:4\n",
			`zoo.cfg:4: server.1: want host:quorumPort:electionPort[:participant|:observer][;[host:]clientPort], got "a:1:2;h:3:4" (the client part is [host:]port)`},
		{"server unknown role", base + "server.1=zoo1:2888:3888:obsrver\n", `zoo.cfg:4: server.1: unknown role "obsrver" (want participant or observer)`},
		{"server bad quorum port", base + "server.1=zoo1:x:3888\n", `zoo.cfg:4: server.1: quorum port: not a number: "x"`},
		{"server bad election port", base + "server.1=zoo1:2888:70000\n", `zoo.cfg:4: server.1: election port: port out of range 1-65535: "70000"`},
		{"server bad client port", base + "server.1=zoo1:2888:3888;0\n", `zoo.cfg:4: server.1: client port: port out of range 1-65535: "0"`},
		{"server same ports", base + "server.1=zoo1:2888:2888\n", `zoo.cfg:4: server.1: quorum and election ports must differ, both are 2888`},
		{"server empty host", base + "server.1=:2888:3888\n", `zoo.cfg:4: server.1: empty host`},
		{"server multi address", base + "server.1=a:1:2|b:1:2\n",
			`zoo.cfg:4: server.1: several addresses separated by '|' need multiAddress.enabled=true, which zoo does not support`},
		{"server multi address enabled", base + "multiAddress.enabled=true\nserver.1=a:1:2|b:1:2\n",
			`zoo.cfg:5: server.1: several addresses separated by '|' (multiAddress.enabled) are not supported by zoo; give one address`},
		{"peerType", base + "peerType=voter\n", `zoo.cfg:4: peerType: unknown peer type "voter" (want participant or observer)`},
		{"boolean", base + "reconfigEnabled=yes\n", `zoo.cfg:4: reconfigEnabled: want true or false, got "yes"`},
		{"forwarded boolean", base + "admin.enableServer=1\n", `zoo.cfg:4: admin.enableServer: want true or false, got "1"`},
		{"maxClientCnxns negative", base + "maxClientCnxns=-1\n", `zoo.cfg:4: maxClientCnxns: must be >= 0 (0 means unlimited): "-1"`},
		{"session timeout negative", base + "minSessionTimeout=-2\n", `zoo.cfg:4: minSessionTimeout: must be >= 0 (or -1 for the default): "-2"`},
		{"session timeouts crossed", base + "minSessionTimeout=60000\n",
			`zoo.cfg:4: minSessionTimeout: minimum 1m0s is above maximum 40s (defaults are 2 and 20 tickTimes)`},
		{"session max below default min", base + "maxSessionTimeout=1000\n",
			`zoo.cfg:4: maxSessionTimeout: minimum 4s is above maximum 1s (defaults are 2 and 20 tickTimes)`},
		{"purge interval overflow", base + "autopurge.purgeInterval=2147483647\n", `zoo.cfg:4: autopurge.purgeInterval: out of range: "2147483647"`},
		{"superDigest", base + "DigestAuthenticationProvider.superDigest=secret\n",
			`zoo.cfg:4: DigestAuthenticationProvider.superDigest: want user:base64digest, as DigestAuthenticationProvider user:password prints it, got "secret"`},
		{"superDigest not base64", base + "zookeeper.DigestAuthenticationProvider.superDigest=super:pass word\n",
			`zoo.cfg:4: zookeeper.DigestAuthenticationProvider.superDigest: want user:base64digest, as DigestAuthenticationProvider user:password prints it, got "super:pass word"`},
		{"electionAlg", base + "electionAlg=0\n", `zoo.cfg:4: electionAlg: only 3 is supported (as in ZooKeeper 3.6+), got "0"`},
		{"authProvider empty", base + "authProvider.1=\n", `zoo.cfg:4: authProvider.1: empty class name`},
		{"hierarchical quorum", base + "group.1=1:2:3\n",
			`zoo.cfg:4: group.1: hierarchical quorums (group.N, weight.N) are not supported by zoo: every participant has one vote`},
		{"malformed unicode escape", base + "\n" + `dataLogDir=C:\users\zk` + "\n", `zoo.cfg:5: malformed \uXXXX escape`},
		{"observers only", base + "initLimit=5\nsyncLimit=2\nserver.1=a:1:2:observer\nserver.2=b:1:2:observer\n",
			`zoo.cfg:6: server.1: observers without participants: at least one server must be a participant`},
		{"observer next to a standalone participant", base + "server.1=a:1:2\nserver.2=b:1:2:observer\n",
			`zoo.cfg:5: server.2: observers with a single participant: set standaloneEnabled=false or add participants`},
		{"standaloneEnabled false without servers", base + "standaloneEnabled=false\n",
			`zoo.cfg:4: standaloneEnabled: false, but no server.N lines are listed`},
		{"client port missing on a server line", "tickTime=2000\ndataDir=/d\ninitLimit=5\nsyncLimit=2\nserver.1=a:1:2;2181\nserver.2=b:1:2\nserver.3=c:1:2;2181\n",
			`zoo.cfg: clientPort: missing, and server.2 (zoo.cfg:6) has no ;clientPort`},
		{"initLimit missing in an ensemble", base + "syncLimit=2\nserver.1=a:1:2\nserver.2=b:1:2\nserver.3=c:1:2\n",
			`zoo.cfg: initLimit: missing: required when servers form an ensemble (e.g. initLimit=10, syncLimit=5)`},
		{"syncLimit missing with standaloneEnabled=false", base + "initLimit=2\nstandaloneEnabled=false\nserver.1=a:1:2\n",
			`zoo.cfg: syncLimit: missing: required when servers form an ensemble (e.g. initLimit=10, syncLimit=5)`},
		{"server lines next to dynamicConfigFile", base + "server.2=b:1:2\nserver.1=a:1:2\ndynamicConfigFile=/x\n",
			`zoo.cfg:4: server.2: server.N lines belong in the dynamic config file "/x" when dynamicConfigFile is set`},
		{"bad host", base + "clientPortAddress=a b\n", `zoo.cfg:4: clientPortAddress: bad host "a b"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse(strings.NewReader(tt.cfg), "")
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Parse(%q) = %+v, want error %s", tt.cfg, c, tt.want)
			}
			if c != nil {
				t.Errorf("Parse returned a Config with its error")
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T is not an *Error", err)
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("Parse(%q)\n got %s\nwant %s", tt.cfg, got, tt.want)
			}
		})
	}
}

func TestParseWarnings(t *testing.T) {
	tests := []struct {
		name string
		cfg  string
		want []string
	}{
		{"unknown key", base + "fooBar=1\n", []string{`zoo.cfg:4: unknown key "fooBar" ignored`}},
		{"wrong case", base + "ticktime=2000\nMaxClientCnxns=5\nServer.1=a:1:2\n", []string{
			`zoo.cfg:4: unknown key "ticktime" ignored (did you mean "tickTime"?)`,
			`zoo.cfg:5: unknown key "MaxClientCnxns" ignored (did you mean "maxClientCnxns"?)`,
			`zoo.cfg:6: unknown key "Server.1" ignored (did you mean "server.1"?)`,
		}},
		{"zookeeper prefix not forwarded", base + "zookeeper.snapCount=1\n", []string{`zoo.cfg:4: unknown key "zookeeper.snapCount" ignored`}},
		{"harmless keys", base + "snapCount=1\npreAllocSize=2\njute.maxbuffer=3\nquorumListenOnAllIPs=true\n" +
			"metricsProvider.className=x\nmetricsProvider.httpPort=7000\njvm.pause.monitor=true\nlocalSessionsEnabled=true\n" +
			"4lw.commands.whitelist=*\nsecureClientPort=0\nsslQuorum=false\nquorum.auth.enableSasl=false\nskipACL=no\n" +
			"admin.commandURL=/commands\nDigestAuthenticationProvider.digestAlg=SHA1\nversion=100000000\n", nil},
		{"unsupported features", base + "quorum.auth.kerberos.servicePrincipal=zk/host\n" +
			"skipACL=yes\nmaxCnxns=1000\nDigestAuthenticationProvider.digestAlg=SHA-256\n", []string{
			`zoo.cfg:4: quorum.auth.kerberos.servicePrincipal: quorum SASL is not supported by zoo; ignored`,
			`zoo.cfg:5: skipACL: skipping ACL checks is not supported by zoo: ACLs are enforced; ignored`,
			`zoo.cfg:6: maxCnxns: a global connection limit is not supported by zoo (maxClientCnxns is); ignored`,
			`zoo.cfg:7: DigestAuthenticationProvider.digestAlg: zoo's digests are SHA1; ignored`,
		}},
		{"unknown four letter word", base + "4lw.commands.whitelist=stat, RUOK, wat\n", []string{
			`zoo.cfg:4: 4lw.commands.whitelist: unknown command "RUOK"`,
			`zoo.cfg:4: 4lw.commands.whitelist: unknown command "wat"`,
		}},
		{"snapRetainCount below 3", base + "autopurge.snapRetainCount=1\n", []string{
			`zoo.cfg:4: autopurge.snapRetainCount: 1 is below the minimum 3; using 3`}},
		{"two participants", base + "initLimit=5\nsyncLimit=2\nserver.1=a:1:2\nserver.2=b:1:2\n", []string{
			`zoo.cfg: only 2 participants: no server failure will be tolerated; 3 are needed for that`}},
		{"four participants", base + "initLimit=5\nsyncLimit=2\nserver.1=a:1:2\nserver.2=b:1:2\nserver.3=c:1:2\nserver.4=d:1:2\nserver.5=e:1:2:observer\n", []string{
			`zoo.cfg: 4 participants tolerate no more failures than 3; an odd number is better`}},
		{"tab escape in a path", base + `dataLogDir=C:\tmp\zk` + "\n", []string{
			`zoo.cfg:4: dataLogDir: Java properties read "\t" as a tab; write \\ or / for a backslash`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse(strings.NewReader(tt.cfg), "")
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(c.Warnings, tt.want) {
				t.Errorf("warnings\n got %q\nwant %q", c.Warnings, tt.want)
			}
		})
	}
}

func TestParseValues(t *testing.T) {
	c, err := Parse(strings.NewReader(base+
		"4lw.commands.whitelist=\nminSessionTimeout=-1\nautopurge.purgeInterval=-1\nadmin.serverAddress=[::]\npeerType=OBSERVER\n"), "")
	if err != nil {
		t.Fatal(err)
	}
	if c.FourLetterWords == nil || len(c.FourLetterWords) != 0 {
		t.Errorf("empty whitelist = %#v, want empty and not nil", c.FourLetterWords)
	}
	if c.MinSessionTimeout != 0 || c.AutopurgePurgeInterval != 0 {
		t.Errorf("-1 values: MinSessionTimeout %v, AutopurgePurgeInterval %v, want 0", c.MinSessionTimeout, c.AutopurgePurgeInterval)
	}
	if c.AdminAddress != "::" || c.PeerType != "observer" {
		t.Errorf("AdminAddress %q PeerType %q", c.AdminAddress, c.PeerType)
	}
	if minT, maxT := c.SessionTimeouts(); minT != 4*time.Second || maxT != 40*time.Second {
		t.Errorf("SessionTimeouts() = %v, %v; want 4s, 40s", minT, maxT)
	}
	if c.Distributed() {
		t.Error("standalone config is Distributed")
	}
}

func TestDistributed(t *testing.T) {
	p, o := Server{}, Server{Observer: true}
	tests := []struct {
		servers    []Server
		standalone bool
		want       bool
	}{
		{nil, true, false},
		{[]Server{p}, true, false},
		{[]Server{p}, false, true},
		{[]Server{p, o}, false, true},
		{[]Server{p, p}, true, true},
	}
	for _, tt := range tests {
		c := &Config{Servers: tt.servers, Standalone: tt.standalone}
		if got := c.Distributed(); got != tt.want {
			t.Errorf("%d servers, standalone %v: Distributed() = %v", len(tt.servers), tt.standalone, got)
		}
	}
}

type failReader struct{}

func (failReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

func TestParseReadError(t *testing.T) {
	_, err := Parse(failReader{}, "x.cfg")
	if err == nil || err.Error() != "x.cfg: read: disk on fire" {
		t.Fatalf("err = %v", err)
	}
}
