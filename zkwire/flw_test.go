package zkwire

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/zooraft/zoo"
	"github.com/zooraft/zoo/internal/testkit"
)

// word sends a four-letter word and returns the whole answer.
func word(t *testing.T, addr, w string) string {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := nc.Write([]byte(w)); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(nc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestFourLetterWords(t *testing.T) {
	t.Parallel()
	ens := openSingle(t)
	_, all := serve(t, ens, Config{FourLetterWords: []string{"*"}, Version: "3.9.4-test"})
	_, dflt := serve(t, ens, Config{})

	conn, _ := connectZK(t, []string{all}, 10*time.Second)
	if _, err := conn.Create("/flw", nil, zk.FlagEphemeral, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := conn.GetW("/flw"); err != nil {
		t.Fatal(err)
	}

	stats, ok := zk.FLWSrvr([]string{all}, 5*time.Second)
	if !ok || len(stats) != 1 || stats[0].Error != nil {
		t.Fatalf("FLWSrvr: %v %+v", ok, stats)
	}
	if s := stats[0]; s.Version != "3.9.4-test" || s.Mode != zk.ModeLeader || s.NodeCount < 4 ||
		s.Received < 2 || s.Connections < 1 || s.BuildTime.Year() != 2026 {
		t.Fatalf("FLWSrvr stats %+v", s)
	}
	if oks := zk.FLWRuok([]string{all, dflt}, 5*time.Second); !oks[0] || oks[1] {
		t.Fatalf("FLWRuok = %v, want [true false] (ruok is not whitelisted by default)", oks)
	}
	cons, ok := zk.FLWCons([]string{all}, 5*time.Second)
	if !ok || len(cons) != 1 || cons[0].Error != nil || len(cons[0].Clients) != 1 {
		t.Fatalf("FLWCons: %v %+v", ok, cons)
	}
	if cl := cons[0].Clients[0]; cl.SessionID != conn.SessionID() || cl.Received < 2 || cl.Timeout <= 0 {
		t.Fatalf("FLWCons client %+v, session %x", cl, conn.SessionID())
	}
	// The default whitelist serves srvr only.
	if _, ok := zk.FLWSrvr([]string{dflt}, 5*time.Second); !ok {
		t.Fatal("srvr is not served by default")
	}
	if got := word(t, dflt, "mntr"); got != "mntr is not executed because it is not in the whitelist.\n" {
		t.Fatalf("non-whitelisted mntr: %q", got)
	}

	for _, tc := range []struct{ word, want string }{
		{"ruok", "imok"},
		{"isro", "rw"},
		{"mntr", "zk_server_state\tleader\n"},
		{"mntr", "zk_version\t3.9.4-test, built on 11/26/2026 17:00 GMT\n"},
		{"mntr", "zk_ephemerals_count\t1\n"},
		{"mntr", "zk_digest_mismatches_count\t0\n"},
		{"mntr", "zk_log_ranges_storage_mismatches\t0\n"},
		{"envi", "zookeeper.version=3.9.4-test, built on"},
		{"stat", "Clients:\n /127.0.0.1:"},
		{"stat", "Mode: leader\n"},
		{"conf", "maxClientCnxns=60\n"},
		{"wchs", "1 connections watching 1 paths\nTotal watches:1\n"},
		{"wchc", "\t/flw\n"},
		{"wchp", "/flw\n\t0x"},
		{"dump", "\t/flw\n"},
		{"srst", "Server stats reset.\n"},
	} {
		if got := word(t, all, tc.word); !strings.Contains(got, tc.want) {
			t.Errorf("%s = %q, want it to contain %q", tc.word, got, tc.want)
		}
	}
}

// A replica cut off from its quorum says so and drops its clients, which
// fail over to a replica that serves.
func TestNotServing(t *testing.T) {
	t.Parallel()
	c := newCluster(t, Config{FourLetterWords: []string{"*"}})
	leader := c.WaitLeader()
	alone := (leader + 1) % 3
	raw := dialRaw(t, c.addrs[alone])
	raw.handshake()
	c.Isolate(alone)
	testkit.Eventually(t, 15*time.Second, "srvr says the replica is not serving", func() bool {
		return word(t, c.addrs[alone], "srvr") == notServing
	})
	raw.expectClosed()
	if got := word(t, c.addrs[alone], "isro"); got != "null" {
		t.Fatalf("isro on a replica that does not serve = %q", got)
	}
	// The majority keeps serving (a busy machine may cost it a brief election).
	testkit.Eventually(t, 15*time.Second, "srvr on the majority side shows a mode", func() bool {
		got := word(t, c.addrs[leader], "srvr")
		return strings.Contains(got, "Mode: leader\n") || strings.Contains(got, "Mode: follower\n")
	})
}

// mntr's digest_mismatches_count is 1 once the replica stopped because its
// tree diverged from the leader's, and for no other failure.
func TestDigestMismatchesCount(t *testing.T) {
	for _, tc := range []struct {
		failure error
		want    int64
	}{
		{nil, 0},
		{&zoo.CorruptionError{What: "the tree after log entry 9", Err: fmt.Errorf("%w: its digest is 1, the leader's 2", zoo.ErrDiverged)}, 1},
		{&zoo.CorruptionError{What: "log entry 9", Err: errors.New("checksum mismatch")}, 0},
		{&zoo.IdentityError{Member: "3", Reason: "wiped"}, 0},
	} {
		if got := digestMismatches(tc.failure); got != tc.want {
			t.Errorf("digestMismatches(%v) = %d, want %d", tc.failure, got, tc.want)
		}
	}
}
