package peer

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/zooraft/zoo/internal/accept"
)

// Handler serves one peer request; method is a small opcode, payload opaque.
type Handler func(ctx context.Context, method byte, payload []byte) ([]byte, error)

// Starter runs the first part of a request in its connection's read loop,
// so that requests from one peer start in the order they were sent (forwarded
// writes of one pipelined session must reach raft in order). It returns the
// rest of the work, run in the request's goroutine, or nil when the method
// has no ordered part (then the Handler serves it).
type Starter func(ctx context.Context, method byte, payload []byte) func() ([]byte, error)

// Serve serves peer RPC on every connection ln yields until ln is closed
// or ctx ends (which closes ln). Each request runs in its own goroutine
// under a context cancelled when its connection ends. codeOf maps a handler
// error to its ZooKeeper code (nil: every error gets code 0). Serve
// returns only after its connections are closed and handlers have returned.
func Serve(ctx context.Context, ln net.Listener, h Handler, start Starter, codeOf func(error) int32, logger hclog.Logger) {
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

	for {
		c, err := accept.Next(parent, ln, func(err error, wait time.Duration) {
			logger.Warn("peer rpc accept failed", "error", err, "retry-in", wait)
		})
		if err != nil {
			return // closed
		}
		mu.Lock()
		conns[c] = struct{}{}
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			serveConn(ctx, c, h, start, codeOf, logger)
			mu.Lock()
			delete(conns, c)
			mu.Unlock()
		}()
	}
}

// serveConn reads requests off c until it fails, then waits for the
// handlers it started and closes c.
func serveConn(ctx context.Context, c net.Conn, h Handler, start Starter, codeOf func(error) int32, logger hclog.Logger) {
	ctx, cancel := context.WithCancel(ctx)
	var (
		handlers sync.WaitGroup
		wmu      sync.Mutex // serializes response frames on c
	)
	defer func() {
		c.Close() // before cancel: see Serve
		cancel()
		handlers.Wait()
	}()

	respond := func(id uint64, out []byte, herr error) {
		kind, body := respOK, [][]byte{out}
		if herr == nil && len(out) > MaxBodySize {
			herr = fmt.Errorf("%w: response of %d bytes", ErrTooLarge, len(out))
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
			kind, body = respErr, [][]byte{cb[:], []byte(msg)}
		}
		wmu.Lock()
		err := writeFrame(c, id, kind, body...)
		wmu.Unlock()
		if err != nil {
			// A torn frame poisons the stream; closing also ends the reader.
			if ctx.Err() == nil {
				logger.Debug("peer rpc write failed", "remote-address", c.RemoteAddr().String(), "error", err)
			}
			c.Close()
		}
	}

	var hdr [headerSize]byte
	for {
		id, method, payload, err := readFrame(c, &hdr)
		if err != nil {
			if errors.Is(err, ErrTooLarge) {
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
