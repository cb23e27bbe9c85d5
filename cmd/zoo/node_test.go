package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zooraft/zoo/internal/testkit"
)

// node-zookeeper-client comes from npm: testdata/node/package.json pins it and
// package-lock.json pins what it pulls in. .ci/run installs it with
// `(cd cmd/zoo/testdata/node && npm ci)`; node_modules is never committed.
const (
	nodeDir    = "testdata/node"
	nodeClient = nodeDir + "/node_modules/node-zookeeper-client/package.json"
)

// needNodeClient finds node and the installed node-zookeeper-client 1.x,
// failing in CI (which installs both) and skipping elsewhere.
func needNodeClient(t *testing.T) string {
	t.Helper()
	node := needTool(t, "/usr/bin/node", "nodejs")
	b, err := os.ReadFile(nodeClient)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s missing in CI: .ci/run must run (cd cmd/zoo/%s && npm ci)", nodeClient, nodeDir)
		}
		t.Skipf("node-zookeeper-client not installed: (cd cmd/zoo/%s && npm ci --no-audit --no-fund)", nodeDir)
	}
	var pkg struct{ Version string }
	if err := json.Unmarshal(b, &pkg); err != nil || !strings.HasPrefix(pkg.Version, "1.") {
		t.Fatalf("%s: want node-zookeeper-client 1.x, have %q (%v)", nodeClient, pkg.Version, err)
	}
	return node
}

var (
	nodeSessionLine  = regexp.MustCompile(`(?m)^(Identificação: )([0-9a-f]{16})$`)
	nodeChildrenLine = regexp.MustCompile(`(?m)^(Filhos de \S+ são: )(\[.*\])\.$`)
)

// normalizeNode blanks the session id (after checking it is one) and sorts
// listed children: ZooKeeper returns them in no particular order.
func normalizeNode(t *testing.T, out string) string {
	t.Helper()
	out = nodeSessionLine.ReplaceAllStringFunc(out, func(line string) string {
		m := nodeSessionLine.FindStringSubmatch(line)
		if m[2] == "0000000000000000" {
			t.Errorf("session id 0: %q", line)
		}
		return m[1] + "SESSION"
	})
	return nodeChildrenLine.ReplaceAllStringFunc(out, func(line string) string {
		m := nodeChildrenLine.FindStringSubmatch(line)
		var children []string
		if err := json.Unmarshal([]byte(m[2]), &children); err != nil {
			t.Errorf("children in %q: %v", line, err)
			return line
		}
		slices.Sort(children)
		b, _ := json.Marshal(children)
		return m[1] + string(b) + "."
	})
}

// runNode runs one script from testdata/node with env added to the
// environment, and returns its normalized standard output.
func runNode(t *testing.T, node string, env []string, script string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, append([]string{script}, args...)...)
	cmd.Dir = nodeDir
	cmd.Env = append(os.Environ(), env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node %s %v: %v\nstdout:\n%s\nstderr:\n%s", script, args, err, out, stderr.String())
	}
	return normalizeNode(t, string(out))
}

// Seed 002: the user's meunode.js and listarnode.js (connection string from
// ZK_HOSTS instead of inline) against a 3-member ensemble given all three
// addresses, then a watch and an ephemeral node across members, then the
// seed's claim that the scripts go on working with a member stopped. The
// expected output is what the same scripts print against ZooKeeper 3.8.
func TestNodeClientScriptsSurviveAStoppedMember(t *testing.T) {
	node := needNodeClient(t)
	e := startEnsemble(t, 3)
	all := []string{"ZK_HOSTS=" + e.hosts()}
	created := func(path string) string {
		return "Estado Atual: DISCONNECTED[0]\nTempo da Sessão: 30000\nConectado ao servidor.\n" +
			"Estado Atual: SYNC_CONNECTED[3]\nIdentificação: SESSION\nNode: " + path + " is criado corretamente.\n"
	}
	listed := func(path, children string) string {
		return "Conectado ao ZooKeeper.\nFilhos de " + path + " são: " + children + ".\n"
	}
	steps := []struct {
		env    []string
		script string
		arg    string
		want   string
	}{
		{all, "meunode.js", "/teste", created("/teste")},
		{all, "meunode.js", "/teste/teste2", created("/teste/teste2")},
		{all, "listarnode.js", "/teste", listed("/teste", `["teste2"]`)},
		{all, "meunode.js", "/teste", "Estado Atual: DISCONNECTED[0]\nTempo da Sessão: 30000\nConectado ao servidor.\n" +
			"Estado Atual: SYNC_CONNECTED[3]\nIdentificação: SESSION\nFalhou para criar o node: /teste para: Exception: NODE_EXISTS[-110].\n"},
		{[]string{"ZK_WATCHER_HOSTS=" + e.members[0].clientAddr, "ZK_OWNER_HOSTS=" + e.members[1].clientAddr},
			"watchnode.js", "/teste/vigia", `both clients connected
watcher: children of /teste/vigia: ["fixo"]
owner: created /teste/vigia/efemero
watcher: event NODE_CHILDREN_CHANGED[4]@/teste/vigia
watcher: children of /teste/vigia: ["efemero","fixo"]
watcher: /teste/vigia/efemero holds vivo, ephemeral owner is the owner's session: true
owner: closed
watcher: event NODE_DELETED[2]@/teste/vigia/efemero
watcher: event NODE_CHILDREN_CHANGED[4]@/teste/vigia
watcher: /teste/vigia/efemero exists: false
watcher: children of /teste/vigia: ["fixo"]
`},
		{all, "listarnode.js", "/teste", listed("/teste", `["teste2","vigia"]`)},
	}
	for _, s := range steps {
		if got := runNode(t, node, s.env, s.script, s.arg); got != s.want {
			t.Fatalf("node %s %s printed:\n%s\nwant (as against ZooKeeper):\n%s", s.script, s.arg, got, s.want)
		}
	}

	// "Podemos parar qualquer um dos contêineres": stop the leader; the same
	// connection string, dead member included, still works.
	leader := e.leader()
	if leader == nil {
		t.Fatal("no leader")
	}
	e.stop(leader, syscall.SIGTERM)
	testkit.Eventually(e.t, 30*time.Second, "a new leader", func() bool { return e.leader() != nil })
	if got, want := runNode(t, node, all, "meunode.js", "/teste/teste3"), created("/teste/teste3"); got != want {
		t.Fatalf("meunode.js with the leader stopped printed:\n%s\nwant:\n%s", got, want)
	}
	if got, want := runNode(t, node, all, "listarnode.js", "/teste"), listed("/teste", `["teste2","teste3","vigia"]`); got != want {
		t.Fatalf("listarnode.js with the leader stopped printed:\n%s\nwant:\n%s", got, want)
	}
}
