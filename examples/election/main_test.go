package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zooraft/zoo/examples/internal/demo"
	"github.com/zooraft/zoo/internal/certgen"
)

// TestDemo runs the one-process demo and checks its story: alice, bob and
// carol lead in turn, each term with a higher token, bob after alice's
// replica crashed.
func TestDemo(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	var out demo.Buffer
	if err := run(ctx, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	text := out.String()
	t.Logf("narrative:\n%s", text)

	re := regexp.MustCompile(`observer @ replica \d: leader is "(alice|bob|carol)" \(token (\d+)`)
	var leaders []string
	var tokens []int64
	for _, m := range re.FindAllStringSubmatch(text, -1) {
		tok, _ := strconv.ParseInt(m[2], 10, 64)
		leaders, tokens = append(leaders, m[1]), append(tokens, tok)
	}
	if want := []string{"alice", "bob", "carol"}; !slices.Equal(leaders, want) {
		t.Errorf("observed leaders %v, want %v", leaders, want)
	}
	for i := 1; i < len(tokens); i++ {
		if tokens[i] <= tokens[i-1] {
			t.Errorf("tokens %v do not increase", tokens)
		}
	}
	for _, want := range []string{
		`leader is "alice: 12 jobs scheduled"`, // the proclaimed value
		"crashes, with alice's session on it",
		"] elected: leading with token", // bob, after the crash
		"bob took over",
		"no leader left",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("narrative lacks %q", want)
		}
	}
	if !regexp.MustCompile(`\[bob @ replica \d\] elected`).MatchString(text) {
		t.Errorf("bob never reported being elected")
	}
}

// TestProcesses builds the example and runs it as three real processes, one
// replica each, on loopback ports; it SIGKILLs the leader's process and
// checks that a surviving process is elected and the other observes it, then
// stops the survivors with SIGTERM and checks that they exit cleanly.
func TestProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary and runs processes")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool in PATH:", err)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "election")
	// Built with the test's own race setting, so the packages it depends
	// on come from the build cache the test binary filled.
	args := []string{"build", "-o", bin}
	if raceEnabled {
		args = append(args, "-race")
	}
	build := exec.Command(goTool, append(args, ".")...)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	// The replicas' links are mutual TLS, with the files zoo certs writes.
	certs := filepath.Join(dir, "certs")
	writeCerts(t, certs, 3)

	addrs := freePorts(t, 3)
	var peers []string
	for i, a := range addrs {
		peers = append(peers, fmt.Sprintf("%d=%s", i+1, a))
	}
	type proc struct {
		id     string
		cmd    *exec.Cmd
		out    *demo.Buffer
		exited chan struct{} // closed when the process has exited
		err    error         // Wait's error, once exited is closed
	}
	procs := map[string]*proc{}
	for i := range addrs {
		id := strconv.Itoa(i + 1)
		// A larger tick than the demo's default leaves room for a busy
		// machine running this under -race.
		cmd := exec.Command(bin, "-id", id, "-peers", strings.Join(peers, ","),
			"-dir", filepath.Join(dir, "data", id), "-tls", certs, "-tick", "400ms", "-session-timeout", "3s")
		p := &proc{id: id, cmd: cmd, out: &demo.Buffer{}, exited: make(chan struct{})}
		cmd.Stdout, cmd.Stderr = p.out, p.out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { p.err = cmd.Wait(); close(p.exited) }()
		t.Cleanup(func() {
			cmd.Process.Kill()
			<-p.exited
			if t.Failed() {
				t.Logf("process %s output:\n%s", id, p.out.String())
			}
		})
		procs[id] = p
	}

	// waitLine polls p's output, from byte offset from on, for a line
	// matching re, and returns its submatches.
	waitLine := func(p *proc, from int, re *regexp.Regexp, within time.Duration) []string {
		t.Helper()
		deadline := time.Now().Add(within)
		for time.Now().Before(deadline) {
			text := p.out.String()
			if m := re.FindStringSubmatch(text[min(from, len(text)):]); m != nil {
				return m
			}
			select {
			case <-p.exited:
				t.Fatalf("process %s exited: %v\n%s", p.id, p.err, p.out.String())
			case <-time.After(50 * time.Millisecond):
			}
		}
		t.Fatalf("process %s: no line matching %q within %v", p.id, re, within)
		return nil
	}

	// Every process campaigns; one is elected.
	for _, p := range procs {
		waitLine(p, 0, regexp.MustCompile(`campaigning in`), time.Minute)
	}
	elected := regexp.MustCompile(`\[node-(\d)\] elected: I lead now \(token (\d+)\)`)
	var leader string
	deadline := time.Now().Add(30 * time.Second)
	for leader == "" && time.Now().Before(deadline) {
		for id, p := range procs {
			if elected.MatchString(p.out.String()) {
				leader = id
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	if leader == "" {
		t.Fatal("nobody was elected")
	}
	// Each survivor has seen the first leader before it dies.
	for id, p := range procs {
		if id != leader {
			waitLine(p, 0, regexp.MustCompile(`observed: leader is node-`+leader), 30*time.Second)
		}
	}

	// SIGKILL the leader's process: its replica and its session die with
	// it. The ensemble expires the session; the next in line is elected.
	marks := map[string]int{}
	for id, p := range procs {
		marks[id] = p.out.Len()
	}
	t.Logf("killing node-%s, the leader", leader)
	if err := procs[leader].cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-procs[leader].exited
	delete(procs, leader)

	var next string
	deadline = time.Now().Add(30 * time.Second)
	for next == "" && time.Now().Before(deadline) {
		for id, p := range procs {
			if elected.MatchString(p.out.String()[marks[id]:]) {
				next = id
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	if next == "" {
		t.Fatal("no survivor was elected after the leader was killed")
	}
	t.Logf("node-%s took over", next)
	for id, p := range procs {
		if id != next {
			waitLine(p, marks[id], regexp.MustCompile(`observed: leader is node-`+next), 30*time.Second)
		}
	}

	// SIGTERM: each survivor resigns or stops campaigning, closes, exits 0.
	for _, p := range procs {
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
	}
	for id, p := range procs {
		select {
		case <-p.exited:
			if p.err != nil {
				t.Errorf("node-%s: exit after SIGTERM: %v\n%s", id, p.err, p.out.String())
			}
			if !strings.Contains(p.out.String(), "closing") {
				t.Errorf("node-%s did not say it was closing:\n%s", id, p.out.String())
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("node-%s did not exit after SIGTERM", id)
		}
	}
}

// freePorts reserves n loopback addresses.
func freePorts(t *testing.T, n int) []string {
	t.Helper()
	var out []string
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, l.Addr().String())
		l.Close()
	}
	return out
}

// writeCerts writes dir/ca.pem and dir/server.N.pem for n replicas on
// 127.0.0.1, as `zoo certs -dir dir -hosts 127.0.0.1,...` does.
func writeCerts(t *testing.T, dir string, n int) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	ca, err := certgen.NewCA("election CA", certgen.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := certgen.WriteFile(filepath.Join(dir, "ca.pem"), ca.CertPEM()); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= n; i++ {
		leaf, err := ca.Replica(fmt.Sprintf("replica %d", i), []string{"127.0.0.1"}, certgen.Options{})
		if err != nil {
			t.Fatal(err)
		}
		b, err := leaf.PEM()
		if err != nil {
			t.Fatal(err)
		}
		if err := certgen.WriteFile(filepath.Join(dir, fmt.Sprintf("server.%d.pem", i)), b); err != nil {
			t.Fatal(err)
		}
	}
}
