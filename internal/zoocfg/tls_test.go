package zoocfg

import (
	"crypto/tls"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/zooraft/zoo/internal/keystore"
)

func TestParseTLSKeys(t *testing.T) {
	c, err := Parse(strings.NewReader(base+
		"secureClientPort=2281\nsecureClientPortAddress=127.0.0.1\n"+
		"ssl.keyStore.location=/etc/zk/server.pem\nssl.keyStore.type=PEM\nssl.keyStore.password=kp\n"+
		"zookeeper.ssl.trustStore.location=/etc/zk/ca.p12\nssl.trustStore.type=pkcs12\nssl.trustStore.password=tp\n"+
		"ssl.clientAuth=WANT\nssl.enabledProtocols=TLSv1.3, TLSv1.2\n"+
		"ssl.ciphersuites=TLS_AES_128_GCM_SHA256,TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\n"+
		"sslQuorum=true\nssl.quorum.keyStore.location=/etc/zk/q.pem\nssl.quorum.trustStore.location=/etc/zk/qca.pem\n"+
		"ssl.quorum.hostnameVerification=false\nsslQuorumReloadCertFiles=true\n"+
		"X509AuthenticationProvider.superUser=CN=admin,O=Acme\nadmin.forceHttps=true\nadmin.needClientAuth=true\n"+
		"authProvider.x509=org.apache.zookeeper.server.auth.X509AuthenticationProvider\nssl.authProvider=x509\n"), "")
	if err != nil {
		t.Fatal(err)
	}
	want := TLS{
		KeyStore:             keystore.KeyStore{Path: "/etc/zk/server.pem", Type: keystore.PEM, Password: "kp"},
		TrustStore:           keystore.TrustStore{Path: "/etc/zk/ca.p12", Type: keystore.PKCS12, Password: "tp"},
		ClientAuth:           ClientAuthWant,
		MinVersion:           tls.VersionTLS12,
		MaxVersion:           tls.VersionTLS13,
		CipherSuites:         []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256},
		HostnameVerification: true,
		Set:                  true,
	}
	if !reflect.DeepEqual(c.ClientTLS, want) {
		t.Errorf("ClientTLS\n got %+v\nwant %+v", c.ClientTLS, want)
	}
	if c.SecureClientPort != 2281 || c.SecureClientPortAddress != "127.0.0.1" || !c.SSLQuorum ||
		c.QuorumTLS.KeyStore.Path != "/etc/zk/q.pem" || c.QuorumTLS.HostnameVerification ||
		c.X509SuperUser != "CN=admin,O=Acme" || !c.AdminForceHTTPS || !c.AdminNeedClientAuth || c.QuorumCertsReadOnce {
		t.Errorf("parsed %+v", c)
	}
	if len(c.Warnings) != 0 {
		t.Errorf("warnings: %q", c.Warnings)
	}
}

// Every key that asks for authentication or encryption zoo cannot give
// stops the server, naming its line and key; a value that leaves the
// feature off passes.
func TestParseRefusesSecurityZooCannotGive(t *testing.T) {
	tests := []struct {
		name, cfg, key, msg string
	}{
		{"quorum SASL", "quorum.auth.enableSasl=true\n", "quorum.auth.enableSasl", "sslQuorum=true"},
		{"learner SASL", "quorum.auth.learnerRequireSasl=true\n", "quorum.auth.learnerRequireSasl", "SASL"},
		{"server SASL", "quorum.auth.serverRequireSasl=true\n", "quorum.auth.serverRequireSasl", "SASL"},
		{"client SASL", "sessionRequireClientSASLAuth=true\n", "sessionRequireClientSASLAuth", "SASL"},
		{"SASL provider", "authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider\n", "authProvider.1", "SASL"},
		{"custom provider", "authProvider.2=com.example.LdapProvider\n", "authProvider.2", "Java class"},
		{"enforced auth", "enforce.auth.enabled=true\n", "enforce.auth.enabled", "not implemented"},
		{"port unification", "client.portUnification=true\n", "client.portUnification", "secureClientPort"},
		{"CRL", "ssl.crl=true\n", "ssl.crl", "revocation"},
		{"OCSP", "ssl.quorum.ocsp=true\n", "ssl.quorum.ocsp", "revocation"},
		{"client hostname checks", "ssl.clientHostnameVerification=true\n", "ssl.clientHostnameVerification", "not implemented"},
		{"JKS key store", "ssl.keyStore.type=JKS\n", "ssl.keyStore.type", "keytool -importkeystore"},
		{"JKS quorum trust store", "ssl.quorum.trustStore.type=jks\n", "ssl.quorum.trustStore.type", "keytool"},
		{"old protocol", "ssl.protocol=TLSv1.1\n", "ssl.protocol", "insecure"},
		{"insecure cipher", "ssl.ciphersuites=TLS_RSA_WITH_RC4_128_SHA\n", "ssl.ciphersuites", "insecure"},
		{"unknown cipher", "ssl.ciphersuites=TLS_FOO\n", "ssl.ciphersuites", "unknown"},
		{"context supplier", "ssl.context.supplier.class=x.Y\n", "ssl.context.supplier.class", "Java"},
		{"secure port without key store", "secureClientPort=2281\nssl.trustStore.location=/ca.pem\n", "ssl.keyStore.location", "missing"},
		{"secure port without trust store", "secureClientPort=2281\nssl.keyStore.location=/k.pem\n", "ssl.trustStore.location", "missing"},
		{"secure port on the client port", "secureClientPort=2181\nssl.keyStore.location=/k.pem\nssl.trustStore.location=/ca.pem\n", "secureClientPort", "own ports"},
		{"sslQuorum without key store", "sslQuorum=true\nssl.quorum.trustStore.location=/ca.pem\n", "ssl.quorum.keyStore.location", "missing"},
		{"sslQuorum without trust store", "sslQuorum=true\nssl.quorum.keyStore.location=/k.pem\n", "ssl.quorum.trustStore.location", "missing"},
		{"admin client auth without trust store", "admin.needClientAuth=true\n", "admin.needClientAuth", "ssl.trustStore.location"},
		{"admin HTTPS without key store", "admin.forceHttps=true\n", "admin.forceHttps", "ssl.keyStore.location"},
		{"bad client auth", "ssl.clientAuth=maybe\n", "ssl.clientAuth", "need, want or none"},
		{"digest turned off", "DigestAuthenticationProvider.enabled=false\n", "DigestAuthenticationProvider.enabled", "cannot be turned off"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(base+tt.cfg), "")
			var e *Error
			if !errors.As(err, &e) || e.Key != tt.key || !strings.Contains(e.Msg, tt.msg) {
				t.Fatalf("err = %v, want an *Error on %s saying %q", err, tt.key, tt.msg)
			}
			if e.Line == 0 {
				t.Fatalf("err = %v, want a line", err)
			}
		})
	}
	// Off is off.
	if _, err := Parse(strings.NewReader(base+"quorum.auth.enableSasl=false\nsessionRequireClientSASLAuth=false\n"+
		"enforce.auth.enabled=false\nportUnification=false\nssl.crl=false\nssl.ocsp=false\nsecureClientPort=0\n"), ""); err != nil {
		t.Fatalf("features left off: %v", err)
	}
}

// sslQuorumReloadCertFiles=false is honoured; zoo's default, and true, reload.
func TestParseSSLQuorumReloadCertFiles(t *testing.T) {
	for value, readOnce := range map[string]bool{"": false, "true": false, "false": true} {
		cfg := base
		if value != "" {
			cfg += "sslQuorumReloadCertFiles=" + value + "\n"
		}
		c, err := Parse(strings.NewReader(cfg), "")
		if err != nil {
			t.Fatal(err)
		}
		if c.QuorumCertsReadOnce != readOnce {
			t.Errorf("sslQuorumReloadCertFiles=%q: QuorumCertsReadOnce %v, want %v", value, c.QuorumCertsReadOnce, readOnce)
		}
	}
	if _, err := Parse(strings.NewReader(base+"sslQuorumReloadCertFiles=no\n"), ""); err == nil || !strings.Contains(err.Error(), "sslQuorumReloadCertFiles") {
		t.Errorf("a value that is not a boolean: %v", err)
	}
}

func TestParseTLSWarnings(t *testing.T) {
	c, err := Parse(strings.NewReader(base+"ssl.quorum.keyStore.location=/k\nssl.quorum.clientAuth=none\nclient.secure=true\n"), "")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`zoo.cfg:5: ssl.quorum.clientAuth: zoo's links between servers always need a certificate; "none" ignored`,
		`zoo.cfg:6: client.secure: a client setting (zoo's clients use secureClientPort); ignored`,
		`zoo.cfg: ssl.quorum.* keys are set but sslQuorum is not true: links between servers are plaintext`,
	}
	if !reflect.DeepEqual(c.Warnings, want) {
		t.Errorf("warnings\n got %q\nwant %q", c.Warnings, want)
	}
}

func TestLoadReadsPasswordFiles(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("s3cret\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "zoo.cfg")
	write := func(extra string) {
		t.Helper()
		if err := os.WriteFile(cfg, []byte("tickTime=2000\ndataDir="+dir+"\nclientPort=2181\n"+extra), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The file wins over a password line, before or after it.
	write("ssl.keyStore.passwordPath=" + pw + "\nssl.keyStore.password=not-this\nssl.quorum.trustStore.password=nor-this\n" +
		"ssl.quorum.trustStore.passwordPath=" + pw + "\n")
	c, err := Load(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if c.ClientTLS.KeyStore.Password != "s3cret" || c.QuorumTLS.TrustStore.Password != "s3cret" {
		t.Fatalf("passwords %q %q", c.ClientTLS.KeyStore.Password, c.QuorumTLS.TrustStore.Password)
	}
	write("ssl.keyStore.password=s3cret-value\nssl.keyStore.passwordPath=" + pw + ".missing\n")
	var e *Error
	if _, err := Load(cfg); !errors.As(err, &e) || e.Key != "ssl.keyStore.passwordPath" || e.Line != 5 || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("missing password file: %v", err)
	}
}
