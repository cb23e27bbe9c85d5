package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zooraft/zoo/internal/realzk"
	"github.com/zooraft/zoo/internal/zkclient"
)

// runBenchJSON runs zoo bench with -json against servers and returns its report.
func runBenchJSON(t *testing.T, servers string, args ...string) benchReport {
	t.Helper()
	var out, errOut bytes.Buffer
	args = append([]string{"-server", servers, "-json", "-progress", "0", "-duration", "1s", "-warmup", "200ms"}, args...)
	if code := benchCmd(args, &out, &errOut); code != 0 {
		t.Fatalf("zoo bench %s: exit %d\n%s", strings.Join(args, " "), code, errOut.String())
	}
	var r benchReport
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("zoo bench -json: %v\n%s", err, out.String())
	}
	return r
}

// checkBench checks every operation of the mix ran without errors, with
// percentiles in order, and that the run left nothing behind.
func checkBench(t *testing.T, r benchReport, servers string, ops ...string) {
	t.Helper()
	got := map[string]benchResult{}
	for _, res := range r.Results {
		got[res.Op] = res
	}
	for _, op := range ops {
		res, ok := got[op]
		switch {
		case !ok || res.Ops == 0:
			t.Errorf("%s: no operations measured: %+v", op, r.Results)
		case res.Errors != 0:
			t.Errorf("%s: %d errors", op, res.Errors)
		case !(res.P50ms > 0 && res.P50ms <= res.P99ms && res.P99ms <= res.P999ms):
			t.Errorf("%s: percentiles out of order: %+v", op, res)
		}
	}
	c, err := zkclient.Connect(strings.Split(servers, ","), zkclient.Options{SessionTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if ok, _, err := c.Exists(ctx, "/zoo-bench", false); err != nil || ok {
		t.Errorf("/zoo-bench after the run: exists %v, %v", ok, err)
	}
}

func TestBenchDrivesZoo(t *testing.T) {
	e := startEnsemble(t, 3)
	servers := addrs(e, false)
	r := runBenchJSON(t, servers, "-mix", "get=40,set=30,create=20,ephemeral=10", "-callers", "8", "-connections", "3")
	checkBench(t, r, servers, "get", "set", "create", "ephemeral", "total")
	if r.Connections != 3 || r.Callers != 8 {
		t.Errorf("report: %d callers on %d connections, want 8 on 3", r.Callers, r.Connections)
	}
}

// zoo bench drives Apache ZooKeeper as well: the same shapes compare both.
func TestBenchDrivesZooKeeper(t *testing.T) {
	addr := realzk.Standalone(t, 200*time.Millisecond)
	r := runBenchJSON(t, addr, "-mix", "get=50,set=50", "-callers", "4")
	checkBench(t, r, addr, "get", "set", "total")
}

func TestBenchRefusesBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"-mix", "put=10"}, `unknown operation "put"`},
		{[]string{"-mix", "get=0"}, "all weights are 0"},
		{[]string{"-mix", "get=-1"}, "weight of 0 or more"},
		{[]string{"-callers", "0"}, "-callers 0"},
		{[]string{"-root", "/"}, "-root"},
		{[]string{"-value-size", "2000000"}, "-value-size"},
		{[]string{"extra"}, "unexpected argument"},
	} {
		var out, errOut bytes.Buffer
		if code := benchCmd(tc.args, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), tc.msg) {
			t.Errorf("zoo bench %s: exit %d, %q; want 2 and %q", strings.Join(tc.args, " "), code, errOut.String(), tc.msg)
		}
	}
}

// -compare starts both ensembles, runs each shape on each after a warm-up
// round, and prints one line per shape with the ratio; -failovers kills each
// leader and times the next write.
func TestBenchCompare(t *testing.T) {
	realzk.Need(t)
	var out, errOut bytes.Buffer
	args := []string{"-compare", "-rounds", "1", "-duration", "500ms", "-warmup", "0s", "-keys", "10",
		"-shapes", "set=1@2;get=90,set=10@4", "-fill", "1s", "-failovers", "1"}
	if code := benchCmd(args, &out, &errOut); code != 0 {
		t.Fatalf("zoo bench %s: exit %d\n%s", strings.Join(args, " "), code, errOut.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 11 || !strings.Contains(lines[5], "resident memory of the 3 servers after the run: zoo ") ||
		!strings.Contains(lines[5], "(ratio ") || !strings.Contains(lines[1], "zookeeper ops/s") || !strings.Contains(lines[1], "ratio") ||
		!strings.HasPrefix(lines[2], "set=1@2 ") || !strings.HasPrefix(lines[3], "get=90,set=10@4 ") ||
		!strings.HasPrefix(lines[6], "fill, create=1@256 for 1s: zoo ") || !strings.Contains(lines[6], "znodes; zookeeper ") ||
		!strings.HasPrefix(lines[7], "resident memory of the 3 servers with the filled trees: zoo ") ||
		!strings.HasPrefix(lines[8], "set=1@256 on the filled tree, median of 1: zoo ") ||
		!strings.HasPrefix(lines[9], "restart of all 3 members with the filled tree, to the first successful write: zoo ") ||
		!strings.HasPrefix(lines[10], "leader SIGKILL to the next successful write") || !strings.Contains(lines[10], " zoo ") ||
		!strings.Contains(lines[10], " zookeeper ") || !strings.Contains(lines[10], "(ratio ") {
		t.Fatalf("table:\n%s", out.String())
	}
	for _, l := range lines[2:4] {
		f := strings.Fields(l)
		ratio, err := strconv.ParseFloat(f[len(f)-2], 64)
		if err != nil || ratio <= 0 {
			t.Errorf("no ratio in %q", l)
		}
	}
}
