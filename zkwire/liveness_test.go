package zkwire

import (
	"testing"
	"time"

	"github.com/zooraft/zoo"
	"github.com/zooraft/zoo/internal/jute"
	"github.com/zooraft/zoo/internal/testkit"
)

// A client that goes silent without closing its socket loses its session a
// session timeout after it was last heard from, as with ZooKeeper: not the
// timeout for the server to drop the socket plus another for the session.
func TestSilentClientExpiresAfterOneTimeout(t *testing.T) {
	ens, err := zoo.Open(zoo.Config{TickTime: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ens.Close() })
	ctx := testkit.Context(t)
	if err := ens.WaitServing(ctx); err != nil {
		t.Fatal(err)
	}
	_, addr := serve(t, ens, Config{})
	const timeout = 2 * time.Second

	c := dialRaw(t, addr)
	c.write(connectFrame(0, int32(timeout.Milliseconds()), 0, make([]byte, 16), false))
	if _, err := c.readFrame(); err != nil {
		t.Fatal(err)
	}
	if r := c.call(jute.OpCreate, createBody("/silent", nil, 1)); r.err != 0 {
		t.Fatalf("create ephemeral: err %d", r.err)
	}
	lastHeard := time.Now()

	watcher, err := ens.NewSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, _, gone, err := watcher.ExistsW(ctx, "/silent")
	if err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-gone:
		if ev.Type != zoo.EventNodeDeleted {
			t.Fatalf("event %v", ev)
		}
	case <-time.After(10 * timeout):
		t.Fatal("silent client's ephemeral never went")
	}
	took := time.Since(lastHeard)
	// The bound has a tick of slack for the leader's expiry check; a session
	// kept alive until the socket was dropped would take two timeouts.
	if took < timeout || took > timeout+timeout/2 {
		t.Fatalf("ephemeral went %v after the client was last heard from; want about %v", took, timeout)
	}
}
