package main

import (
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/zooraft/zoo"
	"github.com/zooraft/zoo/internal/certgen"
	"github.com/zooraft/zoo/internal/zoocfg"
)

// certsCmd writes what a secure ensemble needs, as cockroach cert does: a CA
// (or the one already in -dir), a certificate per server named after its
// server.N line, and client certificates. Nothing is written unless every
// certificate can be; an existing certificate is replaced only with -force.
func certsCmd(args []string, stdout, stderr io.Writer) int {
	flags := flag.NewFlagSet("zoo certs", flag.ContinueOnError)
	flags.SetOutput(stderr)
	var cfgPaths certsRepeated
	flags.Var(&cfgPaths, "config", "a certificate for each server.N line of the ZooKeeper-style config `FILE` (repeatable: the configs of one ensemble)")
	hostList := flags.String("hosts", "", "a certificate for each host of the comma-separated `LIST`, named server.1.pem onwards")
	apply := flags.Bool("apply", false, "also edit each -config file to use them: sslQuorum, and its clientPort becomes a secureClientPort")
	var clients certsRepeated
	flags.Var(&clients, "client", "a client certificate client.`NAME`.pem with subject CN=NAME,O=zoo (repeatable)")
	dir := flags.String("dir", "certs", "`DIR` to write to; a CA already there (ca.pem, ca.key) signs the new certificates")
	days := flags.Int("days", 730, "validity of server and client certificates in `DAYS` (a new CA's is 10 years)")
	force := flags.Bool("force", false, "replace existing server and client certificates")
	if err := flags.Parse(args); err != nil {
		return 2
	}
	usageErr := func(format string, args ...any) int {
		fmt.Fprintf(stderr, "zoo certs: "+format+"\n", args...)
		return 2
	}
	switch {
	case flags.NArg() > 0:
		return usageErr("unexpected argument %q", flags.Arg(0))
	case len(cfgPaths) == 0 && *hostList == "" && len(clients) == 0:
		return usageErr("nothing to do: give -config zoo.cfg, -hosts h1,h2,... or -client NAME")
	case *apply && len(cfgPaths) == 0:
		return usageErr("-apply edits the -config files: give at least one")
	case *days <= 0:
		return usageErr("-days %d: must be positive", *days)
	}

	var leaves []certsLeaf
	for i, path := range cfgPaths {
		ls, err := certsFromConfig(path)
		if err != nil {
			fmt.Fprintln(stderr, "zoo certs:", err)
			return 2
		}
		if i == 0 {
			leaves = append(leaves, ls...)
		} else if !slices.EqualFunc(ls, leaves, certsLeaf.same) {
			return usageErr("%s: its server.N lines differ from %s's: give the configs of one ensemble", path, cfgPaths[0])
		}
	}
	if *hostList != "" {
		for i, h := range strings.Split(*hostList, ",") {
			h, err := certsHost(h)
			if err != nil {
				return usageErr("-hosts: %v", err)
			}
			leaves = append(leaves, certsServer("server."+strconv.Itoa(i+1), h))
		}
	}
	for _, name := range clients {
		if err := certsClientName(name); err != nil {
			return usageErr("%v", err)
		}
		leaves = append(leaves, certsLeaf{file: "client." + name + ".pem", name: name})
	}
	seen := map[string]bool{}
	for _, l := range leaves {
		switch {
		case seen[l.file] && l.hosts == nil:
			return usageErr("-client %s given twice", l.name)
		case seen[l.file]:
			return usageErr("%s would be written twice: -config and -hosts both number servers from 1; give one of them", l.file)
		}
		seen[l.file] = true
	}

	abs, err := filepath.Abs(*dir)
	if err == nil {
		err = os.MkdirAll(abs, 0o700)
	}
	if err != nil {
		fmt.Fprintln(stderr, "zoo certs:", err)
		return 1
	}
	caCert, caKey := filepath.Join(abs, "ca.pem"), filepath.Join(abs, "ca.key")
	var exist []string
	for _, l := range leaves {
		if _, err := os.Lstat(filepath.Join(abs, l.file)); err == nil {
			exist = append(exist, l.file)
		}
	}
	if len(exist) > 0 && !*force {
		fmt.Fprintf(stderr, "zoo certs: %s: %s already there (-force replaces)\n", abs, strings.Join(exist, ", "))
		return 1
	}
	var edits []certsEdit
	if *apply {
		if edits, err = certsPlanApply(cfgPaths, abs); err != nil {
			fmt.Fprintln(stderr, "zoo certs -apply:", err)
			return 1
		}
	}

	ca, err := certsLoadCA(caCert, caKey)
	newCA := errors.Is(err, fs.ErrNotExist)
	if newCA {
		ca, err = certgen.NewCA("zoo CA", certgen.Options{})
	}
	if err != nil {
		fmt.Fprintln(stderr, "zoo certs:", err)
		return 1
	}
	opts := certgen.Options{Validity: time.Duration(*days) * 24 * time.Hour}
	if end := time.Now().Add(opts.Validity); end.After(ca.Cert.NotAfter) {
		fmt.Fprintf(stderr, "zoo certs: warning: the CA expires %s, before the new certificates (-days %d)\n",
			ca.Cert.NotAfter.Format(time.DateOnly), *days)
	}

	// Sign everything before writing anything: a failure leaves no half set.
	files := map[string][]byte{}
	for i := range leaves {
		l := &leaves[i]
		if l.hosts != nil {
			l.leaf, err = ca.Replica(l.name, l.hosts, opts)
		} else {
			l.leaf, err = ca.Client(pkix.Name{CommonName: l.name, Organization: []string{"zoo"}}, opts)
		}
		if err == nil {
			files[l.file], err = l.leaf.PEM()
		}
		if err != nil {
			fmt.Fprintf(stderr, "zoo certs: %s: %v\n", l.file, err)
			return 1
		}
	}
	if newCA {
		key, err := ca.KeyPEM()
		if err == nil {
			// The key first, so that a ca.pem on disk always has its key beside it.
			err = certgen.WriteFile(caKey, key)
		}
		if err == nil {
			err = certgen.WriteFile(caCert, ca.CertPEM())
		}
		if err != nil {
			fmt.Fprintln(stderr, "zoo certs:", err)
			return 1
		}
	}
	for _, l := range leaves {
		if err := certgen.WriteFile(filepath.Join(abs, l.file), files[l.file]); err != nil {
			fmt.Fprintln(stderr, "zoo certs:", err)
			return 1
		}
	}
	if *apply {
		for _, e := range edits {
			if err := certsWriteEdit(e); err != nil {
				fmt.Fprintf(stderr, "zoo certs -apply: %s: %v\n", e.path, err)
				return 1
			}
		}
		certsReportApplied(stdout, abs, newCA, leaves, edits)
		return 0
	}
	certsReport(stdout, abs, newCA, leaves)
	return 0
}

// certsLeaf is one certificate to write: a server's when hosts is set, else a
// client's with subject CN=name,O=zoo.
type certsLeaf struct {
	file  string   // name in the output directory
	name  string   // server.N or the client's name
	hosts []string // SANs; clients dial the first
	leaf  *certgen.Leaf
}

// certsServer is the certificate of a server reachable at hosts; a loopback
// host also gets the other loopback names, so "localhost" and 127.0.0.1
// reach a local ensemble.
func certsServer(name string, hosts ...string) certsLeaf {
	var sans []string
	add := func(h string) {
		for _, s := range sans {
			if strings.EqualFold(s, h) {
				return
			}
		}
		sans = append(sans, h)
	}
	for _, h := range hosts {
		add(h)
		if ip := net.ParseIP(h); ip.IsLoopback() || strings.EqualFold(h, "localhost") {
			add("localhost")
			add("127.0.0.1")
		}
	}
	return certsLeaf{file: name + ".pem", name: name, hosts: sans}
}

// certsFromConfig plans a certificate for each server.N line of the zoo.cfg
// at path, or one server.pem for a standalone server without any.
func certsFromConfig(path string) ([]certsLeaf, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cfg, err := zoocfg.Parse(f, path)
	if err != nil {
		return nil, err
	}
	if cfg.DynamicConfigFile != "" {
		return nil, fmt.Errorf("%s: dynamicConfigFile: zoo certs reads server.N lines from zoo.cfg only; list the hosts with -hosts", path)
	}
	if len(cfg.Servers) == 0 {
		if h := cfg.ClientPortAddress; h != "" && !certsWildcard(h) {
			return []certsLeaf{certsServer("server", h)}, nil
		}
		name, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("host name: %w", err)
		}
		return []certsLeaf{certsServer("server", name, "localhost")}, nil
	}
	var leaves []certsLeaf
	for _, s := range cfg.Servers {
		if certsWildcard(s.Host) {
			return nil, fmt.Errorf("%s: server.%s: host %s names no machine; list the hosts with -hosts", path, s.ID, s.Host)
		}
		hosts := []string{s.Host}
		if s.ClientHost != "" && !certsWildcard(s.ClientHost) {
			hosts = []string{s.ClientHost, s.Host} // clients dial the first
		}
		leaves = append(leaves, certsServer("server."+s.ID, hosts...))
	}
	return leaves, nil
}

func certsWildcard(host string) bool {
	ip := net.ParseIP(host)
	return ip != nil && ip.IsUnspecified()
}

// certsHost checks one entry of -hosts: a name or an IP address (IPv6 with
// or without brackets), no port.
func certsHost(h string) (string, error) {
	h = strings.TrimSpace(h)
	if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		h = h[1 : len(h)-1]
	}
	switch {
	case h == "":
		return "", errors.New("empty host")
	case net.ParseIP(h) != nil:
		if certsWildcard(h) {
			return "", fmt.Errorf("%s names no machine", h)
		}
		return h, nil
	case strings.ContainsAny(h, ":/[]") || strings.IndexFunc(h, unicode.IsSpace) >= 0:
		return "", fmt.Errorf("%q: want a host name or IP address, without a port", h)
	}
	return h, nil
}

// same reports whether two planned certificates are alike.
func (l certsLeaf) same(o certsLeaf) bool {
	return l.file == o.file && slices.Equal(l.hosts, o.hosts)
}

// certsRepeated collects a repeatable flag (-config, -client); values are
// checked after parsing, so that a bad one is a one-line error like the
// others.
type certsRepeated []string

func (c *certsRepeated) String() string { return strings.Join(*c, ",") }

func (c *certsRepeated) Set(name string) error {
	*c = append(*c, name)
	return nil
}

// certsClientName checks a -client name: it becomes the subject's CN and
// part of a file name.
func certsClientName(name string) error {
	bad := func(r rune) bool { return r == '/' || unicode.IsSpace(r) || unicode.IsControl(r) }
	switch {
	case name == "":
		return errors.New("-client: empty name")
	case strings.IndexFunc(name, bad) >= 0:
		return fmt.Errorf("-client %q: a name has no '/' or spaces", name)
	}
	return nil
}

// certsLoadCA reads the CA a previous run wrote (or one of the user's: a PEM
// certificate and an unencrypted PKCS#8 key). The error wraps
// [fs.ErrNotExist] only when neither file exists.
func certsLoadCA(certPath, keyPath string) (*certgen.CA, error) {
	certPEM, certErr := os.ReadFile(certPath)
	keyPEM, keyErr := os.ReadFile(keyPath)
	switch {
	case errors.Is(certErr, fs.ErrNotExist) && errors.Is(keyErr, fs.ErrNotExist):
		return nil, certErr
	case errors.Is(certErr, fs.ErrNotExist):
		return nil, fmt.Errorf("%s exists but %s does not: restore it, or remove %s to make a new CA", keyPath, certPath, keyPath)
	case errors.Is(keyErr, fs.ErrNotExist):
		return nil, fmt.Errorf("%s exists but its key %s does not: restore it, or remove %s to make a new CA", certPath, keyPath, certPath)
	case certErr != nil:
		return nil, certErr
	case keyErr != nil:
		return nil, keyErr
	}
	var cert *x509.Certificate
	for rest := certPEM; cert == nil; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			return nil, fmt.Errorf("%s: no PEM CERTIFICATE block", certPath)
		}
		if b.Type == "CERTIFICATE" {
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", certPath, err)
			}
			cert = c
		}
	}
	switch {
	case !cert.IsCA || (cert.KeyUsage != 0 && cert.KeyUsage&x509.KeyUsageCertSign == 0):
		return nil, fmt.Errorf("%s: not a CA certificate", certPath)
	case time.Now().After(cert.NotAfter):
		return nil, fmt.Errorf("%s: the CA expired %s; move the directory aside to make a new one", certPath, cert.NotAfter.Format(time.DateOnly))
	}
	b, _ := pem.Decode(keyPEM)
	switch {
	case b == nil:
		return nil, fmt.Errorf("%s: no PEM block", keyPath)
	case b.Type == "ENCRYPTED PRIVATE KEY":
		return nil, fmt.Errorf("%s: encrypted; zoo certs needs the key unencrypted (openssl pkcs8 -in %s -out KEY)", keyPath, keyPath)
	case b.Type != "PRIVATE KEY":
		return nil, fmt.Errorf("%s: a %q block; want PKCS#8 \"PRIVATE KEY\" (openssl pkcs8 -topk8 -nocrypt -in %s -out KEY)", keyPath, b.Type, keyPath)
	}
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", keyPath, err)
	}
	key, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%s: a %T cannot sign", keyPath, k)
	}
	if pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("%s is not the key of %s", keyPath, certPath)
	}
	return &certgen.CA{Cert: cert, Key: key}, nil
}

// certsReport says what was written and the zoo.cfg lines and client
// commands that use it.
func certsReport(w io.Writer, dir string, newCA bool, leaves []certsLeaf) {
	p := func(name string) string { return filepath.Join(dir, name) }
	numbered, standalone := certsReportFiles(w, dir, newCA, leaves)
	server := func(file string) {
		fmt.Fprintln(w, "# secureClientPort: a free port of each server (2281, 2282, ... when they share a machine)")
		fmt.Fprintf(w, "secureClientPort=2281\nssl.keyStore.location=%s\nssl.trustStore.location=%s\n", p(file), p("ca.pem"))
	}
	if numbered {
		fmt.Fprintln(w, "\n# Give server N only ca.pem and server.N.pem (never ca.key). Its zoo.cfg (N = its myid):")
		fmt.Fprintf(w, "sslQuorum=true\nssl.quorum.keyStore.location=%s\nssl.quorum.trustStore.location=%s\n",
			p("server.N.pem"), p("ca.pem"))
		server("server.N.pem")
	}
	if standalone {
		fmt.Fprintln(w, "\n# zoo.cfg:")
		server("server.pem")
	}
	var addrs []string
	for _, l := range leaves {
		if l.hosts == nil {
			continue
		}
		if a := net.JoinHostPort(l.hosts[0], "2281"); !slices.Contains(addrs, a) {
			addrs = append(addrs, a)
		}
	}
	certsReportClients(w, dir, leaves, addrs)
}

// certsReportApplied is certsReport after -apply: the files, the configs
// edited, and the client commands.
func certsReportApplied(w io.Writer, dir string, newCA bool, leaves []certsLeaf, edits []certsEdit) {
	certsReportFiles(w, dir, newCA, leaves)
	fmt.Fprintln(w)
	for _, e := range edits {
		fmt.Fprintf(w, "Updated %s: %s\n", e.path, e.summary)
	}
	var addrs []string
	for _, e := range edits {
		addrs = append(addrs, e.clientAddr)
	}
	certsReportClients(w, dir, leaves, addrs)
}

// certsReportFiles lists the files written, and says whether there are
// numbered servers' and a standalone server's certificates among them.
func certsReportFiles(w io.Writer, dir string, newCA bool, leaves []certsLeaf) (numbered, standalone bool) {
	fmt.Fprintf(w, "In %s:\n", dir)
	if newCA {
		fmt.Fprintln(w, "  ca.pem, ca.key: a new CA (ca.key signs certificates: keep it secret)")
	} else {
		fmt.Fprintln(w, "  ca.pem, ca.key: the CA already there")
	}
	for _, l := range leaves {
		switch {
		case l.hosts == nil:
			fmt.Fprintf(w, "  %s: x509 id %s\n", l.file, zoo.X509ID(l.leaf.Cert))
			continue
		case l.name == "server":
			standalone = true
		default:
			numbered = true
		}
		fmt.Fprintf(w, "  %s: %s\n", l.file, strings.Join(l.hosts, ", "))
	}
	return numbered, standalone
}

// certsReportClients prints how zoo cli and kazoo connect to the servers'
// secure ports at addrs with the first client certificate.
func certsReportClients(w io.Writer, dir string, leaves []certsLeaf, addrs []string) {
	p := func(name string) string { return filepath.Join(dir, name) }
	var clients []string
	for _, l := range leaves {
		if l.hosts == nil {
			clients = append(clients, l.name)
		}
	}
	hosts := strings.Join(addrs, ",")
	if hosts == "" {
		hosts = "host:2281"
	}
	client := "client.NAME.pem"
	fmt.Fprintln(w, "\n# clients:")
	if len(clients) == 0 {
		fmt.Fprintf(w, "#   (make client.NAME.pem with: zoo certs -dir %s -client NAME)\n", dir)
	} else {
		client = "client." + clients[0] + ".pem"
	}
	fmt.Fprintf(w, "zoo cli -server %s -tls-ca %s -tls-cert %s\n", hosts, p("ca.pem"), p(client))
	fmt.Fprintf(w, "KazooClient(hosts=%q, use_ssl=True, ca=%q, certfile=%q, keyfile=%q)\n",
		hosts, p("ca.pem"), p(client), p(client))
}
