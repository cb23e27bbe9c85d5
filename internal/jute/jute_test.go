package jute

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/zooraft/zoo"
)

var testStat = zoo.Stat{Czxid: 1, Mzxid: 2, Ctime: 3, Mtime: 4, Version: 5, Cversion: 6, Aversion: 7,
	EphemeralOwner: 8, DataLength: 9, NumChildren: 10, Pzxid: 11}

func TestRoundTrip(t *testing.T) {
	w := NewFrame(0)
	w.Int(-7)
	w.Long(1 << 40)
	w.Bool(true)
	w.Bool(false)
	w.Buffer(nil)
	w.Buffer([]byte{})
	w.Buffer([]byte("abc"))
	w.UString("/path")
	w.UString("")
	w.NullString()
	w.Strings([]string{"a", "bc", ""})
	w.Strings(nil)
	w.ACLs([]zoo.ACL{{Perms: zoo.PermRead, ID: zoo.ID{Scheme: "world", ID: "anyone"}},
		{Perms: zoo.PermAll, ID: zoo.ID{Scheme: "digest", ID: "u:h"}}})
	w.ACLs(nil)
	w.Stat(testStat)
	w.RequestHeader(9, 4)
	w.ReplyHeader(-1, 77, zoo.CodeNoNode)
	w.MultiHeader(-1, true, -1)
	frame := w.Frame()
	if n := binary.BigEndian.Uint32(frame); int(n) != len(frame)-4 || w.Len() != len(frame)-4 {
		t.Fatalf("length prefix %d, Len %d for %d bytes", n, w.Len(), len(frame)-4)
	}

	r := NewReader(frame[4:])
	if r.Int() != -7 || r.Long() != 1<<40 || !r.Bool() || r.Bool() {
		t.Fatal("scalars")
	}
	if b := r.Buffer(); b != nil {
		t.Fatalf("null buffer read as %#v", b)
	}
	if b := r.Buffer(); b == nil || len(b) != 0 {
		t.Fatalf("empty buffer read as %#v", b)
	}
	if b := r.Buffer(); string(b) != "abc" {
		t.Fatalf("buffer %q", b)
	}
	if s := r.UString(); s != "/path" {
		t.Fatalf("ustring %q", s)
	}
	if s1, s2 := r.UString(), r.UString(); s1 != "" || s2 != "" {
		t.Fatalf("empty and null ustring: %q %q", s1, s2)
	}
	if ss := r.Strings(); !slices.Equal(ss, []string{"a", "bc", ""}) {
		t.Fatalf("strings %q", ss)
	}
	if ss := r.Strings(); ss != nil {
		t.Fatalf("empty vector read as %#v", ss)
	}
	if acl := r.ACLs(); len(acl) != 2 || acl[0] != zoo.ReadACL[0] || acl[1].Scheme != "digest" || acl[1].ID.ID != "u:h" || acl[1].Perms != zoo.PermAll {
		t.Fatalf("acls %+v", acl)
	}
	if acl := r.ACLs(); acl == nil || len(acl) != 0 {
		t.Fatalf("empty ACL list read as %#v", acl)
	}
	if got := r.Stat(); got != testStat {
		t.Fatalf("stat %+v", got)
	}
	if xid, op := r.Int(), r.Int(); xid != 9 || op != 4 {
		t.Fatal("request header")
	}
	if xid, zxid, code := r.Int(), r.Long(), r.Int(); xid != -1 || zxid != 77 || zoo.Code(code) != zoo.CodeNoNode {
		t.Fatal("reply header")
	}
	if typ, done, e := r.Int(), r.Bool(), r.Int(); typ != -1 || !done || e != -1 {
		t.Fatal("multi header")
	}
	if r.Len() != 0 || r.Err != nil || len(r.Rest()) != 0 {
		t.Fatalf("%d bytes left, err %v", r.Len(), r.Err)
	}

	sw := NewFrame(0)
	sw.Stat(testStat)
	if sw.Len() != StatSize {
		t.Fatalf("a Stat is %d bytes, want %d", sw.Len(), StatSize)
	}
}

func TestReaderRefusesBadLengths(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
		read func(r *Reader)
	}{
		{"short int", []byte{1, 2}, func(r *Reader) { r.Int() }},
		{"short long", []byte{1, 2, 3, 4}, func(r *Reader) { r.Long() }},
		{"no bool", nil, func(r *Reader) { r.Bool() }},
		{"buffer longer than the frame", []byte{0, 0, 0, 9, 1}, func(r *Reader) { r.Buffer() }},
		{"buffer length below -1", []byte{0xff, 0xff, 0xff, 0xfe}, func(r *Reader) { r.Buffer() }},
		{"string longer than the frame", []byte{0, 0, 0, 2, 'a'}, func(r *Reader) { r.UString() }},
		{"string length below -1", []byte{0x80, 0, 0, 0}, func(r *Reader) { r.UString() }},
		{"huge vector count", []byte{0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0}, func(r *Reader) { r.Strings() }},
		{"vector count beyond the bytes", []byte{0, 0, 0, 2, 0, 0, 0, 0}, func(r *Reader) { r.Strings() }},
		{"negative vector count", []byte{0xff, 0xff, 0xff, 0xf0}, func(r *Reader) { r.ACLs() }},
		{"huge ACL count", []byte{0, 0x10, 0, 0, 0, 0, 0, 0}, func(r *Reader) { r.ACLs() }},
		{"truncated ACL", []byte{0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 5, 'w', 'o', 'r', 'l', 'd', 0, 0}, func(r *Reader) { r.ACLs() }},
		{"truncated stat", make([]byte, StatSize-1), func(r *Reader) { r.Stat() }},
		{"count of records", []byte{0, 0, 0, 3, 0, 0}, func(r *Reader) { r.Count(8) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := NewReader(tc.in)
			tc.read(r)
			if !errors.Is(r.Err, ErrMarshal) {
				t.Fatalf("err %v, want ErrMarshal", r.Err)
			}
			// Errors stick; later reads return zero values.
			if r.Int() != 0 || r.Long() != 0 || r.Bool() || r.UString() != "" || r.Buffer() != nil ||
				r.Strings() != nil || len(r.ACLs()) != 0 || r.Stat() != (zoo.Stat{}) || r.Count(1) != 0 ||
				r.Rest() != nil || r.Len() != 0 || !errors.Is(r.Err, ErrMarshal) {
				t.Fatal("reader went on after an error")
			}
		})
	}
	r := NewReader([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	if r.UString() != "" || r.Strings() != nil || r.Count(4) != -1 || r.Err != nil {
		t.Fatal("null string and null vectors")
	}
	r = NewReader([]byte{1, 2})
	r.Fail()
	if r.Len() != 0 || !errors.Is(r.Err, ErrMarshal) {
		t.Fatal("Fail")
	}
}

// A hostile count cannot make the reader allocate more than the frame holds.
func TestReaderAllocationBound(t *testing.T) {
	in := append([]byte{0x7f, 0xff, 0xff, 0xff}, make([]byte, 4096)...)
	allocs := testing.AllocsPerRun(10, func() {
		r := NewReader(in)
		r.Strings()
	})
	if allocs > 2 {
		t.Fatalf("%v allocations for a refused vector", allocs)
	}
	// A valid vector of 1024 empty strings costs about one slice.
	w := NewFrame(0)
	w.Strings(make([]string, 1024))
	frame := w.Frame()[4:]
	allocs = testing.AllocsPerRun(10, func() { NewReader(frame).Strings() })
	if allocs > 4 {
		t.Fatalf("%v allocations for 1024 empty strings", allocs)
	}
}

func TestConnectRecords(t *testing.T) {
	for _, ro := range []bool{false, true} {
		req := ConnectRequest{LastZxidSeen: 42, TimeOut: 3000, SessionID: 7, Passwd: bytes.Repeat([]byte{9}, 16),
			ReadOnly: ro, HasReadOnly: ro}
		frame := req.Frame()
		if want := 48 + b2i(ro); len(frame) != want {
			t.Fatalf("ConnectRequest frame is %d bytes, want %d", len(frame), want)
		}
		got, err := ReadConnectRequest(frame[4:])
		if err != nil || got.LastZxidSeen != 42 || got.TimeOut != 3000 || got.SessionID != 7 ||
			!bytes.Equal(got.Passwd, req.Passwd) || got.HasReadOnly != ro || got.ReadOnly != ro {
			t.Fatalf("readOnly=%v: %+v %v", ro, got, err)
		}
		resp := ConnectResponse{TimeOut: 4000, SessionID: -3, Passwd: make([]byte, 16), ReadOnly: ro, HasReadOnly: ro}
		frame = resp.Frame()
		if want := 40 + b2i(ro); len(frame) != want {
			t.Fatalf("ConnectResponse frame is %d bytes, want %d", len(frame), want)
		}
		gotResp, err := ReadConnectResponse(frame[4:])
		if err != nil || gotResp.TimeOut != 4000 || gotResp.SessionID != -3 || len(gotResp.Passwd) != 16 ||
			gotResp.HasReadOnly != ro || gotResp.ReadOnly != ro {
			t.Fatalf("readOnly=%v: %+v %v", ro, gotResp, err)
		}
	}
	if _, err := ReadConnectRequest([]byte{0, 0, 0, 0, 1}); err == nil {
		t.Fatal("truncated ConnectRequest parsed")
	}
	if _, err := ReadConnectResponse([]byte{0, 0, 0, 0, 0, 0, 0x10, 0}); err == nil {
		t.Fatal("truncated ConnectResponse parsed")
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestReadFrame(t *testing.T) {
	w := NewFrame(0)
	w.UString("hello")
	good := w.Frame()
	big := NewFrame(200 << 10)
	big.Buffer(bytes.Repeat([]byte{7}, 200<<10))
	bigFrame := big.Frame()
	for _, tc := range []struct {
		name    string
		in      []byte
		max     int
		want    []byte
		wantErr error
	}{
		{"frame", good, 100, good[4:], nil},
		{"empty frame", []byte{0, 0, 0, 0}, 100, []byte{}, nil},
		{"bigger than several chunks", bigFrame, 1 << 20, bigFrame[4:], nil},
		{"over the limit", good, 3, nil, ErrFrameSize},
		{"negative length", []byte{0xff, 0xff, 0xff, 0xfe, 1}, 100, nil, ErrFrameSize},
		{"huge length, few bytes", []byte{0x7f, 0xff, 0xff, 0xff, 1, 2}, 1<<31 - 1, nil, io.ErrUnexpectedEOF},
		{"truncated body", good[:len(good)-1], 100, nil, io.ErrUnexpectedEOF},
		{"truncated prefix", []byte{0, 0}, 100, nil, io.ErrUnexpectedEOF},
		{"nothing", nil, 100, nil, io.EOF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ReadFrame(bytes.NewReader(tc.in), tc.max)
			if !errors.Is(err, tc.wantErr) || !bytes.Equal(got, tc.want) {
				t.Fatalf("got %d bytes, %v; want %d bytes, %v", len(got), err, len(tc.want), tc.wantErr)
			}
		})
	}
	// Two frames back to back.
	r := bytes.NewReader(append(append([]byte{}, good...), good...))
	for range 2 {
		if f, err := ReadFrame(r, 100); err != nil || NewReader(f).UString() != "hello" {
			t.Fatalf("%q %v", f, err)
		}
	}
}

// FuzzReader runs every read in every order the input chooses over an
// arbitrary payload: nothing may panic, a failure must stick, and the
// bytes consumed never exceed the payload.
func FuzzReader(f *testing.F) {
	w := NewFrame(0)
	w.ReplyHeader(3, 9, 0)
	w.Buffer([]byte("data"))
	w.Stat(testStat)
	w.Strings([]string{"a", "b"})
	w.ACLs(zoo.OpenACL)
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8}, w.Frame()[4:])
	f.Add([]byte{5, 5, 6}, []byte{0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 1})
	f.Add([]byte{}, []byte(strings.Repeat("\xff", 40)))
	f.Fuzz(func(t *testing.T, script, payload []byte) {
		r := NewReader(payload)
		for _, step := range script {
			before := r.Len()
			switch step % 11 {
			case 0:
				r.Int()
			case 1:
				r.Long()
			case 2:
				r.Bool()
			case 3:
				r.Buffer()
			case 4:
				r.UString()
			case 5:
				r.Strings()
			case 6:
				r.ACLs()
			case 7:
				r.Stat()
			case 8:
				r.Count(int(step / 11))
			case 9:
				r.Rest()
			case 10:
				r.Fail()
			}
			if r.Len() > before {
				t.Fatal("reader grew")
			}
			if r.Err != nil && r.Len() != 0 {
				t.Fatal("bytes left after a failure")
			}
		}
		_, _ = ReadConnectRequest(payload)
		_, _ = ReadConnectResponse(payload)
		_, _ = ReadFrame(bytes.NewReader(payload), 1<<16)
	})
}
