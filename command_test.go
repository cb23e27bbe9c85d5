package zoo

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"
)

// sampleCommands covers every command and op kind; the fuzz seeds come from it too.
func sampleCommands() []*command {
	alice := ID{"digest", DigestID("alice", "pw")}
	return []*command{
		{op: opCreate, time: 1, session: 7, ids: []ID{{"ip", "10.0.0.1"}, alice},
			ops: []Op{CreateOp{Path: "/a", Data: []byte("x"), ACL: []ACL{{PermRead, alice}}, Mode: ModeEphemeralSequential}}},
		{op: opCreate, time: 2, ops: []Op{CreateOp{Path: "/null", ACL: OpenACL}}},
		{op: opCreate, time: 2, ops: []Op{CreateOp{Path: "/empty", Data: []byte{}, ACL: ReadACL}}},
		{op: opCreate, time: 3, ops: []Op{CreateOp{Path: "/ttl", ACL: OpenACL, Mode: ModePersistentSequentialWithTTL, TTL: 90 * time.Second}}},
		{op: opDelete, time: 4, session: -1, ops: []Op{DeleteOp{Path: "/a", Version: -1}}},
		{op: opSetData, time: 5, ops: []Op{SetDataOp{Path: "/a", Data: bytes.Repeat([]byte{0xff}, 300), Version: 1 << 30}}},
		{op: opSetACL, time: 6, ops: []Op{setACLOp{path: "/a", acl: []ACL{{PermAll, ID{"ip", "10.0.0.0/8"}}}, version: 3}}},
		{op: opCheck, time: 7, ops: []Op{CheckOp{Path: "/a", Version: 2}}},
		{op: opMulti, time: 8, session: 9, ops: []Op{
			CreateOp{Path: "/m", ACL: OpenACL, Mode: ModeContainer},
			SetDataOp{Path: "/m", Data: []byte("d"), Version: -1},
			CheckOp{Path: "/m", Version: 1},
			DeleteOp{Path: "/m", Version: 1},
		}},
		{op: opMulti, time: 9, ops: []Op{}},
		{op: opCreateSession, time: 10, timeout: 30000, password: []byte("0123456789abcdef")},
		{op: opCloseSession, time: 11, session: 42},
		{op: opCloseSession, time: 12, session: 43, expired: true},
		{op: opReap, time: 13, path: "/c"},
		{op: opRegister, time: 14, member: "2", instance: []byte("0123456789abcdef")},
		{op: opEnsemble, time: 15, ensemble: []byte("fedcba9876543210")},
		{op: opCheckpoint, time: 15},
	}
}

func TestCommandRoundTrip(t *testing.T) {
	for i, c := range sampleCommands() {
		t.Run(fmt.Sprintf("%d_op%d", i, c.op), func(t *testing.T) {
			b := encodeCommand(c)
			got, err := decodeCommand(b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, c) {
				t.Fatalf("decoded\n %#v\nwant\n %#v", got, c)
			}
			if !bytes.Equal(encodeCommand(got), b) {
				t.Fatal("re-encoding differs")
			}
			// Every truncation is an error, never a panic or a shorter command.
			for n := range len(b) {
				if _, err := decodeCommand(b[:n]); err == nil {
					t.Fatalf("decoded a %d-byte prefix of %d", n, len(b))
				}
			}
			if _, err := decodeCommand(append(b[:len(b):len(b)], 0)); !errors.Is(err, errCorrupt) {
				t.Fatalf("trailing byte: %v", err)
			}
			// Every flipped bit is caught: by the version check for the
			// first byte, by the checksum for the others.
			for i := range b {
				for bit := range 8 {
					x := bytes.Clone(b)
					x[i] ^= 1 << bit
					if _, err := decodeCommand(x); !errors.Is(err, errCorrupt) {
						t.Fatalf("bit %d of byte %d flipped: decoded (%v)", bit, i, err)
					}
				}
			}
			// Entries written before checksums (version 1) still decode.
			// (they have no checksum, and no digest after the time)
			legacy := append(bytes.Clone(b[:timeOffset+8]), b[timeOffset+24:len(b)-commandChecksumBytes]...)
			legacy[0] = commandVersionNoSum
			if got, err := decodeCommand(legacy); err != nil || !reflect.DeepEqual(got, c) {
				t.Fatalf("version 1 entry: %v", err)
			}
		})
	}
}

func TestCommandEncodingDetails(t *testing.T) {
	// A nil ACL is OpenACL, decided when the command is encoded; an empty list
	// stays empty and is refused at apply.
	c, err := decodeCommand(encodeCommand(&command{op: opCreate, ops: []Op{CreateOp{Path: "/a"}}}))
	if err != nil {
		t.Fatal(err)
	}
	if acl := c.ops[0].(CreateOp).ACL; !reflect.DeepEqual(acl, OpenACL) {
		t.Errorf("nil ACL decoded as %v", acl)
	}
	c, err = decodeCommand(encodeCommand(&command{op: opCreate, ops: []Op{CreateOp{Path: "/a", ACL: []ACL{}}}}))
	if err != nil {
		t.Fatal(err)
	}
	if acl := c.ops[0].(CreateOp).ACL; len(acl) != 0 {
		t.Errorf("empty ACL decoded as %v", acl)
	}

	b := encodeCommand(&command{op: opCheck, time: 5, ops: []Op{CheckOp{Path: "/a", Version: -1}}})
	if b[0] != commandVersion {
		t.Errorf("first byte %d, want the command version", b[0])
	}
	now := time.UnixMilli(1_700_000_123_456)
	stampLeader(b, now, 41, 0xfeed)
	if c, err := decodeCommand(b); err != nil || c.time != now.UnixMilli() || c.digestAt != 41 || c.digest != 0xfeed ||
		c.ops[0].(CheckOp).Path != "/a" {
		t.Errorf("after stampLeader: %+v, %v", c, err)
	}
	stampLeader(b[:5], now, 1, 1) // too short: left alone, no panic

	bad := map[string][]byte{
		"empty":           nil,
		"future version":  append([]byte{commandVersion + 1}, b[1:]...),
		"unknown op":      append([]byte{commandVersion, 0x7f}, b[2:]...),
		"unknown sub-op":  encodeCommandWithSubOp(0x7f),
		"multi count lie": {commandVersion, byte(opMulti), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff},
	}
	for name, b := range bad {
		if _, err := decodeCommand(b); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
}

// encodeCommandWithSubOp builds a single-op command whose op byte is op.
func encodeCommandWithSubOp(op byte) []byte {
	e := &enc{}
	e.u8(commandVersion)
	e.u8(byte(opCreate))
	e.i64(0)
	e.i64(0)
	e.ids(nil)
	e.u8(op)
	return e.b
}

func TestResultRoundTrip(t *testing.T) {
	st := Stat{Czxid: 1, Mzxid: 2, Ctime: 3, Mtime: 4, Version: -5, Cversion: 6, Aversion: 7,
		EphemeralOwner: 8, DataLength: 9, NumChildren: 10, Pzxid: 11}
	detailed := fmt.Errorf("%w: data is 2000000 bytes, limit %d", ErrBadArguments, MaxDataSize)
	tests := []*applyResult{
		{index: 1, sessionID: 1},
		{index: 2, err: ErrSessionExpired},
		{index: 3, results: []OpResult{{Path: "/a0000000001", Stat: &st}}},
		{index: 4, results: []OpResult{{Err: ErrRolledBack}, {Err: ErrNoNode}, {Err: ErrRuntimeInconsistency}}},
		{index: 5, results: []OpResult{{Err: detailed}}},
		{index: 6, results: []OpResult{{Path: "/c"}}},
	}
	for _, r := range tests {
		got, err := decodeResult(encodeResult(r))
		if err != nil {
			t.Fatalf("result %d: %v", r.index, err)
		}
		if got.index != r.index || got.sessionID != r.sessionID || CodeOf(got.err) != CodeOf(r.err) || len(got.results) != len(r.results) {
			t.Fatalf("result %d: got %+v, want %+v", r.index, got, r)
		}
		if r.err != nil && !errors.Is(got.err, r.err) {
			t.Errorf("result %d: err %v does not match %v", r.index, got.err, r.err)
		}
		for i, want := range r.results {
			g := got.results[i]
			if g.Path != want.Path || (g.Stat == nil) != (want.Stat == nil) || (g.Stat != nil && *g.Stat != *want.Stat) {
				t.Errorf("result %d op %d: %+v, want %+v", r.index, i, g, want)
			}
			switch {
			case want.Err == nil:
				if g.Err != nil {
					t.Errorf("result %d op %d: err %v, want nil", r.index, i, g.Err)
				}
			case CodeOf(g.Err) != CodeOf(want.Err) || g.Err.Error() != want.Err.Error() || !errors.Is(g.Err, unwrapAll(want.Err)):
				t.Errorf("result %d op %d: err %v (code %d), want %v (code %d)", r.index, i, g.Err, CodeOf(g.Err), want.Err, CodeOf(want.Err))
			}
		}
	}
	if _, err := decodeResult([]byte{1, 2, 3}); err == nil {
		t.Error("decoded a truncated result")
	}
}

func unwrapAll(err error) error {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return err
		}
		err = u
	}
}

// FuzzDecodeCommand feeds arbitrary log entries to the decoder and then to an
// FSM: neither may panic, and a decoded command re-encodes stably.
func FuzzDecodeCommand(f *testing.F) {
	for _, c := range sampleCommands() {
		f.Add(encodeCommand(c))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h := newTestFSM(t)
		h.mustCreate("/a", []byte("x"))
		h.openSession() // id 2
		h.applyRaw(b)
		checkFSM(t, h.f)

		c, err := decodeCommand(b)
		if err != nil {
			return
		}
		b1 := encodeCommand(c)
		c1, err := decodeCommand(b1)
		if err != nil {
			t.Fatalf("re-encoded command does not decode: %v", err)
		}
		if b2 := encodeCommand(c1); !bytes.Equal(b1, b2) {
			t.Fatalf("encoding not stable:\n%x\n%x", b1, b2)
		}
	})
}
