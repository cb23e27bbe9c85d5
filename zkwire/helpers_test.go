package zkwire

import (
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zooraft/zoo"
	"github.com/zooraft/zoo/internal/jute"
	"github.com/zooraft/zoo/internal/testkit"
	"github.com/zooraft/zoo/zootest"
)

// openSingle opens an in-memory one-replica ensemble.
func openSingle(t *testing.T) *zoo.Ensemble {
	t.Helper()
	ens, err := zoo.Open(zoo.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ens.Close() })
	if err := ens.WaitServing(testkit.Context(t)); err != nil {
		t.Fatal(err)
	}
	return ens
}

// serve starts a Server for ens on a fresh 127.0.0.1 port; it is closed with the test.
func serve(t testing.TB, ens *zoo.Ensemble, cfg Config) (*Server, string) {
	t.Helper()
	srv, err := NewServer(ens, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})
	return srv, ln.Addr().String()
}

// cluster is a 3-replica zootest ensemble with one Server per replica.
type cluster struct {
	*zootest.Cluster
	srvs  []*Server
	addrs []string
}

func newCluster(t testing.TB, cfg Config) *cluster {
	t.Helper()
	c := &cluster{Cluster: zootest.New(t, 3, zootest.Options{})}
	for i := 0; i < 3; i++ {
		if err := c.Replica(i).WaitServing(testkit.Context(t)); err != nil {
			t.Fatal(err)
		}
		srv, addr := serve(t, c.Replica(i), cfg)
		c.srvs = append(c.srvs, srv)
		c.addrs = append(c.addrs, addr)
	}
	return c
}

// index returns the index of the server at addr.
func (c *cluster) index(addr string) int {
	for i, a := range c.addrs {
		if a == addr {
			return i
		}
	}
	return -1
}

// recorder collects a go-zookeeper connection's session events.
type recorder struct {
	mu     sync.Mutex
	events []zk.Event
}

func (r *recorder) add(ev zk.Event) {
	r.mu.Lock()
	r.events = append(r.events, ev)
	r.mu.Unlock()
}

// count returns how many session events had state st.
func (r *recorder) count(st zk.State) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, ev := range r.events {
		if ev.Type == zk.EventSession && ev.State == st {
			n++
		}
	}
	return n
}

type quietLogger struct{}

func (quietLogger) Printf(string, ...any) {}

// connectZK connects go-zookeeper to addrs and waits for a session.
func connectZK(t *testing.T, addrs []string, timeout time.Duration) (*zk.Conn, *recorder) {
	t.Helper()
	return connectZKDial(t, addrs, timeout, nil)
}

// options builds a slice of go-zookeeper's unexported option type.
func options[O any](opts ...O) []O { return opts }

// connectZKDial is connectZK with a custom Dialer (nil: the default).
func connectZKDial(t *testing.T, addrs []string, timeout time.Duration, dial zk.Dialer) (*zk.Conn, *recorder) {
	t.Helper()
	rec := &recorder{}
	all := options(zk.WithLogger(quietLogger{}), zk.WithEventCallback(rec.add))
	if dial != nil {
		all = append(all, zk.WithDialer(dial))
	}
	conn, _, err := zk.Connect(addrs, timeout, all...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(conn.Close)
	testkit.Eventually(t, 10*time.Second, "go-zookeeper has a session", func() bool {
		return conn.State() == zk.StateHasSession
	})
	return conn, rec
}

// rawClient speaks the protocol by hand, for what go-zookeeper cannot send.
type rawClient struct {
	t   *testing.T
	nc  net.Conn
	xid int32
	// events holds notifications read while waiting for replies.
	events []rawEvent
}

type rawEvent struct {
	typ  int32
	path string
	zxid int64
}

type rawReply struct {
	xid  int32
	zxid int64
	err  zoo.Code
	body *jute.Reader
}

func dialRaw(t *testing.T, addr string) *rawClient {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &rawClient{t: t, nc: nc}
}

func (c *rawClient) write(b []byte) {
	c.t.Helper()
	if _, err := c.nc.Write(b); err != nil {
		c.t.Fatal(err)
	}
}

// readFrame reads one frame; io.EOF when the server closed the connection.
func (c *rawClient) readFrame() ([]byte, error) {
	c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	var b [4]byte
	if _, err := io.ReadFull(c.nc, b[:]); err != nil {
		return nil, err
	}
	r := jute.NewReader(b[:])
	n := r.Int()
	frame := make([]byte, n)
	if _, err := io.ReadFull(c.nc, frame); err != nil {
		return nil, err
	}
	return frame, nil
}

// expectClosed asserts that the server closes the connection without
// sending anything more (notifications aside).
func (c *rawClient) expectClosed() {
	c.t.Helper()
	for {
		frame, err := c.readFrame()
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || isReset(err) {
				return
			}
			c.t.Fatalf("want the connection closed, got %v", err)
		}
		if r := (jute.NewReader(frame)); r.Int() != jute.XidNotification {
			c.t.Fatalf("want the connection closed, got a %d-byte frame", len(frame))
		}
	}
}

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && !op.Timeout()
}

// connectFrame builds a ConnectRequest; readOnly adds the 45th byte.
func connectFrame(lastZxid int64, timeoutMs int32, sid int64, passwd []byte, readOnly bool) []byte {
	w := jute.NewFrame(45)
	w.Int(0)
	w.Long(lastZxid)
	w.Int(timeoutMs)
	w.Long(sid)
	w.Buffer(passwd)
	if readOnly {
		w.Bool(false)
	}
	return w.Frame()
}

// handshake opens a new session and returns the raw ConnectResponse.
func (c *rawClient) handshake() (sid int64, passwd []byte) {
	c.t.Helper()
	c.write(connectFrame(0, 10000, 0, make([]byte, 16), false))
	frame, err := c.readFrame()
	if err != nil {
		c.t.Fatal(err)
	}
	if len(frame) != 36 {
		c.t.Fatalf("ConnectResponse is %d bytes, want 36", len(frame))
	}
	r := jute.NewReader(frame)
	_, _ = r.Int(), r.Int()
	sid, passwd = r.Long(), r.Buffer()
	if sid == 0 || len(passwd) != 16 {
		c.t.Fatalf("ConnectResponse sid=%d passwd=%x", sid, passwd)
	}
	return sid, passwd
}

// requestFrame builds a request frame.
func requestFrame(xid, op int32, body func(w *jute.Writer)) []byte {
	w := jute.NewFrame(64)
	w.Int(xid)
	w.Int(op)
	if body != nil {
		body(w)
	}
	return w.Frame()
}

// call sends a request and returns its reply, collecting notifications.
func (c *rawClient) call(op int32, body func(w *jute.Writer)) rawReply {
	c.t.Helper()
	c.xid++
	c.write(requestFrame(c.xid, op, body))
	return c.reply(c.xid)
}

// ping sends a ping; servers answer pings with xid -2 whatever was sent.
func (c *rawClient) ping() rawReply {
	c.t.Helper()
	c.write(requestFrame(jute.XidPing, jute.OpPing, nil))
	return c.reply(jute.XidPing)
}

// reply reads frames until the reply with xid.
func (c *rawClient) reply(xid int32) rawReply {
	c.t.Helper()
	for {
		frame, err := c.readFrame()
		if err != nil {
			c.t.Fatalf("reading reply to xid %d: %v", xid, err)
		}
		r := jute.NewReader(frame)
		rep := rawReply{xid: r.Int(), zxid: r.Long(), err: zoo.Code(r.Int()), body: r}
		if rep.xid == jute.XidNotification {
			ev := rawEvent{typ: r.Int(), zxid: rep.zxid}
			_ = r.Int()
			ev.path = r.UString()
			c.events = append(c.events, ev)
			continue
		}
		if rep.xid != xid {
			c.t.Fatalf("reply xid %d, want %d", rep.xid, xid)
		}
		return rep
	}
}

// nextEvent returns the next notification, reading if none is buffered.
func (c *rawClient) nextEvent() rawEvent {
	c.t.Helper()
	for len(c.events) == 0 {
		frame, err := c.readFrame()
		if err != nil {
			c.t.Fatalf("waiting for a notification: %v", err)
		}
		r := jute.NewReader(frame)
		xid, zxid, _ := r.Int(), r.Long(), r.Int()
		if xid != jute.XidNotification {
			c.t.Fatalf("got reply xid %d while waiting for a notification", xid)
		}
		ev := rawEvent{typ: r.Int(), zxid: zxid}
		_ = r.Int()
		ev.path = r.UString()
		c.events = append(c.events, ev)
	}
	ev := c.events[0]
	c.events = c.events[1:]
	return ev
}

func pathBody(path string) func(w *jute.Writer) { return func(w *jute.Writer) { w.UString(path) } }

func pathWatchBody(path string, watch bool) func(w *jute.Writer) {
	return func(w *jute.Writer) { w.UString(path); w.Bool(watch) }
}

// createBody builds a CreateRequest with the open ACL.
func createBody(path string, data []byte, flags int32) func(w *jute.Writer) {
	return func(w *jute.Writer) {
		w.UString(path)
		w.Buffer(data)
		w.ACLs(zoo.OpenACL)
		w.Int(flags)
	}
}

func readStat(r *jute.Reader) zoo.Stat {
	return zoo.Stat{Czxid: r.Long(), Mzxid: r.Long(), Ctime: r.Long(), Mtime: r.Long(),
		Version: r.Int(), Cversion: r.Int(), Aversion: r.Int(), EphemeralOwner: r.Long(),
		DataLength: r.Int(), NumChildren: r.Int(), Pzxid: r.Long()}
}
