package zkwire

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/zooraft/zoo"
	"github.com/zooraft/zoo/internal/jute"
)

// FuzzConnection plays sequences of requests on one client connection to a
// real server over TCP: a session handshake, then frames the input
// describes, well formed or not, in any order (watches set and fired,
// multis, pings, auth, closeSession, garbage). Nothing may panic, and after
// every sequence the server still serves a fresh client.
func FuzzConnection(f *testing.F) {
	for _, seed := range [][]byte{
		{},
		{1, 0, 0, 2, 0, 5, 5, 0, 1, 3, 0}, // create, getData+watch, setData, delete
		{9, 1, 0, 14, 0, 0, 11, 0, 0},     // multi, ping, closeSession
		{4, 1, 0, 0xff, 4, 0xde, 0xad, 0xbe, 0xef, 2},   // exists+watch, garbage
		{12, 2, 0, 1, 2, 0, 13, 0, 0, 2, 2, 0, 3, 2, 0}, // addWatch, create, auth, setData, delete
	} {
		f.Add(seed)
	}
	ens, err := zoo.Open(zoo.Config{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { ens.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := ens.WaitServing(ctx); err != nil {
		f.Fatal(err)
	}
	_, addr := serve(f, ens, Config{ExtendedTypesEnabled: true})

	f.Fuzz(func(t *testing.T, script []byte) {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		nc.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := nc.Write(connectFrame(0, 2000, 0, make([]byte, 16), false)); err != nil {
			t.Fatal(err)
		}
		// Replies are drained as they come, so a server that answers is
		// never blocked on a full socket.
		drained := make(chan struct{})
		go func() {
			io.Copy(io.Discard, nc)
			close(drained)
		}()
		for xid := int32(1); len(script) > 0; xid++ {
			var frame []byte
			frame, script = fuzzFrame(xid, script)
			if _, err := nc.Write(frame); err != nil {
				break // the server closed a connection it found bad: fine
			}
		}
		// End the session, as a client would, and let the server finish.
		nc.Write(requestFrame(1<<30, jute.OpCloseSession, nil))
		select {
		case <-drained:
		case <-time.After(2 * time.Second):
		}
		nc.Close()

		c := &rawClient{t: t}
		if c.nc, err = net.Dial("tcp", addr); err != nil {
			t.Fatal(err)
		}
		defer c.nc.Close()
		c.handshake()
		if rep := c.call(jute.OpExists, pathWatchBody("/", false)); rep.err != zoo.CodeOK {
			t.Fatalf("a fresh client after the sequence: exists / = %v", rep.err)
		}
		c.write(requestFrame(1<<30, jute.OpCloseSession, nil))
	})
}

// fuzzOps are the requests a script picks from by its first byte.
var fuzzOps = []int32{jute.OpCreate, jute.OpCreate2, jute.OpGetData, jute.OpDelete, jute.OpExists,
	jute.OpSetData, jute.OpGetChildren, jute.OpGetChildren2, jute.OpSync, jute.OpMulti, jute.OpGetACL,
	jute.OpPing, jute.OpAddWatch, jute.OpAuth, jute.OpCheckWatches, jute.OpRemoveWatches,
	jute.OpSetWatches, jute.OpGetEphemerals, jute.OpGetAllChildrenNumber, jute.OpMultiRead,
	jute.OpCreateContainer, jute.OpCreateTTL, jute.OpSetACL}

// fuzzFrame takes one frame off a script: an op byte, a shape byte and an
// argument byte. The shape says how the body is made: a well-formed body
// for the op on one of a few paths (so requests find nodes and watches
// fire), or the next bytes of the script as the body, or as a raw frame.
func fuzzFrame(xid int32, script []byte) (frame, rest []byte) {
	at := func(i int) byte {
		if i < len(script) {
			return script[i]
		}
		return 0
	}
	op := fuzzOps[int(at(0))%len(fuzzOps)]
	shape, arg := at(1), at(2)
	rest = script[min(3, len(script)):]
	path := "/f" + string(rune('a'+arg%4))
	if arg%8 >= 4 {
		path += "/c" // a child, whose parent may or may not exist
	}
	if shape == 0xff { // a raw frame: a length and whatever follows
		n := min(int(arg), len(rest))
		frame = append([]byte{0, 0, 0, byte(n)}, rest[:n]...)
		return frame, rest[n:]
	}
	if shape%2 == 1 { // the body is the next arg bytes
		n := min(int(arg), len(rest))
		body := rest[:n]
		return requestFrame(xid, op, func(w *jute.Writer) { w.B = append(w.B, body...) }), rest[n:]
	}
	watch := shape%4 == 2
	xidOf := xid
	var body func(w *jute.Writer)
	switch op {
	case jute.OpCreate, jute.OpCreate2, jute.OpCreateContainer:
		body = createBody(path, []byte{arg}, int32(shape/4)%4)
	case jute.OpCreateTTL:
		body = func(w *jute.Writer) {
			createBody(path, nil, 5+int32(shape/4)%2)(w)
			w.Long(int64(arg) * 100)
		}
	case jute.OpDelete:
		body = func(w *jute.Writer) { w.UString(path); w.Int(int32(shape/4) - 1) }
	case jute.OpSetData:
		body = func(w *jute.Writer) { w.UString(path); w.Buffer([]byte{arg}); w.Int(int32(shape/4) - 1) }
	case jute.OpGetData, jute.OpExists, jute.OpGetChildren, jute.OpGetChildren2:
		body = pathWatchBody(path, watch)
	case jute.OpSync, jute.OpGetACL, jute.OpGetEphemerals, jute.OpGetAllChildrenNumber:
		body = pathBody(path)
	case jute.OpAddWatch:
		body = func(w *jute.Writer) { w.UString(path); w.Int(int32(shape/4) % 3) }
	case jute.OpCheckWatches, jute.OpRemoveWatches:
		body = func(w *jute.Writer) { w.UString(path); w.Int(int32(shape/4) % 4) }
	case jute.OpSetACL:
		body = func(w *jute.Writer) { w.UString(path); w.ACLs(zoo.OpenACL); w.Int(-1) }
	case jute.OpMulti:
		body = multiBody(jute.OpCreate, createBody(path, nil, 0), jute.OpDelete, func(w *jute.Writer) { w.UString(path); w.Int(-1) })
	case jute.OpMultiRead:
		body = multiBody(jute.OpGetData, pathBody(path), jute.OpGetChildren, pathBody(path))
	case jute.OpSetWatches:
		xidOf = jute.XidSetWatches
		body = func(w *jute.Writer) {
			w.Long(0)
			for range 3 {
				w.Int(1)
				w.UString(path)
			}
		}
	case jute.OpAuth:
		xidOf = jute.XidAuth
		body = func(w *jute.Writer) { w.Int(0); w.UString("digest"); w.Buffer([]byte("u:" + path)) }
	case jute.OpPing:
		xidOf = jute.XidPing
	}
	return requestFrame(xidOf, op, body), rest
}
