package peer

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"
)

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
