package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zooraft/zoo"
)

// certsRun runs `zoo certs args...` in-process.
func certsRun(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(append([]string{"certs"}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

// certsMust runs `zoo certs args...` and fails the test unless it succeeds.
func certsMust(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errOut := certsRun(t, args...)
	if code != 0 {
		t.Fatalf("zoo certs %s: exit %d\n%s", strings.Join(args, " "), code, errOut)
	}
	return out
}

// certsConfig writes a zoo.cfg with body's server lines into dir.
func certsConfig(t *testing.T, dir, body string) string {
	t.Helper()
	path := filepath.Join(dir, "zoo.cfg")
	cfg := "tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir=" + filepath.Join(dir, "data") + "\nclientPort=2181\n" + body
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// certsPool is a pool holding the CA in dir/ca.pem.
func certsPool(t *testing.T, dir string) *x509.CertPool {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		t.Fatal("ca.pem holds no certificate")
	}
	return pool
}

// certsLoad loads a key-and-chain PEM file as Go's TLS does and returns it
// with its parsed leaf.
func certsLoad(t *testing.T, path string) (tls.Certificate, *x509.Certificate) {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(path, path)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return pair, leaf
}

// certsVerify checks that leaf chains to pool for each usage.
func certsVerify(t *testing.T, leaf *x509.Certificate, pool *x509.CertPool, usages ...x509.ExtKeyUsage) {
	t.Helper()
	for _, u := range usages {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{u}}); err != nil {
			t.Errorf("%s: usage %v: %v", leaf.Subject, u, err)
		}
	}
}

func TestCertsServerCertificates(t *testing.T) {
	dir := t.TempDir()
	cfg := certsConfig(t, dir, `server.1=127.0.0.1:2888:3888
server.2=127.0.0.1:2889:3889
server.3=127.0.0.1:2890:3890
server.4=zk4.example.com:2888:3888:observer
`)
	out := filepath.Join(dir, "certs")
	certsMust(t, "-config", cfg, "-dir", out, "-days", "30")
	hostsDir := filepath.Join(dir, "hosts")
	certsMust(t, "-hosts", "zk1.example.com,[::1],10.0.0.3", "-dir", hostsDir)

	tests := []struct {
		dir, file string
		dns       []string
		ips       []string
		notHost   string
	}{
		{out, "server.1.pem", []string{"localhost"}, []string{"127.0.0.1"}, "zk4.example.com"},
		{out, "server.2.pem", []string{"localhost"}, []string{"127.0.0.1"}, "zk4.example.com"},
		{out, "server.3.pem", []string{"localhost"}, []string{"127.0.0.1"}, "zk4.example.com"},
		{out, "server.4.pem", []string{"zk4.example.com"}, nil, "localhost"},
		{hostsDir, "server.1.pem", []string{"zk1.example.com"}, nil, "zk4.example.com"},
		{hostsDir, "server.2.pem", []string{"localhost"}, []string{"::1", "127.0.0.1"}, "zk1.example.com"},
		{hostsDir, "server.3.pem", nil, []string{"10.0.0.3"}, "zk1.example.com"},
	}
	for _, tt := range tests {
		t.Run(filepath.Base(tt.dir)+"/"+tt.file, func(t *testing.T) {
			_, leaf := certsLoad(t, filepath.Join(tt.dir, tt.file))
			certsVerify(t, leaf, certsPool(t, tt.dir), x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth)
			var ips []string
			for _, ip := range leaf.IPAddresses {
				ips = append(ips, ip.String())
			}
			if !slices.Equal(leaf.DNSNames, tt.dns) || !slices.Equal(ips, tt.ips) {
				t.Errorf("SANs: DNS %q IP %q, want DNS %q IP %q", leaf.DNSNames, ips, tt.dns, tt.ips)
			}
			for _, h := range append(slices.Clone(tt.dns), tt.ips...) {
				if err := leaf.VerifyHostname(h); err != nil {
					t.Errorf("VerifyHostname(%s): %v", h, err)
				}
			}
			if err := leaf.VerifyHostname(tt.notHost); err == nil {
				t.Errorf("VerifyHostname(%s) succeeded", tt.notHost)
			}
		})
	}

	_, leaf := certsLoad(t, filepath.Join(out, "server.1.pem"))
	if got := leaf.NotAfter.Sub(leaf.NotBefore); got != 30*24*time.Hour {
		t.Errorf("-days 30: valid for %v", got)
	}
}

func TestCertsStandalone(t *testing.T) {
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, body string
		hosts      []string
	}{
		{"clientPortAddress", "clientPortAddress=zk.example.com\n", []string{"zk.example.com"}},
		{"loopback", "clientPortAddress=127.0.0.1\n", []string{"127.0.0.1", "localhost"}},
		{"wildcard", "clientPortAddress=0.0.0.0\n", []string{host, "localhost", "127.0.0.1"}},
		{"hostname", "", []string{host, "localhost", "127.0.0.1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			certsMust(t, "-config", certsConfig(t, dir, tt.body), "-dir", dir)
			_, leaf := certsLoad(t, filepath.Join(dir, "server.pem"))
			certsVerify(t, leaf, certsPool(t, dir), x509.ExtKeyUsageServerAuth)
			for _, h := range tt.hosts {
				if err := leaf.VerifyHostname(h); err != nil {
					t.Errorf("VerifyHostname(%s): %v", h, err)
				}
			}
			if n := len(leaf.DNSNames) + len(leaf.IPAddresses); n > len(tt.hosts) {
				t.Errorf("SANs DNS %q IP %v, want only %q", leaf.DNSNames, leaf.IPAddresses, tt.hosts)
			}
		})
	}
}

func TestCertsMutualTLS(t *testing.T) {
	dir := t.TempDir()
	certsMust(t, "-hosts", "127.0.0.1", "-client", "app", "-dir", dir)
	pool := certsPool(t, dir)
	server, _ := certsLoad(t, filepath.Join(dir, "server.1.pem"))
	client, _ := certsLoad(t, filepath.Join(dir, "client.app.pem"))

	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{server},
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	type result struct {
		id  string
		err error
	}
	seen := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			seen <- result{err: err}
			return
		}
		defer c.Close()
		tc := c.(*tls.Conn)
		tc.SetDeadline(time.Now().Add(10 * time.Second))
		if err := tc.Handshake(); err != nil {
			seen <- result{err: err}
			return
		}
		tc.Write([]byte("ok"))
		seen <- result{id: zoo.X509ID(tc.ConnectionState().PeerCertificates[0])}
	}()

	c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{client}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 2)
	_, readErr := c.Read(buf)
	r := <-seen
	if r.err != nil || readErr != nil {
		t.Fatalf("server handshake: %v; client read: %v", r.err, readErr)
	}
	if r.id != "CN=app,O=zoo" {
		t.Errorf("server sees x509 id %q, want CN=app,O=zoo", r.id)
	}
}

func TestCertsReuseCA(t *testing.T) {
	dir := t.TempDir()
	out := certsMust(t, "-hosts", "127.0.0.1,zk2.example.com", "-client", "app", "-dir", dir)
	if !strings.Contains(out, "a new CA") || !strings.Contains(out, "client.app.pem: x509 id CN=app,O=zoo") {
		t.Errorf("first run says:\n%s", out)
	}
	read := func(name string) []byte {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	caPEM, caKey, app := read("ca.pem"), read("ca.key"), read("client.app.pem")

	out = certsMust(t, "-client", "ops", "-dir", dir)
	if !strings.Contains(out, "the CA already there") || !strings.Contains(out, "client.ops.pem: x509 id CN=ops,O=zoo") {
		t.Errorf("second run says:\n%s", out)
	}
	if !bytes.Equal(read("ca.pem"), caPEM) || !bytes.Equal(read("ca.key"), caKey) {
		t.Fatal("second run replaced the CA")
	}
	pool := certsPool(t, dir)
	for _, f := range []string{"server.1.pem", "server.2.pem", "client.app.pem", "client.ops.pem"} {
		_, leaf := certsLoad(t, filepath.Join(dir, f))
		certsVerify(t, leaf, pool, x509.ExtKeyUsageClientAuth)
	}

	code, _, errOut := certsRun(t, "-client", "app", "-client", "new", "-dir", dir)
	if code != 1 || !strings.Contains(errOut, "client.app.pem already there (-force replaces)") {
		t.Errorf("existing leaf without -force: exit %d, %q", code, errOut)
	}
	if !bytes.Equal(read("client.app.pem"), app) {
		t.Error("client.app.pem replaced without -force")
	}
	if _, err := os.Stat(filepath.Join(dir, "client.new.pem")); err == nil {
		t.Error("a refused run wrote client.new.pem")
	}
	certsMust(t, "-client", "app", "-dir", dir, "-force")
	if bytes.Equal(read("client.app.pem"), app) {
		t.Error("-force left client.app.pem as it was")
	}
	if !bytes.Equal(read("ca.pem"), caPEM) {
		t.Error("-force replaced the CA")
	}
	_, leaf := certsLoad(t, filepath.Join(dir, "client.app.pem"))
	certsVerify(t, leaf, pool, x509.ExtKeyUsageClientAuth)

	code, _, errOut = certsRun(t, "-client", "late", "-days", "4000", "-dir", dir)
	if code != 0 || !strings.Contains(errOut, "warning: the CA expires") {
		t.Errorf("a certificate outliving the CA: exit %d, stderr %q; want a warning", code, errOut)
	}
}

func TestCertsFileModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new")
	certsMust(t, "-hosts", "127.0.0.1", "-client", "app", "-dir", dir)
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("%s: mode %v, want 0700", dir, fi.Mode().Perm())
	}
	for _, f := range []string{"ca.key", "server.1.pem", "client.app.pem"} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", f, fi.Mode().Perm())
		}
	}
}

func TestCertsErrors(t *testing.T) {
	caOnly := func(t *testing.T, dir, keep string) {
		t.Helper()
		src := t.TempDir()
		certsMust(t, "-client", "x", "-dir", src)
		b, err := os.ReadFile(filepath.Join(src, keep))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, keep), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string) // may prepare dir
		args  []string                       // "DIR" stands for the test's directory
		code  int
		want  string // in stderr
	}{
		{"nothing to do", nil, []string{"-dir", "DIR"}, 2, "nothing to do"},
		{"argument", nil, []string{"-client", "a", "-dir", "DIR", "extra"}, 2, `unexpected argument "extra"`},
		{"days", nil, []string{"-client", "a", "-days", "0", "-dir", "DIR"}, 2, "-days 0"},
		{"empty client", nil, []string{"-client", "", "-dir", "DIR"}, 2, "-client: empty name"},
		{"client slash", nil, []string{"-client", "a/b", "-dir", "DIR"}, 2, `-client "a/b"`},
		{"client space", nil, []string{"-client", "a b", "-dir", "DIR"}, 2, `-client "a b"`},
		{"client twice", nil, []string{"-client", "a", "-client", "a", "-dir", "DIR"}, 2, "-client a given twice"},
		{"empty host", nil, []string{"-hosts", "a,,b", "-dir", "DIR"}, 2, "-hosts: empty host"},
		{"host with port", nil, []string{"-hosts", "a:2181", "-dir", "DIR"}, 2, `"a:2181"`},
		{"wildcard host", nil, []string{"-hosts", "0.0.0.0", "-dir", "DIR"}, 2, "0.0.0.0 names no machine"},
		{"missing config", nil, []string{"-config", "DIR/none.cfg", "-dir", "DIR"}, 2, "none.cfg: no such file"},
		{"bad config", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, "zoo.cfg"), []byte("dataDir=/d\nclientPort=2181\ntickTime=abc\n"), 0o644)
		}, []string{"-config", "DIR/zoo.cfg", "-dir", "DIR"}, 2, "zoo.cfg:3: tickTime"},
		{"config and hosts", func(t *testing.T, dir string) {
			certsConfig(t, dir, "server.1=a:2888:3888\nserver.2=b:2888:3888\nserver.3=c:2888:3888\n")
		}, []string{"-config", "DIR/zoo.cfg", "-hosts", "d", "-dir", "DIR"}, 2, "server.1.pem would be written twice"},
		{"leaf exists", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, "client.a.pem"), nil, 0o600)
		}, []string{"-client", "a", "-dir", "DIR"}, 1, "client.a.pem already there (-force replaces)"},
		{"only ca.pem", func(t *testing.T, dir string) { caOnly(t, dir, "ca.pem") },
			[]string{"-client", "a", "-dir", "DIR"}, 1, "ca.pem exists but its key"},
		{"only ca.key", func(t *testing.T, dir string) { caOnly(t, dir, "ca.key") },
			[]string{"-client", "a", "-dir", "DIR"}, 1, "ca.key exists but"},
		{"foreign ca.key", func(t *testing.T, dir string) {
			caOnly(t, dir, "ca.pem")
			caOnly(t, dir, "ca.key")
		}, []string{"-client", "a", "-dir", "DIR"}, 1, "ca.key is not the key of"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if tt.setup != nil {
				tt.setup(t, dir)
			}
			before, _ := os.ReadDir(dir)
			args := slices.Clone(tt.args)
			for i, a := range args {
				args[i] = strings.Replace(a, "DIR", dir, 1)
			}
			code, out, errOut := certsRun(t, args...)
			if code != tt.code || !strings.Contains(errOut, tt.want) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, errOut, tt.code, tt.want)
			}
			if n := strings.Count(errOut, "\n"); n != 1 {
				t.Errorf("stderr has %d lines, want 1: %q", n, errOut)
			}
			if out != "" {
				t.Errorf("stdout: %q", out)
			}
			if after, _ := os.ReadDir(dir); len(after) != len(before) {
				t.Errorf("a refused run left %d entries in its directory, had %d", len(after), len(before))
			}
		})
	}
}

// TestCertsOpenSSL checks the files with another TLS implementation.
func TestCertsOpenSSL(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("openssl missing in CI")
		}
		t.Skip("openssl not installed")
	}
	dir := t.TempDir()
	certsMust(t, "-hosts", "127.0.0.1,zk2.example.com", "-client", "app", "-dir", dir)
	for _, f := range []string{"server.1.pem", "server.2.pem", "client.app.pem"} {
		cmd := exec.Command(openssl, "verify", "-CAfile", filepath.Join(dir, "ca.pem"), filepath.Join(dir, f))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("openssl verify %s: %v\n%s", f, err, out)
		}
	}
}
