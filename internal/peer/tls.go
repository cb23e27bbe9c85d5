package peer

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
)

// TLS makes every replica link mutual TLS 1.3: each end proves itself with
// a certificate that chains to the CA, the dialling end checks that the
// other's names the host it dialled, and the accepting end that the
// dialler's names a member (admit.go).
type TLS struct {
	// Base returns this replica's certificate and the CAs it trusts:
	// Certificates (or GetCertificate and GetClientCertificate) and RootCAs
	// (or ClientCAs). It is called at every handshake, so what it returns
	// may change (renewed files). Its other settings are kept, but TLS 1.3,
	// client certificates and the peer checks are always imposed.
	Base func() (*tls.Config, error)
	// Identities are names (a host, a common name, a URI or e-mail SAN) a
	// peer's certificate may carry instead of a member's host.
	Identities []string
	// NoHostCheck turns the name checks off: any certificate from the CA
	// is a peer (ZooKeeper's ssl.quorum.hostnameVerification=false).
	NoHostCheck bool
}

// ErrNoCA means the TLS settings name no CA to trust.
var ErrNoCA = errors.New("zoo: TLS settings have no CA to trust (RootCAs or ClientCAs)")

// Check fails if Base cannot give a usable configuration.
func (s *TLS) Check() error {
	base, err := s.Base()
	if err != nil {
		return err
	}
	if base.RootCAs == nil && base.ClientCAs == nil {
		return ErrNoCA
	}
	if len(base.Certificates) == 0 && (base.GetCertificate == nil || base.GetClientCertificate == nil) {
		return errors.New("zoo: TLS settings have no certificate of this replica (Certificates, or GetCertificate and GetClientCertificate)")
	}
	return nil
}

// serverConfig is the accepting end's configuration: each handshake takes
// the current base and requires a client certificate that verifies
// against the CAs and passes check.
func (s *TLS) serverConfig(check func(*x509.Certificate) error) *tls.Config {
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
			c.ClientAuth = tls.RequireAndVerifyClientCert
			if c.ClientCAs == nil {
				c.ClientCAs = c.RootCAs
			}
			own := c.VerifyConnection
			c.VerifyConnection = func(cs tls.ConnectionState) error {
				if own != nil {
					if err := own(cs); err != nil {
						return err
					}
				}
				if len(cs.PeerCertificates) == 0 {
					return errors.New("zoo: peer sent no certificate")
				}
				return check(cs.PeerCertificates[0])
			}
			return c, nil
		},
	}
}

// clientConfig is the dialling end's configuration for a link to addr: the
// peer's certificate must verify against the CAs and name addr's host.
func (s *TLS) clientConfig(addr string) (*tls.Config, error) {
	base, err := s.Base()
	if err != nil {
		return nil, err
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("zoo: peer address %q: %w", addr, err)
	}
	c := base.Clone()
	c.GetConfigForClient = nil
	c.MinVersion = tls.VersionTLS13
	c.ServerName = host
	if c.RootCAs == nil {
		c.RootCAs = c.ClientCAs
	}
	if c.RootCAs == nil {
		return nil, ErrNoCA
	}
	if s.NoHostCheck {
		// Verify the chain ourselves, without the name.
		roots := c.RootCAs
		c.InsecureSkipVerify = true
		c.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("zoo: peer sent no certificate")
			}
			inter := x509.NewCertPool()
			for _, ic := range cs.PeerCertificates[1:] {
				inter.AddCert(ic)
			}
			_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter,
				KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
			return err
		}
	}
	return c, nil
}
