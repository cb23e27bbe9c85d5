package main

import (
	"bytes"
	"crypto/tls"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zooraft/zoo/internal/zoocfg"
)

// The secure ensemble of docs/operations.md in two commands: zoo certs
// -apply on the three configs, then zoo server. The servers then talk over
// mutual TLS, and their one client port serves only TLS clients with a
// certificate of the CA.
func TestCertsApplyMakesASecureEnsemble(t *testing.T) {
	e := writeEnsemble(t, 3, nil)
	dir := filepath.Join(e.dir, "certs")
	args := []string{"-client", "app", "-dir", dir, "-apply"}
	for _, m := range e.members {
		args = append(args, "-config", m.cfg)
	}
	out := certsMust(t, args...)
	if n := strings.Count(out, "links between servers over mutual TLS"); n != 3 {
		t.Fatalf("want 3 configs updated:\n%s", out)
	}

	client, _ := certsLoad(t, filepath.Join(dir, "client.app.pem"))
	conf := &tls.Config{RootCAs: certsPool(t, dir), Certificates: []tls.Certificate{client}}
	for _, m := range e.members {
		cfg, err := zoocfg.Load(m.cfg)
		if err != nil {
			t.Fatal(err)
		}
		if !cfg.SSLQuorum || cfg.ClientPort != 0 || cfg.SecureClientPort == 0 ||
			cfg.QuorumTLS.KeyStore.Path != filepath.Join(dir, "server."+cfg.MyID+".pem") {
			t.Fatalf("%s after -apply: %+v", m.cfg, cfg)
		}
		m.secureAddr, m.tls = m.clientAddr, conf
	}
	e.startAll()

	cli := func(m *member, pem string, cmd ...string) (string, int) {
		var out, errOut bytes.Buffer
		args := []string{"-server", m.secureAddr, "-tls-ca", filepath.Join(dir, "ca.pem"), "-timeout", "10000"}
		if pem != "" {
			args = append(args, "-tls-cert", pem)
		}
		code := runCli(append(args, cmd...), strings.NewReader(""), &out, &errOut)
		return out.String() + errOut.String(), code
	}
	app := filepath.Join(dir, "client.app.pem")
	if out, code := cli(e.members[0], app, "create", "/secure", "v"); code != 0 {
		t.Fatalf("create over TLS: %d %s", code, out)
	}
	if out, code := cli(e.members[2], app, "sync", "/secure"); code != 0 {
		t.Fatalf("sync: %d %s", code, out)
	}
	if out, _ := cli(e.members[2], app, "get", "/secure"); !strings.Contains(out, "v\n") {
		t.Fatalf("get through another server: %s", out)
	}
	if out, code := cli(e.members[1], "", "-waitforconnection", "ls", "/"); code == 0 {
		t.Fatalf("a client without a certificate: %d %s", code, out)
	}
	if got := fourLetters(e.members[1].secureAddr, "ruok"); got != "" {
		t.Fatalf("plaintext on the former clientPort answered %q", got)
	}
	expectPlaintextRaftRefused(t, e.members[1])
}

// -apply edits nothing, and writes no certificate, unless every config can
// be edited; a config that already has TLS settings is left to the operator.
func TestCertsApplyRefusals(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		data := filepath.Join(dir, name+".data")
		if err := os.MkdirAll(data, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(data, "myid"), []byte("1\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		cfg := "tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir=" + data + "\n" + body
		if err := os.WriteFile(p, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	servers := "server.1=localhost:2888:3888\nserver.2=localhost:2889:3889\n"
	good := write("good.cfg", "clientPort=2181\n"+servers)
	tests := []struct {
		name, body, msg string
	}{
		{"TLS already", "clientPort=2181\nsslQuorum=false\n" + servers, "sslQuorum: the config already has TLS settings"},
		{"ssl keys", "clientPort=2181\nssl.keyStore.location=/k\n" + servers, "ssl.keyStore.location: the config already has TLS"},
		{"no clientPort", "secureClientPort=2281\n" + servers, "secureClientPort"},
		{"another ensemble", "clientPort=2181\nserver.1=localhost:2888:3888\nserver.2=otherhost:2889:3889\n", "server.N lines differ"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			bad := write("bad.cfg", tc.body)
			before, _ := os.ReadFile(good)
			certs := filepath.Join(dir, "certs-"+strings.ReplaceAll(tc.name, " ", "-"))
			code, _, errOut := certsRun(t, "-config", good, "-config", bad, "-dir", certs, "-apply")
			if code == 0 || !strings.Contains(errOut, tc.msg) {
				t.Fatalf("exit %d, stderr %q; want an error with %q", code, errOut, tc.msg)
			}
			if after, _ := os.ReadFile(good); !bytes.Equal(before, after) {
				t.Fatalf("the good config was edited:\n%s", after)
			}
			if _, err := os.Stat(filepath.Join(certs, "ca.pem")); err == nil {
				t.Fatal("certificates written")
			}
		})
	}
	if code, _, errOut := certsRun(t, "-hosts", "h1", "-apply", "-dir", filepath.Join(dir, "c")); code != 2 || !strings.Contains(errOut, "-apply edits the -config files") {
		t.Fatalf("-apply without -config: %d %s", code, errOut)
	}
}
