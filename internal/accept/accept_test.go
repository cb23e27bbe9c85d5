package accept

import (
	"context"
	"errors"
	"net"
	"syscall"
	"testing"
	"time"
)

// flakyListener fails its first accepts, then hands out a connection.
type flakyListener struct {
	net.Listener
	fails []error
}

func (l *flakyListener) Accept() (net.Conn, error) {
	if len(l.fails) > 0 {
		err := l.fails[0]
		l.fails = l.fails[1:]
		return nil, err
	}
	return l.Listener.Accept()
}

func TestNextRidesOutTransientFailures(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
			defer c.Close()
			time.Sleep(time.Second)
		}
	}()
	emfile := &net.OpError{Op: "accept", Net: "tcp", Err: syscall.EMFILE}
	fl := &flakyListener{Listener: ln, fails: []error{emfile, emfile, syscall.ECONNABORTED}}
	var waits []time.Duration
	c, err := Next(context.Background(), fl, func(err error, wait time.Duration) { waits = append(waits, wait) })
	if err != nil {
		t.Fatalf("Next: %v, want the connection after three transient failures", err)
	}
	c.Close()
	if want := []time.Duration{5 * time.Millisecond, 10 * time.Millisecond, 20 * time.Millisecond}; len(waits) != 3 ||
		waits[0] != want[0] || waits[1] != want[1] || waits[2] != want[2] {
		t.Fatalf("waits %v, want %v", waits, want)
	}
}

func TestNextEndsWithTheListenerOrContext(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	if _, err := Next(context.Background(), ln, nil); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("closed listener: %v, want net.ErrClosed", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	fl := &flakyListener{Listener: ln, fails: []error{syscall.EMFILE}}
	if _, err := Next(ctx, fl, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("ended context: %v, want context.Canceled", err)
	}
}
