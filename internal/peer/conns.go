package peer

import (
	"crypto/x509"
	"net"
	"net/netip"
	"sync"
)

// conns is a transport's table of connections: every accepted socket (so
// Close can end them), counted per remote IP address with the ones still
// waiting for admission counted apart, and every admitted or dialled link
// (so they can be checked again, recheck.go). Safe for concurrent use.
type conns struct {
	limits limits

	mu           sync.Mutex // guards the fields below
	closed       bool
	sockets      map[net.Conn]*socket // accepted sockets not yet closed
	perIP        map[netip.Addr]int   // accepted sockets per remote IP
	pendingPerIP map[netip.Addr]int   // of those, not yet admitted
	pending      int                  // not yet admitted, from anywhere
	links        map[*link]struct{}
}

// limits bound the sockets a transport holds.
type limits struct {
	perIP        int // accepted sockets from one IP
	pendingPerIP int // of those, waiting for admission
	pending      int // waiting for admission, from anywhere
}

// socket is one accepted connection as the table counts it.
type socket struct {
	ip      netip.Addr
	pending bool
}

// link is an admitted (inbound) or dialled (outbound) connection, with
// what it was admitted on.
type link struct {
	conn    net.Conn            // what to close when the link no longer passes
	inbound bool                // accepted by us; else dialled
	ip      netip.Addr          // the remote IP of an inbound link
	host    string              // the host an outbound link dialled
	chain   []*x509.Certificate // the peer's certificates (TLS only), leaf first
}

func newConns(l limits) *conns {
	return &conns{limits: l, sockets: map[net.Conn]*socket{}, perIP: map[netip.Addr]int{},
		pendingPerIP: map[netip.Addr]int{}, links: map[*link]struct{}{}}
}

// refusal says why accept refused a socket.
type refusal string

// accept records a freshly accepted socket as pending admission, or says
// why it may not be held ("" with ok=false: the table is closed).
func (t *conns) accept(c net.Conn, ip netip.Addr) (ok bool, why refusal) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case t.closed:
		return false, ""
	case t.perIP[ip] >= t.limits.perIP:
		return false, "too many connections from one address"
	case t.pendingPerIP[ip] >= t.limits.pendingPerIP:
		return false, "too many unfinished handshakes from one address"
	case t.pending >= t.limits.pending:
		return false, "too many unfinished handshakes"
	}
	t.sockets[c] = &socket{ip: ip, pending: true}
	t.perIP[ip]++
	t.pendingPerIP[ip]++
	t.pending++
	return true, ""
}

// admitted marks a socket as past admission.
func (t *conns) admitted(c net.Conn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if s := t.sockets[c]; s != nil && s.pending {
		s.pending = false
		t.unpend(s.ip)
	}
}

func (t *conns) unpend(ip netip.Addr) {
	t.pending--
	if t.pendingPerIP[ip]--; t.pendingPerIP[ip] <= 0 {
		delete(t.pendingPerIP, ip)
	}
}

// forget drops a closed socket.
func (t *conns) forget(c net.Conn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.sockets[c]
	if s == nil {
		return
	}
	delete(t.sockets, c)
	if s.pending {
		t.unpend(s.ip)
	}
	if t.perIP[s.ip]--; t.perIP[s.ip] <= 0 {
		delete(t.perIP, s.ip)
	}
}

// addLink records a link to check again; false once the table is closed.
func (t *conns) addLink(l *link) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.links[l] = struct{}{}
	return true
}

func (t *conns) dropLink(l *link) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.links, l)
}

// allLinks returns the links, for a recheck.
func (t *conns) allLinks() []*link {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]*link, 0, len(t.links))
	for l := range t.links {
		out = append(out, l)
	}
	return out
}

// close marks the table closed and returns the sockets to close.
func (t *conns) close() []net.Conn {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
	out := make([]net.Conn, 0, len(t.sockets))
	for c := range t.sockets {
		out = append(out, c)
	}
	return out
}

// count reports the sockets held and those pending, for tests.
func (t *conns) count() (held, pending int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.sockets), t.pending
}
