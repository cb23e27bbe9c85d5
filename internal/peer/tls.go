package peer

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"slices"
	"time"
)

// TLS makes every replica link mutual TLS 1.3: each end proves itself with
// a replica certificate that chains to the CA, the dialling end checks that
// the other's names the host it dialled, and the accepting end that the
// dialler's names a member (admit.go). Verification is always this
// package's: settings of the base that would weaken it (InsecureSkipVerify,
// ClientAuth, VerifyPeerCertificate) are overridden.
type TLS struct {
	// Base returns this replica's certificate and the CAs it trusts:
	// Certificates (or GetCertificate and GetClientCertificate) and RootCAs
	// (or ClientCAs). It is called at every handshake and every recheck, so
	// what it returns may change (renewed files).
	Base func() (*tls.Config, error)
	// Identities are names (a host, a common name, a URI or e-mail SAN) a
	// peer's certificate may carry instead of a member's host.
	Identities []string
	// SkipHostnameCheck turns the name checks off: any replica certificate
	// from the CA is a peer (ZooKeeper's ssl.quorum.hostnameVerification=false).
	SkipHostnameCheck bool
}

// ErrNoCA means the TLS settings name no CA to trust.
var ErrNoCA = errors.New("zoo: TLS settings have no CA to trust (RootCAs or ClientCAs)")

// Check fails if Base cannot give a usable configuration.
func (s *TLS) Check() error {
	base, err := s.Base()
	if err != nil {
		return err
	}
	if roots(base) == nil {
		return ErrNoCA
	}
	if len(base.Certificates) == 0 && (base.GetCertificate == nil || base.GetClientCertificate == nil) {
		return errors.New("zoo: TLS settings have no certificate of this replica (Certificates, or GetCertificate and GetClientCertificate)")
	}
	for _, id := range s.Identities {
		if id == "" {
			return errors.New("zoo: TLS Identities has an empty name")
		}
	}
	return nil
}

// roots are the CAs a base trusts.
func roots(base *tls.Config) *x509.CertPool {
	if base.RootCAs != nil {
		return base.RootCAs
	}
	return base.ClientCAs
}

// serverConfig is the accepting end's configuration: each handshake takes
// the current base, requires a client certificate, and hands the
// certificates to verify, which decides.
func (s *TLS) serverConfig(verify func(chain []*x509.Certificate) error) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			base, err := s.Base()
			if err != nil {
				return nil, err
			}
			c := base.Clone()
			c.GetConfigForClient = nil
			c.MinVersion = tls.VersionTLS13
			c.ClientAuth = tls.RequireAnyClientCert // verified below, by us
			c.ClientCAs = roots(base)
			c.VerifyPeerCertificate = nil
			c.VerifyConnection = func(cs tls.ConnectionState) error { return verify(cs.PeerCertificates) }
			return c, nil
		},
	}
}

// clientConfig is the dialling end's configuration for a link to addr;
// verify decides on the peer's certificates.
func (s *TLS) clientConfig(verify func(chain []*x509.Certificate) error) (*tls.Config, error) {
	base, err := s.Base()
	if err != nil {
		return nil, err
	}
	c := base.Clone()
	c.GetConfigForClient = nil
	c.MinVersion = tls.VersionTLS13
	c.InsecureSkipVerify = true // verified below, by us
	c.VerifyPeerCertificate = nil
	c.VerifyConnection = func(cs tls.ConnectionState) error { return verify(cs.PeerCertificates) }
	return c, nil
}

// verifyChain checks that chain (leaf first) is a replica certificate the
// current base's CAs vouch for now: valid today, for serving and for
// dialling (a client certificate of the same CA is not a replica), and, if
// host is set and name checks are on, naming host.
func (s *TLS) verifyChain(chain []*x509.Certificate, host string) error {
	if len(chain) == 0 {
		return fmt.Errorf("%w: no certificate", ErrNotAdmitted)
	}
	base, err := s.Base()
	if err != nil {
		return err
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	leaf := chain[0]
	opts := x509.VerifyOptions{Roots: roots(base), Intermediates: inter, CurrentTime: time.Now()}
	for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		opts.KeyUsages = []x509.ExtKeyUsage{usage}
		if _, err := leaf.Verify(opts); err != nil {
			return fmt.Errorf("%w: certificate %q: %w%s", ErrNotAdmitted, leaf.Subject.String(), err, usageHint(leaf, usage))
		}
	}
	if host != "" && !s.SkipHostnameCheck {
		if err := leaf.VerifyHostname(host); err != nil {
			return fmt.Errorf("%w: %w", ErrNotAdmitted, err)
		}
	}
	return nil
}

// usageHint explains an extended key usage failure in zoo's terms.
func usageHint(leaf *x509.Certificate, usage x509.ExtKeyUsage) string {
	if len(leaf.ExtKeyUsage) == 0 || slices.Contains(leaf.ExtKeyUsage, usage) || slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageAny) {
		return ""
	}
	if usage == x509.ExtKeyUsageServerAuth {
		return " (a client certificate: replicas need certificates for serving and dialling, as zoo certs makes them)"
	}
	return " (replicas need certificates for serving and dialling)"
}

// hostOf is the host of a host:port address.
func hostOf(addr string) (string, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("zoo: peer address %q: %w", addr, err)
	}
	return host, nil
}
