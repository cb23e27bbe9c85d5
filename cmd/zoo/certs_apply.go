package main

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/zooraft/zoo/internal/zoocfg"
)

// zoo certs -apply: the certificates and the zoo.cfg lines that use them in
// one step, so that a secure ensemble on fresh machines is `zoo certs` then
// `zoo server`. Each config gets mutual TLS between servers (when it lists
// any) and its clientPort becomes a secureClientPort on the same address and
// port: no plaintext port is left behind. A config that already has TLS
// settings is not touched; nothing is written unless every config can be.

// certsEdit is the new content of one config file.
type certsEdit struct {
	path    string
	content []byte
	mode    os.FileMode
	// clientAddr is where clients reach the secure port (the former
	// clientPort) from this machine.
	clientAddr string
	summary    string
}

// certsPlanApply plans the edit of each config in paths, whose certificates
// are (or will be) in dir.
func certsPlanApply(paths []string, dir string) ([]certsEdit, error) {
	var edits []certsEdit
	for _, path := range paths {
		e, err := certsPlanOne(path, dir)
		if err != nil {
			return nil, err
		}
		edits = append(edits, e)
	}
	return edits, nil
}

func certsPlanOne(path, dir string) (certsEdit, error) {
	cfg, err := zoocfg.Load(path)
	if err != nil {
		return certsEdit{}, err
	}
	info, err := os.Stat(path)
	if err != nil {
		return certsEdit{}, err
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return certsEdit{}, err
	}
	leaf := "server.pem"
	if len(cfg.Servers) > 0 {
		leaf = "server." + cfg.MyID + ".pem"
	}
	keyStore, trustStore := filepath.Join(dir, leaf), filepath.Join(dir, "ca.pem")

	var out bytes.Buffer
	movedPort := false
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		key, value, ok := strings.Cut(strings.TrimSpace(line), "=")
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		switch {
		case !ok || strings.HasPrefix(key, "#"):
		case key == "sslQuorum" || key == "secureClientPort" || key == "secureClientPortAddress" || strings.HasPrefix(key, "ssl."):
			return certsEdit{}, fmt.Errorf("%s:%d: %s: the config already has TLS settings; add the lines zoo certs prints by hand instead of -apply", path, n, key)
		case key == "clientPort":
			fmt.Fprintf(&out, "# zoo certs -apply: clients connect over TLS on this port (was clientPort=%s)\n", value)
			fmt.Fprintf(&out, "secureClientPort=%s\n", value)
			movedPort = true
			continue
		case key == "clientPortAddress":
			fmt.Fprintf(&out, "%s\nsecureClientPortAddress=%s\n", line, value)
			continue
		}
		fmt.Fprintln(&out, line)
	}
	if err := sc.Err(); err != nil {
		return certsEdit{}, fmt.Errorf("%s: %w", path, err)
	}
	if !movedPort {
		return certsEdit{}, fmt.Errorf("%s: no clientPort line to move to secureClientPort; add the lines zoo certs prints by hand instead of -apply", path)
	}
	fmt.Fprintf(&out, "\n# zoo certs -apply: clients need a certificate of this CA; ACLs may name them as x509:<subject>\n")
	fmt.Fprintf(&out, "ssl.keyStore.location=%s\nssl.trustStore.location=%s\nssl.clientAuth=need\n", keyStore, trustStore)
	summary := fmt.Sprintf("clients over TLS on port %d", cfg.ClientPort)
	if len(cfg.Servers) > 0 {
		fmt.Fprintf(&out, "# zoo certs -apply: links between servers are mutual TLS\n")
		fmt.Fprintf(&out, "sslQuorum=true\nssl.quorum.keyStore.location=%s\nssl.quorum.trustStore.location=%s\n", keyStore, trustStore)
		summary = fmt.Sprintf("server.%s: %s, links between servers over mutual TLS", cfg.MyID, summary)
	}
	return certsEdit{path: path, content: out.Bytes(), mode: info.Mode().Perm(), clientAddr: certsClientAddr(cfg), summary: summary}, nil
}

// certsWriteEdit replaces a config file with its new content in one rename,
// so a crash leaves the old file or the new one.
func certsWriteEdit(e certsEdit) error {
	tmp, err := os.CreateTemp(filepath.Dir(e.path), "."+filepath.Base(e.path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(e.content); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(e.mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), e.path)
}

// certsClientAddr is the address clients dial for cfg's server: its
// clientPortAddress, else its server.N line's client host or host, else
// localhost.
func certsClientAddr(cfg *zoocfg.Config) string {
	host := cfg.ClientPortAddress
	if self, ok := cfg.Self(); ok && (host == "" || certsWildcard(host)) {
		host = self.Host
		if self.ClientHost != "" && !certsWildcard(self.ClientHost) {
			host = self.ClientHost
		}
	}
	if host == "" || certsWildcard(host) {
		host = "localhost"
	}
	return net.JoinHostPort(host, strconv.Itoa(cfg.ClientPort))
}
