package zkclient

import (
	"bufio"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zooraft/zoo"
	"github.com/zooraft/zoo/internal/jute"
	"github.com/zooraft/zoo/internal/testkit"
)

// fakeServer speaks just enough of the protocol to misbehave on purpose:
// serveConn runs for the n-th connection (from 0) after a valid handshake.
type fakeServer struct {
	ln    net.Listener
	addr  string
	conns atomic.Int32
	wg    sync.WaitGroup
}

// fakeConn is one accepted connection with helpers.
type fakeConn struct {
	nc net.Conn
	br *bufio.Reader
}

// request reads one request frame and returns its xid and opcode.
func (f *fakeConn) request() (xid, op int32, body []byte, err error) {
	frame, err := jute.ReadFrame(f.br, 1<<20)
	if err != nil {
		return 0, 0, nil, err
	}
	r := jute.NewReader(frame)
	xid, op = r.Int(), r.Int()
	return xid, op, r.Rest(), r.Err
}

// requestNotPing reads requests until one that is not a ping.
func (f *fakeConn) requestNotPing() (xid, op int32, err error) {
	for {
		xid, op, _, err = f.request()
		if err != nil || op != jute.OpPing {
			return xid, op, err
		}
		f.reply(jute.XidPing, 0, nil)
	}
}

func (f *fakeConn) reply(xid int32, code zoo.Code, body func(w *jute.Writer)) {
	w := jute.NewFrame(64)
	w.ReplyHeader(xid, 1, code)
	if body != nil {
		body(w)
	}
	f.nc.Write(w.Frame())
}

func (f *fakeConn) raw(b []byte) { f.nc.Write(b) }

// startFake serves connections: handshake, then serveConn (nil: answer
// nothing). timeoutMs is the negotiated session timeout it announces.
func startFake(t *testing.T, timeoutMs int32, serveConn func(n int, f *fakeConn)) *fakeServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &fakeServer{ln: ln, addr: ln.Addr().String()}
	t.Cleanup(func() {
		ln.Close()
		s.wg.Wait()
	})
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			n := int(s.conns.Add(1) - 1)
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer nc.Close()
				f := &fakeConn{nc: nc, br: bufio.NewReader(nc)}
				frame, err := jute.ReadFrame(f.br, 1<<20)
				if err != nil {
					return
				}
				req, err := jute.ReadConnectRequest(frame)
				if err != nil {
					t.Errorf("client sent a bad ConnectRequest: %v", err)
					return
				}
				if req.ProtocolVersion != 0 || !req.HasReadOnly || len(req.Passwd) != 16 {
					t.Errorf("ConnectRequest %+v", req)
				}
				if serveConn == nil {
					return
				}
				f.raw(jute.ConnectResponse{TimeOut: timeoutMs, SessionID: 0x77, Passwd: make([]byte, 16)}.Frame())
				serveConn(n, f)
				// Drain until the client goes, so closing is its decision.
				nc.SetReadDeadline(time.Now().Add(5 * time.Second))
				for {
					xid, op, _, err := f.request()
					if err != nil {
						return
					}
					switch op {
					case jute.OpPing:
						f.reply(jute.XidPing, 0, nil)
					case jute.OpCloseSession:
						f.reply(xid, 0, nil)
						return
					}
				}
			}()
		}
	}()
	return s
}

// getDataReply is a well-formed getData reply body.
func getDataReply(w *jute.Writer) {
	w.Buffer([]byte("ok"))
	w.Stat(zoo.Stat{Version: 3})
}

// Malformed or out-of-order replies never panic the client: the request
// fails with zoo.ErrConnectionLoss, the connection is dropped, and the
// client goes on with the next connection, which here behaves.
func TestMalformedReplies(t *testing.T) {
	t.Parallel()
	prefix := func(n int32) []byte { return binary.BigEndian.AppendUint32(nil, uint32(n)) }
	for _, tc := range []struct {
		name    string
		op      func(c *Conn) error // the request the server answers badly
		bad     func(f *fakeConn, xid int32)
		firstOK bool // the bad frame follows a good reply
	}{
		{"wrong xid", nil, func(f *fakeConn, xid int32) { f.reply(xid+5, 0, getDataReply) }, false},
		{"reply with nothing pending", nil, func(f *fakeConn, xid int32) {
			f.reply(xid, 0, getDataReply)
			f.reply(xid+1, 0, getDataReply)
		}, true},
		{"short header", nil, func(f *fakeConn, _ int32) { f.raw(append(prefix(5), 1, 2, 3, 4, 5)) }, false},
		{"negative length", nil, func(f *fakeConn, _ int32) { f.raw(prefix(-7)) }, false},
		{"huge length", nil, func(f *fakeConn, _ int32) { f.raw(append(prefix(1<<30), 1, 2, 3)) }, false},
		{"truncated frame", nil, func(f *fakeConn, xid int32) {
			f.raw(append(prefix(100), 0, 0, 0, 1))
			f.nc.Close()
		}, false},
		{"buffer beyond the frame", nil, func(f *fakeConn, xid int32) {
			f.reply(xid, 0, func(w *jute.Writer) { w.Int(1 << 20) })
		}, false},
		{"stat cut short", nil, func(f *fakeConn, xid int32) {
			f.reply(xid, 0, func(w *jute.Writer) { w.Buffer([]byte("x")); w.Long(1) })
		}, false},
		{"garbage notification", nil, func(f *fakeConn, xid int32) {
			f.reply(jute.XidNotification, 0, func(w *jute.Writer) { w.Int(3) })
		}, false},
		{"random bytes", nil, func(f *fakeConn, xid int32) {
			b := make([]byte, 64)
			for i := range b {
				b[i] = byte(rand.IntN(256))
			}
			f.raw(append(prefix(int32(len(b))), b...))
			f.raw(b)
		}, false},
		{"children with a huge count", func(c *Conn) error {
			_, err := c.Children(testkit.Context(t), "/", false)
			return err
		}, func(f *fakeConn, xid int32) {
			f.reply(xid, 0, func(w *jute.Writer) { w.Int(1<<31 - 1); w.UString("a") })
		}, false},
		{"whoAmI with a huge count", func(c *Conn) error {
			_, err := c.WhoAmI(testkit.Context(t))
			return err
		}, func(f *fakeConn, xid int32) {
			f.reply(xid, 0, func(w *jute.Writer) { w.Int(1 << 28) })
		}, false},
		{"acl cut short", func(c *Conn) error {
			_, _, err := c.GetACL(testkit.Context(t), "/")
			return err
		}, func(f *fakeConn, xid int32) {
			f.reply(xid, 0, func(w *jute.Writer) { w.Int(2); w.Int(31); w.UString("world") })
		}, false},
		{"multi with an unknown result type", func(c *Conn) error {
			_, err := c.Multi(testkit.Context(t), zoo.CheckOp{Path: "/", Version: -1})
			return err
		}, func(f *fakeConn, xid int32) {
			f.reply(xid, 0, func(w *jute.Writer) { w.MultiHeader(77, false, 0); w.MultiHeader(-1, true, -1) })
		}, false},
		{"multi with too few results", func(c *Conn) error {
			_, err := c.Multi(testkit.Context(t), zoo.CheckOp{Path: "/", Version: -1}, zoo.CheckOp{Path: "/", Version: -1})
			return err
		}, func(f *fakeConn, xid int32) {
			f.reply(xid, 0, func(w *jute.Writer) { w.MultiHeader(jute.OpCheck, false, 0); w.MultiHeader(-1, true, -1) })
		}, false},
		{"multi without its done header", func(c *Conn) error {
			_, err := c.Multi(testkit.Context(t), zoo.CheckOp{Path: "/", Version: -1})
			return err
		}, func(f *fakeConn, xid int32) {
			f.reply(xid, 0, func(w *jute.Writer) { w.MultiHeader(jute.OpCheck, false, 0) })
		}, false},
		{"multiRead with a bad result", func(c *Conn) error {
			_, err := c.MultiRead(testkit.Context(t), zoo.GetDataOp{Path: "/"})
			return err
		}, func(f *fakeConn, xid int32) {
			f.reply(xid, 0, func(w *jute.Writer) { w.MultiHeader(jute.OpGetData, false, 0); w.Int(-5) })
		}, false},
		{"create with a truncated path", func(c *Conn) error {
			_, _, err := c.CreateWithStat(testkit.Context(t), zoo.CreateOp{Path: "/x"})
			return err
		}, func(f *fakeConn, xid int32) {
			f.reply(xid, 0, func(w *jute.Writer) { w.Int(50); w.B = append(w.B, "/x"...) })
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			op := tc.op
			if op == nil {
				op = func(c *Conn) error {
					_, _, err := c.Get(testkit.Context(t), "/", false)
					return err
				}
			}
			srv := startFake(t, 10000, func(n int, f *fakeConn) {
				xid, _, err := f.requestNotPing()
				if err != nil {
					return
				}
				if n == 0 {
					tc.bad(f, xid)
					return
				}
				// Later connections answer properly: a getData reply
				// fits every op that reads nothing from a successful
				// reply... so answer with an error code instead.
				f.reply(xid, zoo.CodeNoAuth, nil)
			})
			c, r := connect(t, []string{srv.addr}, Options{})
			if err := op(c); tc.firstOK && err != nil {
				t.Fatalf("request answered well: %v", err)
			} else if !tc.firstOK && !errors.Is(err, zoo.ErrConnectionLoss) {
				t.Fatalf("request answered badly: %v, want ErrConnectionLoss", err)
			}
			testkit.Eventually(t, waitLong, "reconnected", func() bool { return r.count(StateConnected) >= 2 && c.State() == StateConnected })
			if err := op(c); !errors.Is(err, zoo.ErrNoAuth) {
				t.Fatalf("request on the next connection: %v", err)
			}
			if got := r.count(StateDisconnected); got != 1 {
				t.Fatalf("%d Disconnected events", got)
			}
		})
	}
}

// A server whose handshake answer is garbage (or nothing) never gives a
// session, and the client neither panics nor gives up.
func TestMalformedHandshake(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		send []byte
	}{
		{"nothing", nil},
		{"short", []byte{0, 0, 0, 3, 1, 2, 3}},
		{"password beyond the frame", []byte{0, 0, 0, 16, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0}},
		{"huge length", []byte{0x7f, 0, 0, 0, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			var accepted atomic.Int32
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					nc, err := ln.Accept()
					if err != nil {
						return
					}
					accepted.Add(1)
					jute.ReadFrame(nc, 1<<20)
					nc.Write(tc.send)
					nc.Close()
				}
			}()
			t.Cleanup(func() {
				ln.Close()
				wg.Wait()
			})
			c, err := Connect([]string{ln.Addr().String()}, Options{SessionTimeout: 3 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			testkit.Eventually(t, waitLong, "several attempts", func() bool { return accepted.Load() >= 3 })
			if st := c.State(); st != StateConnecting {
				t.Fatalf("state %v", st)
			}
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// A server that stops answering is dropped after 2/3 of the session
// timeout, and the request in flight fails with ErrConnectionLoss.
func TestSilentServer(t *testing.T) {
	t.Parallel()
	var pings atomic.Int32
	srv := startFake(t, 1500, func(n int, f *fakeConn) {
		if n > 0 {
			// Answer pings only: the session stays up.
			for {
				xid, op, _, err := f.request()
				if err != nil {
					return
				}
				if op == jute.OpPing {
					pings.Add(1)
					f.reply(xid, 0, nil)
				}
			}
		}
		// Read requests, answer nothing.
		for {
			if _, _, _, err := f.request(); err != nil {
				return
			}
		}
	})
	c, r := connect(t, []string{srv.addr}, Options{SessionTimeout: 1500 * time.Millisecond})
	start := time.Now()
	_, _, err := c.Get(testkit.Context(t), "/", false)
	if !errors.Is(err, zoo.ErrConnectionLoss) {
		t.Fatalf("request to a silent server: %v", err)
	}
	if d := time.Since(start); d < 900*time.Millisecond {
		t.Fatalf("dropped after %v, before the 1s read timeout", d)
	}
	testkit.Eventually(t, waitLong, "reconnected", func() bool { return r.count(StateConnected) == 2 })
	testkit.Eventually(t, waitLong, "pings", func() bool { return pings.Load() >= 2 })
	if r.count(StateDisconnected) != 1 || c.State() != StateConnected {
		t.Fatalf("states %v", r.states())
	}
}

// FuzzReplies answers requests of every kind with arbitrary reply bodies
// and codes: the client must never panic, and must either return a result or
// an error.
func FuzzReplies(f *testing.F) {
	// body is what the server answers every request with (after the xid):
	// zxid, err and the reply body, set by each fuzz iteration.
	var (
		mu   sync.Mutex
		body []byte
	)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer nc.Close()
				fc := &fakeConn{nc: nc, br: bufio.NewReader(nc)}
				if _, err := jute.ReadFrame(fc.br, 1<<20); err != nil {
					return
				}
				fc.raw(jute.ConnectResponse{TimeOut: 30000, SessionID: 1, Passwd: make([]byte, 16)}.Frame())
				for {
					xid, op, err := fc.requestNotPing()
					if err != nil {
						return
					}
					switch op {
					case jute.OpCloseSession:
						fc.reply(xid, 0, nil)
						return
					case jute.OpSetWatches, jute.OpSetWatches2:
						fc.reply(xid, 0, nil) // re-arming after a reconnect
						continue
					}
					mu.Lock()
					b := body
					mu.Unlock()
					fc.raw(binary.BigEndian.AppendUint32(nil, uint32(4+len(b))))
					fc.raw(binary.BigEndian.AppendUint32(nil, uint32(xid)))
					fc.raw(b) // zxid, err and body from the fuzzer
				}
			}()
		}
	}()
	c, err := Connect([]string{ln.Addr().String()}, Options{SessionTimeout: 30 * time.Second, Chroot: "/c"})
	if err != nil {
		f.Fatal(err)
	}
	defer c.Close()

	ok := jute.NewFrame(0)
	ok.Long(5)
	ok.Int(0)
	f.Add(byte(0), ok.B[4:])
	f.Add(byte(3), append(ok.B[4:], 0, 0, 0, 2, 'h', 'i'))
	f.Add(byte(7), append(ok.B[4:], 0xff, 0xff, 0xff, 0xff))
	f.Add(byte(9), []byte{0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0x9b})
	f.Fuzz(func(t *testing.T, which byte, reply []byte) {
		if len(reply) > 1<<16 {
			return
		}
		ctx := testkit.Context(t)
		mu.Lock()
		body = reply
		mu.Unlock()
		var err error
		switch which % 16 {
		case 0:
			_, _, err = c.Get(ctx, "/a", true)
		case 1:
			_, _, err = c.Exists(ctx, "/a", true)
		case 2:
			_, err = c.Children(ctx, "/a", true)
		case 3:
			_, _, err = c.CreateWithStat(ctx, zoo.CreateOp{Path: "/a"})
		case 4:
			_, err = c.Create(ctx, "/a", nil, zoo.ModePersistent, nil)
		case 5:
			_, _, err = c.GetACL(ctx, "/a")
		case 6:
			_, err = c.Set(ctx, "/a", nil, -1)
		case 7:
			_, err = c.Multi(ctx, zoo.CreateOp{Path: "/a"}, zoo.SetDataOp{Path: "/a", Version: -1}, zoo.DeleteOp{Path: "/a"})
		case 8:
			_, err = c.MultiRead(ctx, zoo.GetDataOp{Path: "/a"}, zoo.GetChildrenOp{Path: "/a"})
		case 9:
			_, err = c.WhoAmI(ctx)
		case 10:
			_, err = c.GetEphemerals(ctx, "/")
		case 11:
			_, err = c.AllChildrenNumber(ctx, "/a")
		case 12:
			err = c.AddWatch(ctx, "/a", zoo.WatchPersistentRecursive)
		case 13:
			err = c.RemoveWatches(ctx, "/a", zoo.WatcherAny, false)
		case 14:
			_, _, err = c.Reconfig(ctx, []string{"x"}, nil, nil, -1)
		case 15:
			_, _, err = c.ChildrenWithStat(ctx, "/a", false)
		}
		_ = err
	})
}
