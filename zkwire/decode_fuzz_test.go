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
		requestFrame(0, 0, multiBody(opCreate, createBody("/a", nil, 0)))[12:],
	}
	for _, s := range seeds {
		f.Add(s)
	}
	ops := []int32{opCreate, opCreate2, opCreateContainer, opCreateTTL, opDelete, opExists, opGetData,
		opSetData, opGetACL, opSetACL, opGetChildren, opGetChildren2, opSync, opMulti, opMultiRead,
		opCheckWatches, opRemoveWatches, opSetWatches, opSetWatches2, opGetEphemerals,
		opGetAllChildrenNumber, opAddWatch, opReconfig}
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
		if op == opCreateTTL {
			r.Long()
		}
	}
	switch op {
	case opCreate, opCreate2, opCreateContainer, opCreateTTL:
		create(op)
		// Validation errors come before the session is used too.
		return r.Err == nil
	case opDelete, opSetACL:
		r.UString()
		if op == opSetACL {
			r.ACLs()
		}
		r.Int()
	case opExists, opGetData, opGetChildren, opGetChildren2:
		r.UString()
		r.Bool()
	case opSetData:
		r.UString()
		r.Buffer()
		r.Int()
	case opGetACL, opSync, opGetEphemerals, opGetAllChildrenNumber:
		r.UString()
	case opCheckWatches, opRemoveWatches, opAddWatch:
		r.UString()
		r.Int()
	case opReconfig:
		r.UString()
		r.UString()
		r.UString()
		r.Long()
	case opSetWatches, opSetWatches2:
		r.Long()
		n := 3
		if op == opSetWatches2 {
			n = 5
		}
		for range n {
			r.Strings()
		}
	case opMulti, opMultiRead:
		for r.Err == nil {
			typ, done, _ := r.Int(), r.Bool(), r.Int()
			if done || r.Err != nil {
				break
			}
			switch {
			case op == opMultiRead && (typ == opGetData || typ == opGetChildren):
				r.UString()
				r.Bool()
			case op == opMulti && (typ == opCreate || typ == opCreate2 || typ == opCreateContainer || typ == opCreateTTL):
				create(typ)
			case op == opMulti && typ == opDelete, op == opMulti && typ == opCheck:
				r.UString()
				r.Int()
			case op == opMulti && typ == opSetData:
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
