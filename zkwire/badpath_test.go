package zkwire

import (
	"testing"

	"github.com/zooraft/zoo"
	"github.com/zooraft/zoo/internal/jute"
)

// TestMalformedPathsAnswered sends every request that carries a path with
// malformed paths: each gets a reply with a ZooKeeper code on a connection
// that stays open, and the server keeps serving. (A setWatches with an empty
// path once crashed the server.) ZooKeeper 3.8 itself checks paths only on
// writes: for reads it answers NoNode, or treats "" as the root; zoo answers
// BadArguments (README, Limits).
func TestMalformedPathsAnswered(t *testing.T) {
	ens := openSingle(t)
	_, zooAddr := serve(t, ens, Config{})
	paths := []string{"", "nope", "/a/", "//", "/a\x00b", "/a/../b", "/zookeeper/quota/x/y", "/\U0001F600"}
	str := func(p string) func(w *jute.Writer) { return func(w *jute.Writer) { w.UString(p) } }
	strBool := func(p string) func(w *jute.Writer) { return func(w *jute.Writer) { w.UString(p); w.Bool(true) } }
	reqs := []struct {
		name string
		op   int32
		body func(p string) func(w *jute.Writer)
	}{
		{"create", jute.OpCreate, func(p string) func(w *jute.Writer) { return createBody(p, nil, 0) }},
		{"create2", jute.OpCreate2, func(p string) func(w *jute.Writer) { return createBody(p, nil, 2) }},
		{"delete", jute.OpDelete, func(p string) func(w *jute.Writer) { return func(w *jute.Writer) { w.UString(p); w.Int(-1) } }},
		{"exists", jute.OpExists, strBool},
		{"getData", jute.OpGetData, strBool},
		{"setData", jute.OpSetData, func(p string) func(w *jute.Writer) {
			return func(w *jute.Writer) { w.UString(p); w.Buffer(nil); w.Int(-1) }
		}},
		{"getACL", jute.OpGetACL, str},
		{"setACL", jute.OpSetACL, func(p string) func(w *jute.Writer) {
			return func(w *jute.Writer) { w.UString(p); w.ACLs(zoo.OpenACL); w.Int(-1) }
		}},
		{"getChildren", jute.OpGetChildren, strBool},
		{"getChildren2", jute.OpGetChildren2, strBool},
		{"sync", jute.OpSync, str},
		{"checkWatches", jute.OpCheckWatches, func(p string) func(w *jute.Writer) { return func(w *jute.Writer) { w.UString(p); w.Int(1) } }},
		{"removeWatches", jute.OpRemoveWatches, func(p string) func(w *jute.Writer) { return func(w *jute.Writer) { w.UString(p); w.Int(3) } }},
		{"getEphemerals", jute.OpGetEphemerals, str},
		{"getAllChildrenNumber", jute.OpGetAllChildrenNumber, str},
		{"addWatch", jute.OpAddWatch, func(p string) func(w *jute.Writer) { return func(w *jute.Writer) { w.UString(p); w.Int(1) } }},
		{"setWatches", jute.OpSetWatches, func(p string) func(w *jute.Writer) {
			return func(w *jute.Writer) {
				w.Long(0)
				w.Strings([]string{p})
				w.Strings([]string{p})
				w.Strings([]string{p})
			}
		}},
		{"multi", jute.OpMulti, func(p string) func(w *jute.Writer) { return multiBody(jute.OpCreate, createBody(p, nil, 0)) }},
		{"multiRead", jute.OpMultiRead, func(p string) func(w *jute.Writer) { return multiBody(jute.OpGetData, str(p)) }},
	}
	for _, rq := range reqs {
		for _, p := range paths {
			c := dialRaw(t, zooAddr)
			c.handshake()
			c.xid++
			c.write(requestFrame(c.xid, rq.op, rq.body(p)))
			for {
				frame, err := c.readFrame()
				if err != nil {
					t.Fatalf("%s %q: no reply: %v", rq.name, p, err)
				}
				r := jute.NewReader(frame)
				xid, _, code := r.Int(), r.Long(), r.Int()
				if xid == jute.XidNotification {
					continue
				}
				if xid != c.xid || code > 0 {
					t.Fatalf("%s %q: reply xid %d code %d", rq.name, p, xid, code)
				}
				break
			}
			if rep := c.ping(); rep.err != 0 {
				t.Fatalf("%s %q: ping after it: %d", rq.name, p, rep.err)
			}
			c.nc.Close()
		}
	}
}
