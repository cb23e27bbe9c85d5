package zkclient

import (
	"fmt"
	"net"
	"strings"
	"unicode/utf8"

	"github.com/zooraft/zoo"
)

// validatePath applies ZooKeeper's PathUtils.validatePath before anything is
// sent, as the Java client does: a bad path is the caller's error, not a
// round trip. Java checks UTF-16 code units, so every rune outside the BMP is
// refused too (its surrogate halves fall in the forbidden D800-F8FF range).
func validatePath(p string) error {
	if p == "" {
		return fmt.Errorf("%w: path must not be empty", zoo.ErrBadArguments)
	}
	if p[0] != '/' {
		return fmt.Errorf("%w: path must start with /", zoo.ErrBadArguments)
	}
	if p == "/" {
		return nil
	}
	if p[len(p)-1] == '/' {
		return fmt.Errorf("%w: path must not end with /", zoo.ErrBadArguments)
	}
	if !utf8.ValidString(p) {
		return fmt.Errorf("%w: path is not valid UTF-8", zoo.ErrBadArguments)
	}
	for _, seg := range strings.Split(p[1:], "/") {
		switch seg {
		case "":
			return fmt.Errorf("%w: empty node name", zoo.ErrBadArguments)
		case ".", "..":
			return fmt.Errorf("%w: relative paths not allowed", zoo.ErrBadArguments)
		}
	}
	for i, r := range p {
		if r < 0x20 || (r >= 0x7f && r <= 0x9f) || (r >= 0xd800 && r <= 0xf8ff) ||
			(r >= 0xfff0 && r <= 0xffff) || r >= 0x10000 {
			return fmt.Errorf("%w: invalid character %U at %d", zoo.ErrBadArguments, r, i)
		}
	}
	return nil
}

// normalizeChroot checks a chroot and returns it in the form the prefixing
// uses: "" for none ("" or "/"), else a valid path without trailing slash.
func normalizeChroot(chroot string) (string, error) {
	if chroot == "" || chroot == "/" {
		return "", nil
	}
	if err := validatePath(chroot); err != nil {
		return "", err
	}
	return chroot, nil
}

// serverPath prefixes a client path with the chroot.
func (c *Conn) serverPath(p string) string {
	if c.chroot == "" {
		return p
	}
	if p == "/" {
		return c.chroot
	}
	return c.chroot + p
}

// clientPath strips the chroot from a server path. A path outside the
// chroot (the config node, say) is returned unchanged, as the Java client
// does with event paths.
func (c *Conn) clientPath(p string) string {
	p, _ = c.stripChroot(p)
	return p
}

// stripChroot strips the chroot and reports whether p was inside it.
func (c *Conn) stripChroot(p string) (string, bool) {
	if c.chroot == "" {
		return p, true
	}
	if p == c.chroot {
		return "/", true
	}
	if strings.HasPrefix(p, c.chroot) && p[len(c.chroot)] == '/' {
		return p[len(c.chroot):], true
	}
	return p, false
}

// defaultPort is ZooKeeper's client port, for servers given without one.
const defaultPort = "2181"

// normalizeServer checks a "host:port" address; a missing port means 2181,
// as in ZooKeeper's connect strings.
func normalizeServer(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", fmt.Errorf("%w: empty server address", zoo.ErrBadArguments)
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		if strings.Contains(err.Error(), "missing port") {
			return net.JoinHostPort(strings.Trim(s, "[]"), defaultPort), nil
		}
		return "", fmt.Errorf("%w: server %q: %v", zoo.ErrBadArguments, s, err)
	}
	if host == "" || port == "" {
		return "", fmt.Errorf("%w: server %q needs host:port", zoo.ErrBadArguments, s)
	}
	return net.JoinHostPort(host, port), nil
}

// ParseConnectString splits a ZooKeeper connect string,
// "host1:port1,host2:port2/chroot", into servers and chroot, the form
// zkCli.sh's -server and connect take.
func ParseConnectString(s string) (servers []string, chroot string, err error) {
	hosts := s
	if i := strings.IndexByte(s, '/'); i >= 0 {
		hosts, chroot = s[:i], s[i:]
		if chroot, err = normalizeChroot(chroot); err != nil {
			return nil, "", fmt.Errorf("zkclient: chroot %q: %w", s[i:], err)
		}
	}
	for _, h := range strings.Split(hosts, ",") {
		if strings.TrimSpace(h) == "" {
			continue
		}
		a, err := normalizeServer(h)
		if err != nil {
			return nil, "", fmt.Errorf("zkclient: %w", err)
		}
		servers = append(servers, a)
	}
	if len(servers) == 0 {
		return nil, "", fmt.Errorf("zkclient: connect string %q: %w: no servers", s, zoo.ErrBadArguments)
	}
	return servers, chroot, nil
}
