package main

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zooraft/zoo/internal/testkit"
)

// These tests run `zoo server` as real OS processes (the test binary re-runs
// itself as the zoo command) from ZooKeeper-style zoo.cfg files, and drive
// them with the tools our users already have: four-letter words over the
// client port, zkCli.sh from Debian's zookeeper package and kazoo from
// python3-kazoo. .ci/run installs both; outside CI a missing tool skips its test.

const execEnv = "ZOO_CMD_TEST_EXEC"

func TestMain(m *testing.M) {
	if os.Getenv(execEnv) == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	// zoo bench -compare starts `zoo server` processes: this binary, as zoo.
	zooCommand = func(args ...string) (*exec.Cmd, error) {
		exe, err := os.Executable()
		if err != nil {
			return nil, err
		}
		cmd := exec.Command(exe, args...)
		cmd.Env = append(os.Environ(), execEnv+"=1")
		return cmd, nil
	}
	os.Exit(m.Run())
}

// member is one `zoo server` process.
type member struct {
	id         int
	cfg        string
	clientAddr string
	secureAddr string // the secureClientPort's address, if extra lines set one
	// tls, if set, is how mode asks secureAddr, for a member without a
	// plain client port.
	tls *tls.Config
	cmd *exec.Cmd
	log string
}

// ensemble is a set of zoo server processes sharing one zoo.cfg template.
type ensemble struct {
	t       testing.TB
	dir     string
	members []*member
}

// freePorts reserves n loopback ports (below the ephemeral range, so no
// outgoing connection takes one before its server binds it).
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	return testkit.FreePorts(t, n)
}

// startEnsemble writes n configs from ZooKeeper's usual template (as seed 004
// does) and starts every member.
func startEnsemble(t testing.TB, n int) *ensemble {
	t.Helper()
	return startEnsembleWith(t, n, nil)
}

// startEnsembleWith is startEnsemble with extra zoo.cfg lines per member;
// extra gets the member's id and a free port for its secureClientPort.
func startEnsembleWith(t testing.TB, n int, extra func(id, securePort int) string) *ensemble {
	t.Helper()
	e := writeEnsemble(t, n, extra)
	e.startAll()
	return e
}

// writeEnsemble writes the configs and myid files of startEnsembleWith
// without starting anything.
func writeEnsemble(t testing.TB, n int, extra func(id, securePort int) string) *ensemble {
	t.Helper()
	ports := freePorts(t, 4*n)
	e := &ensemble{t: t, dir: t.TempDir()}
	var servers strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&servers, "server.%d=localhost:%d:%d\n", i, ports[4*(i-1)], ports[4*(i-1)+1])
	}
	for i := 1; i <= n; i++ {
		dataDir := filepath.Join(e.dir, strconv.Itoa(i))
		if err := os.MkdirAll(dataDir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dataDir, "myid"), []byte(fmt.Sprintf("%d\n", i)), 0o644); err != nil {
			t.Fatal(err)
		}
		clientPort, securePort := ports[4*(i-1)+2], ports[4*(i-1)+3]
		cfg := servers.String() + fmt.Sprintf(`syncLimit=5
initLimit=10
tickTime=200
quorumListenOnAllIPs=true
clientPort=%d
autopurge.purgeInterval=24
dataDir=%s
autopurge.snapRetainCount=10
4lw.commands.whitelist=*
admin.enableServer=false
`, clientPort, dataDir)
		m := &member{id: i, clientAddr: fmt.Sprintf("127.0.0.1:%d", clientPort),
			log: filepath.Join(e.dir, fmt.Sprintf("zoo.%d.log", i))}
		if extra != nil {
			more := extra(i, securePort)
			cfg += more
			if strings.Contains(more, "secureClientPort=") {
				m.secureAddr = fmt.Sprintf("127.0.0.1:%d", securePort)
			}
		}
		m.cfg = filepath.Join(e.dir, fmt.Sprintf("zoo.%d.cfg", i))
		if err := os.WriteFile(m.cfg, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		e.members = append(e.members, m)
	}
	t.Cleanup(e.killAll)
	return e
}

// startAll starts every member and waits for a leader and all followers.
func (e *ensemble) startAll() {
	e.t.Helper()
	n := len(e.members)
	for _, m := range e.members {
		e.start(m)
	}
	testkit.Eventually(e.t, 60*time.Second, "a leader and all followers", func() bool {
		leaders, followers := 0, 0
		for _, m := range e.members {
			switch mode(m) {
			case "leader":
				leaders++
			case "follower":
				followers++
			}
		}
		return leaders == 1 && followers == n-1
	})
}

func (e *ensemble) start(m *member) {
	e.t.Helper()
	self, err := os.Executable()
	if err != nil {
		e.t.Fatal(err)
	}
	logf, err := os.OpenFile(m.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		e.t.Fatal(err)
	}
	defer logf.Close()
	m.cmd = exec.Command(self, "server", "--config", m.cfg)
	m.cmd.Env = append(os.Environ(), execEnv+"=1")
	m.cmd.Stdout, m.cmd.Stderr = logf, logf
	if err := m.cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
}

// stop sends sig and waits for the process to end.
func (e *ensemble) stop(m *member, sig syscall.Signal) {
	e.t.Helper()
	if m.cmd == nil {
		return
	}
	m.cmd.Process.Signal(sig)
	done := make(chan error, 1)
	go func() { done <- m.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		m.cmd.Process.Kill()
		<-done
		e.t.Errorf("member %d did not exit within 30s of %v", m.id, sig)
	}
	m.cmd = nil
}

func (e *ensemble) killAll() {
	for _, m := range e.members {
		if m.cmd != nil {
			m.cmd.Process.Kill()
			m.cmd.Wait()
			m.cmd = nil
		}
	}
	if e.t.Failed() {
		for _, m := range e.members {
			b, _ := os.ReadFile(m.log)
			lines := strings.Split(strings.TrimSpace(string(b)), "\n")
			e.t.Logf("--- member %d log (last lines):\n%s", m.id, strings.Join(lines[max(0, len(lines)-15):], "\n"))
		}
	}
}

// fourLetters sends a four-letter word to a member's client port, like `echo stat | nc`.
func fourLetters(addr, word string) string {
	lines, err := fourLetterWord(addr, word, nil)
	if err != nil {
		return ""
	}
	return strings.Join(lines, "\n")
}

// mode reads "Mode: ..." from stat, or "" (not answering, or not serving).
func mode(m *member) string {
	var answer string
	if m.tls != nil {
		lines, _ := fourLetterWord(m.secureAddr, "stat", m.tls)
		answer = strings.Join(lines, "\n")
	} else {
		answer = fourLetters(m.clientAddr, "stat")
	}
	sc := bufio.NewScanner(strings.NewReader(answer))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "Mode: "); ok {
			return v
		}
	}
	return ""
}

func (e *ensemble) leader() *member {
	for _, m := range e.members {
		if m.cmd != nil && mode(m) == "leader" {
			return m
		}
	}
	return nil
}

// Seed 004: a 5-member ensemble loses its leader to TERM, then its next leader
// to KILL, keeps serving with 3, and stops serving when a third member dies.
func TestFiveMembersServeUntilAThirdDies(t *testing.T) {
	e := startEnsemble(t, 5)
	first := e.leader()
	if first == nil {
		t.Fatal("no leader")
	}
	stat := fourLetters(first.clientAddr, "stat")
	for _, want := range []string{"Zookeeper version: ", "Latency min/avg/max: ", "Received: ", "Sent: ",
		"Connections: ", "Outstanding: ", "Zxid: 0x", "Mode: leader", "Node count: "} {
		if !strings.Contains(stat, want) {
			t.Fatalf("stat lacks %q:\n%s", want, stat)
		}
	}

	e.stop(first, syscall.SIGTERM)
	var second *member
	testkit.Eventually(e.t, 30*time.Second, "a new leader after TERM", func() bool { second = e.leader(); return second != nil })

	e.stop(second, syscall.SIGKILL)
	var third *member
	testkit.Eventually(e.t, 30*time.Second, "a new leader after KILL", func() bool { third = e.leader(); return third != nil })

	// Three of five left: still a quorum. Take one more, leader or not.
	var victim *member
	for _, m := range e.members {
		if m.cmd != nil && m != third {
			victim = m
			break
		}
	}
	e.stop(victim, syscall.SIGKILL)
	for _, m := range e.members {
		if m.cmd == nil {
			continue
		}
		testkit.Eventually(e.t, 30*time.Second, fmt.Sprintf("member %d to say it is not serving", m.id), func() bool {
			return strings.TrimSpace(fourLetters(m.clientAddr, "stat")) == "This ZooKeeper instance is not currently serving requests"
		})
	}
}

// needTool finds an external client, failing in CI (which installs it) and
// skipping elsewhere.
func needTool(t testing.TB, path, pkg string) string {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s missing in CI: .ci/run must install %s", path, pkg)
		}
		t.Skipf("%s not installed (apt-get install %s)", path, pkg)
	}
	return path
}
