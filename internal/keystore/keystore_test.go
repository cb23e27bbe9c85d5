package keystore

import (
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/youmark/pkcs8"

	"github.com/zooraft/zoo/internal/certgen"
)

type fixture struct {
	dir  string
	ca   *certgen.CA
	leaf *certgen.Leaf
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ca, err := certgen.NewCA("test CA", certgen.Options{})
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Replica("replica 1", []string{"127.0.0.1", "zoo1.example"}, certgen.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{dir: t.TempDir(), ca: ca, leaf: leaf}
}

func (f *fixture) write(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(f.dir, name)
	if err := certgen.WriteFile(p, data); err != nil {
		t.Fatal(err)
	}
	return p
}

func (f *fixture) combinedPEM(t *testing.T) string {
	t.Helper()
	b, err := f.leaf.PEM()
	if err != nil {
		t.Fatal(err)
	}
	return f.write(t, "replica.pem", b)
}

// tool returns the path of an external command, skipping the test without
// it (failing it in CI, where .ci/run installs it).
func tool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s missing in CI", name)
		}
		t.Skipf("%s not installed", name)
	}
	return p
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	out, err := exec.Command(tool(t, name), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

func TestLoadPEMKeyAndChainInOneFile(t *testing.T) {
	f := newFixture(t)
	cert, err := LoadKeyStore(KeyStore{Path: f.combinedPEM(t)})
	if err != nil {
		t.Fatal(err)
	}
	if !cert.Leaf.Equal(f.leaf.Cert) || len(cert.Certificate) != 2 {
		t.Fatalf("loaded leaf %s with %d certs, want the replica's and its CA", cert.Leaf.Subject, len(cert.Certificate))
	}
	cas, err := LoadTrustStore(TrustStore{Path: f.write(t, "ca.pem", f.ca.CertPEM())})
	if err != nil || len(cas) != 1 || !cas[0].Equal(f.ca.Cert) {
		t.Fatalf("trust store = %v, %v", cas, err)
	}
}

func TestLoadPEMKeyInItsOwnFile(t *testing.T) {
	f := newFixture(t)
	key, _ := f.leaf.KeyPEM()
	cert, err := LoadKeyStore(KeyStore{Path: f.write(t, "replica.crt", f.leaf.CertPEM()), KeyPath: f.write(t, "replica.key", key)})
	if err != nil || !cert.Leaf.Equal(f.leaf.Cert) {
		t.Fatalf("LoadKeyStore = %v", err)
	}
}

// An encrypted PKCS#8 key made by openssl, as ZooKeeper's PEM key stores
// with ssl.keyStore.password hold them.
func TestLoadEncryptedPEMKeyMadeByOpenSSL(t *testing.T) {
	f := newFixture(t)
	key, _ := f.leaf.KeyPEM()
	plain := f.write(t, "plain.key", key)
	enc := filepath.Join(f.dir, "enc.key")
	run(t, "openssl", "pkcs8", "-topk8", "-v2", "aes256", "-in", plain, "-out", enc, "-passout", "pass:s3cret")
	b, _ := os.ReadFile(enc)
	store := f.write(t, "store.pem", append(b, f.leaf.CertPEM()...))

	if _, err := LoadKeyStore(KeyStore{Path: store, Password: "s3cret"}); err != nil {
		t.Fatalf("with the password: %v", err)
	}
	for _, pw := range []string{"", "wrong"} {
		if _, err := LoadKeyStore(KeyStore{Path: store, Password: pw}); !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), store) {
			t.Errorf("password %q: err = %v, want ErrFormat naming the file", pw, err)
		}
	}
}

// PKCS#12 stores as Java's keytool and openssl make them.
func TestLoadPKCS12(t *testing.T) {
	f := newFixture(t)
	combined := f.combinedPEM(t)
	caPEM := f.write(t, "ca.pem", f.ca.CertPEM())

	p12 := filepath.Join(f.dir, "replica.p12")
	run(t, "openssl", "pkcs12", "-export", "-in", combined, "-out", p12, "-passout", "pass:changeit")
	cert, err := LoadKeyStore(KeyStore{Path: p12, Password: "changeit"})
	if err != nil || !cert.Leaf.Equal(f.leaf.Cert) {
		t.Fatalf("openssl PKCS#12 key store: %v", err)
	}
	if _, err := LoadKeyStore(KeyStore{Path: p12, Password: "nope"}); !errors.Is(err, ErrFormat) {
		t.Fatalf("wrong password: %v", err)
	}
	b, _ := os.ReadFile(p12)
	if _, err := LoadKeyStore(KeyStore{Path: f.write(t, "misnamed.jks", b), Password: "changeit"}); err != nil {
		t.Fatalf("a PKCS#12 file named .jks is read by its content: %v", err)
	}
	// A trust store must not be a key store: its own certificate would
	// become a CA.
	if _, err := LoadTrustStore(TrustStore{Path: p12, Password: "changeit"}); !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), "keytool -importcert") {
		t.Fatalf("a key store as trust store: %v", err)
	}

	trust := filepath.Join(f.dir, "truststore.p12")
	run(t, "keytool", "-importcert", "-noprompt", "-alias", "ca", "-file", caPEM,
		"-keystore", trust, "-storetype", "PKCS12", "-storepass", "changeit")
	cas, err := LoadTrustStore(TrustStore{Path: trust, Password: "changeit"})
	if err != nil || len(cas) != 1 || !cas[0].Equal(f.ca.Cert) {
		t.Fatalf("keytool PKCS#12 trust store = %v, %v", cas, err)
	}

	javaKS := filepath.Join(f.dir, "keystore.p12")
	run(t, "keytool", "-importkeystore", "-noprompt", "-srckeystore", p12, "-srcstoretype", "PKCS12", "-srcstorepass", "changeit",
		"-destkeystore", javaKS, "-deststoretype", "PKCS12", "-deststorepass", "changeit")
	if cert, err := LoadKeyStore(KeyStore{Path: javaKS, Type: PKCS12, Password: "changeit"}); err != nil || !cert.Leaf.Equal(f.leaf.Cert) {
		t.Fatalf("keytool PKCS#12 key store: %v", err)
	}
}

func TestRefusedStores(t *testing.T) {
	f := newFixture(t)
	other, _ := f.ca.Client(pkix.Name{CommonName: "other"}, certgen.Options{})
	otherKey, _ := other.KeyPEM()
	mismatched := f.write(t, "mismatch.pem", append(otherKey, f.leaf.CertPEM()...))
	jks := f.write(t, "keystore.jks", []byte{0xfe, 0xed, 0xfe, 0xed})
	noKey := f.write(t, "nokey.pem", f.leaf.CertPEM())
	garbage := f.write(t, "garbage", []byte("hello"))
	tests := []struct {
		name string
		ks   KeyStore
		want string
	}{
		{"key of another certificate", KeyStore{Path: mismatched}, "does not match"},
		{"JKS by extension", KeyStore{Path: jks}, "keytool -importkeystore"},
		{"JKS by type", KeyStore{Path: f.combinedPEM(t), Type: "JKS"}, "keytool -importkeystore"},
		{"no key", KeyStore{Path: noKey}, "no PRIVATE KEY"},
		{"neither format", KeyStore{Path: garbage}, "neither PEM nor PKCS#12"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.ks.Type != "" {
				if _, err := ParseType(string(tc.ks.Type)); err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("ParseType(%s) = %v, want %q", tc.ks.Type, err, tc.want)
				}
				return
			}
			_, err := LoadKeyStore(tc.ks)
			if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrFormat with %q", err, tc.want)
			}
		})
	}
	if _, err := LoadTrustStore(TrustStore{Path: noKey + ".missing"}); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing trust store: %v", err)
	}
}

func TestReloaderFollowsRenewedFiles(t *testing.T) {
	f := newFixture(t)
	store := f.combinedPEM(t)
	trust := f.write(t, "ca.pem", f.ca.CertPEM())
	var reloads, failures int
	r, err := NewReloader(KeyStore{Path: store}, TrustStore{Path: trust}, 0,
		func(*Material) { reloads++ }, func(error) { failures++ })
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Current().Cert.Leaf; !got.Equal(f.leaf.Cert) || reloads != 0 {
		t.Fatalf("unchanged files: leaf %v, %d reloads", got.SerialNumber, reloads)
	}

	renewed, _ := f.ca.Replica("replica 1", []string{"127.0.0.1"}, certgen.Options{})
	b, _ := renewed.PEM()
	f.write(t, "replica.pem", b)
	if got := r.Current().Cert.Leaf; !got.Equal(renewed.Cert) || reloads != 1 {
		t.Fatalf("renewed file: leaf %v, %d reloads", got.SerialNumber, reloads)
	}

	// A half-written file keeps the last good material and is reported once.
	f.write(t, "replica.pem", b[:len(b)/2])
	for range 2 {
		if got := r.Current().Cert.Leaf; !got.Equal(renewed.Cert) {
			t.Fatalf("broken file replaced the material")
		}
	}
	if failures != 1 {
		t.Fatalf("%d failures reported, want 1", failures)
	}
	f.write(t, "replica.pem", b)
	if r.Current(); reloads != 1 {
		t.Fatalf("repaired to the loaded content: %d reloads, want 1", reloads)
	}
	f.write(t, "replica.pem", b[:len(b)/2])
	if r.Current(); failures != 2 {
		t.Fatalf("broken again after a repair: %d failures reported, want 2", failures)
	}
}

func TestReloaderChecksAtMostOncePerInterval(t *testing.T) {
	f := newFixture(t)
	store := f.combinedPEM(t)
	r, err := NewReloader(KeyStore{Path: store}, TrustStore{Path: f.write(t, "ca.pem", f.ca.CertPEM())}, time.Hour, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	renewed, _ := f.ca.Replica("replica 1", []string{"127.0.0.1"}, certgen.Options{})
	b, _ := renewed.PEM()
	f.write(t, "replica.pem", b)
	if !r.Current().Cert.Leaf.Equal(f.leaf.Cert) {
		t.Fatal("reloaded before the interval passed")
	}
}

func TestReloaderWithNoReloadKeepsTheFirstFiles(t *testing.T) {
	f := newFixture(t)
	store := f.combinedPEM(t)
	r, err := NewReloader(KeyStore{Path: store}, TrustStore{Path: f.write(t, "ca.pem", f.ca.CertPEM())}, NoReload, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	r.lastCheck = time.Time{} // as if the process had run since year 1
	r.mu.Unlock()
	renewed, _ := f.ca.Replica("replica 1", []string{"127.0.0.1"}, certgen.Options{})
	b, _ := renewed.PEM()
	f.write(t, "replica.pem", b)
	if !r.Current().Cert.Leaf.Equal(f.leaf.Cert) {
		t.Fatal("NoReload read the renewed file")
	}
}

// The package's own encryption agrees with openssl's (the other test's
// direction): a key we could not read back would be a bug in either.
func TestEncryptedKeyRoundTrip(t *testing.T) {
	f := newFixture(t)
	der, err := pkcs8.MarshalPrivateKey(f.leaf.Key, []byte("pw"), nil)
	if err != nil {
		t.Fatal(err)
	}
	block := pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: der})
	store := f.write(t, "enc.pem", append(block, f.leaf.CertPEM()...))
	if _, err := LoadKeyStore(KeyStore{Path: store, Password: "pw"}); err != nil {
		t.Fatal(err)
	}
}
