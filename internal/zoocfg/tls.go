package zoocfg

import (
	"crypto/tls"
	"fmt"
	"os"
	"strings"

	"github.com/zooraft/zoo/internal/keystore"
)

// TLS is one side's TLS settings, as ZooKeeper's X509Util reads them:
// ssl.* for the secure client port and the AdminServer, ssl.quorum.* for
// the links between servers. Every key may also be written with a
// "zookeeper." prefix, the system property ZooKeeper forwards it as.
type TLS struct {
	// KeyStore is keyStore.location, .type and .password (or the content of
	// the file .passwordPath names, which wins, as in ZooKeeper): this
	// server's key and certificate.
	KeyStore keystore.KeyStore
	// TrustStore is trustStore.location, .type and .password (or
	// .passwordPath): the CAs that vouch for the other side.
	TrustStore keystore.TrustStore
	// ClientAuth is clientAuth: need (the default), want or none. Replica
	// links always need one.
	ClientAuth string
	// MinVersion and MaxVersion are the TLS versions from protocol and
	// enabledProtocols (TLSv1.2, TLSv1.3): by default 1.2 and 1.3.
	MinVersion, MaxVersion uint16
	// CipherSuites are the TLS 1.2 suites of ciphersuites; nil means Go's
	// secure defaults. TLS 1.3 suites are always the standard three.
	CipherSuites []uint16
	// HostnameVerification is hostnameVerification, default true: replica
	// links check that a peer's certificate names a member.
	HostnameVerification bool

	// Set reports whether any key of this side was given.
	Set bool

	// passwordPaths are the .passwordPath keys given, read by Load.
	passwordPaths []passwordPath
}

// Client-auth modes of ssl.clientAuth.
const (
	ClientAuthNeed = "need"
	ClientAuthWant = "want"
	ClientAuthNone = "none"
)

func defaultTLS() TLS {
	return TLS{ClientAuth: ClientAuthNeed, MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS13, HostnameVerification: true}
}

// tlsKey handles the ssl.* and ssl.quorum.* keys (see TLS).
func tlsKey(p *parser, c *Config, prop property) error {
	name := strings.TrimPrefix(prop.key, "zookeeper.")
	rest := strings.TrimPrefix(name, "ssl.")
	t, side := &c.ClientTLS, "ssl."
	if r, ok := strings.CutPrefix(rest, "quorum."); ok {
		t, side, rest = &c.QuorumTLS, "ssl.quorum.", r
	}
	t.Set = true
	v := prop.value
	storeType := func() (keystore.Type, error) {
		st, err := keystore.ParseType(v)
		if err != nil {
			return "", p.errorf(prop.line, prop.key, "%v", err)
		}
		return st, nil
	}
	var err error
	switch rest {
	case "keyStore.location":
		t.KeyStore.Path, err = p.nonEmpty(prop)
	case "keyStore.password":
		t.KeyStore.Password = v
	case "keyStore.passwordPath":
		t.passwordPaths = append(t.passwordPaths, passwordPath{prop.key, prop.line, prop.value, &t.KeyStore.Password})
	case "keyStore.type":
		t.KeyStore.Type, err = storeType()
	case "trustStore.location":
		t.TrustStore.Path, err = p.nonEmpty(prop)
	case "trustStore.password":
		t.TrustStore.Password = v
	case "trustStore.passwordPath":
		t.passwordPaths = append(t.passwordPaths, passwordPath{prop.key, prop.line, prop.value, &t.TrustStore.Password})
	case "trustStore.type":
		t.TrustStore.Type, err = storeType()
	case "clientAuth":
		switch m := strings.ToLower(v); m {
		case ClientAuthNeed, ClientAuthWant, ClientAuthNone:
			t.ClientAuth = m
			if side == "ssl.quorum." && m != ClientAuthNeed {
				p.warnf(prop.line, "%s: zoo's links between servers always need a certificate; %q ignored", prop.key, v)
			}
		default:
			err = p.errorf(prop.line, prop.key, "want need, want or none, got %q", v)
		}
	case "protocol":
		var ver uint16
		if ver, err = p.tlsVersion(prop, v); err == nil {
			t.MinVersion, t.MaxVersion = ver, ver
		}
	case "enabledProtocols":
		t.MinVersion, t.MaxVersion = 0, 0
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s == "" {
				continue
			}
			var ver uint16
			if ver, err = p.tlsVersion(prop, s); err != nil {
				break
			}
			if t.MinVersion == 0 || ver < t.MinVersion {
				t.MinVersion = ver
			}
			t.MaxVersion = max(t.MaxVersion, ver)
		}
		if err == nil && t.MaxVersion == 0 {
			err = p.errorf(prop.line, prop.key, "names no protocol")
		}
	case "ciphersuites":
		t.CipherSuites, err = p.cipherSuites(prop)
	case "hostnameVerification":
		t.HostnameVerification, err = p.boolVal(prop)
	case "clientHostnameVerification":
		var on bool
		if on, err = p.boolVal(prop); err == nil && on {
			err = p.errorf(prop.line, prop.key, "checking clients' host names against their certificates is not implemented by zoo; "+
				"identify clients by their certificate's subject (x509 ACLs) instead, or remove the key")
		}
	case "crl", "ocsp":
		var on bool
		if on, err = p.boolVal(prop); err == nil && on {
			err = p.errorf(prop.line, prop.key, "certificate revocation checking (CRL, OCSP) is not implemented by zoo; "+
				"revoke by replacing the CA's trust store (files are re-read on change), or remove the key")
		}
	case "authProvider":
		if v != "x509" {
			err = p.errorf(prop.line, prop.key, "zoo authenticates TLS clients with the x509 scheme only, got %q", v)
		}
	case "context.supplier.class":
		err = p.errorf(prop.line, prop.key, "a Java SSLContext supplier class cannot be loaded by zoo; use the keyStore and trustStore keys")
	case "sslProvider", "handshakeDetectionTimeoutMillis":
		p.warnf(prop.line, "%s: Java TLS tuning; ignored by zoo", prop.key)
	default:
		p.warnf(prop.line, "unknown key %q ignored", prop.key)
	}
	return err
}

// tlsVersion parses a Java TLS protocol name. Versions before 1.2 are
// refused: asking for them asks for less security than zoo gives.
func (p *parser) tlsVersion(prop property, s string) (uint16, error) {
	switch s {
	case "TLSv1.2":
		return tls.VersionTLS12, nil
	case "TLSv1.3", "TLS":
		return tls.VersionTLS13, nil
	case "TLSv1", "TLSv1.1", "SSLv3":
		return 0, p.errorf(prop.line, prop.key, "%s is insecure and not served by zoo; use TLSv1.2 or TLSv1.3", s)
	}
	return 0, p.errorf(prop.line, prop.key, "unknown protocol %q (want TLSv1.2 or TLSv1.3)", s)
}

// cipherSuites maps Java's (IANA) suite names onto Go's TLS 1.2 suites.
// TLS 1.3 names are accepted and need nothing: Go always offers them.
func (p *parser) cipherSuites(prop property) ([]uint16, error) {
	byName := map[string]uint16{}
	for _, cs := range tls.CipherSuites() {
		byName[cs.Name] = cs.ID
	}
	insecure := map[string]bool{}
	for _, cs := range tls.InsecureCipherSuites() {
		insecure[cs.Name] = true
	}
	var out []uint16
	for _, name := range strings.Split(prop.value, ",") {
		name = strings.TrimSpace(name)
		switch {
		case name == "":
		case name == "TLS_AES_128_GCM_SHA256" || name == "TLS_AES_256_GCM_SHA384" || name == "TLS_CHACHA20_POLY1305_SHA256":
			// TLS 1.3: always on.
		case byName[name] != 0:
			out = append(out, byName[name])
		case insecure[name]:
			return nil, p.errorf(prop.line, prop.key, "%s is insecure and not served by zoo", name)
		default:
			return nil, p.errorf(prop.line, prop.key, "unknown or unsupported cipher suite %q", name)
		}
	}
	return out, nil
}

// passwordPath is a .passwordPath key: the file whose content is the
// password dst.
type passwordPath struct {
	key  string
	line int
	path string
	dst  *string
}

// loadPasswords reads the passwordPath files of both sides: each file's
// content, without a trailing line break, is the password.
func (p *parser) loadPasswords(c *Config) error {
	for _, t := range []*TLS{&c.ClientTLS, &c.QuorumTLS} {
		for _, pp := range t.passwordPaths {
			b, err := os.ReadFile(pp.path)
			if err != nil {
				return &Error{File: p.file, Line: pp.line, Key: pp.key, Msg: "cannot read: " + err.Error(), err: err}
			}
			*pp.dst = strings.TrimRight(string(b), "\r\n")
		}
		t.passwordPaths = nil
	}
	return nil
}

// finishTLS checks that what asks for TLS has what TLS needs.
func (p *parser) finishTLS(c *Config) error {
	if c.SecureClientPort != 0 {
		if c.SecureClientPort == c.ClientPort {
			return p.errorf(p.lines["secureClientPort"], "secureClientPort", "is clientPort (%d): the two need their own ports", c.ClientPort)
		}
		if c.ClientTLS.KeyStore.Path == "" {
			return p.errorf(p.lines["secureClientPort"], "ssl.keyStore.location", "missing: secureClientPort needs this server's key and certificate")
		}
		if c.ClientTLS.TrustStore.Path == "" && c.ClientTLS.ClientAuth != ClientAuthNone {
			return p.errorf(p.lines["secureClientPort"], "ssl.trustStore.location",
				"missing: with ssl.clientAuth=%s, secureClientPort needs the CAs of client certificates", c.ClientTLS.ClientAuth)
		}
	} else if line, ok := p.lines["secureClientPortAddress"]; ok {
		return p.errorf(line, "secureClientPortAddress", "set but secureClientPort is not")
	}
	if c.SSLQuorum {
		if c.QuorumTLS.KeyStore.Path == "" {
			return p.errorf(p.lines["sslQuorum"], "ssl.quorum.keyStore.location", "missing: sslQuorum=true needs this server's key and certificate")
		}
		if c.QuorumTLS.TrustStore.Path == "" {
			return p.errorf(p.lines["sslQuorum"], "ssl.quorum.trustStore.location", "missing: sslQuorum=true needs the CA that vouches for the other servers")
		}
		if c.QuorumTLS.MaxVersion != tls.VersionTLS13 {
			p.warnf(0, "ssl.quorum protocols end at %s, but zoo's links between servers always use TLSv1.3", describeTLSVersion(c.QuorumTLS.MaxVersion))
		}
	} else if c.QuorumTLS.Set {
		p.warnf(0, "ssl.quorum.* keys are set but sslQuorum is not true: links between servers are plaintext")
	}
	if c.AdminNeedClientAuth && c.ClientTLS.TrustStore.Path == "" {
		return p.errorf(p.lines["admin.needClientAuth"], "admin.needClientAuth",
			"needs ssl.trustStore.location (and ssl.keyStore.location): the AdminServer verifies client certificates against it")
	}
	if (c.AdminForceHTTPS || c.AdminNeedClientAuth) && c.ClientTLS.KeyStore.Path == "" {
		key := "admin.forceHttps"
		if c.AdminNeedClientAuth {
			key = "admin.needClientAuth"
		}
		return p.errorf(p.lines[key], key, "needs ssl.keyStore.location: the AdminServer serves HTTPS with it")
	}
	return nil
}

// describeTLSVersion names a version as Java does, for messages.
func describeTLSVersion(v uint16) string {
	switch v {
	case tls.VersionTLS12:
		return "TLSv1.2"
	case tls.VersionTLS13:
		return "TLSv1.3"
	}
	return fmt.Sprintf("0x%04x", v)
}
