// Package keystore loads what TLS settings name: a key store (this side's
// private key and certificate chain) and a trust store (the CA certificates
// to accept), in the formats ZooKeeper's ssl.keyStore.* and ssl.trustStore.*
// keys take: PEM (key and chain in one file, or the key in a file of its own)
// and PKCS#12. Java's JKS is refused with the command that converts it.
// [Reloader] re-reads the files when they change, so certificates can be
// renewed without a restart.
package keystore

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/youmark/pkcs8"
	"software.sslmate.com/src/go-pkcs12"
)

// Type is a store's format: "PEM" or "PKCS12". Empty means: from the file's
// extension (.pem, .crt, .cer, .key; .p12, .pfx), else from its content.
type Type string

// Store formats.
const (
	PEM    Type = "PEM"
	PKCS12 Type = "PKCS12"
)

// ErrFormat wraps every error about a store's format or content.
var ErrFormat = errors.New("keystore: bad store")

// KeyStore names this side's private key and certificate chain.
type KeyStore struct {
	// Path is a PEM file with the certificate chain (leaf first) and,
	// unless KeyPath is set, the private key; or a PKCS#12 file.
	Path string
	// KeyPath, if set, is a PEM file with the private key alone.
	KeyPath string
	// Type is Path's format; see [Type].
	Type Type
	// Password decrypts an encrypted PEM key (PKCS#8) or a PKCS#12 file.
	Password string
}

// TrustStore names the CA certificates to trust.
type TrustStore struct {
	// Path is a PEM bundle of CA certificates, or a PKCS#12 trust store.
	Path     string
	Type     Type
	Password string
}

// ParseType reads a store type as ZooKeeper's ssl.*.type keys give it
// (any case). Java's JKS and BCFKS are refused with how to convert them.
func ParseType(s string) (Type, error) {
	switch strings.ToUpper(s) {
	case "":
		return "", nil
	case "PEM":
		return PEM, nil
	case "PKCS12", "P12", "PFX":
		return PKCS12, nil
	case "JKS", "JCEKS":
		return "", fmt.Errorf("%w: type %s is Java's own format, which zoo does not read; convert it to PKCS12 with "+
			"`keytool -importkeystore -srckeystore FILE.jks -destkeystore FILE.p12 -deststoretype PKCS12` (or create PEM files with `zoo certs`)", ErrFormat, s)
	}
	return "", fmt.Errorf("%w: unknown type %q (want PEM or PKCS12)", ErrFormat, s)
}

// typeOf resolves a store's type: as given, else from the content (PEM is
// text with BEGIN lines; Java's JKS and JCEKS start with their magic
// numbers; PKCS#12 is DER), else from the file name.
func typeOf(path string, t Type, data []byte) (Type, error) {
	if t != "" {
		return t, nil
	}
	switch {
	case bytes.Contains(data, []byte("-----BEGIN ")):
		return PEM, nil
	case bytes.HasPrefix(data, []byte{0xfe, 0xed, 0xfe, 0xed}):
		_, err := ParseType("JKS")
		return "", err
	case bytes.HasPrefix(data, []byte{0xce, 0xce, 0xce, 0xce}):
		_, err := ParseType("JCEKS")
		return "", err
	case len(data) > 0 && data[0] == 0x30: // an ASN.1 SEQUENCE
		return PKCS12, nil
	}
	switch strings.ToLower(filepath.Ext(path)) {
	case ".jks":
		_, err := ParseType("JKS")
		return "", err
	}
	return "", fmt.Errorf("%w: neither PEM nor PKCS#12", ErrFormat)
}

// LoadKeyStore reads a key store into a certificate ready for crypto/tls,
// its Leaf parsed. The key must match the leaf certificate.
func LoadKeyStore(ks KeyStore) (*tls.Certificate, error) {
	data, err := os.ReadFile(ks.Path)
	if err != nil {
		return nil, err
	}
	t, err := typeOf(ks.Path, ks.Type, data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ks.Path, err)
	}
	var cert *tls.Certificate
	switch t {
	case PKCS12:
		if ks.KeyPath != "" {
			return nil, fmt.Errorf("%s: %w: a PKCS#12 key store holds its key; a separate key file is not used", ks.KeyPath, ErrFormat)
		}
		cert, err = fromPKCS12(data, ks.Password)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", ks.Path, err)
		}
	default:
		keyData, keyPath := data, ks.Path
		if ks.KeyPath != "" {
			if keyData, err = os.ReadFile(ks.KeyPath); err != nil {
				return nil, err
			}
			keyPath = ks.KeyPath
		}
		chain, err := pemCerts(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", ks.Path, err)
		}
		if len(chain) == 0 {
			return nil, fmt.Errorf("%s: %w: no CERTIFICATE block", ks.Path, ErrFormat)
		}
		key, err := pemKey(keyData, ks.Password)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", keyPath, err)
		}
		cert = &tls.Certificate{PrivateKey: key}
		for _, c := range chain {
			cert.Certificate = append(cert.Certificate, c.Raw)
		}
		cert.Leaf = chain[0]
	}
	if err := keyMatches(cert.Leaf, cert.PrivateKey); err != nil {
		return nil, fmt.Errorf("%s: %w", ks.Path, err)
	}
	return cert, nil
}

// LoadTrustStore reads a trust store's CA certificates.
func LoadTrustStore(ts TrustStore) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(ts.Path)
	if err != nil {
		return nil, err
	}
	t, err := typeOf(ts.Path, ts.Type, data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ts.Path, err)
	}
	var certs []*x509.Certificate
	if t == PKCS12 {
		// Java's trust stores mark each certificate trusted; a store made
		// by openssl does not (and one holding a key is a key store: its
		// own certificate must not become a CA by mistake).
		certs, err = pkcs12.DecodeTrustStore(data, ts.Password)
		if err != nil {
			return nil, fmt.Errorf("%s: %w: PKCS#12 trust store (is the password right?): %v; "+
				"make it with `keytool -importcert -storetype PKCS12`, or give the CA certificates as PEM", ts.Path, ErrFormat, err)
		}
	} else if certs, err = pemCerts(data); err != nil {
		return nil, fmt.Errorf("%s: %w", ts.Path, err)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("%s: %w: no CA certificate in it", ts.Path, ErrFormat)
	}
	return certs, nil
}

// Pool returns a pool of certs.
func Pool(certs []*x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c)
	}
	return p
}

func fromPKCS12(data []byte, password string) (*tls.Certificate, error) {
	key, leaf, cas, err := pkcs12.DecodeChain(data, password)
	if err != nil {
		return nil, fmt.Errorf("%w: PKCS#12 key store (is the password right?): %v", ErrFormat, err)
	}
	cert := &tls.Certificate{PrivateKey: key, Leaf: leaf, Certificate: [][]byte{leaf.Raw}}
	for _, c := range cas {
		cert.Certificate = append(cert.Certificate, c.Raw)
	}
	return cert, nil
}

// pemCerts parses every CERTIFICATE block of a PEM file, in order.
func pemCerts(data []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return out, nil
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: certificate %d: %v", ErrFormat, len(out)+1, err)
		}
		out = append(out, c)
	}
}

// pemKey parses the one private key of a PEM file: PKCS#8 (encrypted with
// password, as ZooKeeper's PEM key stores allow, or not), PKCS#1 or SEC 1.
func pemKey(data []byte, password string) (crypto.Signer, error) {
	var key any
	found := 0
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		var err error
		switch b.Type {
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(b.Bytes)
		case "RSA PRIVATE KEY":
			//lint:ignore SA1019 only detected, to refuse it clearly
			if x509.IsEncryptedPEMBlock(b) {
				return nil, fmt.Errorf("%w: legacy encrypted PEM key (Proc-Type: 4,ENCRYPTED) is insecure and not read; "+
					"re-encrypt it as PKCS#8 with `openssl pkcs8 -topk8 -v2 aes256`", ErrFormat)
			}
			key, err = x509.ParsePKCS1PrivateKey(b.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(b.Bytes)
		case "ENCRYPTED PRIVATE KEY":
			if password == "" {
				return nil, fmt.Errorf("%w: the private key is encrypted and no password is set", ErrFormat)
			}
			key, err = pkcs8.ParsePKCS8PrivateKey(b.Bytes, []byte(password))
			if err != nil {
				err = fmt.Errorf("cannot decrypt (is the password right?): %v", err)
			}
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrFormat, b.Type, err)
		}
		found++
	}
	switch {
	case found == 0:
		return nil, fmt.Errorf("%w: no PRIVATE KEY block", ErrFormat)
	case found > 1:
		return nil, fmt.Errorf("%w: %d private keys (want one)", ErrFormat, found)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%w: unsupported private key type %T", ErrFormat, key)
	}
	return signer, nil
}

// keyMatches reports whether key is the private half of leaf's public key.
func keyMatches(leaf *x509.Certificate, key any) error {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	var pub crypto.PublicKey
	switch k := key.(type) {
	case *rsa.PrivateKey:
		pub = &k.PublicKey
	case *ecdsa.PrivateKey:
		pub = &k.PublicKey
	case ed25519.PrivateKey:
		pub = k.Public()
	default:
		return fmt.Errorf("%w: unsupported private key type %T", ErrFormat, key)
	}
	if !pub.(equaler).Equal(leaf.PublicKey) {
		return fmt.Errorf("%w: the private key does not match the certificate (subject %s)", ErrFormat, leaf.Subject)
	}
	return nil
}
