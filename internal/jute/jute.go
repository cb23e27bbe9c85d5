// Package jute is ZooKeeper's jute binary codec (BinaryInputArchive and
// BinaryOutputArchive), shared by zoo's wire server and its client:
// big-endian int (4 bytes), long (8), boolean (1), ustring and buffer as an
// int length and bytes (-1 = null), vectors as an int count and items
// (-1 = null), records as their fields concatenated, and every message
// framed by an int length that excludes itself.
//
// The Reader is written for hostile input: it never panics, checks every
// length and count against the bytes that remain before allocating, and
// keeps the first failure; the Writer cannot fail.
package jute

import (
	"encoding/binary"
	"errors"

	"github.com/zooraft/zoo"
)

// ErrMarshal marks a record that does not decode: a server answers it with
// ZMARSHALLINGERROR, as ZooKeeper does for an IOException while reading one.
var ErrMarshal = errors.New("jute: malformed record")

// StatSize is the encoded size of a Stat.
const StatSize = 68

// Reader decodes one frame. A hostile length or count cannot make it
// allocate beyond the frame: the decoded values take at most a small
// constant factor of the frame's size (a vector of empty strings costs a
// 16-byte header per 4-byte element). The first failure sticks in Err, B is
// dropped, and every later read returns a zero value.
type Reader struct {
	B   []byte // what is left to read; slices returned alias it
	Err error  // ErrMarshal after the first failure
}

// NewReader returns a Reader of b.
func NewReader(b []byte) *Reader { return &Reader{B: b} }

// Len returns the number of bytes left.
func (r *Reader) Len() int { return len(r.B) }

// Rest returns the bytes left and consumes them.
func (r *Reader) Rest() []byte {
	if r.Err != nil {
		return nil
	}
	p := r.B
	r.B = r.B[len(r.B):]
	return p
}

// Fail records ErrMarshal (if nothing failed yet) and drops the rest: for
// callers whose record is well-formed jute but makes no sense.
func (r *Reader) Fail() {
	if r.Err == nil {
		r.Err = ErrMarshal
	}
	r.B = nil
}

// take returns the next n bytes, aliasing the frame.
func (r *Reader) take(n int) []byte {
	if r.Err != nil {
		return nil
	}
	if n < 0 || n > len(r.B) {
		r.Fail()
		return nil
	}
	p := r.B[:n:n]
	r.B = r.B[n:]
	return p
}

// Int reads an int.
func (r *Reader) Int() int32 {
	p := r.take(4)
	if p == nil {
		return 0
	}
	return int32(binary.BigEndian.Uint32(p))
}

// Long reads a long.
func (r *Reader) Long() int64 {
	p := r.take(8)
	if p == nil {
		return 0
	}
	return int64(binary.BigEndian.Uint64(p))
}

// Bool reads a boolean; any non-zero byte is true, as in Java.
func (r *Reader) Bool() bool {
	p := r.take(1)
	return p != nil && p[0] != 0
}

// Buffer reads a byte buffer: nil for null (-1), non-nil for empty, so that
// null and empty data stay apart.
func (r *Reader) Buffer() []byte {
	n := r.Int()
	if r.Err != nil || n == -1 {
		return nil
	}
	if n == 0 {
		return []byte{}
	}
	return r.take(int(n))
}

// UString reads a string; null reads as "".
func (r *Reader) UString() string {
	n := r.Int()
	if r.Err != nil || n == -1 {
		return ""
	}
	return string(r.take(int(n)))
}

// Count reads a vector count: -1 for null, else a count the remaining bytes
// can hold with at least minElem bytes per element (0 on failure). Use it
// for vectors of records this package has no method for.
func (r *Reader) Count(minElem int) int {
	n := r.Int()
	if r.Err != nil {
		return 0
	}
	if n == -1 {
		return -1
	}
	if n < 0 || int64(n)*int64(max(minElem, 1)) > int64(len(r.B)) {
		r.Fail()
		return 0
	}
	return int(n)
}

// Strings reads a vector<ustring>; null reads as nil.
func (r *Reader) Strings() []string {
	n := r.Count(4)
	if n <= 0 {
		return nil
	}
	out := make([]string, 0, min(n, 1024))
	for i := 0; i < n && r.Err == nil; i++ {
		out = append(out, r.UString())
	}
	return out
}

// ACLs reads a vector<ACL{perms, Id{scheme, id}}>. A null or empty vector
// reads as an empty, non-nil list: zoo takes nil to mean OpenACL, while
// ZooKeeper refuses an empty list with ZINVALIDACL.
func (r *Reader) ACLs() []zoo.ACL {
	n := r.Count(12)
	if n <= 0 {
		return []zoo.ACL{}
	}
	out := make([]zoo.ACL, 0, min(n, 1024))
	for i := 0; i < n && r.Err == nil; i++ {
		var a zoo.ACL
		a.Perms = r.Int()
		a.Scheme = r.UString()
		a.ID.ID = r.UString()
		out = append(out, a)
	}
	return out
}

// Stat reads a Stat in wire order (68 bytes).
func (r *Reader) Stat() zoo.Stat {
	return zoo.Stat{Czxid: r.Long(), Mzxid: r.Long(), Ctime: r.Long(), Mtime: r.Long(),
		Version: r.Int(), Cversion: r.Int(), Aversion: r.Int(), EphemeralOwner: r.Long(),
		DataLength: r.Int(), NumChildren: r.Int(), Pzxid: r.Long()}
}

// Writer encodes one frame: it starts with room for the length prefix,
// which Frame fills in.
type Writer struct {
	B []byte // the frame so far, length prefix included
}

// NewFrame returns a Writer for a frame of about sizeHint payload bytes.
func NewFrame(sizeHint int) *Writer {
	return &Writer{B: make([]byte, 4, 4+max(sizeHint, 0))}
}

// Frame returns the finished frame with its length prefix.
func (w *Writer) Frame() []byte {
	binary.BigEndian.PutUint32(w.B[:4], uint32(len(w.B)-4))
	return w.B
}

// Len returns the payload length so far (without the prefix).
func (w *Writer) Len() int { return len(w.B) - 4 }

// Int writes an int.
func (w *Writer) Int(v int32) { w.B = binary.BigEndian.AppendUint32(w.B, uint32(v)) }

// Long writes a long.
func (w *Writer) Long(v int64) { w.B = binary.BigEndian.AppendUint64(w.B, uint64(v)) }

// Bool writes a boolean.
func (w *Writer) Bool(v bool) {
	if v {
		w.B = append(w.B, 1)
	} else {
		w.B = append(w.B, 0)
	}
}

// Buffer writes p; nil is written as null (-1).
func (w *Writer) Buffer(p []byte) {
	if p == nil {
		w.Int(-1)
		return
	}
	w.Int(int32(len(p)))
	w.B = append(w.B, p...)
}

// UString writes a string (never null; see NullString).
func (w *Writer) UString(s string) {
	w.Int(int32(len(s)))
	w.B = append(w.B, s...)
}

// NullString writes a null ustring (-1), which ZooKeeper tells apart from
// "" in a few requests (reconfig's server lists).
func (w *Writer) NullString() { w.Int(-1) }

// Strings writes a vector<ustring>; nil is written as an empty vector, as
// ZooKeeper's responses never carry null lists.
func (w *Writer) Strings(ss []string) {
	w.Int(int32(len(ss)))
	for _, s := range ss {
		w.UString(s)
	}
}

// ACLs writes a vector<ACL>.
func (w *Writer) ACLs(acl []zoo.ACL) {
	w.Int(int32(len(acl)))
	for _, a := range acl {
		w.Int(a.Perms)
		w.UString(a.Scheme)
		w.UString(a.ID.ID)
	}
}

// Stat writes a Stat in wire order (68 bytes).
func (w *Writer) Stat(s zoo.Stat) {
	w.Long(s.Czxid)
	w.Long(s.Mzxid)
	w.Long(s.Ctime)
	w.Long(s.Mtime)
	w.Int(s.Version)
	w.Int(s.Cversion)
	w.Int(s.Aversion)
	w.Long(s.EphemeralOwner)
	w.Int(s.DataLength)
	w.Int(s.NumChildren)
	w.Long(s.Pzxid)
}

// RequestHeader writes RequestHeader{xid, type}.
func (w *Writer) RequestHeader(xid, op int32) {
	w.Int(xid)
	w.Int(op)
}

// ReplyHeader writes ReplyHeader{xid, zxid, err}.
func (w *Writer) ReplyHeader(xid int32, zxid int64, code zoo.Code) {
	w.Int(xid)
	w.Long(zxid)
	w.Int(int32(code))
}

// MultiHeader writes MultiHeader{type, done, err}.
func (w *Writer) MultiHeader(typ int32, done bool, err int32) {
	w.Int(typ)
	w.Bool(done)
	w.Int(err)
}
