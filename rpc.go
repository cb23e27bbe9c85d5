package zoo

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Peer RPC framing. Every frame is
//
//	uint32 length | uint64 request id | 1 byte kind | body
//
// big-endian, where length counts the bytes after itself. A request's kind is
// the method; a response's kind is rpcRespOK (body = result) or rpcRespErr
// (body = int32 code | message). Responses may come back in any order.
const (
	rpcHeaderSize   = 4 + 8 + 1
	rpcMaxFrameSize = 64 << 20 // bytes after the length field
	rpcMaxBodySize  = rpcMaxFrameSize - 9

	rpcRespOK  byte = 0
	rpcRespErr byte = 1

	// rpcWriteTimeout bounds one frame write, so a peer that stops reading
	// breaks the connection instead of wedging every caller behind it.
	rpcWriteTimeout = 10 * time.Second
)

var errRPCUnavailable = errors.New("zoo: peer unreachable")

// errRPCNotSent additionally marks failures where the request certainly did not
// leave this process (the dial failed), so the caller may retry it anywhere.
var errRPCNotSent = errors.New("zoo: request not sent")

// errRPCTooLarge is returned for a payload or response above the frame limit.
var errRPCTooLarge = errors.New("zoo: rpc frame too large")

// rpcHandler serves one peer request; method is a small opcode, payload opaque.
type rpcHandler func(ctx context.Context, method byte, payload []byte) ([]byte, error)

// rpcStarter runs the first part of a request in its connection's read loop,
// so that requests from one peer start in the order they were sent (forwarded
// writes of one pipelined session must reach raft in order). It returns the
// rest of the work, run in the request's goroutine, or nil when the method
// has no ordered part (then the rpcHandler serves it).
type rpcStarter func(ctx context.Context, method byte, payload []byte) func() ([]byte, error)

// remoteError is an error returned by a peer's handler. Code is the ZooKeeper code when the error had one (0 otherwise).
type remoteError struct {
	Code int32
	Msg  string
}

func (e *remoteError) Error() string {
	if e.Code != 0 {
		return fmt.Sprintf("zoo: peer error %d: %s", e.Code, e.Msg)
	}
	return "zoo: peer error: " + e.Msg
}

// readRPCFrame reads one frame. The body is freshly allocated so callers may
// keep it. A length beyond the limit is an error: the stream cannot be
// trusted after it, so the caller closes the conn.
func readRPCFrame(r io.Reader, hdr *[rpcHeaderSize]byte) (id uint64, kind byte, body []byte, err error) {
	if _, err = io.ReadFull(r, hdr[:]); err != nil {
		return 0, 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[0:4])
	if n < 9 || n > rpcMaxFrameSize {
		return 0, 0, nil, fmt.Errorf("%w: length %d", errRPCTooLarge, n)
	}
	id = binary.BigEndian.Uint64(hdr[4:12])
	kind = hdr[12]
	body = make([]byte, n-9)
	if _, err = io.ReadFull(r, body); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return 0, 0, nil, err
	}
	return id, kind, body, nil
}

// writeRPCFrame writes one frame without copying body. The caller serializes.
func writeRPCFrame(c net.Conn, id uint64, kind byte, body ...[]byte) error {
	size := 0
	for _, b := range body {
		size += len(b)
	}
	if size > rpcMaxBodySize {
		return fmt.Errorf("%w: %d bytes", errRPCTooLarge, size)
	}
	var hdr [rpcHeaderSize]byte
	binary.BigEndian.PutUint32(hdr[0:4], uint32(9+size))
	binary.BigEndian.PutUint64(hdr[4:12], id)
	hdr[12] = kind
	bufs := make(net.Buffers, 0, 1+len(body))
	bufs = append(bufs, hdr[:])
	bufs = append(bufs, body...)
	if err := c.SetWriteDeadline(time.Now().Add(rpcWriteTimeout)); err != nil {
		return err
	}
	_, err := bufs.WriteTo(c)
	return err
}

// serveRPC serves peer RPC on every connection ln yields until ln is closed
// or ctx ends (which closes ln). Each request runs in its own goroutine
// under a context cancelled when its connection ends. codeOf maps a handler
// error to its ZooKeeper code (nil: every error gets code 0). serveRPC
// returns only after its connections are closed and handlers have returned.
func serveRPC(ctx context.Context, ln net.Listener, h rpcHandler, start rpcStarter, codeOf func(error) int32, logger hclog.Logger) {
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	// Handlers see cancellation only after their conn is closed, so a
	// shutdown reaches callers as a broken connection (outcome unknown),
	// never as a "context canceled" reply that looks like the handler's answer.
	parent := ctx
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))

	var (
		wg    sync.WaitGroup
		mu    sync.Mutex // guards conns
		conns = make(map[net.Conn]struct{})
	)
	defer func() {
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		cancel()
		wg.Wait()
	}()

	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if parent.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// Transient accept failure: back off rather than spin or quit.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			logger.Warn("peer rpc accept failed", "error", err, "retry-in", delay)
			select {
			case <-time.After(delay):
			case <-parent.Done():
				return
			}
			continue
		}
		delay = 0
		mu.Lock()
		conns[c] = struct{}{}
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			serveRPCConn(ctx, c, h, start, codeOf, logger)
			mu.Lock()
			delete(conns, c)
			mu.Unlock()
		}()
	}
}

// serveRPCConn reads requests off c until it fails, then waits for the
// handlers it started and closes c.
func serveRPCConn(ctx context.Context, c net.Conn, h rpcHandler, start rpcStarter, codeOf func(error) int32, logger hclog.Logger) {
	ctx, cancel := context.WithCancel(ctx)
	var (
		handlers sync.WaitGroup
		wmu      sync.Mutex // serializes response frames on c
	)
	defer func() {
		c.Close() // before cancel: see serveRPC
		cancel()
		handlers.Wait()
	}()

	respond := func(id uint64, out []byte, herr error) {
		kind, body := rpcRespOK, [][]byte{out}
		if herr == nil && len(out) > rpcMaxBodySize {
			herr = fmt.Errorf("%w: response of %d bytes", errRPCTooLarge, len(out))
		}
		if herr != nil {
			var code int32
			if codeOf != nil {
				code = codeOf(herr)
			}
			var cb [4]byte
			binary.BigEndian.PutUint32(cb[:], uint32(code))
			msg := herr.Error()
			if len(msg) > 4096 {
				msg = msg[:4096]
			}
			kind, body = rpcRespErr, [][]byte{cb[:], []byte(msg)}
		}
		wmu.Lock()
		err := writeRPCFrame(c, id, kind, body...)
		wmu.Unlock()
		if err != nil {
			// A torn frame poisons the stream; closing also ends the reader.
			if ctx.Err() == nil {
				logger.Debug("peer rpc write failed", "remote-address", c.RemoteAddr().String(), "error", err)
			}
			c.Close()
		}
	}

	var hdr [rpcHeaderSize]byte
	for {
		id, method, payload, err := readRPCFrame(c, &hdr)
		if err != nil {
			if errors.Is(err, errRPCTooLarge) {
				logger.Warn("peer rpc frame too large", "remote-address", c.RemoteAddr().String(), "error", err)
			}
			return
		}
		var rest func() ([]byte, error)
		if start != nil {
			rest = start(ctx, method, payload)
		}
		if rest == nil {
			rest = func() ([]byte, error) { return h(ctx, method, payload) }
		}
		handlers.Add(1)
		go func() {
			defer handlers.Done()
			out, herr := rest()
			respond(id, out, herr)
		}()
	}
}

// rpcResult is what a pending Call receives.
type rpcResult struct {
	body []byte
	err  error
}

// rpcClient calls one remote peer. It keeps at most one connection, dialled
// on first use and again after a failure; calls share it and are matched to
// responses by request id. Safe for concurrent use.
type rpcClient struct {
	dial        func(ctx context.Context) (net.Conn, error)
	errFromCode func(code int32, msg string) error
	nextID      atomic.Uint64

	mu      sync.Mutex    // guards cur, dialing, closed
	cur     *rpcConn      // nil or broken: dial before use
	dialing chan struct{} // non-nil while a dial is in progress; closed when it ends
	closed  bool

	wg sync.WaitGroup // connection reader and writer goroutines
}

// newRPCClient returns a client that connects with dial. errFromCode turns a
// non-zero remote code back into the package's error for it (nil, or a nil
// result, leaves it a *remoteError).
func newRPCClient(dial func(ctx context.Context) (net.Conn, error), errFromCode func(code int32, msg string) error) *rpcClient {
	return &rpcClient{dial: dial, errFromCode: errFromCode}
}

// rpcConn is one live connection of an rpcClient.
type rpcConn struct {
	c      net.Conn
	writes chan rpcRequest // taken by the writer goroutine
	done   chan struct{}   // closed when broken

	mu      sync.Mutex // guards pending and err
	pending map[uint64]chan rpcResult
	err     error // why the conn broke; set once
}

type rpcRequest struct {
	id      uint64
	method  byte
	payload []byte
}

func (c *rpcClient) closedErr() error {
	return fmt.Errorf("%w: %w", errRPCUnavailable, net.ErrClosed)
}

// Call sends one request and waits for its response. A connection failure
// returns an error wrapping errRPCUnavailable; whether the peer ran the
// request is then unknown. Cancelling ctx returns ctx.Err() at once, and the
// late response is dropped; the peer may still run the request.
func (c *rpcClient) Call(ctx context.Context, method byte, payload []byte) ([]byte, error) {
	return c.CallQueued(ctx, method, payload, nil)
}

// CallQueued is Call that also calls queued (if not nil) once the request
// is queued on the connection, before it waits for the response: requests
// queued one after another reach the peer in that order.
func (c *rpcClient) CallQueued(ctx context.Context, method byte, payload []byte, queued func()) ([]byte, error) {
	if len(payload) > rpcMaxBodySize {
		return nil, fmt.Errorf("%w: payload of %d bytes", errRPCTooLarge, len(payload))
	}
	// A conn that breaks before our request is queued has not seen it, so
	// retrying on a fresh one is safe; once is enough to ride over a stale
	// idle conn.
	for attempt := 0; ; attempt++ {
		rc, err := c.conn(ctx)
		if err != nil {
			return nil, err
		}
		id := c.nextID.Add(1)
		ch := make(chan rpcResult, 1)
		if err := rc.register(id, ch); err != nil {
			if attempt == 0 {
				continue
			}
			return nil, fmt.Errorf("%w: %w", errRPCNotSent, err)
		}
		select {
		case rc.writes <- rpcRequest{id: id, method: method, payload: payload}:
			if queued != nil {
				queued()
			}
		case <-rc.done:
			rc.unregister(id)
			if attempt == 0 {
				continue
			}
			return nil, fmt.Errorf("%w: %w", errRPCNotSent, rc.brokenErr())
		case <-ctx.Done():
			rc.unregister(id)
			return nil, ctx.Err()
		}
		select {
		case res := <-ch:
			return res.body, res.err
		case <-ctx.Done():
			rc.unregister(id)
			return nil, ctx.Err()
		}
	}
}

// conn returns a live connection, dialling if there is none. Only one dial
// runs at a time; other callers wait for it (or their ctx).
func (c *rpcClient) conn(ctx context.Context) (*rpcConn, error) {
	for {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return nil, c.closedErr()
		}
		if c.cur != nil && !c.cur.broken() {
			rc := c.cur
			c.mu.Unlock()
			return rc, nil
		}
		if wait := c.dialing; wait != nil {
			c.mu.Unlock()
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		wait := make(chan struct{})
		c.dialing = wait
		c.mu.Unlock()

		nc, err := c.dial(ctx)

		c.mu.Lock()
		c.dialing = nil
		close(wait)
		if err != nil {
			c.mu.Unlock()
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, fmt.Errorf("%w: %w: %w", errRPCUnavailable, errRPCNotSent, err)
		}
		if c.closed {
			c.mu.Unlock()
			nc.Close()
			return nil, c.closedErr()
		}
		rc := &rpcConn{
			c:       nc,
			writes:  make(chan rpcRequest),
			done:    make(chan struct{}),
			pending: make(map[uint64]chan rpcResult),
		}
		c.cur = rc
		c.wg.Add(2)
		c.mu.Unlock()
		go func() { defer c.wg.Done(); c.readLoop(rc) }()
		go func() { defer c.wg.Done(); rc.writeLoop() }()
		return rc, nil
	}
}

// Close fails calls in flight and later ones, and waits for the
// connection's goroutines. It is idempotent.
func (c *rpcClient) Close() error {
	c.mu.Lock()
	c.closed = true
	rc := c.cur
	c.cur = nil
	c.mu.Unlock()
	if rc != nil {
		rc.fail(c.closedErr())
	}
	c.wg.Wait()
	return nil
}

func (c *rpcClient) readLoop(rc *rpcConn) {
	var hdr [rpcHeaderSize]byte
	for {
		id, kind, body, err := readRPCFrame(rc.c, &hdr)
		if err != nil {
			rc.fail(fmt.Errorf("%w: %w", errRPCUnavailable, err))
			return
		}
		var res rpcResult
		switch kind {
		case rpcRespOK:
			res.body = body
		case rpcRespErr:
			if len(body) < 4 {
				rc.fail(fmt.Errorf("%w: malformed error response", errRPCUnavailable))
				return
			}
			res.err = c.remoteErr(int32(binary.BigEndian.Uint32(body[:4])), string(body[4:]))
		default:
			rc.fail(fmt.Errorf("%w: unknown response kind %d", errRPCUnavailable, kind))
			return
		}
		rc.mu.Lock()
		ch := rc.pending[id]
		delete(rc.pending, id)
		rc.mu.Unlock()
		if ch != nil { // nil: the caller gave up
			ch <- res
		}
	}
}

func (c *rpcClient) remoteErr(code int32, msg string) error {
	if code != 0 && c.errFromCode != nil {
		if err := c.errFromCode(code, msg); err != nil {
			return err
		}
	}
	return &remoteError{Code: code, Msg: msg}
}

func (rc *rpcConn) writeLoop() {
	for {
		select {
		case req := <-rc.writes:
			if err := writeRPCFrame(rc.c, req.id, req.method, req.payload); err != nil {
				rc.fail(fmt.Errorf("%w: %w", errRPCUnavailable, err))
				return
			}
		case <-rc.done:
			return
		}
	}
}

func (rc *rpcConn) register(id uint64, ch chan rpcResult) error {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.err != nil {
		return rc.err
	}
	rc.pending[id] = ch
	return nil
}

func (rc *rpcConn) unregister(id uint64) {
	rc.mu.Lock()
	delete(rc.pending, id)
	rc.mu.Unlock()
}

func (rc *rpcConn) broken() bool {
	select {
	case <-rc.done:
		return true
	default:
		return false
	}
}

func (rc *rpcConn) brokenErr() error {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.err
}

// fail marks rc broken, closes the socket and fails every pending call.
// Only the first call has any effect.
func (rc *rpcConn) fail(err error) {
	rc.mu.Lock()
	if rc.err != nil {
		rc.mu.Unlock()
		return
	}
	rc.err = err
	pending := rc.pending
	rc.pending = nil
	close(rc.done)
	rc.mu.Unlock()
	rc.c.Close()
	for _, ch := range pending {
		ch <- rpcResult{err: err}
	}
}
