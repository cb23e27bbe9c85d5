package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/zooraft/zoo"
	"github.com/zooraft/zoo/internal/testkit"
	"github.com/zooraft/zoo/zkwire"
	"github.com/zooraft/zoo/zootest"
)

// Tests of the session itself: read-only mode (-r), connection loss and
// expiry, as zkCli.sh shows them.

// readOnlyScript exercises every kind of command on a read-only server.
const readOnlyScript = `ls /
create /x
get /ro
set /ro x
delete /ro
sync /
getEphemerals
getAllChildrenNumber /
whoami
addWatch /ro
removewatches /ro
get -w /ro
removewatches /ro -d
create -e /y
stat /ro
`

// readOnlyTranscript is what zkCli.sh -r printed for readOnlyScript on a
// real ZooKeeper 3.8 member cut off from its ensemble (readonlymode.enabled,
// localSessionsEnabled): reads work, writes and sync fail with
// NotReadOnly, and the client's own watch-removed events say SyncConnected.
var readOnlyTranscript = "\nWATCHER::\n\nWatchedEvent state:ConnectedReadOnly type:None path:null\n" +
	"[ro, zookeeper]\nNot a read-only call: /x\nv\nNot a read-only call: /ro\nNot a read-only call: /ro\n" +
	"Sync has failed. rc=-119\n[]\n4\nAuth scheme: User\nip: 127.0.0.1\n" + event("PersistentWatchRemoved", "/ro") +
	"v\n" + event("DataWatchRemoved", "/ro") + "Not a read-only call: /y\n" + stat("Z1", "Z1", "Z1", 0, 0, 0, "0x0", 1, 0)

// readOnlyCluster is a 3-replica zoo ensemble serving ZooKeeper clients
// with read-only mode on, with one replica cut off from the others; it
// returns that replica's client address and heal, which reconnects it.
func readOnlyCluster(t *testing.T) (c *zootest.Cluster, addr string, heal func()) {
	t.Helper()
	c = zootest.New(t, 3, zootest.Options{})
	var addrs []string
	for i := 0; i < 3; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := c.Replica(i).WaitServing(ctx)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		srv, err := zkwire.NewServer(c.Replica(i), zkwire.Config{ReadOnlyMode: true})
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Close() })
		addrs = append(addrs, ln.Addr().String())
	}
	alone := (c.WaitLeader() + 1) % 3
	addr = addrs[alone]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Written through the replica to be cut off: it has the node before
	// its isolation.
	if _, err := adminConn(t, addr).Create(ctx, "/ro", []byte("v"), zoo.ModePersistent, nil); err != nil {
		t.Fatal(err)
	}
	c.Isolate(alone)
	testkit.Eventually(t, 30*time.Second, "the cut-off replica turns read-only", func() bool { return fourLetters(addr, "isro") == "ro" })
	return c, addr, func() {
		c.Heal()
		testkit.Eventually(t, 30*time.Second, "the replica serves again", func() bool { return fourLetters(addr, "isro") == "rw" })
	}
}

func TestCliReadOnly(t *testing.T) {
	_, addr, heal := readOnlyCluster(t)

	t.Run("script", func(t *testing.T) {
		out, code := runZooCli(addr, readOnlyScript, "-r")
		if got := normalizeCliOutput(out); got != readOnlyTranscript || code != 0 {
			t.Errorf("exit %d, transcript:\n%s\n--- want (exit 0)\n%s", code, got, readOnlyTranscript)
		}
	})
	t.Run("script through zkCli.sh", func(t *testing.T) {
		cli := needTool(t, zkCli, "zookeeper")
		out, code := runZkCli(t, cli, addr, readOnlyScript, "-r")
		got, gotEvents := splitEvents(normalizeCliOutput(out))
		want, wantEvents := splitEvents(readOnlyTranscript)
		if got != want || gotEvents != wantEvents || code != 0 {
			t.Errorf("exit %d, zkCli.sh transcript without events:\n%s\n--- want (exit 0)\n%s\n--- events\n%s\n--- want\n%s\n--- raw\n%s",
				code, got, want, gotEvents, wantEvents, out)
		}
	})
	t.Run("without -r", func(t *testing.T) {
		// The server closes a connection that cannot be read-only: no
		// session, and requests fail as with no server at all.
		out, code := runZooCli(addr, "ls /\n")
		if want := "KeeperErrorCode = ConnectionLoss for /\n"; normalizeCliOutput(out) != want || code != 1 {
			t.Errorf("exit %d, output:\n%s\nwant exit 1 and\n%s", code, out, want)
		}
	})
	t.Run("prompt and back to read-write", func(t *testing.T) {
		var out syncBuffer
		sh := &cliShell{con: &console{out: &out, err: &out}, host: addr, timeout: 10 * time.Second, readOnly: true,
			history: map[int]string{}}
		sh.printWatches.Store(true)
		if _, ok := sh.start(true); !ok {
			t.Fatalf("no session:\n%s", out.String())
		}
		defer sh.closeSession(false)
		if got, want := sh.prompt(), "[zk: "+addr+"(CONNECTEDREADONLY) 0] "; got != want {
			t.Errorf("prompt %q, want %q", got, want)
		}
		sh.exec(tokenize("create /rw"))
		heal()
		// The server drops its read-only connections when it serves
		// again; the client comes back read-write.
		testkit.Eventually(t, 30*time.Second, "a read-write session", func() bool { return sh.state() == "CONNECTED" })
		if got, want := sh.prompt(), "[zk: "+addr+"(CONNECTED) 0] "; got != want {
			t.Errorf("prompt %q, want %q", got, want)
		}
		sh.exec(tokenize("create /rw"))
		want := "Connecting to " + addr + "\n\nWATCHER::\n\nWatchedEvent state:ConnectedReadOnly type:None path:null\n" +
			"Not a read-only call: /rw\n\nWATCHER::\n\nWatchedEvent state:Disconnected type:None path:null\n" +
			syncConnectedEvent + "Created /rw\n"
		if got := out.String(); got != want {
			t.Errorf("transcript:\n%s\n--- want\n%s", got, want)
		}
	})
}

// pipedCli is `zoo cli` reading commands as the test writes them.
type pipedCli struct {
	t    *testing.T
	in   *io.PipeWriter
	out  *syncBuffer
	seen int // output offset up to which expectations were met
	exit chan int
}

func startPipedCli(t *testing.T, args ...string) *pipedCli {
	t.Helper()
	pr, pw := io.Pipe()
	p := &pipedCli{t: t, in: pw, out: &syncBuffer{}, exit: make(chan int, 1)}
	go func() { p.exit <- runCli(args, pr, p.out, p.out) }()
	t.Cleanup(func() { pw.Close() })
	return p
}

// run types a command line.
func (p *pipedCli) run(line string) {
	p.t.Helper()
	if _, err := io.WriteString(p.in, line+"\n"); err != nil {
		p.t.Fatal(err)
	}
}

// expect waits for what to be printed after what was expected before.
func (p *pipedCli) expect(what string) {
	p.t.Helper()
	testkit.Eventually(p.t, 30*time.Second, fmt.Sprintf("output %q after offset %d; output:\n%s", what, p.seen, p.out.String()), func() bool {
		out := p.out.String()
		if i := strings.Index(out[p.seen:], what); i >= 0 {
			p.seen += i + len(what)
			return true
		}
		return false
	})
}

// end closes stdin and returns the exit code.
func (p *pipedCli) end() int {
	p.t.Helper()
	p.in.Close()
	select {
	case code := <-p.exit:
		return code
	case <-time.After(30 * time.Second):
		p.t.Fatal("zoo cli did not end at the end of its input")
		return -1
	}
}

// The server goes away and the session expires meanwhile: zkCli shows
// Disconnected, then Expired when the client reaches a server again, then
// refuses commands ("Not connected") until connect opens a new session,
// closing the dead one without a Closed event. Checked against zkCli.sh and
// a real ZooKeeper 3.8 stopped with SIGSTOP for longer than the session
// timeout.
func TestCliDisconnectedAndExpired(t *testing.T) {
	ens, err := zoo.Open(zoo.Config{TickTime: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ens.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := ens.WaitServing(ctx); err != nil {
		t.Fatal(err)
	}
	serve := func(addr string) *zkwire.Server {
		t.Helper()
		srv, err := zkwire.NewServer(ens, zkwire.Config{})
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Close() })
		return srv
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	srv := serve(addr)
	admin, err := ens.NewSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	p := startPipedCli(t, "-server", addr, "-timeout", "1000")
	p.expect(syncConnectedEvent)
	p.run("create -e /eph x")
	p.expect("Created /eph\n")
	srv.Close()
	p.expect("\nWATCHER::\n\nWatchedEvent state:Disconnected type:None path:null\n")
	testkit.Eventually(t, 30*time.Second, "the session's expiry", func() bool {
		ok, _, err := admin.Exists(ctx, "/eph")
		return err == nil && !ok
	})
	serve(addr)
	p.expect("\nWATCHER::\n\nWatchedEvent state:Expired type:None path:null\n")
	p.run("ls /")
	p.expect("Not connected\n")
	p.run("connect " + addr)
	p.expect(syncConnectedEvent)
	p.run("ls /")
	p.expect("[zookeeper]\n")
	if code := p.end(); code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
	if rest := p.out.String()[p.seen:]; rest != "" {
		t.Errorf("unexpected output at the end: %q", rest)
	}
	if got := p.out.String(); strings.Contains(got, "state:Closed") {
		t.Errorf("a Closed event for the expired session:\n%s", got)
	}
}
