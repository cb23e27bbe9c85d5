package zkwire

import (
	"context"
	"testing"

	"github.com/zooraft/zoo"
	"github.com/zooraft/zoo/internal/jute"
)

// A request whose handler panics closes its connection and nothing else: the
// server, the replica and other connections keep going. Both paths that run
// handlers are covered: the read loop, and the goroutines of pipelined writes.
// (Not parallel: it adds two opcodes to the package's tables for its duration.)
func TestHandlerPanicClosesOnlyItsConnection(t *testing.T) {
	const inLoop, pipelined int32 = 9998, 9999
	boom := func(context.Context, *conn, *zoo.ServerSession, *jute.Reader) (func(*jute.Writer), error) {
		panic("boom")
	}
	handlers[inLoop], handlers[pipelined] = boom, boom
	pipelinedOps[pipelined] = true
	t.Cleanup(func() {
		delete(handlers, inLoop)
		delete(handlers, pipelined)
		delete(pipelinedOps, pipelined)
	})

	ens := openSingle(t)
	_, addr := serve(t, ens, Config{})
	bystander := dialRaw(t, addr)
	bystander.handshake()
	for _, op := range []int32{inLoop, pipelined} {
		c := dialRaw(t, addr)
		c.handshake()
		c.xid++
		c.write(requestFrame(c.xid, op, nil))
		c.expectClosed()
		if rep := bystander.call(jute.OpCreate, createBody("/after-"+string(rune('a'+op-inLoop)), nil, 0)); rep.err != 0 {
			t.Fatalf("op %d: another connection's create afterwards: %d", op, rep.err)
		}
		fresh := dialRaw(t, addr)
		fresh.handshake()
		if rep := fresh.ping(); rep.err != 0 {
			t.Fatalf("op %d: a new connection afterwards: ping %d", op, rep.err)
		}
	}
}
