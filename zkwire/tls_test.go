package zkwire

import (
	"crypto/tls"
	"crypto/x509/pkix"
	"errors"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zooraft/zoo"
	"github.com/zooraft/zoo/internal/certgen"
	"github.com/zooraft/zoo/internal/jute"
)

// tlsFixture is a CA, the server's certificate and a few clients'.
type tlsFixture struct {
	ca, otherCA          *certgen.CA
	server               *certgen.Leaf
	app, other, admin    *certgen.Leaf
	foreign              *certgen.Leaf // signed by otherCA
	plainAddr, secureAdr string
}

func newTLSFixture(t *testing.T) *tlsFixture {
	t.Helper()
	f := &tlsFixture{}
	var err error
	must := func(l *certgen.Leaf, err error) *certgen.Leaf {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	if f.ca, err = certgen.NewCA("client CA", certgen.Options{}); err != nil {
		t.Fatal(err)
	}
	if f.otherCA, err = certgen.NewCA("other CA", certgen.Options{}); err != nil {
		t.Fatal(err)
	}
	f.server = must(f.ca.Replica("zoo", []string{"127.0.0.1", "localhost"}, certgen.Options{}))
	f.app = must(f.ca.Client(pkix.Name{CommonName: "app", Organization: []string{"Acme"}}, certgen.Options{}))
	f.other = must(f.ca.Client(pkix.Name{CommonName: "other", Organization: []string{"Acme"}}, certgen.Options{}))
	f.admin = must(f.ca.Client(pkix.Name{CommonName: "admin", Organization: []string{"Acme"}}, certgen.Options{}))
	f.foreign = must(f.otherCA.Client(pkix.Name{CommonName: "app", Organization: []string{"Acme"}}, certgen.Options{}))
	return f
}

// serverConfig is the secure port's TLS with ZooKeeper's ssl.clientAuth.
func (f *tlsFixture) serverConfig(auth tls.ClientAuthType) *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{f.server.TLSCertificate()}, ClientCAs: certgen.Pool(f.ca), ClientAuth: auth}
}

// clientConfig trusts the CA and presents leaf (none if nil), even when
// the server's CA list does not name its issuer.
func (f *tlsFixture) clientConfig(leaf *certgen.Leaf) *tls.Config {
	return &tls.Config{RootCAs: certgen.Pool(f.ca), ServerName: "127.0.0.1",
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			if leaf == nil {
				return &tls.Certificate{}, nil
			}
			c := leaf.TLSCertificate()
			return &c, nil
		}}
}

// serveTLS serves ens on a plain port and a TLS port.
func (f *tlsFixture) serveTLS(t *testing.T, ens *zoo.Ensemble, auth tls.ClientAuthType) *Server {
	t.Helper()
	srv, plain := serve(t, ens, Config{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.ServeTLS(ln, f.serverConfig(auth))
	f.plainAddr, f.secureAdr = plain, ln.Addr().String()
	return srv
}

// tlsDialer is go-zookeeper's Dialer over TLS with conf.
func tlsDialer(conf *tls.Config) zk.Dialer {
	return func(network, addr string, timeout time.Duration) (net.Conn, error) {
		return tls.DialWithDialer(&net.Dialer{Timeout: timeout}, network, addr, conf)
	}
}

// dialRawTLS is dialRaw over TLS.
func dialRawTLS(t *testing.T, addr string, conf *tls.Config) *rawClient {
	t.Helper()
	nc, err := tls.Dial("tcp", addr, conf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &rawClient{t: t, nc: nc}
}

// whoami returns the session's ids as "scheme:id" strings, sorted.
func (c *rawClient) whoami() []string {
	c.t.Helper()
	rep := c.call(jute.OpWhoAmI, nil)
	if rep.err != zoo.CodeOK {
		c.t.Fatalf("whoami: %v", rep.err)
	}
	n := rep.body.Int()
	var out []string
	for range n {
		out = append(out, rep.body.UString()+":"+rep.body.UString())
	}
	slices.Sort(out)
	return out
}

func (c *rawClient) addAuth(scheme, data string) zoo.Code {
	c.t.Helper()
	c.xid++
	c.write(requestFrame(jute.XidAuth, jute.OpAuth, func(w *jute.Writer) {
		w.Int(0)
		w.UString(scheme)
		w.Buffer([]byte(data))
	}))
	return c.reply(jute.XidAuth).err
}

// A client that proved a certificate is x509:<its subject>, as ZooKeeper 3.8
// says (whoami, auth:: expansion, addauth x509); without one it is only
// ip, on either port, and addauth x509 fails and closes the connection.
func TestTLSClientIdentity(t *testing.T) {
	f := newTLSFixture(t)
	ens, err := zoo.Open(zoo.Config{X509SuperUser: "CN=admin,O=Acme"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ens.Close() })
	f.serveTLS(t, ens, tls.VerifyClientCertIfGiven)

	app := dialRawTLS(t, f.secureAdr, f.clientConfig(f.app))
	app.handshake()
	if got, want := app.whoami(), []string{"ip:127.0.0.1", "x509:CN=app,O=Acme"}; !slices.Equal(got, want) {
		t.Fatalf("whoami with a certificate = %v, want %v", got, want)
	}
	if code := app.addAuth("x509", "CN=someone else"); code != zoo.CodeOK {
		t.Fatalf("addauth x509 with a certificate = %v", code)
	}
	if got := app.whoami(); slices.Contains(got, "x509:CN=someone else") {
		t.Fatalf("addauth x509 took the client's word: %v", got)
	}

	admin := dialRawTLS(t, f.secureAdr, f.clientConfig(f.admin))
	admin.handshake()
	if got, want := admin.whoami(), []string{"ip:127.0.0.1", "super:", "x509:CN=admin,O=Acme"}; !slices.Equal(got, want) {
		t.Fatalf("whoami of the superuser = %v, want %v", got, want)
	}

	for name, c := range map[string]*rawClient{
		"TLS without a certificate": dialRawTLS(t, f.secureAdr, f.clientConfig(nil)),
		"plain port":                dialRaw(t, f.plainAddr),
	} {
		c.handshake()
		if got := c.whoami(); !slices.Equal(got, []string{"ip:127.0.0.1"}) {
			t.Fatalf("%s: whoami = %v", name, got)
		}
		if code := c.addAuth("x509", "CN=app,O=Acme"); code != zoo.CodeAuthFailed {
			t.Fatalf("%s: addauth x509 = %v, want ZAUTHFAILED", name, code)
		}
		c.expectClosed()
	}
}

// With ssl.clientAuth=need, a client without a certificate of the CA never
// gets a session.
func TestTLSNeedRefusesClientsWithoutACertificateOfTheCA(t *testing.T) {
	f := newTLSFixture(t)
	f.serveTLS(t, openSingle(t), tls.RequireAndVerifyClientCert)
	foreign := f.clientConfig(f.foreign)
	for name, conf := range map[string]*tls.Config{"no certificate": f.clientConfig(nil), "another CA": foreign} {
		c, err := tls.Dial("tcp", f.secureAdr, conf)
		if err == nil {
			// TLS 1.3: the refusal comes with the first read.
			c.Write(connectFrame(0, 10000, 0, make([]byte, 16), false))
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, err = c.Read(make([]byte, 1))
			c.Close()
		}
		if err == nil || !strings.Contains(err.Error(), "tls:") {
			t.Fatalf("%s: %v, want a TLS alert", name, err)
		}
	}
	// A plaintext client on the TLS port gets no session either.
	raw := dialRaw(t, f.secureAdr)
	raw.write(connectFrame(0, 10000, 0, make([]byte, 16), false))
	raw.expectClosed()
}

// go-zookeeper through a TLS dialer: an x509 ACL lets its certificate in
// and keeps every other client out.
func TestTLSGoZKWithX509ACL(t *testing.T) {
	f := newTLSFixture(t)
	f.serveTLS(t, openSingle(t), tls.RequireAndVerifyClientCert)
	app, _ := connectZKDial(t, []string{f.secureAdr}, 10*time.Second, tlsDialer(f.clientConfig(f.app)))
	other, _ := connectZKDial(t, []string{f.secureAdr}, 10*time.Second, tlsDialer(f.clientConfig(f.other)))
	plain, _ := connectZK(t, []string{f.plainAddr}, 10*time.Second)

	acl := []zk.ACL{{Perms: zk.PermAll, Scheme: "x509", ID: "CN=app,O=Acme"}}
	if _, err := app.Create("/app", []byte("secret"), 0, acl); err != nil {
		t.Fatalf("create with an x509 ACL: %v", err)
	}
	if data, _, err := app.Get("/app"); err != nil || string(data) != "secret" {
		t.Fatalf("owner reads %q, %v", data, err)
	}
	for name, c := range map[string]*zk.Conn{"another certificate": other, "plain port": plain} {
		if _, _, err := c.Get("/app"); !errors.Is(err, zk.ErrNoAuth) {
			t.Fatalf("%s reads: %v, want ErrNoAuth", name, err)
		}
		if _, err := c.Set("/app", []byte("x"), -1); !errors.Is(err, zk.ErrNoAuth) {
			t.Fatalf("%s writes: %v, want ErrNoAuth", name, err)
		}
	}
	if _, err := app.Create("/mine", nil, 0, zk.AuthACL(zk.PermAll)); err != nil {
		t.Fatalf("create with auth:: over TLS: %v", err)
	}
	if got, _, err := app.GetACL("/mine"); err != nil || !slices.Equal(got, acl) {
		t.Fatalf("auth:: expanded to %v (%v), want %v", got, err, acl)
	}
	if _, err := app.Create("/bad", nil, 0, []zk.ACL{{Perms: zk.PermAll, Scheme: "x509", ID: "not a dn"}}); !errors.Is(err, zk.ErrInvalidACL) {
		t.Fatalf("x509 ACL that is not a name: %v", err)
	}
}

// Clients that stall the TLS handshake (silent, a record header and no
// more, a byte at a time) hold up nobody: a real client connects and works
// meanwhile, and each stalled connection is closed once the handshake
// timeout passes, which a server without one would never do.
func TestTLSStalledHandshakesAreDroppedAndHoldUpNobody(t *testing.T) {
	f := newTLSFixture(t)
	srv, err := NewServer(openSingle(t), Config{})
	if err != nil {
		t.Fatal(err)
	}
	srv.handshakeTimeout = 2 * time.Second
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.ServeTLS(ln, f.serverConfig(tls.RequireAndVerifyClientCert)) }()
	t.Cleanup(func() { srv.Close(); <-done })
	addr := ln.Addr().String()

	stalled := map[string]func(net.Conn){
		"silent":          func(net.Conn) {},
		"a record header": func(c net.Conn) { c.Write([]byte{0x16, 0x03, 0x01, 0x02, 0x00}) },
		"a byte a second": func(c net.Conn) {
			go func() {
				for _, b := range []byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00} {
					if _, err := c.Write([]byte{b}); err != nil {
						return
					}
					time.Sleep(time.Second)
				}
			}()
		},
	}
	start := time.Now()
	closed := make(chan string, 3*len(stalled))
	for name, stall := range stalled {
		for range 3 {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			stall(c)
			go func() {
				c.SetReadDeadline(time.Now().Add(time.Minute))
				_, err := io.Copy(io.Discard, c)
				if err != nil && !isReset(err) {
					name += " (" + err.Error() + ")"
				}
				closed <- name
			}()
		}
	}

	zc, _, err := zk.Connect([]string{addr}, 10*time.Second, zk.WithDialer(tlsDialer(f.clientConfig(f.app))), zk.WithLogger(quietLogger{}))
	if err != nil {
		t.Fatal(err)
	}
	defer zc.Close()
	if _, err := zc.Create("/beside-the-stalled", nil, 0, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatalf("a real client beside stalled handshakes: %v", err)
	}

	for range 3 * len(stalled) {
		select {
		case name := <-closed:
			if strings.Contains(name, "(") {
				t.Fatalf("stalled %s: not closed by the server", name)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("a stalled handshake is still open after 30 s")
		}
	}
	if d := time.Since(start); d < srv.handshakeTimeout {
		t.Fatalf("stalled handshakes dropped after %v, before the %v timeout", d, srv.handshakeTimeout)
	}
}
