package zoo

import (
	"encoding/binary"
	"errors"
	"math"
)

// errCorrupt marks an undecodable command, result or snapshot.
var errCorrupt = errors.New("zoo: corrupt encoding")

// enc appends big-endian fields to a byte slice: the one binary format shared by
// commands, results and snapshots.
type enc struct{ b []byte }

func (e *enc) u8(v byte)    { e.b = append(e.b, v) }
func (e *enc) i32(v int32)  { e.b = binary.BigEndian.AppendUint32(e.b, uint32(v)) }
func (e *enc) u32(v uint32) { e.b = binary.BigEndian.AppendUint32(e.b, v) }
func (e *enc) i64(v int64)  { e.b = binary.BigEndian.AppendUint64(e.b, uint64(v)) }
func (e *enc) u64(v uint64) { e.b = binary.BigEndian.AppendUint64(e.b, v) }
func (e *enc) str(s string) { e.u32(uint32(len(s))); e.b = append(e.b, s...) }

// bytes keeps nil (length -1) apart from empty.
func (e *enc) bytes(p []byte) {
	if p == nil {
		e.i32(-1)
		return
	}
	e.i32(int32(len(p)))
	e.b = append(e.b, p...)
}

func (e *enc) acl(acl []ACL) {
	e.u32(uint32(len(acl)))
	for _, a := range acl {
		e.i32(a.Perms)
		e.str(a.Scheme)
		e.str(a.ID.ID)
	}
}

func (e *enc) ids(ids []ID) {
	e.u32(uint32(len(ids)))
	for _, id := range ids {
		e.str(id.Scheme)
		e.str(id.ID)
	}
}

func (e *enc) stat(s *Stat) {
	e.i64(s.Czxid)
	e.i64(s.Mzxid)
	e.i64(s.Ctime)
	e.i64(s.Mtime)
	e.i32(s.Version)
	e.i32(s.Cversion)
	e.i32(s.Aversion)
	e.i64(s.EphemeralOwner)
	e.i32(s.DataLength)
	e.i32(s.NumChildren)
	e.i64(s.Pzxid)
}

// dec reads what enc wrote. The first failure sticks in err and every later
// read returns zero values, so callers check err once at the end.
type dec struct {
	b   []byte
	err error
}

func (d *dec) need(n int) bool {
	if d.err != nil {
		return false
	}
	if n < 0 || len(d.b) < n {
		d.err = errCorrupt
		return false
	}
	return true
}

func (d *dec) u8() byte {
	if !d.need(1) {
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *dec) u32() uint32 {
	if !d.need(4) {
		return 0
	}
	v := binary.BigEndian.Uint32(d.b)
	d.b = d.b[4:]
	return v
}

func (d *dec) i32() int32 { return int32(d.u32()) }

func (d *dec) u64() uint64 {
	if !d.need(8) {
		return 0
	}
	v := binary.BigEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}

func (d *dec) i64() int64 { return int64(d.u64()) }

func (d *dec) str() string {
	n := d.u32()
	if n > math.MaxInt32 && d.err == nil {
		d.err = errCorrupt // a length no input can hold (was read as "")
	}
	if d.err != nil || !d.need(int(n)) {
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *dec) bytes() []byte {
	n := d.i32()
	if n == -1 && d.err == nil {
		return nil
	}
	if !d.need(int(n)) {
		return nil
	}
	p := make([]byte, n)
	copy(p, d.b[:n])
	d.b = d.b[n:]
	return p
}

// count reads a list length, refusing lengths the remaining input cannot hold
// (each element takes at least min bytes), so corrupt input cannot force a huge allocation.
func (d *dec) count(min int) int {
	n := d.u32()
	if d.err == nil && uint64(n)*uint64(min) > uint64(len(d.b)) {
		d.err = errCorrupt
	}
	if d.err != nil {
		return 0
	}
	return int(n)
}

func (d *dec) acl() []ACL {
	n := d.count(12)
	if n == 0 {
		return nil
	}
	acl := make([]ACL, n)
	for i := range acl {
		acl[i].Perms = d.i32()
		acl[i].Scheme = d.str()
		acl[i].ID.ID = d.str()
	}
	return acl
}

func (d *dec) ids() []ID {
	n := d.count(8)
	if n == 0 {
		return nil
	}
	ids := make([]ID, n)
	for i := range ids {
		ids[i].Scheme = d.str()
		ids[i].ID = d.str()
	}
	return ids
}

func (d *dec) stat() Stat {
	var s Stat
	s.Czxid = d.i64()
	s.Mzxid = d.i64()
	s.Ctime = d.i64()
	s.Mtime = d.i64()
	s.Version = d.i32()
	s.Cversion = d.i32()
	s.Aversion = d.i32()
	s.EphemeralOwner = d.i64()
	s.DataLength = d.i32()
	s.NumChildren = d.i32()
	s.Pzxid = d.i64()
	return s
}
