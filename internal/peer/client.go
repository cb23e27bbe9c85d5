package peer

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
)

// ErrUnavailable wraps every failure to reach a peer: whether a request
// that was sent ran is then unknown.
var ErrUnavailable = errors.New("zoo: peer unreachable")

// ErrNotSent additionally marks failures where the request certainly did not
// leave this process (the dial failed), so the caller may retry it anywhere.
var ErrNotSent = errors.New("zoo: request not sent")

// RemoteError is an error returned by a peer's handler. Code is the ZooKeeper code when the error had one (0 otherwise).
type RemoteError struct {
	Code int32
	Msg  string
}

func (e *RemoteError) Error() string {
	if e.Code != 0 {
		return fmt.Sprintf("zoo: peer error %d: %s", e.Code, e.Msg)
	}
	return "zoo: peer error: " + e.Msg
}

// result is what a pending Call receives.
type result struct {
	body []byte
	err  error
}

// Client calls one remote peer. It keeps at most one connection, dialled
// on first use and again after a failure; calls share it and are matched to
// responses by request id. Safe for concurrent use.
type Client struct {
	dial        func(ctx context.Context) (net.Conn, error)
	errFromCode func(code int32, msg string) error
	nextID      atomic.Uint64

	mu      sync.Mutex    // guards cur, dialing, closed
	cur     *clientConn   // nil or broken: dial before use
	dialing chan struct{} // non-nil while a dial is in progress; closed when it ends
	closed  bool

	wg sync.WaitGroup // connection reader and writer goroutines
}

// NewClient returns a client that connects with dial. errFromCode turns a
// non-zero remote code back into the package's error for it (nil, or a nil
// result, leaves it a *RemoteError).
func NewClient(dial func(ctx context.Context) (net.Conn, error), errFromCode func(code int32, msg string) error) *Client {
	return &Client{dial: dial, errFromCode: errFromCode}
}

// clientConn is one live connection of a Client.
type clientConn struct {
	c      net.Conn
	writes chan request  // taken by the writer goroutine
	done   chan struct{} // closed when broken

	mu      sync.Mutex // guards pending and err
	pending map[uint64]chan result
	err     error // why the conn broke; set once
}

type request struct {
	id      uint64
	method  byte
	payload []byte
}

func (c *Client) closedErr() error {
	return fmt.Errorf("%w: %w", ErrUnavailable, net.ErrClosed)
}

// Call sends one request and waits for its response. A connection failure
// returns an error wrapping ErrUnavailable; whether the peer ran the
// request is then unknown. Cancelling ctx returns ctx.Err() at once, and the
// late response is dropped; the peer may still run the request.
func (c *Client) Call(ctx context.Context, method byte, payload []byte) ([]byte, error) {
	return c.CallQueued(ctx, method, payload, nil)
}

// CallQueued is Call that also calls queued (if not nil) once the request
// is queued on the connection, before it waits for the response: requests
// queued one after another reach the peer in that order.
func (c *Client) CallQueued(ctx context.Context, method byte, payload []byte, queued func()) ([]byte, error) {
	if len(payload) > MaxBodySize {
		return nil, fmt.Errorf("%w: payload of %d bytes", ErrTooLarge, len(payload))
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
		ch := make(chan result, 1)
		if err := rc.register(id, ch); err != nil {
			if attempt == 0 {
				continue
			}
			return nil, fmt.Errorf("%w: %w", ErrNotSent, err)
		}
		select {
		case rc.writes <- request{id: id, method: method, payload: payload}:
			if queued != nil {
				queued()
			}
		case <-rc.done:
			rc.unregister(id)
			if attempt == 0 {
				continue
			}
			return nil, fmt.Errorf("%w: %w", ErrNotSent, rc.brokenErr())
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
func (c *Client) conn(ctx context.Context) (*clientConn, error) {
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
			return nil, fmt.Errorf("%w: %w: %w", ErrUnavailable, ErrNotSent, err)
		}
		if c.closed {
			c.mu.Unlock()
			nc.Close()
			return nil, c.closedErr()
		}
		rc := &clientConn{
			c:       nc,
			writes:  make(chan request),
			done:    make(chan struct{}),
			pending: make(map[uint64]chan result),
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
func (c *Client) Close() error {
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

func (c *Client) readLoop(rc *clientConn) {
	var hdr [headerSize]byte
	for {
		id, kind, body, err := readFrame(rc.c, &hdr)
		if err != nil {
			rc.fail(fmt.Errorf("%w: %w", ErrUnavailable, err))
			return
		}
		var res result
		switch kind {
		case respOK:
			res.body = body
		case respErr:
			if len(body) < 4 {
				rc.fail(fmt.Errorf("%w: malformed error response", ErrUnavailable))
				return
			}
			res.err = c.remoteErr(int32(binary.BigEndian.Uint32(body[:4])), string(body[4:]))
		default:
			rc.fail(fmt.Errorf("%w: unknown response kind %d", ErrUnavailable, kind))
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

func (c *Client) remoteErr(code int32, msg string) error {
	if code != 0 && c.errFromCode != nil {
		if err := c.errFromCode(code, msg); err != nil {
			return err
		}
	}
	return &RemoteError{Code: code, Msg: msg}
}

func (rc *clientConn) writeLoop() {
	for {
		select {
		case req := <-rc.writes:
			if err := writeFrame(rc.c, req.id, req.method, req.payload); err != nil {
				rc.fail(fmt.Errorf("%w: %w", ErrUnavailable, err))
				return
			}
		case <-rc.done:
			return
		}
	}
}

func (rc *clientConn) register(id uint64, ch chan result) error {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.err != nil {
		return rc.err
	}
	rc.pending[id] = ch
	return nil
}

func (rc *clientConn) unregister(id uint64) {
	rc.mu.Lock()
	delete(rc.pending, id)
	rc.mu.Unlock()
}

func (rc *clientConn) broken() bool {
	select {
	case <-rc.done:
		return true
	default:
		return false
	}
}

func (rc *clientConn) brokenErr() error {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.err
}

// fail marks rc broken, closes the socket and fails every pending call.
// Only the first call has any effect.
func (rc *clientConn) fail(err error) {
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
		ch <- result{err: err}
	}
}
