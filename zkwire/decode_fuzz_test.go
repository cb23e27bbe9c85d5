package zkwire

import (
	"context"
	"testing"

	"github.com/zooraft/zoo/internal/jute"
)

// FuzzRequestDecode feeds arbitrary request bodies to every opcode's decoder
// (the handlers return before touching the session when decoding fails) and
// to the ConnectRequest parser: nothing may panic or over-allocate.
func FuzzRequestDecode(f *testing.F) {
	seeds := [][]byte{
		nil,
		{0, 0, 0, 1, '/', 0},
		{0, 0, 0, 1, '/', 0, 0, 0, 0, 1},
		{0xff, 0xff, 0xff, 0xff},
		{0x7f, 0xff, 0xff, 0xff, 1, 2, 3},
		connectFrame(0, 1000, 0, make([]byte, 16), true)[4:],
		requestFrame(0, 0, multiBody(jute.OpCreate, createBody("/a", nil, 0)))[12:],
	}
	for _, s := range seeds {
		f.Add(s)
	}
	ops := []int32{jute.OpCreate, jute.OpCreate2, jute.OpCreateContainer, jute.OpCreateTTL, jute.OpDelete, jute.OpExists, jute.OpGetData,
		jute.OpSetData, jute.OpGetACL, jute.OpSetACL, jute.OpGetChildren, jute.OpGetChildren2, jute.OpSync, jute.OpMulti, jute.OpMultiRead,
		jute.OpCheckWatches, jute.OpRemoveWatches, jute.OpSetWatches, jute.OpSetWatches2, jute.OpGetEphemerals,
		jute.OpGetAllChildrenNumber, jute.OpAddWatch, jute.OpReconfig}
	// A conn without a session: a handler that decodes successfully would call
	// into the nil session, so only malformed inputs are run through handlers.
	c := &conn{srv: &Server{cfg: Config{ExtendedTypesEnabled: true, ReconfigEnabled: true}}, watches: map[string]watchKinds{}}
	f.Fuzz(func(t *testing.T, body []byte) {
		_, _ = jute.ReadConnectRequest(body)
		for _, op := range ops {
			if !decodes(op, body) {
				_, err := handlers[op](context.Background(), c, nil, jute.NewReader(body))
				if err == nil {
					t.Fatalf("op %d: malformed body accepted", op)
				}
			}
		}
	})
}

// decodes reports whether body is a complete request body for op, using
// only the reader: it mirrors each handler's decoding.
func decodes(op int32, body []byte) bool {
	r := jute.NewReader(body)
	create := func(op int32) {
		r.UString()
		r.Buffer()
		r.ACLs()
		r.Int()
		if op == jute.OpCreateTTL {
			r.Long()
		}
	}
	switch op {
	case jute.OpCreate, jute.OpCreate2, jute.OpCreateContainer, jute.OpCreateTTL:
		create(op)
		// Validation errors come before the session is used too.
		return r.Err == nil
	case jute.OpDelete, jute.OpSetACL:
		r.UString()
		if op == jute.OpSetACL {
			r.ACLs()
		}
		r.Int()
	case jute.OpExists, jute.OpGetData, jute.OpGetChildren, jute.OpGetChildren2:
		r.UString()
		r.Bool()
	case jute.OpSetData:
		r.UString()
		r.Buffer()
		r.Int()
	case jute.OpGetACL, jute.OpSync, jute.OpGetEphemerals, jute.OpGetAllChildrenNumber:
		r.UString()
	case jute.OpCheckWatches, jute.OpRemoveWatches, jute.OpAddWatch:
		r.UString()
		r.Int()
	case jute.OpReconfig:
		r.UString()
		r.UString()
		r.UString()
		r.Long()
	case jute.OpSetWatches, jute.OpSetWatches2:
		r.Long()
		n := 3
		if op == jute.OpSetWatches2 {
			n = 5
		}
		for range n {
			r.Strings()
		}
	case jute.OpMulti, jute.OpMultiRead:
		for r.Err == nil {
			typ, done, _ := r.Int(), r.Bool(), r.Int()
			if done || r.Err != nil {
				break
			}
			switch {
			case op == jute.OpMultiRead && (typ == jute.OpGetData || typ == jute.OpGetChildren):
				r.UString()
				r.Bool()
			case op == jute.OpMulti && (typ == jute.OpCreate || typ == jute.OpCreate2 || typ == jute.OpCreateContainer || typ == jute.OpCreateTTL):
				create(typ)
			case op == jute.OpMulti && typ == jute.OpDelete, op == jute.OpMulti && typ == jute.OpCheck:
				r.UString()
				r.Int()
			case op == jute.OpMulti && typ == jute.OpSetData:
				r.UString()
				r.Buffer()
				r.Int()
			default:
				return false
			}
		}
	}
	return r.Err == nil
}
