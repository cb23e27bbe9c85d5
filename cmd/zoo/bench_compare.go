package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// zoo bench -compare: a 3-member zoo ensemble and, when Java and Debian's
// zookeeper package are installed, a 3-member Apache ZooKeeper ensemble on
// this machine, both on loopback with their logs on disk (fsync on) and the
// same tickTime; the same shapes run on each in turn, round after round,
// after a warm-up round whose figures are dropped (a cold JVM runs at half
// speed); the table gives medians and ratios.

// Where Debian's zookeeper package puts Java and the jars.
const (
	compareJava = "/usr/bin/java"
	compareJars = "/usr/share/java/zookeeper.jar"
)

// zooCommand runs this binary with args; tests make the test binary act as
// zoo.
var zooCommand = func(args ...string) (*exec.Cmd, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return exec.Command(exe, args...), nil
}

// defaultShapes are issue 11's table: op mix @ callers.
const defaultShapes = "set=1@1;set=1@32;set=1@256;create=1@32;ephemeral=1@32;get=1@1;get=1@256;get=90,set=10@256"

// benchShape is one mix at one concurrency.
type benchShape struct {
	mix     string
	weights map[string]int
	callers int
}

func parseShapes(s string) ([]benchShape, error) {
	var out []benchShape
	for _, part := range strings.Split(s, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		mix, callers, ok := strings.Cut(part, "@")
		n, err := strconv.Atoi(callers)
		if !ok || err != nil || n < 1 {
			return nil, fmt.Errorf("%q: want mix@callers, e.g. get=90,set=10@256", part)
		}
		w, err := parseMix(mix)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", part, err)
		}
		out = append(out, benchShape{mix: mix, weights: w, callers: n})
	}
	if len(out) == 0 {
		return nil, errors.New("no shapes")
	}
	return out, nil
}

// compareSystem is one ensemble under test.
type compareSystem struct {
	name    string
	servers []string
	procs   []*exec.Cmd
	starts  []func() (*exec.Cmd, error) // start member i again (bench_failover.go)
}

func (s *compareSystem) stop() {
	for _, p := range s.procs {
		p.Process.Kill()
		p.Wait()
	}
}

// runCompare starts the systems, runs every shape on each in turn for
// warm-up and rounds, and prints the medians.
func runCompare(base benchConfig, shapes []benchShape, rounds int, fill time.Duration, failovers int, stdout, stderr io.Writer) error {
	dir, err := os.MkdirTemp("", "zoo-bench-compare-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	var systems []*compareSystem
	defer func() {
		for _, s := range systems {
			s.stop()
		}
	}()
	zoo, err := startCompareEnsemble(filepath.Join(dir, "zoo"), "zoo", stderr)
	if err != nil {
		return fmt.Errorf("start zoo: %w", err)
	}
	systems = append(systems, zoo)
	if missing := compareMissing(); missing != "" {
		fmt.Fprintf(stderr, "zoo bench: %s: comparing with nothing (apt-get install default-jre-headless zookeeper)\n", missing)
	} else {
		zk, err := startCompareEnsemble(filepath.Join(dir, "zookeeper"), "zookeeper", stderr)
		if err != nil {
			return fmt.Errorf("start Apache ZooKeeper: %w", err)
		}
		systems = append(systems, zk)
	}

	// results[shape][system] holds one report per round.
	results := make([][][]*benchReport, len(shapes))
	for i := range results {
		results[i] = make([][]*benchReport, len(systems))
	}
	for round := 0; round <= rounds; round++ {
		what := fmt.Sprintf("round %d of %d", round, rounds)
		if round == 0 {
			what = "warm-up round"
		}
		for i, sh := range shapes {
			for j, sys := range systems {
				cfg := base
				cfg.servers, cfg.mix, cfg.callers, cfg.progress = sys.servers, sh.weights, sh.callers, 0
				cfg.connections = min(sh.callers, 64)
				fmt.Fprintf(stderr, "zoo bench: %s: %s@%d on %s\n", what, sh.mix, sh.callers, sys.name)
				r, err := runBench(cfg, stderr)
				if err != nil {
					return fmt.Errorf("%s@%d on %s: %w", sh.mix, sh.callers, sys.name, err)
				}
				if round > 0 {
					results[i][j] = append(results[i][j], r)
				}
			}
		}
	}
	printCompare(stdout, base, shapes, systems, results, rounds)
	printMemory(stdout, systems, "after the run")
	if fill > 0 {
		if err := runFill(base, systems, fill, rounds, stdout, stderr); err != nil {
			return err
		}
	}
	if failovers > 0 {
		return runFailovers(systems, failovers, stdout, stderr)
	}
	return nil
}

// printMemory prints the resident memory of each system's servers, when.
func printMemory(w io.Writer, systems []*compareSystem, when string) {
	var mib []float64
	for _, s := range systems {
		m, ok := residentMiB(s.procs)
		if !ok {
			return // not Linux, or gone: no figure rather than a wrong one
		}
		mib = append(mib, m)
	}
	fmt.Fprintf(w, "resident memory of the 3 servers %s:", when)
	for i, s := range systems {
		fmt.Fprintf(w, " %s %.0f MiB", s.name, mib[i])
	}
	if len(mib) == 2 && mib[1] > 0 {
		fmt.Fprintf(w, " (ratio %.2f)", mib[0]/mib[1])
	}
	fmt.Fprintln(w)
}

// residentMiB sums the resident memory of processes, from /proc; false if
// one cannot be read.
func residentMiB(cmds []*exec.Cmd) (float64, bool) {
	total := 0.0
	for _, c := range cmds {
		if c == nil || c.Process == nil {
			return 0, false
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", c.Process.Pid))
		if err != nil {
			return 0, false
		}
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
				kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
				total += kb / 1024
			}
		}
	}
	return total, true
}

// compareMissing names what Apache ZooKeeper needs and is not installed.
func compareMissing() string {
	for _, p := range []string{compareJava, compareJars} {
		if _, err := os.Stat(p); err != nil {
			return p + " not found"
		}
	}
	return ""
}

// startCompareEnsemble starts three members of kind ("zoo" or
// "zookeeper") with configs in dir and waits for a leader.
func startCompareEnsemble(dir, kind string, stderr io.Writer) (*compareSystem, error) {
	ports, err := comparePorts(9)
	if err != nil {
		return nil, err
	}
	var servers strings.Builder
	for i := 1; i <= 3; i++ {
		fmt.Fprintf(&servers, "server.%d=127.0.0.1:%d:%d\n", i, ports[3*(i-1)], ports[3*(i-1)+1])
	}
	sys := &compareSystem{name: kind}
	for i := 1; i <= 3; i++ {
		data := filepath.Join(dir, strconv.Itoa(i))
		if err := os.MkdirAll(data, 0o755); err != nil {
			return sys, err
		}
		if err := os.WriteFile(filepath.Join(data, "myid"), []byte(strconv.Itoa(i)+"\n"), 0o644); err != nil {
			return sys, err
		}
		client := ports[3*(i-1)+2]
		cfg := filepath.Join(dir, fmt.Sprintf("zoo.%d.cfg", i))
		body := servers.String() + fmt.Sprintf("tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir=%s\nclientPort=%d\n"+
			"clientPortAddress=127.0.0.1\nadmin.enableServer=false\n4lw.commands.whitelist=*\nmaxClientCnxns=0\n", data, client)
		if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
			return sys, err
		}
		logPath := filepath.Join(dir, fmt.Sprintf("%s.%d.log", kind, i))
		start := func() (*exec.Cmd, error) {
			var cmd *exec.Cmd
			if kind == "zoo" {
				if cmd, err = zooCommand("server", "--config", cfg); err != nil {
					return nil, err
				}
			} else {
				cmd = exec.Command(compareJava, "-Xmx2g", "-cp", "/usr/share/java/*",
					"org.apache.zookeeper.server.quorum.QuorumPeerMain", cfg)
			}
			logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
			if err != nil {
				return nil, err
			}
			cmd.Stdout, cmd.Stderr = logf, logf
			err = cmd.Start()
			logf.Close()
			return cmd, err
		}
		cmd, err := start()
		if err != nil {
			return sys, err
		}
		sys.starts = append(sys.starts, start)
		sys.procs = append(sys.procs, cmd)
		sys.servers = append(sys.servers, net.JoinHostPort("127.0.0.1", strconv.Itoa(client)))
	}
	if err := sys.waitLeader(90 * time.Second); err != nil {
		return sys, fmt.Errorf("%w (logs in %s)", err, dir)
	}
	fmt.Fprintf(stderr, "zoo bench: %s ensemble up at %s\n", kind, strings.Join(sys.servers, ","))
	return sys, nil
}

// modes asks each member for its mode ("leader", "follower", "" when it
// does not answer).
func (s *compareSystem) modes() []string {
	modes := make([]string, len(s.servers))
	for i, a := range s.servers {
		lines, _ := fourLetterWord(a, "srvr", nil)
		for _, l := range lines {
			if v, ok := strings.CutPrefix(l, "Mode: "); ok {
				modes[i] = v
			}
		}
	}
	return modes
}

// waitLeader waits until every member answers and one leads.
func (s *compareSystem) waitLeader(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		modes := s.modes()
		if !slices.Contains(modes, "") && slices.Contains(modes, "leader") {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no leader after %v (modes %q)", limit, modes)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// comparePorts reserves n loopback ports that were free a moment ago.
func comparePorts(n int) ([]int, error) {
	var lns []net.Listener
	defer func() {
		for _, l := range lns {
			l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// median of the figure f over reports.
func median(reports []*benchReport, f func(benchResult) float64) float64 {
	var v []float64
	for _, r := range reports {
		if n := len(r.Results); n > 0 {
			v = append(v, f(r.Results[n-1])) // the total (or the only operation)
		}
	}
	if len(v) == 0 {
		return 0
	}
	slices.Sort(v)
	return v[len(v)/2]
}

func printCompare(w io.Writer, base benchConfig, shapes []benchShape, systems []*compareSystem, results [][][]*benchReport, rounds int) {
	fmt.Fprintf(w, "%s; 3 members each on loopback, logs on disk; %d-byte values, %d keys; %v per shape, median of %d rounds after a warm-up round\n",
		time.Now().Format(time.DateOnly), base.valueSize, base.keys, base.duration, rounds)
	fmt.Fprintf(w, "%-24s", "shape")
	for _, s := range systems {
		fmt.Fprintf(w, " %16s %8s %8s", s.name+" ops/s", "p50 ms", "p99 ms")
	}
	if len(systems) == 2 {
		fmt.Fprintf(w, " %8s %8s", "ratio", "p50 x")
	}
	fmt.Fprintln(w)
	for i, sh := range shapes {
		fmt.Fprintf(w, "%-24s", fmt.Sprintf("%s@%d", sh.mix, sh.callers))
		var ops, p50 []float64
		for j := range systems {
			o := median(results[i][j], func(r benchResult) float64 { return r.OpsPerSec })
			l := median(results[i][j], func(r benchResult) float64 { return r.P50ms })
			p := median(results[i][j], func(r benchResult) float64 { return r.P99ms })
			ops, p50 = append(ops, o), append(p50, l)
			fmt.Fprintf(w, " %16.0f %8.2f %8.2f", o, l, p)
		}
		if len(systems) == 2 && ops[1] > 0 && p50[1] > 0 {
			fmt.Fprintf(w, " %8.2f %8.2f", ops[0]/ops[1], p50[0]/p50[1])
		}
		fmt.Fprintln(w)
	}
	if len(systems) == 2 {
		fmt.Fprintln(w, "ratio: zoo's ops/s over ZooKeeper's (above 1: zoo is faster); p50 x: zoo's median latency over ZooKeeper's (below 1: zoo is faster)")
	}
}
