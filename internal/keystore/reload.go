package keystore

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"fmt"
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

	mu        sync.Mutex // guards the fields below
	cur       *Material
	sum       [sha256.Size]byte // of the files' content cur was loaded from
	lastCheck time.Time
	failed    bool
}

// NewReloader loads ks and ts, failing if they do not load. Then Current
// re-reads them at most once per interval; onReload (if not nil) hears of
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
// passed and the files changed.
func (r *Reloader) Current() *Material {
	r.mu.Lock()
	defer r.mu.Unlock()
	if time.Since(r.lastCheck) < r.interval {
		return r.cur
	}
	r.lastCheck = time.Now()
	sum, err := r.fingerprint()
	if err == nil && bytes.Equal(sum[:], r.sum[:]) {
		r.failed = false // back to what was loaded last
		return r.cur
	}
	var m *Material
	if err == nil {
		m, err = Load(r.ks, r.ts)
	}
	if err != nil {
		if !r.failed && r.onError != nil {
			r.onError(fmt.Errorf("keeping the previous certificates: %w", err))
		}
		r.failed = true
		return r.cur
	}
	r.cur, r.sum, r.failed = m, sum, false
	if r.onReload != nil {
		r.onReload(m)
	}
	return m
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
