package zkwire

import (
	"context"
	"crypto/tls"
	"net"
	"time"
)

// ServeTLS is Serve on a TLS listener made of ln and conf: ZooKeeper's
// secureClientPort. conf decides whether clients need a certificate
// (ClientAuth: RequireAndVerifyClientCert for ZooKeeper's
// ssl.clientAuth=need, VerifyClientCertIfGiven for want, NoClientCert for
// none). A client whose certificate verified is authenticated as its
// subject in the x509 scheme ([zoo.ServerSession.AddX509Auth]), usable in ACLs; without one
// it has only its ip id, as on the plain port.
func (s *Server) ServeTLS(ln net.Listener, conf *tls.Config) error {
	return s.Serve(tls.NewListener(ln, conf))
}

// tlsHandshake finishes the TLS handshake of a TLS connection within the
// handshake timeout and notes the x509 id of a verified client
// certificate. It returns false if the handshake failed; a plain
// connection passes untouched.
func (c *conn) tlsHandshake() bool {
	tc, ok := c.nc.(*tls.Conn)
	if !ok {
		return true
	}
	ctx, cancel := context.WithTimeout(c.ctx, c.srv.handshakeTimeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		// Debug: anyone can make a handshake fail, as often as they like.
		c.srv.log.Debug("zkwire: TLS handshake failed", "remote", c.remote, "err", err)
		return false
	}
	if st := tc.ConnectionState(); len(st.VerifiedChains) > 0 {
		c.cert = st.PeerCertificates[0]
	}
	tc.SetDeadline(time.Time{})
	return true
}
