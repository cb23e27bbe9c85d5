package keystore

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"math"
	"os"
	"sync"
	"time"
)

// Material is one loaded pair of stores.
type Material struct {
	Cert *tls.Certificate // this side's key and chain, Leaf parsed
	CAs  *x509.CertPool   // the trusted CAs; nil without a trust store
}

// Reloader serves the stores' current content. Its files are read again
// when they change (checked at most once per interval, when Current is
// called, so an idle replica reads nothing); a change that does not load (a
// file half written, a key that does not match) keeps the previous
// material and is reported to onError until the files load again. Safe for
// concurrent use.
type Reloader struct {
	ks       KeyStore
	ts       TrustStore
	interval time.Duration
	onReload func(*Material)
	onError  func(error)

	checking  sync.Mutex // held by the one goroutine reading the files
	mu        sync.Mutex // guards the fields below
	cur       *Material
	conf      *tls.Config // confFor as a tls.Config, made on first use
	confFor   *Material
	sum       [sha256.Size]byte // of the files' content cur was loaded from
	lastCheck time.Time
	failed    bool
}

// NoReload is an interval after which files are never read again: the
// material stays what NewReloader loaded (ZooKeeper's
// sslQuorumReloadCertFiles=false).
const NoReload time.Duration = math.MaxInt64

// NewReloader loads ks and ts, failing if they do not load. Then Current
// re-reads them at most once per interval (never with NoReload); onReload (if not nil) hears of
// every new material, onError (if not nil) of every failed reload.
func NewReloader(ks KeyStore, ts TrustStore, interval time.Duration, onReload func(*Material), onError func(error)) (*Reloader, error) {
	r := &Reloader{ks: ks, ts: ts, interval: interval, onReload: onReload, onError: onError}
	sum, err := r.fingerprint()
	if err != nil {
		return nil, err
	}
	m, err := Load(ks, ts)
	if err != nil {
		return nil, err
	}
	r.cur, r.sum, r.lastCheck = m, sum, time.Now()
	return r, nil
}

// Load reads both stores; a trust store without a Path gives no CAs (a
// server that verifies no client certificates).
func Load(ks KeyStore, ts TrustStore) (*Material, error) {
	cert, err := LoadKeyStore(ks)
	if err != nil {
		return nil, fmt.Errorf("key store: %w", err)
	}
	if ts.Path == "" {
		return &Material{Cert: cert}, nil
	}
	cas, err := LoadTrustStore(ts)
	if err != nil {
		return nil, fmt.Errorf("trust store: %w", err)
	}
	return &Material{Cert: cert, CAs: Pool(cas)}, nil
}

// Current returns the stores' content, reloaded first if the interval has
// passed and the files changed. One caller at a time reads the files; the
// others meanwhile get the material they had, so a slow file system never
// holds up a handshake for longer than the one that checks.
func (r *Reloader) Current() *Material {
	r.mu.Lock()
	cur, due := r.cur, r.interval != NoReload && time.Since(r.lastCheck) >= r.interval
	r.mu.Unlock()
	if !due || !r.checking.TryLock() {
		return cur
	}
	defer r.checking.Unlock()
	r.mu.Lock()
	r.lastCheck = time.Now()
	r.mu.Unlock()

	sum, err := r.fingerprint()
	if err == nil && sum == r.loadedSum() {
		r.mu.Lock()
		r.failed = false // back to what was loaded last
		r.mu.Unlock()
		return cur
	}
	var m *Material
	if err == nil {
		m, err = Load(r.ks, r.ts)
	}
	r.mu.Lock()
	if err != nil {
		report := !r.failed
		r.failed = true
		r.mu.Unlock()
		if report && r.onError != nil {
			r.onError(fmt.Errorf("keeping the previous certificates: %w", err))
		}
		return cur
	}
	r.cur, r.sum, r.failed = m, sum, false
	r.mu.Unlock()
	if r.onReload != nil {
		r.onReload(m)
	}
	return m
}

func (r *Reloader) loadedSum() [sha256.Size]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sum
}

// Config returns the current material as a tls.Config holding this side's
// certificate and the CAs (as RootCAs and ClientCAs), the same value until
// the material changes; callers clone it before changing anything.
func (r *Reloader) Config() *tls.Config {
	m := r.Current()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.confFor != m {
		r.conf, r.confFor = &tls.Config{Certificates: []tls.Certificate{*m.Cert}, RootCAs: m.CAs, ClientCAs: m.CAs}, m
	}
	return r.conf
}

// fingerprint hashes the content of every file the stores name, so a
// change of any is seen whatever its timestamps say.
func (r *Reloader) fingerprint() ([sha256.Size]byte, error) {
	h := sha256.New()
	for _, p := range []string{r.ks.Path, r.ks.KeyPath, r.ts.Path} {
		if p == "" {
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return [sha256.Size]byte{}, err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", p, len(b))
		h.Write(b)
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum, nil
}
