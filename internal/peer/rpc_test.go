package peer

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Test-local stand-ins for the package's code errors, so these tests do not
// depend on errors.go.
var errTestNoNode = errors.New("test: no node")

const testNoNodeCode int32 = -101

func testCodeOf(err error) int32 {
	if errors.Is(err, errTestNoNode) {
		return testNoNodeCode
	}
	return 0
}

func testErrFromCode(code int32, msg string) error {
	if code == testNoNodeCode {
		return fmt.Errorf("%w (remote: %s)", errTestNoNode, msg)
	}
	return nil
}

// startRPCServer runs serveRPC on ln until cleanup, which waits for it.
// It returns a func that stops the server early (idempotent).
func startRPCServer(t *testing.T, ln net.Listener, h Handler, codeOf func(error) int32) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		Serve(ctx, ln, h, nil, codeOf, hclog.NewNullLogger())
	}()
	stop = func() { cancel(); <-done }
	t.Cleanup(stop)
	return stop
}

func listenLoopback(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// countingDialer dials addr and counts successful dials.
type countingDialer struct {
	addr  string
	dials atomic.Int32
}

func (d *countingDialer) dial(ctx context.Context) (net.Conn, error) {
	var nd net.Dialer
	c, err := nd.DialContext(ctx, "tcp", d.addr)
	if err == nil {
		d.dials.Add(1)
	}
	return c, err
}

func newTestClient(t *testing.T, d *countingDialer) *Client {
	t.Helper()
	c := NewClient(d.dial, testErrFromCode)
	t.Cleanup(func() { c.Close() })
	return c
}

func TestRPCConcurrentCallsShareOneConn(t *testing.T) {
	ln := listenLoopback(t)
	var inFlight, maxInFlight atomic.Int32
	startRPCServer(t, ln, func(_ context.Context, method byte, payload []byte) ([]byte, error) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for {
			m := maxInFlight.Load()
			if n <= m || maxInFlight.CompareAndSwap(m, n) {
				break
			}
		}
		return append([]byte{method}, payload...), nil
	}, testCodeOf)
	d := &countingDialer{addr: ln.Addr().String()}
	c := newTestClient(t, d)

	const callers = 200
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for i := range callers {
		wg.Go(func() {
			payload := []byte(strconv.Itoa(i))
			out, err := c.Call(context.Background(), byte(i), payload)
			if err != nil {
				errs <- fmt.Errorf("call %d: %w", i, err)
				return
			}
			if want := append([]byte{byte(i)}, payload...); !bytes.Equal(out, want) {
				errs <- fmt.Errorf("call %d got %q, want %q", i, out, want)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := d.dials.Load(); n != 1 {
		t.Errorf("dialled %d times, want 1", n)
	}
	t.Logf("max handlers in flight: %d", maxInFlight.Load())
}

func TestRPCResponsesOutOfOrder(t *testing.T) {
	ln := listenLoopback(t)
	release := make(chan struct{})
	startRPCServer(t, ln, func(ctx context.Context, method byte, _ []byte) ([]byte, error) {
		if method == 1 {
			select {
			case <-release:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		return []byte{method}, nil
	}, nil)
	c := newTestClient(t, &countingDialer{addr: ln.Addr().String()})

	slow := make(chan error, 1)
	go func() {
		out, err := c.Call(context.Background(), 1, nil)
		if err == nil && !bytes.Equal(out, []byte{1}) {
			err = fmt.Errorf("slow call got %q", out)
		}
		slow <- err
	}()
	// The fast call completes while the slow one is still held by the handler.
	out, err := c.Call(context.Background(), 2, nil)
	if err != nil || !bytes.Equal(out, []byte{2}) {
		t.Fatalf("fast call = %q, %v", out, err)
	}
	close(release)
	if err := <-slow; err != nil {
		t.Fatal(err)
	}
}

func TestRPCHandlerErrors(t *testing.T) {
	ln := listenLoopback(t)
	startRPCServer(t, ln, func(_ context.Context, method byte, _ []byte) ([]byte, error) {
		switch method {
		case 1:
			return nil, errTestNoNode
		case 2:
			return nil, fmt.Errorf("get /a/b: %w", errTestNoNode)
		default:
			return nil, errors.New("plain failure")
		}
	}, testCodeOf)
	c := newTestClient(t, &countingDialer{addr: ln.Addr().String()})

	tests := []struct {
		name   string
		method byte
		check  func(error) bool
	}{
		{"sentinel", 1, func(err error) bool { return errors.Is(err, errTestNoNode) }},
		{"wrapped sentinel", 2, func(err error) bool { return errors.Is(err, errTestNoNode) }},
		{"uncoded", 3, func(err error) bool {
			var re *RemoteError
			return errors.As(err, &re) && re.Code == 0 && re.Msg == "plain failure"
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Call(context.Background(), tc.method, nil)
			if err == nil || !tc.check(err) {
				t.Fatalf("Call err = %v (%T)", err, err)
			}
			if errors.Is(err, ErrUnavailable) {
				t.Fatalf("handler error reported as unavailable: %v", err)
			}
		})
	}
}

func TestRPCContextCancel(t *testing.T) {
	ln := listenLoopback(t)
	started := make(chan struct{}, 1)
	release := make(chan struct{})
	startRPCServer(t, ln, func(ctx context.Context, method byte, _ []byte) ([]byte, error) {
		if method == 1 {
			started <- struct{}{}
			select {
			case <-release:
			case <-ctx.Done(): // server shutting down early on a failed test
			}
		}
		return []byte{method}, nil
	}, nil)
	d := &countingDialer{addr: ln.Addr().String()}
	c := newTestClient(t, d)

	ctx, cancel := context.WithCancel(context.Background())
	res := make(chan error, 1)
	go func() {
		_, err := c.Call(ctx, 1, nil)
		res <- err
	}()
	<-started
	cancel()
	select {
	case err := <-res:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled Call = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("cancelled Call did not return")
	}

	// The connection survives: another call works on it, and the abandoned
	// request's late response is dropped without confusing anyone.
	if out, err := c.Call(context.Background(), 2, nil); err != nil || !bytes.Equal(out, []byte{2}) {
		t.Fatalf("Call after cancel = %q, %v", out, err)
	}
	close(release)
	if out, err := c.Call(context.Background(), 3, nil); err != nil || !bytes.Equal(out, []byte{3}) {
		t.Fatalf("Call after late response = %q, %v", out, err)
	}
	if n := d.dials.Load(); n != 1 {
		t.Fatalf("dialled %d times, want 1", n)
	}

	// An already-expired ctx fails without sending.
	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	if _, err := c.Call(ctx, 2, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("Call with done ctx = %v", err)
	}
}

func TestRPCServerRestart(t *testing.T) {
	ln := listenLoopback(t)
	addr := ln.Addr().String()
	echo := func(_ context.Context, method byte, _ []byte) ([]byte, error) { return []byte{method}, nil }
	stop := startRPCServer(t, ln, echo, nil)
	d := &countingDialer{addr: addr}
	c := newTestClient(t, d)

	if _, err := c.Call(context.Background(), 1, nil); err != nil {
		t.Fatalf("Call: %v", err)
	}
	stop() // closes the listener and every served conn

	for i := range 3 {
		if _, err := c.Call(context.Background(), 1, nil); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("Call %d with server down = %v, want ErrUnavailable", i, err)
		}
	}

	ln2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot re-listen on %s: %v", addr, err)
	}
	startRPCServer(t, ln2, echo, nil)
	if out, err := c.Call(context.Background(), 9, nil); err != nil || !bytes.Equal(out, []byte{9}) {
		t.Fatalf("Call after restart = %q, %v", out, err)
	}
	if n := d.dials.Load(); n != 2 {
		t.Fatalf("dialled %d times, want 2", n)
	}
}

func TestRPCServerDiesMidCall(t *testing.T) {
	ln := listenLoopback(t)
	started := make(chan struct{}, 1)
	stop := startRPCServer(t, ln, func(ctx context.Context, _ byte, _ []byte) ([]byte, error) {
		started <- struct{}{}
		<-ctx.Done() // released when the server shuts down
		return nil, ctx.Err()
	}, nil)
	c := newTestClient(t, &countingDialer{addr: ln.Addr().String()})

	res := make(chan error, 1)
	go func() {
		_, err := c.Call(context.Background(), 1, nil)
		res <- err
	}()
	<-started
	stop()
	if err := <-res; !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Call during shutdown = %v, want ErrUnavailable", err)
	}
}

func TestRPCClientClose(t *testing.T) {
	ln := listenLoopback(t)
	started := make(chan struct{}, 1)
	startRPCServer(t, ln, func(ctx context.Context, _ byte, _ []byte) ([]byte, error) {
		started <- struct{}{}
		<-ctx.Done()
		return nil, ctx.Err()
	}, nil)
	c := NewClient((&countingDialer{addr: ln.Addr().String()}).dial, nil)

	res := make(chan error, 1)
	go func() {
		_, err := c.Call(context.Background(), 1, nil)
		res <- err
	}()
	<-started
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := <-res; !errors.Is(err, ErrUnavailable) || !errors.Is(err, net.ErrClosed) {
		t.Fatalf("in-flight Call on Close = %v", err)
	}
	if _, err := c.Call(context.Background(), 1, nil); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Call after Close = %v, want net.ErrClosed", err)
	}
}

func TestRPCFrameLimits(t *testing.T) {
	ln := listenLoopback(t)
	startRPCServer(t, ln, func(_ context.Context, _ byte, p []byte) ([]byte, error) {
		return []byte{byte(len(p))}, nil
	}, nil)
	c := newTestClient(t, &countingDialer{addr: ln.Addr().String()})

	t.Run("oversized payload refused locally", func(t *testing.T) {
		_, err := c.Call(context.Background(), 1, make([]byte, MaxBodySize+1))
		if !errors.Is(err, ErrTooLarge) {
			t.Fatalf("Call = %v, want ErrTooLarge", err)
		}
		if _, err := c.Call(context.Background(), 1, []byte("ok")); err != nil {
			t.Fatalf("Call after refused payload: %v", err)
		}
	})

	t.Run("oversized frame closes conn", func(t *testing.T) {
		raw, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		var hdr [headerSize]byte
		binary.BigEndian.PutUint32(hdr[:4], maxFrameSize+1)
		if _, err := raw.Write(hdr[:]); err != nil {
			t.Fatal(err)
		}
		raw.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := raw.Read(make([]byte, 1)); err == nil || isTimeout(err) {
			t.Fatalf("read after oversized frame = %v, want conn closed", err)
		}
	})
}

func TestRPCServeStopsWhenListenerCloses(t *testing.T) {
	ln := listenLoopback(t)
	done := make(chan struct{})
	go func() {
		defer close(done)
		Serve(context.Background(), ln, func(context.Context, byte, []byte) ([]byte, error) { return nil, nil }, nil, nil, nil)
	}()
	ln.Close()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("serveRPC did not return after its listener closed")
	}
}
