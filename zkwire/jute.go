package zkwire

import (
	"encoding/binary"
	"errors"

	"github.com/zooraft/zoo"
)

// This file is the jute binary codec (ZooKeeper's BinaryInputArchive and
// BinaryOutputArchive): big-endian int (4 bytes), long (8), boolean (1),
// ustring and buffer as an int length and bytes (-1 = null), vectors as an
// int count and items (-1 = null), records as their fields concatenated.

// errMarshal marks a request that does not decode: the client gets
// ZMARSHALLINGERROR, as from ZooKeeper's IOException on a bad record.
var errMarshal = errors.New("zkwire: malformed jute record")

// juteReader decodes one frame. It never panics, and a hostile length or
// count cannot make it allocate beyond the frame: every length and count is
// checked against the bytes that remain before anything is allocated, so the
// decoded values take at most a small constant factor of the frame's size
// (a vector of empty strings costs a 16-byte header per 4-byte element).
// The first failure sticks in err and every later read returns a zero value.
type juteReader struct {
	b   []byte
	err error
}

func (r *juteReader) fail() {
	if r.err == nil {
		r.err = errMarshal
	}
	r.b = nil
}

// take returns the next n bytes, aliasing the frame (frames are never reused).
func (r *juteReader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b) {
		r.fail()
		return nil
	}
	p := r.b[:n:n]
	r.b = r.b[n:]
	return p
}

func (r *juteReader) int() int32 {
	p := r.take(4)
	if p == nil {
		return 0
	}
	return int32(binary.BigEndian.Uint32(p))
}

func (r *juteReader) long() int64 {
	p := r.take(8)
	if p == nil {
		return 0
	}
	return int64(binary.BigEndian.Uint64(p))
}

func (r *juteReader) bool() bool {
	p := r.take(1)
	return p != nil && p[0] != 0
}

// buffer reads a byte buffer; nil for null (-1), non-nil for empty.
func (r *juteReader) buffer() []byte {
	n := r.int()
	if r.err != nil || n == -1 {
		return nil
	}
	if n == 0 {
		return []byte{}
	}
	return r.take(int(n))
}

// ustring reads a string; null reads as "".
func (r *juteReader) ustring() string {
	n := r.int()
	if r.err != nil || n == -1 {
		return ""
	}
	return string(r.take(int(n)))
}

// count reads a vector count: -1 for null, else a count the remaining bytes
// can hold with at least minElem bytes per element.
func (r *juteReader) count(minElem int) int {
	n := r.int()
	if r.err != nil {
		return 0
	}
	if n == -1 {
		return -1
	}
	if n < 0 || int64(n)*int64(minElem) > int64(len(r.b)) {
		r.fail()
		return 0
	}
	return int(n)
}

// strings reads a vector<ustring>; null reads as nil.
func (r *juteReader) strings() []string {
	n := r.count(4)
	if n <= 0 {
		return nil
	}
	out := make([]string, 0, min(n, 1024))
	for i := 0; i < n && r.err == nil; i++ {
		out = append(out, r.ustring())
	}
	return out
}

// acls reads a vector<ACL{perms, Id{scheme, id}}>. A null or empty vector
// reads as an empty, non-nil list: zoo takes nil to mean OpenACL, while
// ZooKeeper refuses an empty list with ZINVALIDACL.
func (r *juteReader) acls() []zoo.ACL {
	n := r.count(12)
	if n <= 0 {
		return []zoo.ACL{}
	}
	out := make([]zoo.ACL, 0, min(n, 1024))
	for i := 0; i < n && r.err == nil; i++ {
		var a zoo.ACL
		a.Perms = r.int()
		a.Scheme = r.ustring()
		a.ID.ID = r.ustring()
		out = append(out, a)
	}
	return out
}

// juteWriter encodes one frame: it starts with room for the length prefix,
// which frame fills in.
type juteWriter struct{ b []byte }

func newFrame(sizeHint int) *juteWriter {
	w := &juteWriter{b: make([]byte, 4, 4+sizeHint)}
	return w
}

// frame returns the finished frame with its length prefix.
func (w *juteWriter) frame() []byte {
	binary.BigEndian.PutUint32(w.b[:4], uint32(len(w.b)-4))
	return w.b
}

func (w *juteWriter) int(v int32)  { w.b = binary.BigEndian.AppendUint32(w.b, uint32(v)) }
func (w *juteWriter) long(v int64) { w.b = binary.BigEndian.AppendUint64(w.b, uint64(v)) }

func (w *juteWriter) bool(v bool) {
	if v {
		w.b = append(w.b, 1)
	} else {
		w.b = append(w.b, 0)
	}
}

// buffer writes p; nil is written as null (-1).
func (w *juteWriter) buffer(p []byte) {
	if p == nil {
		w.int(-1)
		return
	}
	w.int(int32(len(p)))
	w.b = append(w.b, p...)
}

func (w *juteWriter) ustring(s string) {
	w.int(int32(len(s)))
	w.b = append(w.b, s...)
}

// strings writes a vector<ustring>; nil is written as an empty vector, as
// ZooKeeper's responses never carry null lists.
func (w *juteWriter) strings(ss []string) {
	w.int(int32(len(ss)))
	for _, s := range ss {
		w.ustring(s)
	}
}

func (w *juteWriter) acls(acl []zoo.ACL) {
	w.int(int32(len(acl)))
	for _, a := range acl {
		w.int(a.Perms)
		w.ustring(a.Scheme)
		w.ustring(a.ID.ID)
	}
}

// stat writes a Stat in wire order (68 bytes).
func (w *juteWriter) stat(s zoo.Stat) {
	w.long(s.Czxid)
	w.long(s.Mzxid)
	w.long(s.Ctime)
	w.long(s.Mtime)
	w.int(s.Version)
	w.int(s.Cversion)
	w.int(s.Aversion)
	w.long(s.EphemeralOwner)
	w.int(s.DataLength)
	w.int(s.NumChildren)
	w.long(s.Pzxid)
}

// replyHeader writes ReplyHeader{xid, zxid, err}.
func (w *juteWriter) replyHeader(xid int32, zxid int64, code zoo.Code) {
	w.int(xid)
	w.long(zxid)
	w.int(int32(code))
}

// connectRequest is the client's first frame.
type connectRequest struct {
	protocolVersion int32
	lastZxidSeen    int64
	timeout         int32 // ms
	sessionID       int64
	passwd          []byte
	readOnly        bool
	hasReadOnly     bool // the client sent the trailing readOnly byte: answer in kind
}

// parseConnectRequest decodes a ConnectRequest; the readOnly byte is present
// iff a byte remains (ZooKeeper's ProtocolManager).
func parseConnectRequest(b []byte) (connectRequest, error) {
	r := &juteReader{b: b}
	var c connectRequest
	c.protocolVersion = r.int()
	c.lastZxidSeen = r.long()
	c.timeout = r.int()
	c.sessionID = r.long()
	c.passwd = r.buffer()
	if r.err == nil && len(r.b) > 0 {
		c.readOnly, c.hasReadOnly = r.bool(), true
	}
	return c, r.err
}

// connectResponse encodes a ConnectResponse frame: 36 bytes, 37 with the
// readOnly byte, which is sent iff the client sent one (hasReadOnly) and says
// whether the session is read-only.
func connectResponse(timeoutMs int32, sessionID int64, passwd []byte, hasReadOnly, readOnly bool) []byte {
	w := newFrame(37)
	w.int(0) // protocolVersion
	w.int(timeoutMs)
	w.long(sessionID)
	w.buffer(passwd)
	if hasReadOnly {
		w.bool(readOnly)
	}
	return w.frame()
}
