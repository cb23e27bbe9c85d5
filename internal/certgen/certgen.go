// Package certgen makes the certificates a secure ensemble needs: a CA, a
// certificate per replica naming its hosts, and client certificates whose
// subject is the x509 identity ACLs name. `zoo certs` writes them for
// operators; tests make their own with it. Keys are ECDSA P-256; everything
// is written as PEM, each certificate with its key in one file (ZooKeeper's
// PEM key store), so the same file serves ssl.keyStore.location, kazoo's
// certfile and keyfile, and Go's tls.LoadX509KeyPair.
package certgen

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"time"
)

// CA is a certificate authority that signs the others.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// Leaf is a signed certificate with its key.
type Leaf struct {
	Cert *x509.Certificate
	Key  crypto.Signer
	CA   *CA
}

// Options of a certificate. Zero values mean the defaults.
type Options struct {
	// Validity is how long the certificate is valid. Default: 10 years for
	// a CA, 2 years otherwise.
	Validity time.Duration
	// NotBefore overrides the start of validity (default: an hour ago,
	// for clocks a little behind).
	NotBefore time.Time
}

// TLSCertificate is the leaf and its key as crypto/tls presents them.
func (l *Leaf) TLSCertificate() tls.Certificate {
	return tls.Certificate{Certificate: [][]byte{l.Cert.Raw}, PrivateKey: l.Key, Leaf: l.Cert}
}

// Pool is a certificate pool that trusts the CAs.
func Pool(cas ...*CA) *x509.CertPool {
	pool := x509.NewCertPool()
	for _, ca := range cas {
		pool.AddCert(ca.Cert)
	}
	return pool
}

// NewCA makes a self-signed CA named name.
func NewCA(name string, o Options) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl, err := template(pkix.Name{CommonName: name, Organization: []string{"zoo"}}, o, 10*365*24*time.Hour)
	if err != nil {
		return nil, err
	}
	tmpl.IsCA = true
	tmpl.BasicConstraintsValid = true
	tmpl.MaxPathLenZero = true
	tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, Key: key}, nil
}

// Replica makes a certificate for a replica reachable at hosts (names or IP
// addresses), good both for serving and for dialling: replica links are
// mutual TLS.
func (ca *CA) Replica(name string, hosts []string, o Options) (*Leaf, error) {
	if len(hosts) == 0 {
		return nil, errors.New("certgen: a replica certificate needs at least one host")
	}
	return ca.sign(pkix.Name{CommonName: name, Organization: []string{"zoo"}}, hosts, o,
		[]x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth})
}

// Client makes a client certificate with subject; its subject is the
// client's x509 identity (in RFC 2253 form, e.g. "CN=app1,O=Acme").
func (ca *CA) Client(subject pkix.Name, o Options) (*Leaf, error) {
	return ca.sign(subject, nil, o, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth})
}

func (ca *CA) sign(subject pkix.Name, hosts []string, o Options, usage []x509.ExtKeyUsage) (*Leaf, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl, err := template(subject, o, 2*365*24*time.Hour)
	if err != nil {
		return nil, err
	}
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.ExtKeyUsage = usage
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &Leaf{Cert: cert, Key: key, CA: ca}, nil
}

func template(subject pkix.Name, o Options, validity time.Duration) (*x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	if o.Validity != 0 {
		validity = o.Validity
	}
	start := o.NotBefore
	if start.IsZero() {
		start = time.Now().Add(-time.Hour)
	}
	return &x509.Certificate{
		SerialNumber: serial,
		Subject:      subject,
		NotBefore:    start,
		NotAfter:     start.Add(validity),
	}, nil
}

// CertPEM is the CA's certificate, the trust store of every party.
func (ca *CA) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Raw})
}

// KeyPEM is the CA's private key, needed only to sign more certificates.
func (ca *CA) KeyPEM() ([]byte, error) { return keyPEM(ca.Key) }

// PEM is the leaf's private key followed by its certificate and the CA's:
// ZooKeeper's PEM key store in one file.
func (l *Leaf) PEM() ([]byte, error) {
	k, err := keyPEM(l.Key)
	if err != nil {
		return nil, err
	}
	out := append(k, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: l.Cert.Raw})...)
	return append(out, l.CA.CertPEM()...), nil
}

// CertPEM is the leaf's certificate alone.
func (l *Leaf) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: l.Cert.Raw})
}

// KeyPEM is the leaf's private key alone (PKCS#8).
func (l *Leaf) KeyPEM() ([]byte, error) { return keyPEM(l.Key) }

func keyPEM(k crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// WriteFile writes data to path readable by its owner only (it may hold a
// private key), replacing the file atomically so a reader never sees half.
func WriteFile(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("certgen: %w", err)
	}
	return nil
}
