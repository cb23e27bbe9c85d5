package zoocfg

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// writeFile writes content to dir/name and returns the path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func readTestdata(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestLoadConfigsRenderedFromATemplate is the seed 004 experiment's setup: five zoo.N.cfg rendered
// from one template with sed, a directory per peer holding myid.
func TestLoadConfigsRenderedFromATemplate(t *testing.T) {
	dir := t.TempDir()
	template := readTestdata(t, "seed004_zoo.template.cfg")
	for i := 1; i <= 5; i++ {
		peer := fmt.Sprint(i)
		data := filepath.Join(dir, peer)
		writeFile(t, data, "myid", peer+"\n") // echo $i > $i/myid
		cfg := strings.NewReplacer("{{dataDir}}", data, "{{peer}}", peer).Replace(template)
		path := writeFile(t, dir, "zoo."+peer+".cfg", cfg)

		c, err := Load(path)
		if err != nil {
			t.Fatal(err)
		}
		self, ok := c.Self()
		if !ok || self.ID != peer || c.MyID != peer {
			t.Fatalf("peer %s: Self() = %+v, %v; MyID %q", peer, self, ok, c.MyID)
		}
		want := Server{ID: peer, Host: "localhost", QuorumPort: 28880 + i, ElectionPort: 38880 + i}
		if self != want {
			t.Errorf("peer %s: Self() = %+v, want %+v", peer, self, want)
		}
		if c.ClientPort != 21810+i {
			t.Errorf("peer %s: ClientPort = %d, want %d", peer, c.ClientPort, 21810+i)
		}
		if c.AutopurgeSnapRetainCount != 10 || c.AutopurgePurgeInterval.Hours() != 24 {
			t.Errorf("autopurge: %d, %v", c.AutopurgeSnapRetainCount, c.AutopurgePurgeInterval)
		}
		if len(c.Servers) != 5 || !c.Distributed() || c.PeerType != "participant" || c.DataDir != data {
			t.Errorf("peer %s: %+v", peer, c)
		}
		if c.Warnings != nil {
			t.Errorf("peer %s: warnings %q", peer, c.Warnings)
		}
	}
}

// TestLoadDocker is the official image's config for the seed 002 compose file,
// where only the server lines carry the client port.
func TestLoadDocker(t *testing.T) {
	for id := 1; id <= 3; id++ {
		dir := t.TempDir()
		cfg := strings.Replace(readTestdata(t, "seed002_docker_3.7.0.cfg"), "dataDir=/data\n", "dataDir="+dir+"\n", 1)
		path := writeFile(t, dir, "zoo.cfg", cfg)
		writeFile(t, dir, "myid", fmt.Sprint(id)) // no newline, as printf would write it
		c, err := Load(path)
		if err != nil {
			t.Fatal(err)
		}
		if c.MyID != fmt.Sprint(id) || c.ClientPort != 2181 || c.ClientPortAddress != "" {
			t.Errorf("myid %d: MyID %q ClientPort %d ClientPortAddress %q", id, c.MyID, c.ClientPort, c.ClientPortAddress)
		}
	}
}

func TestLoadStandaloneWithoutMyID(t *testing.T) {
	dir := t.TempDir()
	cfg := strings.Replace(readTestdata(t, "seed002_docker_3.7.0_standalone.cfg"), "dataDir=/data\n", "dataDir="+dir+"\n", 1)
	c, err := Load(writeFile(t, dir, "zoo.cfg", cfg))
	if err != nil {
		t.Fatal(err)
	}
	if self, ok := c.Self(); !ok || self.ID != "1" || c.ClientPort != 2181 || c.Distributed() {
		t.Errorf("Self() = %+v, %v; ClientPort %d; Distributed %v", self, ok, c.ClientPort, c.Distributed())
	}
}

func TestLoadNoServers(t *testing.T) {
	dir := t.TempDir()
	c, err := Load(writeFile(t, dir, "zoo.cfg", "tickTime=2000\nclientPort=2181\ndataDir="+dir+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Self(); ok || c.MyID != "" {
		t.Errorf("standalone config has a Self: MyID %q", c.MyID)
	}
}

func TestLoadDynamic(t *testing.T) {
	for _, cwdRelative := range []bool{false, true} {
		t.Run(fmt.Sprint("cwdRelative=", cwdRelative), func(t *testing.T) {
			dir := t.TempDir()
			cfg := strings.Replace(readTestdata(t, "dynamic/zoo.cfg"), "{{dataDir}}", dir, 1)
			dynName := "zoo.cfg.dynamic.100000000"
			if cwdRelative {
				// A path relative to the working directory, as ZooKeeper reads it.
				wd, err := os.Getwd()
				if err != nil {
					t.Fatal(err)
				}
				rel, err := filepath.Rel(wd, filepath.Join(dir, dynName))
				if err != nil {
					t.Skip(err)
				}
				cfg = strings.Replace(cfg, "dynamicConfigFile="+dynName, "dynamicConfigFile="+rel, 1)
			}
			path := writeFile(t, dir, "zoo.cfg", cfg)
			writeFile(t, dir, dynName, readTestdata(t, "dynamic/"+dynName))
			writeFile(t, dir, "myid", "3\n")

			c, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			want := []Server{
				{ID: "1", Host: "127.0.0.1", QuorumPort: 2888, ElectionPort: 3888, ClientHost: "0.0.0.0", ClientPort: 2181},
				{ID: "2", Host: "127.0.0.1", QuorumPort: 2889, ElectionPort: 3889, ClientHost: "0.0.0.0", ClientPort: 2182},
				{ID: "3", Host: "127.0.0.1", QuorumPort: 2890, ElectionPort: 3890, Observer: true, ClientHost: "0.0.0.0", ClientPort: 2183},
			}
			if !reflect.DeepEqual(c.Servers, want) {
				t.Errorf("Servers = %+v", c.Servers)
			}
			if c.ClientPort != 2183 || c.ClientPortAddress != "0.0.0.0" || c.PeerType != "observer" || !c.ReconfigEnabled {
				t.Errorf("ClientPort %d ClientPortAddress %q PeerType %q ReconfigEnabled %v",
					c.ClientPort, c.ClientPortAddress, c.PeerType, c.ReconfigEnabled)
			}
			dynPath := filepath.Join(dir, dynName)
			if cwdRelative {
				dynPath = c.DynamicConfigFile
			}
			wantWarn := []string{dynPath + ": only 2 participants: no server failure will be tolerated; 3 are needed for that"}
			if !reflect.DeepEqual(c.Warnings, wantWarn) {
				t.Errorf("Warnings = %q, want %q", c.Warnings, wantWarn)
			}
		})
	}
}

func TestLoadPeerType(t *testing.T) {
	dir := t.TempDir()
	cfg := "tickTime=2000\ninitLimit=5\nsyncLimit=2\ndataDir=" + dir + "\nclientPort=2181\npeerType=observer\n" +
		"server.1=a:1:2\nserver.2=b:1:2\nserver.3=c:1:2\nserver.4=d:1:2:observer\n"
	path := writeFile(t, dir, "zoo.cfg", cfg)

	writeFile(t, dir, "myid", "4")
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.PeerType != "observer" || c.Warnings != nil {
		t.Errorf("observer: PeerType %q, warnings %q", c.PeerType, c.Warnings)
	}

	writeFile(t, dir, "myid", "2")
	c, err = Load(path)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{path + ":6: peerType: observer, but server.2 is listed as participant; using participant"}
	if c.PeerType != "participant" || !reflect.DeepEqual(c.Warnings, want) {
		t.Errorf("participant: PeerType %q, warnings %q", c.PeerType, c.Warnings)
	}
}

func TestLoadErrors(t *testing.T) {
	const ensemble = "tickTime=2000\ninitLimit=5\nsyncLimit=2\ndataDir={{dir}}\n"
	tests := []struct {
		name string
		cfg  string
		myid *string // nil: no myid file
		want string  // {{dir}} stands for the data directory
	}{
		{"myid missing", ensemble + "clientPort=2181\nserver.1=a:1:2\nserver.2=b:1:2\nserver.3=c:1:2\n", nil,
			`{{dir}}/zoo.cfg:4: dataDir: myid file {{dir}}/myid is missing: it must hold this server's N from server.N (echo 1 > {{dir}}/myid)`},
		{"myid missing, single server with standaloneEnabled=false", ensemble + "clientPort=2181\nstandaloneEnabled=false\nserver.1=a:1:2\n", nil,
			`{{dir}}/zoo.cfg:4: dataDir: myid file {{dir}}/myid is missing: it must hold this server's N from server.N (echo 1 > {{dir}}/myid)`},
		{"myid empty", ensemble + "clientPort=2181\nserver.1=a:1:2\nserver.2=b:1:2\nserver.3=c:1:2\n", ptr("\n"),
			`{{dir}}/myid:1: empty: it must hold this server's N from server.N`},
		{"myid not a number", ensemble + "clientPort=2181\nserver.1=a:1:2\nserver.2=b:1:2\nserver.3=c:1:2\n", ptr("one\n"),
			`{{dir}}/myid:1: server ID "one" is not a non-negative integer`},
		{"myid not listed", ensemble + "clientPort=2181\nserver.1=a:1:2\nserver.2=b:1:2\nserver.3=c:1:2\n", ptr("4\n"),
			`{{dir}}/myid:1: id 4 matches no server.N in {{dir}}/zoo.cfg (servers: 1, 2, 3)`},
		{"myid not listed, standalone", ensemble + "clientPort=2181\nserver.1=a:1:2\n", ptr("2\n"),
			`{{dir}}/myid:1: id 2 matches no server.N in {{dir}}/zoo.cfg (servers: 1)`},
		{"clientPort differs from the server line", ensemble + "clientPort=2181\nserver.1=a:1:2;2182\nserver.2=b:1:2;2182\nserver.3=c:1:2;2182\n", ptr("1"),
			`{{dir}}/zoo.cfg:5: clientPort: 2181 differs from client port 2182 on server.1 ({{dir}}/zoo.cfg:6)`},
		{"clientPortAddress differs from the server line", ensemble + "clientPort=2181\nclientPortAddress=10.0.0.1\nserver.1=a:1:2;2181\nserver.2=b:1:2;2181\nserver.3=c:1:2;2181\n", ptr("1"),
			`{{dir}}/zoo.cfg:6: clientPortAddress: "10.0.0.1" differs from client address "" on server.1 ({{dir}}/zoo.cfg:7)`},
		{"dynamic file missing", ensemble + "clientPort=2181\ndynamicConfigFile={{dir}}/nope\n", ptr("1"),
			`{{dir}}/zoo.cfg:6: dynamicConfigFile: cannot read: open {{dir}}/nope: no such file or directory`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := writeFile(t, dir, "zoo.cfg", strings.ReplaceAll(tt.cfg, "{{dir}}", dir))
			if tt.myid != nil {
				writeFile(t, dir, "myid", *tt.myid)
			}
			_, err := Load(path)
			want := strings.ReplaceAll(tt.want, "{{dir}}", dir)
			if err == nil || err.Error() != want {
				t.Errorf("Load\n got %v\nwant %s", err, want)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Errorf("error %T is not an *Error", err)
			}
		})
	}
}

func ptr(s string) *string { return &s }

func TestLoadMissingFiles(t *testing.T) {
	if _, err := Load(filepath.Join(t.TempDir(), "zoo.cfg")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing zoo.cfg: %v, want fs.ErrNotExist", err)
	}
	dir := t.TempDir()
	path := writeFile(t, dir, "zoo.cfg", "tickTime=2000\ninitLimit=5\nsyncLimit=2\nclientPort=2181\ndataDir="+dir+
		"\nserver.1=a:1:2\nserver.2=b:1:2\nserver.3=c:1:2\n")
	if _, err := Load(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing myid: %v, want to wrap fs.ErrNotExist", err)
	}
}

func TestLoadDynamicErrors(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "myid", "1")
	path := writeFile(t, dir, "zoo.cfg", "tickTime=2000\ninitLimit=5\nsyncLimit=2\nclientPort=2181\ndataDir="+dir+"\ndynamicConfigFile=zoo.dyn\n")
	tests := []struct{ dyn, want string }{
		{"server.1=a:1:2\nserver.1=b:1:2\n", dir + "/zoo.dyn:2: server.1: duplicate server ID 1 (first on line 1)"},
		{"server.1=a:1\n", dir + `/zoo.dyn:1: server.1: want host:quorumPort:electionPort[:participant|:observer][;[host:]clientPort], got "a:1"`},
		{"server.1=a:1:2:observer\n", dir + "/zoo.dyn:1: server.1: observers without participants: at least one server must be a participant"},
		{"server.1=a:1:2;2181\nserver.2=b:1:2\nserver.3=c:1:2\n", ""},
		{"server.1=a:1:2\nserver.2=b:1:2\nserver.3=c:1:2\nclientPort=1\n", ""},
	}
	for _, tt := range tests {
		writeFile(t, dir, "zoo.dyn", tt.dyn)
		c, err := Load(path)
		if tt.want == "" {
			if err != nil {
				t.Errorf("dynamic %q: %v", tt.dyn, err)
			} else if c.MyID != "1" || c.ClientPort != 2181 {
				t.Errorf("dynamic %q: MyID %q ClientPort %d", tt.dyn, c.MyID, c.ClientPort)
			}
			continue
		}
		if err == nil || err.Error() != tt.want {
			t.Errorf("dynamic %q\n got %v\nwant %s", tt.dyn, err, tt.want)
		}
	}
	writeFile(t, dir, "zoo.dyn", "server.1=a:1:2\nserver.2=b:1:2\nserver.3=c:1:2\nclientPort=1\n")
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{dir + `/zoo.dyn:4: unknown key "clientPort" ignored (a dynamic config file holds server.N lines)`}
	if !reflect.DeepEqual(c.Warnings, want) {
		t.Errorf("Warnings = %q, want %q", c.Warnings, want)
	}
}
