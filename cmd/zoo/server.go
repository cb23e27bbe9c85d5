package main

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/zooraft/zoo"
	"github.com/zooraft/zoo/internal/zoocfg"
	"github.com/zooraft/zoo/zkwire"
)

// serverCmd runs one replica plus its ZooKeeper client port until SIGTERM or SIGINT.
func serverCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("zoo server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "zoo.cfg", "ZooKeeper-style config file")
	verbose := fs.Bool("v", false, "debug logging")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	cfg, err := zoocfg.Load(*cfgPath)
	if err != nil {
		fmt.Fprintln(stderr, "zoo:", err)
		return 2
	}
	for _, w := range cfg.Warnings {
		logger.Warn(w)
	}
	zcfg, err := ensembleConfig(cfg, logger)
	if err != nil {
		fmt.Fprintln(stderr, "zoo:", err)
		return 2
	}
	// Certificates load before anything starts: a TLS setting that cannot
	// take effect stops the server, naming its keys.
	var secureConf *tls.Config
	if cfg.SecureClientPort != 0 {
		if secureConf, err = serverTLS(cfg.ClientTLS, clientAuthOf(cfg.ClientTLS.ClientAuth), "secure client port", logger); err != nil {
			fmt.Fprintln(stderr, "zoo:", err)
			return 2
		}
	}
	ens, err := zoo.Open(zcfg)
	var cerr *zoo.ConfigError
	if errors.As(err, &cerr) && strings.HasPrefix(cerr.Field, "PeerTLS") {
		fmt.Fprintln(stderr, "zoo: ssl.quorum.keyStore.location / ssl.quorum.trustStore.location:", cerr.Reason)
		return 2
	}
	if err != nil {
		fmt.Fprintln(stderr, "zoo:", err)
		return 1
	}
	defer ens.Close()

	srv, err := zkwire.NewServer(ens, zkwire.Config{
		MaxClientCnxns:       maxCnxns(cfg.MaxClientCnxns),
		FourLetterWords:      cfg.FourLetterWords,
		ExtendedTypesEnabled: cfg.ExtendedTypesEnabled,
		ReadOnlyMode:         cfg.ReadOnlyMode,
		ReconfigEnabled:      cfg.ReconfigEnabled,
		Logger:               logger,
		Version:              version,
	})
	if err != nil {
		fmt.Fprintln(stderr, "zoo:", err)
		return 1
	}
	defer srv.Close()
	served := make(chan error, 2)
	if cfg.ClientPort != 0 {
		ln, err := net.Listen("tcp", net.JoinHostPort(cfg.ClientPortAddress, strconv.Itoa(cfg.ClientPort)))
		if err != nil {
			fmt.Fprintln(stderr, "zoo: clientPort:", err)
			return 1
		}
		logger.Info("zoo: serving ZooKeeper clients", "addr", ln.Addr().String(), "replica", zcfg.ID, "peers", len(zcfg.Peers))
		go func() { served <- srv.Serve(ln) }()
	}
	if cfg.SecureClientPort != 0 {
		ln, err := net.Listen("tcp", net.JoinHostPort(cfg.SecureClientPortAddress, strconv.Itoa(cfg.SecureClientPort)))
		if err != nil {
			fmt.Fprintln(stderr, "zoo: secureClientPort:", err)
			return 1
		}
		logger.Info("zoo: serving ZooKeeper clients over TLS", "addr", ln.Addr().String(), "client-auth", cfg.ClientTLS.ClientAuth)
		go func() { served <- srv.ServeTLS(ln, secureConf) }()
	}
	stopAdmin, err := startAdmin(cfg, srv, logger)
	if err != nil {
		fmt.Fprintln(stderr, "zoo:", err)
		return 1
	}
	defer stopAdmin()

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sig)
	select {
	case s := <-sig:
		logger.Info("zoo: shutting down", "signal", s.String())
	case err := <-served:
		if err != nil && !errors.Is(err, zkwire.ErrServerClosed) {
			fmt.Fprintln(stderr, "zoo:", err)
			return 1
		}
	case <-ens.Stopped():
		// The replica found data it cannot vouch for: exit with what and
		// how to recover, rather than keep a port open that serves nothing.
		fmt.Fprintln(stderr, ens.Failure())
		srv.Close()
		ens.Close()
		return 1
	}
	stopAdmin()
	srv.Close()
	if err := ens.Close(); err != nil {
		fmt.Fprintln(stderr, "zoo: close:", err)
		return 1
	}
	return 0
}

// startAdmin serves the AdminServer's /commands and /metrics on
// admin.serverAddress:admin.serverPort when admin.enableServer is true:
// HTTPS with the ssl.* key store whenever ssl.keyStore.location is set
// (ZooKeeper serves HTTP unless admin.forceHttps; zoo never lets a server
// that has a certificate answer in plaintext), requiring a client
// certificate of the ssl.trustStore CAs with admin.needClientAuth. As in
// ZooKeeper, a port that cannot be bound (8080 is often taken, and replicas
// sharing a host share the default) is a warning, not a reason to stop; TLS
// files that do not load are. The returned func stops it and may be called
// more than once.
func startAdmin(cfg *zoocfg.Config, srv *zkwire.Server, logger *slog.Logger) (stop func(), err error) {
	if !cfg.AdminEnabled {
		return func() {}, nil
	}
	var conf *tls.Config
	if cfg.ClientTLS.KeyStore.Path != "" {
		auth := tls.NoClientCert
		if cfg.AdminNeedClientAuth {
			auth = tls.RequireAndVerifyClientCert
		}
		if conf, err = serverTLS(cfg.ClientTLS, auth, "admin server", logger); err != nil {
			return nil, err
		}
	}
	addr := net.JoinHostPort(cfg.AdminAddress, strconv.Itoa(cfg.AdminPort))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		logger.Warn("zoo: admin server not started", "addr", addr, "err", err)
		return func() {}, nil
	}
	scheme := "http"
	if conf != nil {
		ln, scheme = tls.NewListener(ln, conf), "https"
	}
	hs := &http.Server{Handler: srv.AdminHandler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		hs.Serve(ln)
	}()
	logger.Info("zoo: admin server", "url", scheme+"://"+ln.Addr().String()+"/commands", "client-certificates", cfg.AdminNeedClientAuth)
	return sync.OnceFunc(func() {
		hs.Close()
		<-done
	}), nil
}

// maxCnxns maps zoo.cfg's maxClientCnxns (0 = unlimited) onto zkwire's (negative = unlimited).
func maxCnxns(n int) int {
	if n == 0 {
		return -1
	}
	return n
}

// ensembleConfig maps a zoo.cfg onto a replica's Config. Raft and zoo's peer
// RPC use the quorum port of this server's server.N line; the election port
// is not used (raft elects on the same connection).
func ensembleConfig(cfg *zoocfg.Config, logger *slog.Logger) (zoo.Config, error) {
	minTO, maxTO := cfg.SessionTimeouts()
	z := zoo.Config{
		ID:                "1",
		Dir:               cfg.DataDir,
		TickTime:          cfg.TickTime,
		MinSessionTimeout: minTO,
		MaxSessionTimeout: maxTO,
		SnapshotsRetained: cfg.AutopurgeSnapRetainCount,
		SuperDigest:       cfg.SuperDigest,
		X509SuperUser:     cfg.X509SuperUser,
		Logger:            logger,
	}
	if !cfg.Distributed() {
		if cfg.SSLQuorum {
			logger.Warn("zoo: sslQuorum=true has no effect on a standalone server: it has no links to other servers")
		}
		return z, nil
	}
	self, ok := cfg.Self()
	if !ok {
		return z, fmt.Errorf("myid %q matches no server.N line", cfg.MyID)
	}
	z.ID = self.ID
	z.BindAddr = net.JoinHostPort(self.Host, strconv.Itoa(self.QuorumPort))
	for _, s := range cfg.Servers {
		z.Peers = append(z.Peers, zoo.Peer{ID: s.ID, Addr: net.JoinHostPort(s.Host, strconv.Itoa(s.QuorumPort)), Observer: s.Observer})
	}
	if cfg.SSLQuorum {
		z.PeerTLS = peerTLS(cfg.QuorumTLS, cfg.QuorumCertsReadOnce)
	}
	return z, nil
}

// dialTimeout bounds status probes.
const dialTimeout = 5 * time.Second
