package zkwire

import (
	"bytes"
	"context"
	"encoding/binary"
	"testing"

	"github.com/zooraft/zoo"
)

func TestJuteRoundTrip(t *testing.T) {
	w := newFrame(0)
	w.int(-7)
	w.long(1 << 40)
	w.bool(true)
	w.buffer(nil)
	w.buffer([]byte{})
	w.buffer([]byte("abc"))
	w.ustring("/path")
	w.strings([]string{"a", "bc"})
	w.acls([]zoo.ACL{{Perms: zoo.PermRead, ID: zoo.ID{Scheme: "world", ID: "anyone"}}})
	st := zoo.Stat{Czxid: 1, Mzxid: 2, Ctime: 3, Mtime: 4, Version: 5, Cversion: 6, Aversion: 7,
		EphemeralOwner: 8, DataLength: 9, NumChildren: 10, Pzxid: 11}
	w.stat(st)
	frame := w.frame()
	if n := binary.BigEndian.Uint32(frame); int(n) != len(frame)-4 {
		t.Fatalf("length prefix %d for %d bytes", n, len(frame)-4)
	}
	r := &juteReader{b: frame[4:]}
	if r.int() != -7 || r.long() != 1<<40 || !r.bool() {
		t.Fatal("scalars")
	}
	if b := r.buffer(); b != nil {
		t.Fatalf("null buffer read as %v", b)
	}
	if b := r.buffer(); b == nil || len(b) != 0 {
		t.Fatalf("empty buffer read as %v", b)
	}
	if b := r.buffer(); string(b) != "abc" {
		t.Fatalf("buffer %q", b)
	}
	if s := r.ustring(); s != "/path" {
		t.Fatalf("ustring %q", s)
	}
	if ss := r.strings(); len(ss) != 2 || ss[0] != "a" || ss[1] != "bc" {
		t.Fatalf("strings %q", ss)
	}
	if acl := r.acls(); len(acl) != 1 || acl[0] != zoo.ReadACL[0] {
		t.Fatalf("acls %+v", acl)
	}
	if got := readStat(r); got != st || len(r.b) != 0 || r.err != nil {
		t.Fatalf("stat %+v, %d left, %v", got, len(r.b), r.err)
	}
	sw := newFrame(0)
	sw.stat(st)
	if n := len(sw.frame()) - 4; n != 68 {
		t.Fatalf("a Stat is %d bytes, want 68", n)
	}
}

func TestJuteReaderRefusesBadLengths(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
		read func(r *juteReader)
	}{
		{"short int", []byte{1, 2}, func(r *juteReader) { r.int() }},
		{"short long", []byte{1, 2, 3, 4}, func(r *juteReader) { r.long() }},
		{"buffer longer than the frame", []byte{0, 0, 0, 9, 1}, func(r *juteReader) { r.buffer() }},
		{"buffer length below -1", []byte{0xff, 0xff, 0xff, 0xfe}, func(r *juteReader) { r.buffer() }},
		{"huge vector count", []byte{0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0}, func(r *juteReader) { r.strings() }},
		{"negative vector count", []byte{0xff, 0xff, 0xff, 0xf0}, func(r *juteReader) { r.acls() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &juteReader{b: tc.in}
			tc.read(r)
			if r.err == nil {
				t.Fatal("no error")
			}
			// Errors stick; later reads return zero values.
			if r.int() != 0 || r.ustring() != "" || r.err == nil {
				t.Fatal("reader went on after an error")
			}
		})
	}
	r := &juteReader{b: []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}
	if r.ustring() != "" || r.strings() != nil || r.err != nil {
		t.Fatal("null string and null vector")
	}
}

func TestConnectRequest(t *testing.T) {
	for _, ro := range []bool{false, true} {
		frame := connectFrame(42, 3000, 7, bytes.Repeat([]byte{9}, 16), ro)
		req, err := parseConnectRequest(frame[4:])
		if err != nil || req.lastZxidSeen != 42 || req.timeout != 3000 || req.sessionID != 7 ||
			len(req.passwd) != 16 || req.hasReadOnly != ro {
			t.Fatalf("readOnly=%v: %+v %v", ro, req, err)
		}
	}
	if _, err := parseConnectRequest([]byte{0, 0, 0, 0, 1}); err == nil {
		t.Fatal("truncated ConnectRequest parsed")
	}
	if n := len(connectResponse(4000, 1, make([]byte, 16), false, false)) - 4; n != 36 {
		t.Fatalf("ConnectResponse is %d bytes", n)
	}
	if n := len(connectResponse(4000, 1, make([]byte, 16), true, false)) - 4; n != 37 {
		t.Fatalf("ConnectResponse with readOnly is %d bytes", n)
	}
}

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
		_, _ = parseConnectRequest(body)
		for _, op := range ops {
			if !decodes(op, body) {
				_, err := handlers[op](context.Background(), c, nil, &juteReader{b: body})
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
	r := &juteReader{b: body}
	create := func(op int32) {
		r.ustring()
		r.buffer()
		r.acls()
		r.int()
		if op == opCreateTTL {
			r.long()
		}
	}
	switch op {
	case opCreate, opCreate2, opCreateContainer, opCreateTTL:
		create(op)
		// Validation errors come before the session is used too.
		return r.err == nil
	case opDelete, opSetACL:
		r.ustring()
		if op == opSetACL {
			r.acls()
		}
		r.int()
	case opExists, opGetData, opGetChildren, opGetChildren2:
		r.ustring()
		r.bool()
	case opSetData:
		r.ustring()
		r.buffer()
		r.int()
	case opGetACL, opSync, opGetEphemerals, opGetAllChildrenNumber:
		r.ustring()
	case opCheckWatches, opRemoveWatches, opAddWatch:
		r.ustring()
		r.int()
	case opReconfig:
		r.ustring()
		r.ustring()
		r.ustring()
		r.long()
	case opSetWatches, opSetWatches2:
		r.long()
		n := 3
		if op == opSetWatches2 {
			n = 5
		}
		for range n {
			r.strings()
		}
	case opMulti, opMultiRead:
		for r.err == nil {
			typ, done, _ := r.int(), r.bool(), r.int()
			if done || r.err != nil {
				break
			}
			switch {
			case op == opMultiRead && (typ == opGetData || typ == opGetChildren):
				r.ustring()
				r.bool()
			case op == opMulti && (typ == opCreate || typ == opCreate2 || typ == opCreateContainer || typ == opCreateTTL):
				create(typ)
			case op == opMulti && typ == opDelete, op == opMulti && typ == opCheck:
				r.ustring()
				r.int()
			case op == opMulti && typ == opSetData:
				r.ustring()
				r.buffer()
				r.int()
			default:
				return false
			}
		}
	}
	return r.err == nil
}
