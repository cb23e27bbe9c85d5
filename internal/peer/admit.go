package peer

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"
)

// Who may connect to the replica port. A connection reaches raft or the
// peer RPC only once admitted:
//
//   - with TLS, by finishing a TLS 1.3 handshake within the handshake
//     timeout with a replica certificate (for serving and dialling: a
//     client certificate of the same CA is not one) that chains to the
//     configured CA and names the host of a current member (DNS or IP SAN,
//     as hostname verification checks it) or a configured identity;
//   - without TLS, by coming from an IP address that a member's host is or
//     resolves to (members.go): a stranger elsewhere on the network is
//     refused, but a process on a member's host cannot be told apart from
//     the member, so plaintext links are for trusted networks only.
//
// A remote IP address may hold at most MaxConnsPerIP connections, of which
// MaxPendingPerIP not yet admitted, and at most maxPending are unadmitted
// in all (conns.go), so a flood of idle connections costs a bounded number
// of file descriptors and goroutines. What was admitted is checked again
// while it lives (recheck.go).

// ErrNotAdmitted wraps every reason a connection was refused.
var ErrNotAdmitted = errors.New("zoo: connection not admitted")

// admit runs the admission of a freshly accepted socket under the handshake
// deadline, up to the dialler's hello (hello.go), and returns the
// connection to use (raw itself, or TLS over it), its kind byte and, with
// TLS, the peer's certificates. On error the
// returned conn, if not nil, is to be closed too.
func (t *Transport) admit(raw net.Conn) (net.Conn, byte, []*x509.Certificate, error) {
	deadline := time.Now().Add(t.opts.HandshakeTimeout)
	if err := raw.SetDeadline(deadline); err != nil {
		return nil, 0, nil, err
	}
	c := raw
	var chain []*x509.Certificate
	if t.opts.TLS != nil {
		tc := tls.Server(raw, t.opts.TLS.serverConfig(func(peer []*x509.Certificate) error {
			chain = peer
			return t.checkPeer(peer)
		}))
		ctx, cancel := context.WithDeadline(t.ctx, deadline)
		err := tc.HandshakeContext(ctx)
		cancel()
		if err != nil {
			return tc, 0, nil, fmt.Errorf("%w: TLS handshake: %w", ErrNotAdmitted, err)
		}
		c = tc
	} else if err := t.members.admitsAddr(t.ctx, remoteIP(raw)); err != nil {
		return nil, 0, nil, err
	}
	kind, err := readKind(c)
	if err != nil {
		return c, 0, nil, fmt.Errorf("%w: no kind byte: %w", ErrNotAdmitted, err)
	}
	if kind == KindRaft || kind == KindRPC {
		if err := t.welcome(c, kind); err != nil {
			return c, kind, nil, err
		}
	}
	if err := c.SetDeadline(time.Time{}); err != nil {
		return c, 0, nil, err
	}
	return c, kind, chain, nil
}

// checkPeer decides whether the certificates a dialler presented are a
// peer's: a replica certificate of the CA (tls.go) that names a member.
func (t *Transport) checkPeer(chain []*x509.Certificate) error {
	if err := t.opts.TLS.verifyChain(chain, ""); err != nil {
		return err
	}
	return t.checkPeerName(chain[0])
}

// checkPeerName decides whether a replica certificate belongs to a peer:
// it must name a member's host or a configured identity. A replica that
// knows no members (waiting to be added, told nobody to expect) and has no
// identities configured takes the CA's word alone.
func (t *Transport) checkPeerName(leaf *x509.Certificate) error {
	s := t.opts.TLS
	if s.SkipHostnameCheck {
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
	if name == "" {
		return false
	}
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
