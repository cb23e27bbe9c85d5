package peer

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Who may connect to the replica port. A connection reaches raft or the
// peer RPC only once admitted:
//
//   - with TLS, by finishing a TLS 1.3 handshake within the handshake
//     timeout with a client certificate that chains to the configured CA
//     and names the host of a current member (DNS or IP SAN, as hostname
//     verification checks it) or a configured identity;
//   - without TLS, by coming from an IP address that a member's host is or
//     resolves to: a stranger elsewhere on the network is refused, but a
//     process on a member's host cannot be told apart from the member, so
//     plaintext links are for trusted networks only.
//
// Either way a remote IP address may hold at most MaxConnsPerIP
// connections, counted from accept, so a flood of idle connections costs
// a bounded number of file descriptors and goroutines.

// ErrNotAdmitted wraps every reason a connection was refused.
var ErrNotAdmitted = errors.New("zoo: connection not admitted")

// admit runs the admission of a freshly accepted socket under the handshake
// deadline and returns the connection to use (raw itself, or TLS over it)
// with its kind byte. On error the returned conn, if not nil, is to be
// closed too.
func (t *Transport) admit(raw net.Conn) (net.Conn, byte, error) {
	deadline := time.Now().Add(t.opts.HandshakeTimeout)
	if err := raw.SetDeadline(deadline); err != nil {
		return nil, 0, err
	}
	c := raw
	if t.opts.TLS != nil {
		tc := tls.Server(raw, t.opts.TLS.serverConfig(t.checkPeerCert))
		ctx, cancel := context.WithDeadline(t.ctx, deadline)
		err := tc.HandshakeContext(ctx)
		cancel()
		if err != nil {
			return tc, 0, fmt.Errorf("%w: TLS handshake: %w", ErrNotAdmitted, err)
		}
		c = tc
	} else if err := t.members.admitsAddr(t.ctx, remoteIP(raw)); err != nil {
		return nil, 0, err
	}
	kind, err := readKind(c)
	if err != nil {
		return c, 0, fmt.Errorf("%w: no kind byte: %w", ErrNotAdmitted, err)
	}
	if err := c.SetDeadline(time.Time{}); err != nil {
		return c, 0, err
	}
	return c, kind, nil
}

// checkPeerCert decides whether a certificate that chains to the CA
// belongs to a peer: it must name a member's host or a configured identity.
// A replica that knows no members (waiting to be added) and has no
// identities configured takes the CA's word alone.
func (t *Transport) checkPeerCert(leaf *x509.Certificate) error {
	s := t.opts.TLS
	if s.NoHostCheck {
		return nil
	}
	for _, id := range s.Identities {
		if certNames(leaf, id) {
			return nil
		}
	}
	hosts := t.members.hosts()
	if len(hosts) == 0 && len(s.Identities) == 0 {
		return nil
	}
	for _, h := range hosts {
		if leaf.VerifyHostname(h) == nil {
			return nil
		}
	}
	return fmt.Errorf("%w: certificate %q (hosts %s) names no member (%s)%s", ErrNotAdmitted,
		leaf.Subject.String(), strings.Join(certHosts(leaf), ", "), strings.Join(hosts, ", "), identitiesNote(s.Identities))
}

func identitiesNote(ids []string) string {
	if len(ids) == 0 {
		return ""
	}
	return " and no identity of " + strings.Join(ids, ", ")
}

// certNames reports whether leaf carries the identity name: as a host it
// verifies for, or as its subject's common name, a URI or an e-mail SAN.
func certNames(leaf *x509.Certificate, name string) bool {
	if leaf.VerifyHostname(name) == nil || leaf.Subject.CommonName == name {
		return true
	}
	for _, u := range leaf.URIs {
		if u.String() == name {
			return true
		}
	}
	return slices.Contains(leaf.EmailAddresses, name)
}

// certHosts lists the hosts a certificate names, for error messages.
func certHosts(leaf *x509.Certificate) []string {
	out := slices.Clone(leaf.DNSNames)
	for _, ip := range leaf.IPAddresses {
		out = append(out, ip.String())
	}
	if len(out) == 0 {
		out = []string{"none"}
	}
	return out
}

// memberAddrs answers "is this a member's address?" for plaintext links,
// resolving members' host names with a short-lived cache.
type memberAddrs struct {
	list func() []string

	mu    sync.Mutex // guards cache
	cache map[string]resolved
}

type resolved struct {
	ips []netip.Addr
	at  time.Time
}

const (
	// memberCacheTTL is how long a member's resolved addresses are reused.
	memberCacheTTL = 30 * time.Second
	// memberRefreshMin is how soon a refused address may trigger another
	// lookup of the members' names: strangers must not drive DNS traffic.
	memberRefreshMin    = time.Second
	memberLookupTimeout = 2 * time.Second
)

func newMemberAddrs(list func() []string) *memberAddrs {
	return &memberAddrs{list: list, cache: map[string]resolved{}}
}

// hosts returns the members' hosts, each once.
func (m *memberAddrs) hosts() []string {
	if m.list == nil {
		return nil
	}
	var out []string
	for _, a := range m.list() {
		h, _, err := net.SplitHostPort(a)
		if err != nil {
			h = a
		}
		if !slices.Contains(out, h) {
			out = append(out, h)
		}
	}
	return out
}

// admitsAddr returns nil if ip is a member's address, or if no members are
// known (a replica waiting to be added).
func (m *memberAddrs) admitsAddr(ctx context.Context, ip netip.Addr) error {
	hosts := m.hosts()
	if len(hosts) == 0 {
		return nil
	}
	for _, fresh := range []bool{false, true} {
		for _, h := range hosts {
			if slices.Contains(m.lookup(ctx, h, fresh), ip) {
				return nil
			}
		}
	}
	return fmt.Errorf("%w: %s is not the address of a member (%s); without TLS, replicas admit connections from their members' addresses only",
		ErrNotAdmitted, ip, strings.Join(hosts, ", "))
}

// lookup returns host's addresses: itself if it is an IP address, else
// from the cache or DNS. fresh asks for a new lookup unless one ran in the
// last memberRefreshMin.
func (m *memberAddrs) lookup(ctx context.Context, host string, fresh bool) []netip.Addr {
	if ip, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{ip.Unmap()}
	}
	m.mu.Lock()
	r, ok := m.cache[host]
	m.mu.Unlock()
	age := time.Since(r.at)
	if ok && (age < memberRefreshMin || !fresh && age < memberCacheTTL) {
		return r.ips
	}
	ctx, cancel := context.WithTimeout(ctx, memberLookupTimeout)
	defer cancel()
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil && ok {
		ips = r.ips // keep what we knew over a DNS hiccup
	}
	for i := range ips {
		ips[i] = ips[i].Unmap()
	}
	m.mu.Lock()
	m.cache[host] = resolved{ips: ips, at: time.Now()}
	m.mu.Unlock()
	return ips
}

// rateLimitedLog warns at most once per interval per key (a remote
// address), so a stranger knocking on the port cannot flood the log.
type rateLimitedLog struct {
	logger   hclog.Logger
	interval time.Duration

	mu   sync.Mutex // guards last
	last map[string]time.Time
}

func newRateLimitedLog(l hclog.Logger, interval time.Duration) *rateLimitedLog {
	return &rateLimitedLog{logger: l, interval: interval, last: map[string]time.Time{}}
}

func (r *rateLimitedLog) warn(key, msg string, args ...any) {
	now := time.Now()
	r.mu.Lock()
	if now.Sub(r.last[key]) < r.interval {
		r.mu.Unlock()
		return
	}
	if len(r.last) >= 1024 {
		for k, at := range r.last {
			if now.Sub(at) >= r.interval {
				delete(r.last, k)
			}
		}
		if len(r.last) >= 1024 { // a crowd: forget them rather than grow
			clear(r.last)
		}
	}
	r.last[key] = now
	r.mu.Unlock()
	r.logger.Warn(msg, args...)
}
