package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zooraft/zoo/internal/certgen"
	"github.com/zooraft/zoo/internal/realzk"
	"github.com/zooraft/zoo/internal/testkit"
)

// tlsFiles are the PEM files of a secure deployment, as zoo certs writes
// them: a CA, a certificate for servers on this machine, and clients.
type tlsFiles struct {
	dir, ca, server, app, other, admin string
}

func writeTLSFiles(t testing.TB) *tlsFiles {
	t.Helper()
	dir := t.TempDir()
	ca, err := certgen.NewCA("zoo test CA", certgen.Options{})
	if err != nil {
		t.Fatal(err)
	}
	f := &tlsFiles{dir: dir, ca: filepath.Join(dir, "ca.pem")}
	if err := certgen.WriteFile(f.ca, ca.CertPEM()); err != nil {
		t.Fatal(err)
	}
	write := func(name string, mk func() (*certgen.Leaf, error)) string {
		t.Helper()
		l, err := mk()
		if err != nil {
			t.Fatal(err)
		}
		b, err := l.PEM()
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		if err := certgen.WriteFile(p, b); err != nil {
			t.Fatal(err)
		}
		return p
	}
	client := func(cn string) func() (*certgen.Leaf, error) {
		return func() (*certgen.Leaf, error) {
			return ca.Client(pkix.Name{CommonName: cn, Organization: []string{"zoo"}}, certgen.Options{})
		}
	}
	f.server = write("server.pem", func() (*certgen.Leaf, error) {
		return ca.Replica("server", []string{"127.0.0.1", "localhost"}, certgen.Options{})
	})
	f.app, f.other, f.admin = write("client.app.pem", client("app")), write("client.other.pem", client("other")), write("client.admin.pem", client("admin"))
	return f
}

// clientLines are the ssl.* lines of a secure client port.
func (f *tlsFiles) clientLines(securePort int) string {
	return fmt.Sprintf("secureClientPort=%d\nssl.keyStore.location=%s\nssl.keyStore.type=PEM\n"+
		"ssl.trustStore.location=%s\nssl.trustStore.type=PEM\nssl.clientAuth=need\n", securePort, f.server, f.ca)
}

// quorumLines are the lines that make the links between servers mutual TLS.
func (f *tlsFiles) quorumLines() string {
	return fmt.Sprintf("sslQuorum=true\nssl.quorum.keyStore.location=%s\nssl.quorum.trustStore.location=%s\n", f.server, f.ca)
}

// superUserLine makes client.admin.pem's holder a superuser.
const superUserLine = "X509AuthenticationProvider.superUser=CN=admin,O=zoo\n"

func startTLSEnsemble(t *testing.T, f *tlsFiles) *ensemble {
	t.Helper()
	return startEnsembleWith(t, 3, func(_, securePort int) string {
		return f.clientLines(securePort) + f.quorumLines() + superUserLine
	})
}

func addrs(e *ensemble, secure bool) string {
	var out []string
	for _, m := range e.members {
		if secure {
			out = append(out, m.secureAddr)
		} else {
			out = append(out, m.clientAddr)
		}
	}
	return strings.Join(out, ",")
}

func runKazooTLS(t *testing.T, py, secure, plain string, f *tlsFiles) string {
	t.Helper()
	var stderr bytes.Buffer
	cmd := exec.Command(py, "testdata/tls_kazoo.py", secure, plain, f.ca, f.app, f.other)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kazoo over TLS: %v\n%s%s", err, out, stderr.String())
	}
	return string(out)
}

// kazoo over TLS with client certificates gets the same answers from a zoo
// ensemble (whose servers also talk to each other over mutual TLS) as from
// a real ZooKeeper 3.8 serving secureClientPort with the same files.
func TestTLSKazooAgainstZooAndZooKeeper(t *testing.T) {
	py := needKazoo(t)
	f := writeTLSFiles(t)
	e := startTLSEnsemble(t, f)
	zoo := runKazooTLS(t, py, addrs(e, true), addrs(e, false), f)

	securePort := freePorts(t, 1)[0]
	plain := realzk.StandaloneWith(t, 200*time.Millisecond, f.clientLines(securePort))
	secure := fmt.Sprintf("127.0.0.1:%d", securePort)
	waitTLS(t, secure, f)
	real := runKazooTLS(t, py, secure, plain, f)
	if zoo != real {
		t.Fatalf("kazoo over TLS, zoo:\n%s\nreal ZooKeeper:\n%s", zoo, real)
	}
	for _, want := range []string{"app get -> b's3cret'", "other get -> NoAuthError", "plain get -> NoAuthError",
		"plain delete -> NoAuthError", "mine acl -> [(31, 'x509', 'CN=app,O=zoo')]", "bad x509 acl -> InvalidACLError",
		"app get again -> b'new'", "plain addauth x509 -> AuthFailedError"} {
		if !strings.Contains(zoo, want+"\n") {
			t.Errorf("output lacks %q:\n%s", want, zoo)
		}
	}
}

// waitTLS waits until a secure port completes a TLS handshake.
func waitTLS(t *testing.T, addr string, f *tlsFiles) {
	t.Helper()
	conf := clientTLSConf(t, f, f.app)
	deadline := time.Now().Add(60 * time.Second)
	for {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: time.Second}, "tcp", addr, conf)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no TLS on %s: %v", addr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func clientTLSConf(t *testing.T, f *tlsFiles, pem string) *tls.Config {
	t.Helper()
	conf, err := cliTLS(f.ca, pem, "")
	if err != nil {
		t.Fatal(err)
	}
	conf.ServerName = "127.0.0.1"
	return conf
}

// zkCli.sh, the Java client on Netty with PEM key stores, over TLS: the
// x509 ACL lets its certificate in and keeps another out; a real
// ZooKeeper says the same.
func TestTLSZkCliAgainstZooAndZooKeeper(t *testing.T) {
	needTool(t, "/usr/share/java/zookeeper.jar", "zookeeper")
	java := needTool(t, "/usr/bin/java", "default-jdk-headless")
	f := writeTLSFiles(t)
	e := startTLSEnsemble(t, f)
	securePort := freePorts(t, 1)[0]
	realzk.StandaloneWith(t, 200*time.Millisecond, f.clientLines(securePort)+superUserLine)
	real := fmt.Sprintf("127.0.0.1:%d", securePort)
	waitTLS(t, real, f)

	zkCli := func(server, pem string, cmds ...string) string {
		t.Helper()
		args := []string{"-Xmx128m", "-cp", "/usr/share/java/zookeeper.jar:/usr/share/java/netty-codec.jar:/usr/share/java/netty-resolver.jar:/usr/share/java/slf4j-nop.jar",
			"-Dzookeeper.client.secure=true", "-Dzookeeper.clientCnxnSocket=org.apache.zookeeper.ClientCnxnSocketNetty",
			"-Dzookeeper.ssl.trustStore.location=" + f.ca, "-Dzookeeper.ssl.trustStore.type=PEM",
			"-Dzookeeper.ssl.keyStore.location=" + pem, "-Dzookeeper.ssl.keyStore.type=PEM",
			"org.apache.zookeeper.ZooKeeperMain", "-server", server}
		cmd := exec.Command(java, args...)
		cmd.Stdin = strings.NewReader(strings.Join(cmds, "\n") + "\nquit\n")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			t.Fatalf("zkCli.sh on %s: %v\n%s", server, err, out.String())
		}
		return keepResults(out.String())
	}
	script := func(server string) string {
		a := zkCli(server, f.app, "create /tlscli s3cret auth::cdrwa", "get /tlscli", "getAcl /tlscli", "whoami")
		o := zkCli(server, f.other, "get /tlscli", "set /tlscli x", "whoami")
		ad := zkCli(server, f.admin, "get /tlscli", "whoami", "delete /tlscli")
		return a + "--\n" + o + "--\n" + ad
	}
	got, want := script(e.members[0].secureAddr), script(real)
	if got != want {
		t.Fatalf("zkCli.sh over TLS, zoo:\n%s\nreal ZooKeeper:\n%s", got, want)
	}
	for _, w := range []string{"s3cret", "x509: CN=app,O=zoo", "Insufficient permission"} {
		if !strings.Contains(got, w) {
			t.Errorf("zkCli output lacks %q:\n%s", w, got)
		}
	}
}

// keepResults keeps what zkCli prints for its commands, dropping its
// connection chatter, prompts and lines that differ between servers
// (ip ids, zxids, times); whoami's lines are sorted (ZooKeeper keeps ids in
// a hash set).
func keepResults(out string) string {
	var keep []string
	var who []string
	for _, l := range strings.Split(out, "\n") {
		l = strings.TrimSpace(l)
		if i := strings.LastIndex(l, "] "); strings.HasPrefix(l, "[zk:") && i >= 0 {
			l = l[i+2:]
		}
		switch {
		case l == "", strings.HasPrefix(l, "Connecting to"), strings.HasPrefix(l, "Welcome to"), strings.HasPrefix(l, "JLine"),
			strings.HasPrefix(l, "WATCHER"), strings.HasPrefix(l, "WatchedEvent"), strings.HasPrefix(l, "ip:"),
			strings.HasPrefix(l, "quit"), strings.HasPrefix(l, "create "), strings.HasPrefix(l, "get"), strings.HasPrefix(l, "set "),
			strings.HasPrefix(l, "delete "), l == "whoami":
		case strings.HasPrefix(l, "x509:") || strings.HasPrefix(l, "super:") || l == "Auth scheme: User":
			who = append(who, l)
		default:
			if len(who) > 0 {
				slices.Sort(who)
				keep, who = append(keep, who...), nil
			}
			keep = append(keep, l)
		}
	}
	slices.Sort(who)
	keep = append(keep, who...)
	return strings.Join(keep, "\n") + "\n"
}

// zoo cli over TLS: -tls-ca and -tls-cert make the session x509 and the
// ACL follows; without -tls-cert the secure port (clientAuth=need) refuses.
func TestTLSZooCli(t *testing.T) {
	f := writeTLSFiles(t)
	e := startTLSEnsemble(t, f)
	cli := func(pem string, cmd ...string) (string, int) {
		var out, errOut bytes.Buffer
		args := []string{"-server", e.members[1].secureAddr, "-tls-ca", f.ca, "-timeout", "10000"}
		if pem != "" {
			args = append(args, "-tls-cert", pem)
		}
		code := runCli(append(args, cmd...), strings.NewReader(""), &out, &errOut)
		return out.String() + errOut.String(), code
	}
	if out, code := cli(f.app, "create", "/zcli", "v", "auth::cdrwa"); code != 0 {
		t.Fatalf("create: %d %s", code, out)
	}
	if out, _ := cli(f.app, "get", "/zcli"); !strings.Contains(out, "v\n") {
		t.Fatalf("app get: %s", out)
	}
	if out, _ := cli(f.app, "whoami"); !strings.Contains(out, "x509: CN=app,O=zoo") {
		t.Fatalf("whoami: %s", out)
	}
	if out, _ := cli(f.other, "get", "/zcli"); !strings.Contains(out, "Insufficient permission") {
		t.Fatalf("other get: %s", out)
	}
	if out, code := cli("", "-waitforconnection", "ls", "/"); code == 0 {
		t.Fatalf("no client certificate on a need port: %d %s", code, out)
	}
	var errOut bytes.Buffer
	if code := runCli([]string{"-tls-cert", f.app, "ls", "/"}, strings.NewReader(""), &bytes.Buffer{}, &errOut); code != 2 ||
		!strings.Contains(errOut.String(), "-tls-ca") {
		t.Fatalf("-tls-cert without -tls-ca: %d %s", code, errOut.String())
	}
}

// zoo status reaches a server that serves only TLS: with -tls-* flags, or,
// from a config without clientPort, with the server's own ssl.* stores (as
// zkServer.sh status falls back to secureClientPort).
func TestTLSZooStatus(t *testing.T) {
	f := writeTLSFiles(t)
	e := startTLSEnsemble(t, f)
	m := e.members[0]
	status := func(args ...string) (string, int) {
		var out, errOut bytes.Buffer
		code := statusCmd(args, &out, &errOut)
		return out.String() + errOut.String(), code
	}
	if out, code := status("-server", m.secureAddr, "-tls-ca", f.ca, "-tls-cert", f.app); code != 0 || !strings.Contains(out, "Mode: ") {
		t.Fatalf("-server with -tls-*: %d %s", code, out)
	}
	if out, code := status("-server", m.secureAddr); code != 1 || !strings.Contains(out, "-tls-ca") {
		t.Fatalf("a TLS port asked in plaintext: %d %s", code, out)
	}
	if out, code := status("-server", m.secureAddr, "-tls-ca", f.ca); code != 1 {
		t.Fatalf("no client certificate on a need port: %d %s", code, out)
	}

	b, err := os.ReadFile(m.cfg)
	if err != nil {
		t.Fatal(err)
	}
	var tlsOnly []string
	for _, l := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(l, "clientPort=") {
			tlsOnly = append(tlsOnly, l)
		}
	}
	cfg := filepath.Join(t.TempDir(), "zoo.tls-only.cfg")
	if err := os.WriteFile(cfg, []byte(strings.Join(tlsOnly, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, code := status("-config", cfg); code != 0 || !strings.Contains(out, "Mode: ") {
		t.Fatalf("-config of a TLS-only server: %d %s", code, out)
	}
}

// With sslQuorum=true, the quorum port speaks only TLS: a plaintext raft
// connection is dropped before raft sees a byte, and a TLS one without a
// certificate of the CA too.
func TestSSLQuorumPortRefusesPlaintext(t *testing.T) {
	f := writeTLSFiles(t)
	e := startTLSEnsemble(t, f)
	expectPlaintextRaftRefused(t, e.members[0])
	if mode(e.members[0]) == "" {
		t.Fatal("member 1 stopped answering")
	}
}

// expectPlaintextRaftRefused sends a plaintext raft request to m's quorum
// port: a TLS alert, or nothing, is all it may get back.
func expectPlaintextRaftRefused(t *testing.T, m *member) {
	t.Helper()
	b, err := os.ReadFile(m.cfg)
	if err != nil {
		t.Fatal(err)
	}
	var quorum string
	prefix := fmt.Sprintf("server.%d=", m.id)
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, prefix) {
			parts := strings.Split(strings.TrimPrefix(l, prefix), ":")
			quorum = net.JoinHostPort("127.0.0.1", parts[1])
		}
	}
	c, err := net.Dial("tcp", quorum)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("R\x82\xa4Term\x01"))
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 64)
	n, err := c.Read(buf)
	if err == nil && !bytes.HasPrefix(buf[:n], []byte{0x15}) {
		t.Fatalf("plaintext raft got %q", buf[:n])
	}
}

// A zoo.cfg that asks for security zoo cannot give stops zoo server with
// the key named, before it listens anywhere.
func TestServerRefusesSecurityItCannotGive(t *testing.T) {
	dir := t.TempDir()
	f := writeTLSFiles(t)
	base := fmt.Sprintf("tickTime=2000\ndataDir=%s\nclientPort=%d\nadmin.enableServer=false\n", dir, freePorts(t, 1)[0])
	tests := []struct{ name, extra, want string }{
		{"quorum SASL", "quorum.auth.enableSasl=true\n", "quorum.auth.enableSasl"},
		{"SASL clients", "authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider\n", "authProvider.1"},
		{"JKS", "secureClientPort=1\nssl.keyStore.location=/k.jks\nssl.trustStore.location=/t.jks\nssl.keyStore.type=JKS\n", "keytool"},
		{"key store that does not load", fmt.Sprintf("secureClientPort=%d\nssl.keyStore.location=%s\nssl.trustStore.location=%s\n",
			freePorts(t, 1)[0], f.ca, f.ca), "ssl.keyStore.location"},
		{"quorum trust store missing", "sslQuorum=true\nssl.quorum.keyStore.location=" + f.server + "\n", "ssl.quorum.trustStore.location"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := filepath.Join(dir, "zoo.cfg")
			if err := os.WriteFile(cfg, []byte(base+tt.extra), 0o644); err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			if code := serverCmd([]string{"--config", cfg}, &out, &out); code == 0 || !strings.Contains(out.String(), tt.want) {
				t.Fatalf("exit %d, output %q; want a refusal naming %s", code, out.String(), tt.want)
			}
		})
	}
}

// With a key store configured the AdminServer speaks HTTPS only, and with
// admin.needClientAuth only to client certificates of the CA; what it may
// reveal still follows the four-letter-word whitelist.
func TestAdminServerHTTPS(t *testing.T) {
	f := writeTLSFiles(t)
	ports := freePorts(t, 3)
	dir := t.TempDir()
	cfg := fmt.Sprintf("tickTime=200\ndataDir=%s\nclientPort=%d\nadmin.serverAddress=127.0.0.1\nadmin.serverPort=%d\n"+
		"admin.needClientAuth=true\n4lw.commands.whitelist=srvr,stat\n", dir, ports[0], ports[1]) + f.clientLines(ports[2])
	e := &ensemble{t: t, dir: dir}
	m := &member{id: 1, cfg: filepath.Join(dir, "zoo.cfg"), clientAddr: fmt.Sprintf("127.0.0.1:%d", ports[0]), log: filepath.Join(dir, "zoo.log")}
	if err := os.WriteFile(m.cfg, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	e.members = []*member{m}
	t.Cleanup(e.killAll)
	e.start(m)
	testkit.Eventually(e.t, 30*time.Second, "the server answers srvr", func() bool { return mode(m) != "" })

	admin := fmt.Sprintf("127.0.0.1:%d", ports[1])
	get := func(conf *tls.Config, scheme, path string) (int, string, error) {
		tr := &http.Transport{TLSClientConfig: conf}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get(scheme + "://" + admin + path)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), nil
	}
	withCert := clientTLSConf(t, f, f.app)
	if code, body, err := get(withCert, "https", "/commands/srvr"); err != nil || code != http.StatusOK || !strings.Contains(body, "server_stats") {
		t.Fatalf("https srvr with a client certificate: %d %v %s", code, err, body)
	}
	if code, body, _ := get(withCert, "https", "/commands/dump"); code != http.StatusForbidden || !strings.Contains(body, "4lw.commands.whitelist") {
		t.Fatalf("https dump without dump whitelisted: %d %s", code, body)
	}
	noCert, _ := cliTLS(f.ca, "", "")
	noCert.ServerName = "127.0.0.1"
	if code, body, err := get(noCert, "https", "/commands/srvr"); err == nil {
		t.Fatalf("https without a client certificate answered: %d %s", code, body)
	}
	if code, body, _ := get(nil, "http", "/commands/srvr"); code == http.StatusOK || strings.Contains(body, "server_stats") {
		t.Fatalf("plain http answered: %d %s", code, body)
	}
}
