// Package accept is the accept loop's one hard part, shared by zoo's three
// listeners (the client port, the replica port, the peer RPC over it): a
// failed Accept that is not the listener closing (out of file descriptors,
// a connection aborted before it was accepted) must neither end the server
// nor make it spin, so it waits, doubling from 5 ms to 1 s as net/http does.
package accept

import (
	"context"
	"errors"
	"net"
	"time"
)

// Backoff bounds for transient accept failures.
const (
	minDelay = 5 * time.Millisecond
	maxDelay = time.Second
)

// Next returns ln's next connection, riding out transient failures; retrying
// is told each one and how long it waits. It returns an error only once ln is
// closed (net.ErrClosed) or ctx ends (ctx.Err()).
func Next(ctx context.Context, ln net.Listener, retrying func(err error, wait time.Duration)) (net.Conn, error) {
	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err == nil {
			return c, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if errors.Is(err, net.ErrClosed) {
			return nil, err
		}
		delay = min(max(2*delay, minDelay), maxDelay)
		if retrying != nil {
			retrying(err, delay)
		}
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		}
	}
}
