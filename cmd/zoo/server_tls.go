package main

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"time"

	"github.com/zooraft/zoo"
	"github.com/zooraft/zoo/internal/keystore"
	"github.com/zooraft/zoo/internal/zoocfg"
)

// TLS of `zoo server`, from zoo.cfg's ssl.* and ssl.quorum.* keys: each
// either takes effect or stops the server with an error naming the key
// (zoocfg refuses what zoo cannot give; here the files must load).

// certReloadInterval is how often, at most, certificate files are checked
// for a change (at handshakes): renewal needs no restart.
const certReloadInterval = time.Second

// peerTLS is sslQuorum's TLS for the links between servers.
func peerTLS(q zoocfg.TLS, readOnce bool) *zoo.PeerTLS {
	return &zoo.PeerTLS{
		NoReload:          readOnce,
		CertFile:          q.KeyStore.Path,
		CertPassword:      q.KeyStore.Password,
		CAFile:            q.TrustStore.Path,
		CAPassword:        q.TrustStore.Password,
		SkipHostnameCheck: !q.HostnameVerification,
	}
}

// clientAuthOf maps ssl.clientAuth onto crypto/tls.
func clientAuthOf(mode string) tls.ClientAuthType {
	switch mode {
	case zoocfg.ClientAuthWant:
		return tls.VerifyClientCertIfGiven
	case zoocfg.ClientAuthNone:
		return tls.NoClientCert
	}
	return tls.RequireAndVerifyClientCert
}

// serverTLS is the TLS of the secure client port or, with its own client
// authentication, the AdminServer's HTTPS: the ssl.* key and trust stores,
// re-read when they change. what names the side in logs and errors.
func serverTLS(t zoocfg.TLS, auth tls.ClientAuthType, what string, logger *slog.Logger) (*tls.Config, error) {
	if t.TrustStore.Path == "" && auth != tls.NoClientCert {
		return nil, fmt.Errorf("ssl.trustStore.location: needed to verify %s client certificates", what)
	}
	r, err := keystore.NewReloader(t.KeyStore, t.TrustStore, certReloadInterval,
		func(m *keystore.Material) {
			logger.Info("zoo: "+what+" TLS: certificate files changed; new connections use them",
				"subject", m.Cert.Leaf.Subject.String(), "not-after", m.Cert.Leaf.NotAfter)
		},
		func(err error) { logger.Error("zoo: "+what+" TLS: cannot reload certificate files", "err", err) })
	if err != nil {
		return nil, fmt.Errorf("ssl.keyStore.location / ssl.trustStore.location: %w", err)
	}
	base := &tls.Config{
		MinVersion:   t.MinVersion,
		MaxVersion:   t.MaxVersion,
		CipherSuites: t.CipherSuites,
		ClientAuth:   auth,
	}
	return &tls.Config{
		MinVersion: t.MinVersion,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			files := r.Config()
			c := base.Clone()
			c.Certificates = files.Certificates
			if auth != tls.NoClientCert {
				c.ClientCAs = files.ClientCAs
			}
			return c, nil
		},
	}, nil
}
