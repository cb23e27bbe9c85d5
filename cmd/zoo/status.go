package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/zooraft/zoo/internal/keystore"
	"github.com/zooraft/zoo/internal/zoocfg"
)

// statusCmd asks a server for "srvr" and prints its Mode line, as zkServer.sh
// status does. Like zkServer.sh, it asks the plain client port, or the
// secure one when that is the only port; over TLS it presents the -tls-*
// files or, without them, the server's own ssl.* key and trust stores.
func statusCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("zoo status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "ZooKeeper-style config file of the server to ask")
	server := fs.String("server", "", "host:port of the server to ask (instead of -config)")
	tlsCA := fs.String("tls-ca", "", "ask over TLS (a secureClientPort), trusting the CA certificates in `FILE`")
	tlsCert := fs.String("tls-cert", "", "client certificate chain in `FILE`, with its key unless -tls-key")
	tlsKey := fs.String("tls-key", "", "the client certificate's private key in `FILE` (PEM)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	conf, err := cliTLS(*tlsCA, *tlsCert, *tlsKey)
	if err != nil {
		fmt.Fprintln(stderr, "zoo status:", err)
		return 2
	}
	addr := *server
	if addr == "" {
		if *cfgPath == "" {
			*cfgPath = "zoo.cfg"
		}
		cfg, err := zoocfg.Load(*cfgPath)
		if err != nil {
			fmt.Fprintln(stderr, "zoo:", err)
			return 2
		}
		fmt.Fprintf(stdout, "Using config: %s\n", *cfgPath)
		var viaConfig *tls.Config
		addr, viaConfig, err = statusTarget(cfg)
		if err != nil {
			fmt.Fprintf(stderr, "zoo status: %s: %v\n", *cfgPath, err)
			return 2
		}
		if conf == nil {
			conf = viaConfig
		}
	}
	lines, err := fourLetterWord(addr, "srvr", conf)
	if err != nil {
		fmt.Fprintf(stderr, "Error contacting service. It is probably not running. (%v)\n", err)
		if conf == nil {
			fmt.Fprintln(stderr, "A port that serves only TLS (secureClientPort) needs -tls-ca and, with ssl.clientAuth=need, -tls-cert.")
		}
		return 1
	}
	for _, l := range lines {
		if strings.HasPrefix(l, "Mode:") {
			fmt.Fprintln(stdout, l)
			return 0
		}
	}
	for _, l := range lines {
		fmt.Fprintln(stdout, l)
	}
	return 1
}

// statusTarget is the address a config's server answers on: its clientPort,
// or, when it has only a secureClientPort, that port with the TLS of the
// server's own ssl.* stores, checking the certificate names this server's
// host (its server.N line's, else the host dialled).
func statusTarget(cfg *zoocfg.Config) (string, *tls.Config, error) {
	local := func(host string) string {
		if host == "" || host == "0.0.0.0" || host == "::" {
			return "localhost"
		}
		return host
	}
	if cfg.ClientPort != 0 || cfg.SecureClientPort == 0 {
		return net.JoinHostPort(local(cfg.ClientPortAddress), strconv.Itoa(cfg.ClientPort)), nil, nil
	}
	addr := net.JoinHostPort(local(cfg.SecureClientPortAddress), strconv.Itoa(cfg.SecureClientPort))
	m, err := keystore.Load(cfg.ClientTLS.KeyStore, cfg.ClientTLS.TrustStore)
	switch {
	case err != nil:
		return "", nil, fmt.Errorf("ssl.keyStore.location / ssl.trustStore.location: %w", err)
	case m.CAs == nil:
		return "", nil, fmt.Errorf("ssl.trustStore.location: needed to verify the server's certificate (or give -tls-ca)")
	}
	conf := &tls.Config{RootCAs: m.CAs, Certificates: []tls.Certificate{*m.Cert}, MinVersion: tls.VersionTLS12}
	if self, ok := cfg.Self(); ok {
		conf.ServerName = self.Host
	}
	return addr, conf, nil
}

// fourLetterWord sends a four-letter word, over TLS if conf is not nil, and
// returns the answer's lines.
func fourLetterWord(addr, word string, conf *tls.Config) ([]string, error) {
	c, err := net.DialTimeout("tcp", addr, dialTimeout)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(dialTimeout))
	if conf != nil {
		if c, err = clientTLS(context.Background(), c, addr, conf); err != nil {
			return nil, err
		}
	}
	if _, err := c.Write([]byte(word)); err != nil {
		return nil, err
	}
	var lines []string
	sc := bufio.NewScanner(c)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return lines, sc.Err()
}

// clientTLS secures a dialled client connection to addr with conf, checking
// the server's certificate names conf.ServerName or, without one, the host
// dialled. nc is closed on failure.
func clientTLS(ctx context.Context, nc net.Conn, addr string, conf *tls.Config) (net.Conn, error) {
	conf = conf.Clone()
	if conf.ServerName == "" {
		conf.ServerName, _, _ = net.SplitHostPort(addr)
	}
	tc := tls.Client(nc, conf)
	if err := tc.HandshakeContext(ctx); err != nil {
		nc.Close()
		return nil, fmt.Errorf("TLS handshake with %s: %w", addr, err)
	}
	return tc, nil
}
