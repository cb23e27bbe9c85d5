package memnet

import (
	"errors"
	"fmt"
	"net"
	"sync"

	"github.com/hashicorp/raft"
)

var (
	// ErrUnreachable means a dial target does not exist, has been closed, has
	// stopped listening, or is on the other side of a partition. It stands in
	// for the connection-refused and no-route errors of a real network, so
	// callers can treat both networks alike with errors.Is.
	ErrUnreachable = errors.New("memnet: address unreachable")
	// ErrClosed means the endpoint was used after its Close.
	ErrClosed = errors.New("memnet: endpoint closed")
	// ErrAddrInUse means an endpoint already lives at the requested address;
	// two live replicas sharing an address would make routing ambiguous.
	ErrAddrInUse = errors.New("memnet: address already in use")
)

// isolated is the group of an address that can reach no other address.
const isolated = -1

// Network is a set of endpoints that can reach each other, with fault
// injection. Create one with [New].
type Network struct {
	// mu guards every field below, the closed flag of each Endpoint, and the
	// peer routes of the endpoints' raft transports (which are only changed
	// while mu is held, so they always agree with the reachability fields).
	mu sync.Mutex
	// endpoints holds the live endpoint at each address.
	endpoints map[raft.ServerAddress]*Endpoint
	// groups assigns addresses to partition groups; two addresses reach each
	// other when they share a group other than isolated. Addresses missing
	// from groups are in group unlisted. Nil groups and unlisted 0 is the
	// healed network: everyone in group 0.
	groups   map[raft.ServerAddress]int
	unlisted int
	// links indexes the open peer-RPC connections by (dialer, listener)
	// address, so a partition or a Close can find and close those it cuts.
	links map[route]map[*link]struct{}
}

// route is the ordered pair of addresses a peer-RPC connection joins.
type route struct {
	from, to raft.ServerAddress
}

// New returns an empty, fully connected network.
func New() *Network {
	return &Network{
		endpoints: make(map[raft.ServerAddress]*Endpoint),
		links:     make(map[route]map[*link]struct{}),
	}
}

// Endpoint creates the endpoint at addr and connects it to every live
// endpoint it can reach. After the previous endpoint at addr has been closed,
// it creates a fresh one there, so a restarted replica keeps its address; the
// new endpoint has a new raft transport and listener, and it inherits the
// address's place in any partition.
//
// It returns an error wrapping [ErrAddrInUse] if a live endpoint already has
// addr, and an error if addr is empty.
func (n *Network) Endpoint(addr raft.ServerAddress) (*Endpoint, error) {
	if addr == "" {
		// raft.NewInmemTransport would invent a random address, which no
		// peer could know to dial.
		return nil, errors.New("memnet: empty endpoint address")
	}
	_, trans := raft.NewInmemTransport(addr)
	e := &Endpoint{
		net:   n,
		addr:  addr,
		trans: trans,
		ln:    newListener(Addr(addr)),
	}

	n.mu.Lock()
	defer n.mu.Unlock()
	if _, ok := n.endpoints[addr]; ok {
		return nil, fmt.Errorf("memnet: endpoint %q: %w", addr, ErrAddrInUse)
	}
	n.endpoints[addr] = e
	for peer, pe := range n.endpoints {
		if peer == addr || !n.reachable(addr, peer) {
			continue
		}
		// Connect replaces any route to a transport of an earlier
		// endpoint at addr, though Close should already have removed it.
		e.trans.Connect(peer, pe.trans)
		pe.trans.Connect(addr, e.trans)
	}
	return e, nil
}

// Partition splits the network into groups: endpoints in different groups
// cannot reach each other. Every address not listed in any group is isolated
// alone, including endpoints created later at unlisted addresses. An address
// listed in more than one group belongs to the last of them. Partition
// replaces any earlier partition or isolation rather than adding to it.
//
// Before it returns, raft routes between groups are removed both ways, open
// peer-RPC connections between groups are closed, and dials between groups
// fail with [ErrUnreachable].
func (n *Network) Partition(groups ...[]raft.ServerAddress) {
	assign := make(map[raft.ServerAddress]int)
	for i, g := range groups {
		for _, addr := range g {
			assign[addr] = i + 1 // group 0 is reserved for the healed network
		}
	}
	n.mu.Lock()
	n.groups, n.unlisted = assign, isolated
	cut := n.applyLocked()
	n.mu.Unlock()
	closeLinks(cut)
}

// Isolate cuts the endpoint at addr off from all others, now and after it is
// re-created, until the next [Network.Partition] or [Network.Heal]. Unlike
// Partition it adds to the current faults, so isolating two addresses in turn
// leaves both isolated and the rest as they were.
func (n *Network) Isolate(addr raft.ServerAddress) {
	n.mu.Lock()
	if n.groups == nil {
		n.groups = make(map[raft.ServerAddress]int)
	}
	n.groups[addr] = isolated
	cut := n.applyLocked()
	n.mu.Unlock()
	closeLinks(cut)
}

// Heal removes every partition and isolation, reconnecting the raft
// transports of all live endpoints to each other. Connections closed by the
// faults stay closed; callers dial again.
func (n *Network) Heal() {
	n.mu.Lock()
	n.groups, n.unlisted = nil, 0
	cut := n.applyLocked()
	n.mu.Unlock()
	closeLinks(cut)
}

// groupOf returns addr's partition group. n.mu must be held.
func (n *Network) groupOf(addr raft.ServerAddress) int {
	if g, ok := n.groups[addr]; ok {
		return g
	}
	return n.unlisted
}

// reachable reports whether a and b may talk. An address always reaches
// itself, as a partitioned host still has loopback. n.mu must be held.
func (n *Network) reachable(a, b raft.ServerAddress) bool {
	if a == b {
		return true
	}
	g := n.groupOf(a)
	return g != isolated && g == n.groupOf(b)
}

// applyLocked brings the raft routes of all live endpoints in line with the
// reachability fields, and unregisters and returns the peer-RPC links that
// are no longer allowed, for the caller to close after releasing n.mu.
//
// It rewires every pair rather than tracking what changed: Connect on an
// existing route and Disconnect on a missing one are both harmless, and the
// networks in tests are a handful of endpoints.
func (n *Network) applyLocked() []*link {
	for a, ea := range n.endpoints {
		for b, eb := range n.endpoints {
			switch {
			case a == b:
			case n.reachable(a, b):
				ea.trans.Connect(b, eb.trans)
			default:
				ea.trans.Disconnect(b)
			}
		}
	}
	return n.unlinkLocked(func(r route) bool { return !n.reachable(r.from, r.to) })
}

// unlinkLocked unregisters and returns every link whose route matches cut.
// n.mu must be held.
func (n *Network) unlinkLocked(cut func(route) bool) []*link {
	var out []*link
	for r, set := range n.links {
		if !cut(r) {
			continue
		}
		for l := range set {
			out = append(out, l)
		}
		delete(n.links, r)
	}
	return out
}

// register records l as open. It fails if, by the time n.mu is taken, the
// dialer has been closed or the target is gone or out of reach, so that a
// link never outlives the check that allowed it.
func (n *Network) register(from *Endpoint, to raft.ServerAddress) (*link, *listener, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if from.closed {
		return nil, nil, ErrClosed
	}
	target, ok := n.endpoints[to]
	if !ok || !n.reachable(from.addr, to) {
		return nil, nil, ErrUnreachable
	}
	l := newLink(n, route{from: from.addr, to: to})
	set := n.links[l.route]
	if set == nil {
		set = make(map[*link]struct{})
		n.links[l.route] = set
	}
	set[l] = struct{}{}
	return l, target.ln, nil
}

// forget unregisters l; it is a no-op if l was already unregistered.
func (n *Network) forget(l *link) {
	n.mu.Lock()
	defer n.mu.Unlock()
	set := n.links[l.route]
	delete(set, l)
	if len(set) == 0 {
		delete(n.links, l.route)
	}
}

// closeLinks closes both ends of each link. It runs without n.mu held because
// it closes connections a user may be blocked on, and the wrappers' Close
// takes n.mu.
func closeLinks(links []*link) {
	for _, l := range links {
		l.cut()
	}
}

// Addr is the [net.Addr] of an endpoint: its raft address.
type Addr raft.ServerAddress

// Network returns "memnet".
func (Addr) Network() string { return "memnet" }

// String returns the endpoint's raft address.
func (a Addr) String() string { return string(a) }

var _ net.Addr = Addr("")
