package zkwire

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/zooraft/zoo"
	"github.com/zooraft/zoo/internal/jute"
	"github.com/zooraft/zoo/internal/testkit"
	"github.com/zooraft/zoo/zootest"
)

func reconfigBody(joining, leaving, members string, curConfigID int64) func(*jute.Writer) {
	return func(w *jute.Writer) {
		w.UString(joining)
		w.UString(leaving)
		w.UString(members)
		w.Long(curConfigID)
	}
}

// readConfig decodes a reconfig reply: the config text's lines and its version.
func readConfig(t *testing.T, rep rawReply) (lines []string, version int64) {
	t.Helper()
	text := string(rep.body.Buffer())
	_ = readStat(rep.body)
	if rep.body.Err != nil || len(rep.body.B) != 0 {
		t.Fatalf("reconfig reply does not decode as GetDataResponse: %v, %d bytes left", rep.body.Err, len(rep.body.B))
	}
	for _, l := range strings.Split(strings.TrimSpace(text), "\n") {
		if v, ok := strings.CutPrefix(l, "version="); ok {
			if _, err := fmt.Sscanf(v, "%x", &version); err != nil {
				t.Fatalf("version line %q", l)
			}
			continue
		}
		lines = append(lines, l)
	}
	if version == 0 {
		t.Fatalf("config %q has no version", text)
	}
	return lines, version
}

// members returns replica i's view of the membership as reconfig prints it.
func memberLines(t *testing.T, e *zoo.Ensemble) string {
	t.Helper()
	st, err := e.Status()
	if err != nil {
		t.Fatal(err)
	}
	return membershipText(st)
}

func TestReconfig(t *testing.T) {
	t.Parallel()
	super := zoo.DigestID("super", "secret")
	c := &cluster{Cluster: zootest.New(t, 3, zootest.Options{Configure: func(_ int, cfg *zoo.Config) { cfg.SuperDigest = super }})}
	for i := 0; i < 3; i++ {
		if err := c.Replica(i).WaitServing(testkit.Context(t)); err != nil {
			t.Fatal(err)
		}
		srv, addr := serve(t, c.Replica(i), Config{ReconfigEnabled: true})
		c.srvs = append(c.srvs, srv)
		c.addrs = append(c.addrs, addr)
	}
	leader := c.WaitLeader()
	here := (leader + 1) % 3 // the replica the client talks to
	other := (leader + 2) % 3

	cl := dialRaw(t, c.addrs[here])
	cl.handshake()
	add := reconfigBody("server.4=127.0.0.1:7004:7005:observer;7006", "", "", -1)
	if rep := cl.call(jute.OpReconfig, add); rep.err != zoo.CodeNoAuth {
		t.Fatalf("reconfig without the super user: err %d, want ZNOAUTH", rep.err)
	}
	auth := func(w *jute.Writer) { w.Int(0); w.UString("digest"); w.Buffer([]byte("super:secret")) }
	if rep := cl.call(jute.OpAuth, auth); rep.err != 0 {
		t.Fatalf("addauth: %d", rep.err)
	}

	rep := cl.call(jute.OpReconfig, add)
	if rep.err != 0 {
		t.Fatalf("reconfig add observer: err %d", rep.err)
	}
	lines, v1 := readConfig(t, rep)
	if !strings.Contains(strings.Join(lines, "\n"), "server.4=127.0.0.1:7004:observer") || len(lines) != 4 {
		t.Fatalf("config after adding an observer: %q", lines)
	}
	if got := memberLines(t, c.Replica(leader)); !strings.Contains(got, "server.4=127.0.0.1:7004:observer\n") {
		t.Fatalf("the leader's membership: %q", got)
	}

	t.Run("refused", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			body func(*jute.Writer)
			want zoo.Code
		}{
			{"stale version", reconfigBody("", "4", "", v1+1), zoo.CodeBadVersion},
			{"malformed server", reconfigBody("server.5=nonsense", "", "", -1), zoo.CodeBadArguments},
			{"not a server", reconfigBody("peer.5=127.0.0.1:1:2", "", "", -1), zoo.CodeBadArguments},
			{"both forms", reconfigBody("", "4", "server.1=127.0.0.1:1:2", -1), zoo.CodeBadArguments},
			{"unknown leaving", reconfigBody("", "9", "", -1), zoo.CodeBadArguments},
			{"joining and leaving", reconfigBody("server.4=127.0.0.1:7004:7005", "4", "", -1), zoo.CodeBadArguments},
			{"demotion", reconfigBody(fmt.Sprintf("server.%s=127.0.0.1:1:2:observer", c.ID(other)), "", "", -1), zoo.CodeBadArguments},
			{"no participant left", reconfigBody("", "1,2,3", "", -1), zoo.CodeBadArguments},
			{"mostly new participants", reconfigBody("server.5=127.0.0.1:1:2,server.6=127.0.0.1:3:4,server.7=127.0.0.1:5:6", "", "", -1),
				zoo.CodeNewConfigNoQuorum},
		} {
			if rep := cl.call(jute.OpReconfig, tc.body); rep.err != tc.want {
				t.Errorf("%s: err %d, want %d", tc.name, rep.err, tc.want)
			}
		}
	})

	rep = cl.call(jute.OpReconfig, reconfigBody("", "4", "", v1))
	if rep.err != 0 {
		t.Fatalf("reconfig remove observer at version %x: err %d", v1, rep.err)
	}
	lines, v2 := readConfig(t, rep)
	if len(lines) != 3 || v2 == v1 {
		t.Fatalf("config after removing the observer: %q version %x (was %x)", lines, v2, v1)
	}

	// A voter leaves: the ensemble goes on with two.
	rep = cl.call(jute.OpReconfig, reconfigBody("", c.ID(other), "", v2))
	if rep.err != 0 {
		t.Fatalf("reconfig remove voter %s: err %d", c.ID(other), rep.err)
	}
	if lines, _ := readConfig(t, rep); len(lines) != 2 {
		t.Fatalf("config after removing a voter: %q", lines)
	}

	// The non-incremental form is covered by TestPlanReconfig: zootest's
	// member addresses have no port, so no server.N line can keep them.
	if rep := cl.ping(); rep.err != 0 {
		t.Fatal("connection unusable after reconfig")
	}
}

func TestParseServerSpec(t *testing.T) {
	for _, tc := range []struct {
		spec string
		want memberSpec
	}{
		{"server.4=zoo4:2888:3888", memberSpec{id: "4", addr: "zoo4:2888"}},
		{"server.04=zoo4:2888:3888:participant;2181", memberSpec{id: "4", addr: "zoo4:2888"}},
		{" server.5 = 10.0.0.5:2888:3888:Observer;0.0.0.0:2181", memberSpec{id: "5", addr: "10.0.0.5:2888", observer: true}},
		{"server.6=[::1]:2888:3888;[::]:2181", memberSpec{id: "6", addr: "[::1]:2888"}},
	} {
		got, err := parseServerSpec(tc.spec)
		if err != nil || got != tc.want {
			t.Errorf("parseServerSpec(%q) = %+v, %v; want %+v", tc.spec, got, err, tc.want)
		}
	}
	for _, spec := range []string{
		"", "server.=h:1:2", "server.1", "server.1=h:1", "server.1=h:1:2:3:4", "server.1=h:0:2",
		"server.1=h:1:x", "server.1=:1:2", "server.1=h:1:2:leader", "server.1=h:1:2;", "server.1=h:1:2;a:b:c",
		"server.1=[::1:1:2", "node.1=h:1:2",
	} {
		if _, err := parseServerSpec(spec); !errors.Is(err, zoo.ErrBadArguments) {
			t.Errorf("parseServerSpec(%q): %v, want ErrBadArguments", spec, err)
		}
	}
}

func TestPlanReconfig(t *testing.T) {
	current := []zoo.Member{
		{ID: "1", Addr: "h1:1", Voter: true}, {ID: "2", Addr: "h2:1", Voter: true},
		{ID: "3", Addr: "h3:1", Voter: true}, {ID: "4", Addr: "h4:1"},
	}
	step := func(s memberStep) string {
		switch {
		case s.remove:
			return "-" + s.spec.id
		case s.spec.observer:
			return "+o" + s.spec.id + "@" + s.spec.addr
		}
		return "+v" + s.spec.id + "@" + s.spec.addr
	}
	for _, tc := range []struct {
		name                      string
		joining, leaving, members string
		want                      string // steps, or the error code
	}{
		{"nothing", "", "", "", ""},
		{"add observer", "server.5=h5:1:2:observer", "", "", "+o5@h5:1"},
		{"add voter", "server.5=h5:1:2", "", "", "+v5@h5:1"},
		{"promote observer", "server.4=h4:1:2", "", "", "+v4@h4:1"},
		{"unchanged member", "server.1=h1:1:9", "", "", ""},
		{"new address", "server.1=h1b:1:9", "", "", "+v1@h1b:1"},
		{"no participant left", "", "1,2,3 ,4", "", "error -8"},
		{"leader, then self, leave last", "server.5=h5:1:2:observer", "1,4,2", "", "+o5@h5:1 -4 -1 -2"},
		{"non-incremental", "", "", "server.1=h1:1:2,server.2=h2:1:2,server.4=h4:1:2,version=100", "+v4@h4:1 -3"},
		{"non-incremental drops self", "", "", "server.1=h1:1:2,server.3=h3:1:2", "-4 -2"},
		{"demote", "server.3=h3:1:2:observer", "", "", "error -8"},
		{"listed twice", "server.5=h5:1:2,server.5=h5:1:2", "", "", "error -8"},
		{"two new of five", "server.5=h5:1:2,server.6=h6:1:2", "", "", "+v5@h5:1 +v6@h6:1"},
		{"three new of six", "server.5=h5:1:2,server.6=h6:1:2,server.7=h7:1:2", "", "", "error -13"},
		{"one known of two", "server.5=h5:1:2", "2,3", "", "error -13"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			steps, err := planReconfig(current, "2", "1", tc.joining, tc.leaving, tc.members)
			var got []string
			for _, s := range steps {
				got = append(got, step(s))
			}
			gotS := strings.Join(got, " ")
			if err != nil {
				gotS = fmt.Sprintf("error %d", zoo.CodeOf(err))
			}
			if gotS != tc.want {
				t.Fatalf("plan = %q (%v), want %q", gotS, err, tc.want)
			}
		})
	}
}
