package zoocfg

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
)

const serverForm = "host:quorumPort:electionPort[:participant|:observer][;[host:]clientPort]"

// parseServer parses the value of a server.N line as ZooKeeper's
// QuorumPeer.QuorumServer does. id is N in canonical form.
func parseServer(id, value string, multiAddress bool) (Server, error) {
	s := Server{ID: id}
	wrong := func(why string) error {
		if why != "" {
			why = " (" + why + ")"
		}
		return fmt.Errorf("want %s, got %q%s", serverForm, value, why)
	}
	parts := javaSplit(value, ";")
	if len(parts) == 0 || len(parts) > 2 {
		return s, wrong("")
	}
	if strings.Contains(parts[0], "|") {
		if !multiAddress {
			return s, fmt.Errorf("several addresses separated by '|' need multiAddress.enabled=true, which zoo does not support")
		}
		return s, fmt.Errorf("several addresses separated by '|' (multiAddress.enabled) are not supported by zoo; give one address")
	}
	fields, err := hostAndPort(parts[0])
	if err != nil {
		return s, err
	}
	if len(fields) < 3 || len(fields) > 4 {
		why := ""
		if looksIPv6(fields) {
			why = "an IPv6 address goes in brackets: [::1]:2888:3888"
		}
		return s, wrong(why)
	}
	if s.Host, err = host(fields[0]); err != nil {
		return s, err
	}
	if s.QuorumPort, err = port(fields[1]); err != nil {
		return s, fmt.Errorf("quorum port: %w", err)
	}
	if s.ElectionPort, err = port(fields[2]); err != nil {
		return s, fmt.Errorf("election port: %w", err)
	}
	if s.QuorumPort == s.ElectionPort {
		return s, fmt.Errorf("quorum and election ports must differ, both are %d", s.QuorumPort)
	}
	if len(fields) == 4 {
		switch role := strings.ToLower(strings.TrimSpace(fields[3])); role {
		case "participant":
		case "observer":
			s.Observer = true
		default:
			return s, fmt.Errorf("unknown role %q (want participant or observer)", fields[3])
		}
	}
	if len(parts) == 2 {
		client, err := hostAndPort(parts[1])
		if err != nil {
			return s, err
		}
		switch len(client) {
		case 1:
		case 2:
			if s.ClientHost = strings.TrimSpace(client[0]); s.ClientHost != "" {
				if s.ClientHost, err = host(client[0]); err != nil {
					return s, err
				}
			}
		default:
			return s, wrong("the client part is [host:]port")
		}
		if s.ClientPort, err = port(client[len(client)-1]); err != nil {
			return s, fmt.Errorf("client port: %w", err)
		}
	}
	return s, nil
}

// looksIPv6 reports whether fields, split on every ':', start with an IPv6
// address written without brackets.
func looksIPv6(fields []string) bool {
	for _, n := range []int{2, 3} { // the ports, and maybe a role
		if len(fields) > n+2 {
			if ip := net.ParseIP(strings.Join(fields[:len(fields)-n], ":")); ip != nil && ip.To4() == nil {
				return true
			}
		}
	}
	return false
}

// hostAndPort splits host:port:... as ZooKeeper's ConfigUtils.getHostAndPort,
// where an IPv6 host is written in brackets.
func hostAndPort(s string) ([]string, error) {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, "[") {
		return javaSplit(s, ":"), nil
	}
	i := strings.IndexByte(s, ']')
	if i < 0 {
		return nil, fmt.Errorf("%q starts with '[' but has no matching ']'", s)
	}
	fields := []string{s[1:i]}
	rest := s[i+1:]
	if rest == "" {
		return fields, nil
	}
	if rest[0] != ':' || len(rest) == 1 {
		return nil, fmt.Errorf("%q: want ':' and a port after ']'", s)
	}
	return append(fields, javaSplit(rest[1:], ":")...), nil
}

// javaSplit splits as Java's String.split with a literal separator: trailing
// empty strings are dropped, and a string without the separator is returned
// whole.
func javaSplit(s, sep string) []string {
	if !strings.Contains(s, sep) {
		return []string{s}
	}
	parts := strings.Split(s, sep)
	for len(parts) > 0 && parts[len(parts)-1] == "" {
		parts = parts[:len(parts)-1]
	}
	return parts
}

// host checks a host name or address (IPv6 without brackets).
func host(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", fmt.Errorf("empty host")
	}
	if strings.ContainsAny(s, " \t\f\r\n[]/") {
		return "", fmt.Errorf("bad host %q", s)
	}
	return s, nil
}

// parseInt parses a Java int (32 bits), as Integer.parseInt.
func parseInt(s string) (int, error) {
	n, err := strconv.ParseInt(s, 10, 32)
	if errors.Is(err, strconv.ErrRange) {
		return 0, fmt.Errorf("out of range: %q", s)
	}
	if err != nil {
		return 0, fmt.Errorf("not a number: %q", s)
	}
	return int(n), nil
}

// port parses a TCP port, 1-65535.
func port(s string) (int, error) {
	s = strings.TrimSpace(s)
	n, err := parseInt(s)
	if err != nil {
		return 0, err
	}
	if n < 1 || n > 65535 {
		return 0, fmt.Errorf("port out of range 1-65535: %q", s)
	}
	return int(n), nil
}
