package zoo

import (
	"context"
	"crypto/tls"
	"net"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/zooraft/zoo/internal/keystore"
	"github.com/zooraft/zoo/internal/peer"
)

// PeerTLS secures the links between replicas (raft and zoo's peer RPC,
// which share one port) with mutual TLS 1.3. A connecting replica is
// admitted only if its certificate chains to the trusted CA and names the
// host (DNS or IP SAN) of a current member, or one of Identities; a
// replica dialling another checks that its certificate names the host it
// dialled. Nothing reaches raft or the peer RPC before that. Every member
// must use it: a replica with TLS and one without cannot talk.
//
// Give files (CertFile and CAFile, as [zoo certs] writes them) or Config.
// Files are read again when they change, so certificates are renewed
// without a restart (checked at most once a second). Admission holds while
// a link lives: every second each open link is checked again, and closed
// when its peer is no longer a member or its certificate no longer verifies
// (a trust store that dropped its CA, an expired certificate).
//
// A replica certificate must be good for serving and for dialling (both
// extended key usages, as zoo certs makes them): a client certificate of
// the same CA is not taken for a replica.
//
// [zoo certs]: https://github.com/zooraft/zoo/tree/main/cmd/zoo
type PeerTLS struct {
	// CertFile holds this replica's certificate chain (leaf first) in PEM,
	// with its private key unless KeyFile is set (ZooKeeper's PEM key
	// store), or a PKCS#12 key store.
	CertFile string
	// KeyFile, if set, holds the private key in PEM.
	KeyFile string
	// CertPassword decrypts an encrypted PEM key or a PKCS#12 key store.
	CertPassword string
	// CAFile holds the CA certificates to trust: a PEM bundle, or a PKCS#12
	// trust store.
	CAFile string
	// CAPassword opens a PKCS#12 trust store.
	CAPassword string

	// Config, instead of the files: this replica's certificate
	// (Certificates, or GetCertificate and GetClientCertificate) and the CAs
	// to trust (RootCAs or ClientCAs). Its other settings are kept, but TLS
	// 1.3, client certificates and the checks above are always imposed
	// (InsecureSkipVerify and its own verification callbacks are ignored).
	Config *tls.Config

	// Identities are names a peer's certificate may carry instead of a
	// member's host (a DNS or IP SAN, the subject's common name, a URI or
	// e-mail SAN), e.g. for replicas behind a name no member address uses.
	Identities []string
	// SkipHostnameCheck admits any replica whose certificate chains to the
	// CA, whatever it names, and dials peers without checking their
	// names (ZooKeeper's ssl.quorum.hostnameVerification=false). Only for a
	// CA that signs nothing but this ensemble's replicas.
	SkipHostnameCheck bool
	// NoReload reads the files once, at Open (zoo.cfg's
	// sslQuorumReloadCertFiles=false). By default a changed file is read
	// again within a second, so certificates are renewed without a restart.
	NoReload bool
}

// peerTLSReloadInterval is how often, at most, certificate files are
// checked for a change.
const peerTLSReloadInterval = time.Second

// check validates the settings without reading files.
func (p *PeerTLS) check() error {
	files := p.CertFile != "" || p.KeyFile != "" || p.CAFile != ""
	switch {
	case p.Config != nil && files:
		return &ConfigError{"PeerTLS.Config", "contradicts PeerTLS.CertFile, KeyFile and CAFile: give files or a tls.Config"}
	case p.Config != nil:
		return nil
	case p.CertFile == "":
		return &ConfigError{"PeerTLS.CertFile", "required: this replica's certificate and key (or set PeerTLS.Config)"}
	case p.CAFile == "":
		return &ConfigError{"PeerTLS.CAFile", "required: the CA certificates that vouch for the other replicas"}
	}
	return nil
}

// build turns the settings into the transport's, loading the files once
// (an error names the field) and reloading them on change afterwards.
func (p *PeerTLS) build(logger hclog.Logger) (*peer.TLS, error) {
	out := &peer.TLS{Identities: p.Identities, SkipHostnameCheck: p.SkipHostnameCheck}
	if p.Config != nil {
		conf := p.Config
		out.Base = func() (*tls.Config, error) { return conf, nil }
	} else {
		interval := peerTLSReloadInterval
		if p.NoReload {
			interval = keystore.NoReload
		}
		r, err := keystore.NewReloader(
			keystore.KeyStore{Path: p.CertFile, KeyPath: p.KeyFile, Password: p.CertPassword},
			keystore.TrustStore{Path: p.CAFile, Password: p.CAPassword},
			interval,
			func(m *keystore.Material) {
				logger.Info("replica TLS: certificate files changed; new connections use them",
					"subject", m.Cert.Leaf.Subject.String(), "not-after", m.Cert.Leaf.NotAfter)
			},
			func(err error) { logger.Error("replica TLS: cannot reload certificate files", "error", err) })
		if err != nil {
			return nil, &ConfigError{"PeerTLS", err.Error()}
		}
		out.Base = func() (*tls.Config, error) { return r.Config(), nil }
	}
	if err := out.Check(); err != nil {
		return nil, &ConfigError{"PeerTLS", err.Error()}
	}
	if p.SkipHostnameCheck {
		logger.Warn("replica TLS: hostname checks are off: any certificate from the CA is taken for a replica")
	}
	return out, nil
}

// openTCPTransport opens the replica port with the configured TLS, and
// admits only members (see internal/peer's admit.go).
func (e *Ensemble) openTCPTransport(logger hclog.Logger) (*peer.Transport, error) {
	opts := peer.Options{
		Bind:      e.cfg.BindAddr,
		Advertise: e.cfg.AdvertiseAddr,
		Members:   e.memberAddrs,
		Ensemble:  e.storedEnsemble,
		Logger:    logger.Named("peer"),
	}
	if e.cfg.PeerTLS != nil {
		t, err := e.cfg.PeerTLS.build(opts.Logger)
		if err != nil {
			return nil, err
		}
		opts.TLS = t
	}
	if e.cfg.Join && len(e.cfg.Peers) == 0 {
		what := "anyone who reaches its port"
		if opts.TLS != nil {
			what = "any replica certificate of the CA"
		}
		e.logger.Warn("zoo: joining without Peers: until a member adds this replica it admits " + what +
			"; give the current members as Peers")
	}
	t, err := peer.NewTCP(opts)
	if err != nil {
		return nil, err
	}
	return t, nil
}

// memberAddrs returns the addresses of the members this replica knows: the
// latest raft configuration (committed or not, so a member being added is
// admitted as soon as the change is in the log), or, before raft runs or
// while it knows none (joining), the Peers it was configured with.
func (e *Ensemble) memberAddrs() []string {
	var out []string
	if r := e.admitting.Load(); r != nil {
		if f := r.GetConfiguration(); f.Error() == nil {
			for _, s := range f.Configuration().Servers {
				out = append(out, string(s.Address))
			}
		}
	}
	if len(out) > 0 {
		return out
	}
	for _, p := range e.cfg.Peers {
		out = append(out, p.Addr)
	}
	return out
}

// Transport carries both raft traffic and zoo's own peer RPC between
// replicas. The default is TCP on [Config.BindAddr] (internal/peer); tests
// use an in-memory one (zootest).
type Transport interface {
	// Raft returns the raft transport for this replica.
	Raft() raft.Transport
	// Listener accepts zoo peer-RPC connections addressed to this replica.
	Listener() net.Listener
	// Dial opens a zoo peer-RPC connection to the replica whose raft address is addr.
	Dial(ctx context.Context, addr raft.ServerAddress) (net.Conn, error)
	// Close releases the listener and the raft transport.
	Close() error
}
