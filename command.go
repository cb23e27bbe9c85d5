package zoo

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"time"
)

// commandVersion is the first byte of every log entry zoo writes. A replica
// refuses entries of a version it does not know instead of misapplying them.
// Version 2 ends with a CRC-32C of everything before it (sealCommand);
// version 1, written by earlier zoo, has none and is still read.
const (
	commandVersion       = 2
	commandVersionNoSum  = 1
	commandChecksumBytes = 4
)

// errChecksum marks a log entry whose bytes are not the ones written.
var errChecksum = fmt.Errorf("%w: checksum mismatch", errCorrupt)

// opCode identifies a replicated command. Znode ops reuse ZooKeeper's opcodes.
type opCode byte

const (
	opCreate        opCode = 1
	opDelete        opCode = 2
	opSetData       opCode = 5
	opSetACL        opCode = 7
	opCheck         opCode = 13
	opMulti         opCode = 14
	opCreateSession opCode = 100
	opCloseSession  opCode = 101
	opReap          opCode = 102 // leader-initiated delete of a container or expired TTL node
	opRegister      opCode = 103 // a replica records which data dir it runs on (identity.go)
	opCheckpoint    opCode = 104 // the log verifier's checkpoint; changes nothing (integrity_verifier.go)
	opEnsemble      opCode = 105 // the first leader names the ensemble (identity_ensemble.go)
)

// command is one replicated write. time is stamped by the leader just before
// proposing, so every replica computes the same ctime/mtime.
type command struct {
	op   opCode
	time int64 // ms since epoch, leader's clock
	// digestAt and digest: the leader's tree digest after index digestAt,
	// which every replica checks against its own (tree_digest.go); 0: none.
	digestAt uint64
	digest   uint64
	session  int64
	ids      []ID // the caller's identities, for ACL checks at apply
	ops      []Op // opCreate..opMulti: one op, or the multi's ops

	// session commands
	timeout  int32 // createSession: negotiated timeout, ms
	password []byte
	expired  bool   // closeSession: true when the leader expired it
	path     string // opReap

	member   string // opRegister: the replica's ID
	instance []byte // opRegister: its data dir's instance id

	ensemble []byte // opEnsemble: the ensemble's id
}

// timeOffset is where the leader stamps its time into an encoded command,
// and the digest after it (version 2).
const timeOffset = 2

func encodeCommand(c *command) []byte {
	e := &enc{b: make([]byte, 0, 64)}
	e.u8(commandVersion)
	e.u8(byte(c.op))
	e.i64(c.time)
	e.u64(c.digestAt)
	e.u64(c.digest)
	e.i64(c.session)
	e.ids(c.ids)
	switch c.op {
	case opCreateSession:
		e.i32(c.timeout)
		e.bytes(c.password)
	case opCloseSession:
		if c.expired {
			e.u8(1)
		} else {
			e.u8(0)
		}
	case opReap:
		e.str(c.path)
	case opRegister:
		e.str(c.member)
		e.bytes(c.instance)
	case opEnsemble:
		e.bytes(c.ensemble)
	case opCheckpoint:
	default:
		if c.op == opMulti {
			e.u32(uint32(len(c.ops)))
		}
		for _, op := range c.ops {
			encodeOp(e, op)
		}
	}
	e.u32(0)
	sealCommand(e.b)
	return e.b
}

// stampLeader overwrites the command's time and digest in place, and seals
// it again: the leader does this for every command it proposes, forwarded
// ones included, so time comes from one clock and the digest from the leader.
func stampLeader(b []byte, now time.Time, digestAt, digest uint64) {
	if len(b) >= timeOffset+24+commandChecksumBytes && b[0] == commandVersion {
		e := &enc{b: b[:timeOffset]}
		e.i64(now.UnixMilli())
		e.u64(digestAt)
		e.u64(digest)
		sealCommand(b)
	}
}

// sealCommand writes the checksum of an encoded command into its last bytes.
func sealCommand(b []byte) {
	body := len(b) - commandChecksumBytes
	binary.BigEndian.PutUint32(b[body:], crc32.Checksum(b[:body], castagnoli))
}

func encodeOp(e *enc, op Op) {
	switch o := op.(type) {
	case CreateOp:
		// nil means OpenACL; resolved here because the encoding cannot tell
		// nil from an empty list, which ZooKeeper refuses with ErrInvalidACL.
		acl := o.ACL
		if acl == nil {
			acl = commonACLs[0] // world:anyone, ALL; immune to changes of OpenACL
		}
		e.u8(byte(opCreate))
		e.str(o.Path)
		e.bytes(o.Data)
		e.acl(acl)
		e.i32(int32(o.Mode))
		e.i64(o.TTL.Milliseconds())
	case DeleteOp:
		e.u8(byte(opDelete))
		e.str(o.Path)
		e.i32(o.Version)
	case SetDataOp:
		e.u8(byte(opSetData))
		e.str(o.Path)
		e.bytes(o.Data)
		e.i32(o.Version)
	case CheckOp:
		e.u8(byte(opCheck))
		e.str(o.Path)
		e.i32(o.Version)
	case setACLOp:
		e.u8(byte(opSetACL))
		e.str(o.path)
		e.acl(o.acl)
		e.i32(o.version)
	}
}

// decodeCommand checks an entry's checksum and decodes it. Every error
// wraps errCorrupt: the entry is not what a replica wrote.
func decodeCommand(b []byte) (*command, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: empty command", errCorrupt)
	}
	switch b[0] {
	case commandVersion:
		if len(b) < 1+commandChecksumBytes {
			return nil, fmt.Errorf("%w: command of %d bytes", errCorrupt, len(b))
		}
		body := len(b) - commandChecksumBytes
		if crc32.Checksum(b[:body], castagnoli) != binary.BigEndian.Uint32(b[body:]) {
			return nil, errChecksum
		}
		b = b[:body]
	case commandVersionNoSum:
	default:
		return nil, fmt.Errorf("%w: command version %d", errCorrupt, b[0])
	}
	d := &dec{b: b[1:]}
	c := &command{op: opCode(d.u8()), time: d.i64()}
	if b[0] == commandVersion {
		c.digestAt, c.digest = d.u64(), d.u64()
	}
	c.session = d.i64()
	c.ids = d.ids()
	switch c.op {
	case opCreateSession:
		c.timeout = d.i32()
		c.password = d.bytes()
	case opCloseSession:
		c.expired = d.u8() == 1
	case opReap:
		c.path = d.str()
	case opRegister:
		c.member = d.str()
		c.instance = d.bytes()
	case opEnsemble:
		c.ensemble = d.bytes()
	case opCheckpoint:
	case opCreate, opDelete, opSetData, opSetACL, opCheck:
		c.ops = []Op{decodeOp(d)}
	case opMulti:
		n := d.count(1)
		c.ops = make([]Op, 0, n)
		for i := 0; i < n && d.err == nil; i++ {
			c.ops = append(c.ops, decodeOp(d))
		}
	default:
		return nil, fmt.Errorf("%w: unknown command op %d", errCorrupt, c.op)
	}
	if d.err != nil {
		return nil, d.err
	}
	if len(d.b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", errCorrupt, len(d.b))
	}
	return c, nil
}

func decodeOp(d *dec) Op {
	switch opCode(d.u8()) {
	case opCreate:
		o := CreateOp{Path: d.str(), Data: d.bytes(), ACL: d.acl(), Mode: CreateMode(d.i32())}
		o.TTL = time.Duration(d.i64()) * time.Millisecond
		return o
	case opDelete:
		return DeleteOp{Path: d.str(), Version: d.i32()}
	case opSetData:
		return SetDataOp{Path: d.str(), Data: d.bytes(), Version: d.i32()}
	case opCheck:
		return CheckOp{Path: d.str(), Version: d.i32()}
	case opSetACL:
		return setACLOp{path: d.str(), acl: d.acl(), version: d.i32()}
	}
	if d.err == nil {
		d.err = errCorrupt
	}
	return nil
}

// applyResult is what applying one command produced. It travels back to a
// replica that forwarded the write, so it has an encoding too.
type applyResult struct {
	index   uint64
	term    uint64     // the entry's term: with index, a commit notice (commit_notice_follower.go)
	err     error      // whole-command error (session expired, bad command)
	results []OpResult // one per op; for a failed multi, ZooKeeper's 0/code/-2 pattern
	// createSession
	sessionID int64
}

func encodeResult(r *applyResult) []byte {
	e := &enc{}
	e.u64(r.index)
	e.i32(int32(CodeOf(r.err)))
	e.str(errText(r.err))
	e.i64(r.sessionID)
	e.u32(uint32(len(r.results)))
	for _, res := range r.results {
		e.i32(int32(CodeOf(res.Err)))
		e.str(errText(res.Err))
		e.str(res.Path)
		if res.Stat != nil {
			e.u8(1)
			e.stat(res.Stat)
		} else {
			e.u8(0)
		}
	}
	e.u64(r.term)
	return e.b
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// remoteErr rebuilds an error from its code and text: errors.Is still matches
// the code's error value, and the text keeps the leader's detail.
func remoteErr(code Code, text string) error {
	if code == CodeOK {
		if text != "" {
			return ErrRolledBack
		}
		return nil
	}
	base := ErrorForCode(code)
	if text == "" || text == base.Error() {
		return base
	}
	return &detailError{base: base, text: text}
}

type detailError struct {
	base error
	text string
}

func (e *detailError) Error() string { return e.text }
func (e *detailError) Unwrap() error { return e.base }

func decodeResult(b []byte) (*applyResult, error) {
	d := &dec{b: b}
	r := &applyResult{index: d.u64()}
	code, text := Code(d.i32()), d.str()
	r.err = remoteErr(code, text)
	r.sessionID = d.i64()
	n := d.count(9)
	for i := 0; i < n && d.err == nil; i++ {
		var res OpResult
		code, text := Code(d.i32()), d.str()
		res.Err = remoteErr(code, text)
		res.Path = d.str()
		if d.u8() == 1 {
			s := d.stat()
			res.Stat = &s
		}
		r.results = append(r.results, res)
	}
	r.term = d.u64()
	if d.err != nil {
		return nil, d.err
	}
	if len(d.b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", errCorrupt, len(d.b))
	}
	return r, nil
}
