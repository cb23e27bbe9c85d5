// Package netns builds a private IP network of hosts on one Linux machine,
// so that tests can cut links for real, at the IP level, between replica
// processes: each host is a network namespace with its own address and port
// space, joined to the others by a bridge in a hub namespace; the test
// process reaches every host through one more link into that bridge.
//
// A cut is a blackhole route in the sending host's namespace: it drops
// what that host sends to the other (one direction); cutting both
// directions isolates. Delay and loss would need tc netem, which these
// kernels lack.
//
// Everything a Net creates carries the test process's id in its name, so
// Close removes it, and New first removes what a run that died without
// closing left behind. It needs root and iproute2's ip.
package netns

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
)

// Net is a network of hosts, numbered from 0.
type Net struct {
	prefix string // "zt<pid>": every name starts with it
	subnet string // "10.a.b.": hosts are .1 onwards, the test process .254
	hosts  int
}

// Available reports why a Net cannot be built here, or nil.
func Available() error {
	if os.Geteuid() != 0 {
		return errors.New("netns: needs root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return fmt.Errorf("netns: %w (apt-get install iproute2)", err)
	}
	return nil
}

// New builds a network of n hosts (at most 250).
func New(n int) (*Net, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	if n < 1 || n > 250 {
		return nil, fmt.Errorf("netns: %d hosts", n)
	}
	removeStale()
	pid := os.Getpid()
	nt := &Net{prefix: "zt" + strconv.Itoa(pid), hosts: n}
	// A /24 of 10/8 picked from the pid, skipping any the machine routes.
	for i := 0; ; i++ {
		if i == 64 {
			return nil, errors.New("netns: no free 10.x.y.0/24 subnet")
		}
		k := (pid + i*7919) % (200 * 250)
		nt.subnet = fmt.Sprintf("10.%d.%d.", 50+k/250, k%250)
		out, err := exec.Command("ip", "-4", "route", "show", "to", "match", nt.subnet+"0/24").Output()
		if err == nil && !strings.Contains(string(out), nt.subnet) {
			break
		}
	}
	if err := nt.build(); err != nil {
		nt.Close()
		return nil, err
	}
	return nt, nil
}

func (n *Net) hub() string           { return n.prefix + "-hub" }
func (n *Net) host(i int) string     { return n.prefix + "-" + strconv.Itoa(i) }
func (n *Net) testLink() string      { return n.prefix + "t" }
func (n *Net) inHost(i int) []string { return []string{"netns", "exec", n.host(i)} }

func (n *Net) build() error {
	steps := [][]string{
		{"netns", "add", n.hub()},
		{"netns", "exec", n.hub(), "ip", "link", "add", "br0", "type", "bridge"},
		{"netns", "exec", n.hub(), "ip", "link", "set", "br0", "up"},
		{"link", "add", n.testLink(), "type", "veth", "peer", "name", "vt", "netns", n.hub()},
		{"netns", "exec", n.hub(), "ip", "link", "set", "vt", "master", "br0", "up"},
		{"addr", "add", n.subnet + "254/24", "dev", n.testLink()},
		{"link", "set", n.testLink(), "up"},
	}
	for i := range n.hosts {
		v := "v" + strconv.Itoa(i)
		steps = append(steps,
			[]string{"netns", "add", n.host(i)},
			[]string{"netns", "exec", n.hub(), "ip", "link", "add", v, "type", "veth", "peer", "name", "eth0", "netns", n.host(i)},
			[]string{"netns", "exec", n.hub(), "ip", "link", "set", v, "master", "br0", "up"},
			append(n.inHost(i), "ip", "addr", "add", n.Addr(i)+"/24", "dev", "eth0"),
			append(n.inHost(i), "ip", "link", "set", "eth0", "up"),
			append(n.inHost(i), "ip", "link", "set", "lo", "up"),
		)
	}
	for _, s := range steps {
		if err := ip(s...); err != nil {
			return err
		}
	}
	return nil
}

// Addr is host i's IP address.
func (n *Net) Addr(i int) string { return n.subnet + strconv.Itoa(i+1) }

// Command runs name in host i's namespace. ip execs it there, so the
// process's pid is the command's own: signals reach it directly.
func (n *Net) Command(i int, name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append(append(n.inHost(i), name), args...)...)
}

// Cut drops what host from sends to host to.
func (n *Net) Cut(from, to int) error {
	return ip(append(n.inHost(from), "ip", "route", "replace", "blackhole", n.Addr(to)+"/32")...)
}

// Isolate cuts host i from every other host, both ways; the test process
// still reaches it.
func (n *Net) Isolate(i int) error {
	for j := range n.hosts {
		if j == i {
			continue
		}
		if err := n.Cut(i, j); err != nil {
			return err
		}
		if err := n.Cut(j, i); err != nil {
			return err
		}
	}
	return nil
}

// Heal removes every cut.
func (n *Net) Heal() error {
	var errs []error
	for i := range n.hosts {
		if err := ip(append(n.inHost(i), "ip", "route", "flush", "type", "blackhole")...); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Close deletes the namespaces and links; processes still running in them
// keep theirs until they exit, unreachable.
func (n *Net) Close() error {
	var errs []error
	for _, name := range n.names() {
		if err := ip("netns", "del", name); err != nil && !strings.Contains(err.Error(), "No such file") {
			errs = append(errs, err)
		}
	}
	// The test link's other end was in the hub: it went with it.
	return errors.Join(errs...)
}

func (n *Net) names() []string {
	out := []string{n.hub()}
	for i := range n.hosts {
		out = append(out, n.host(i))
	}
	return out
}

var staleName = regexp.MustCompile(`^zt([0-9]+)-`)

// removeStale deletes the namespaces of test processes that are gone.
func removeStale() {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(out), "\n") {
		name, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		m := staleName.FindStringSubmatch(name)
		if m == nil {
			continue
		}
		pid, _ := strconv.Atoi(m[1])
		if pid == os.Getpid() || syscall.Kill(pid, 0) == nil {
			continue
		}
		ip("netns", "del", name)
	}
}

// ip runs iproute2's ip with args.
func ip(args ...string) error {
	cmd := exec.Command("ip", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("netns: ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return nil
}
