package zoo

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"testing"

	"github.com/hashicorp/raft"
)

// The replicated record of each member's data dir: the first registration
// holds, another dir is refused, a configuration without the member drops
// it, and snapshots carry the records.
func TestMemberRecords(t *testing.T) {
	h := newTestFSM(t)
	u, v := []byte("0123456789abcdef"), []byte("fedcba9876543210")
	reg := func(member string, inst []byte) error {
		return h.apply(&command{op: opRegister, member: member, instance: inst}).err
	}
	if err := reg("1", u); err != nil {
		t.Fatal(err)
	}
	if err := reg("1", u); err != nil {
		t.Fatalf("registering the same dir again: %v", err)
	}
	if err := reg("1", v); !errors.Is(err, errOtherInstance) {
		t.Fatalf("another dir for replica 1: %v, want errOtherInstance", err)
	}
	if err := reg("2", v); err != nil {
		t.Fatal(err)
	}

	// Snapshots carry the records.
	dst := newTestFSM(t)
	if err := dst.f.Restore(readCloser(snapshotBytes(t, h.f))); err != nil {
		t.Fatal(err)
	}
	if got, ok := dst.f.memberRecord("1"); !ok || !bytes.Equal(got, u) {
		t.Fatalf("record of 1 after a snapshot: %x %v", got, ok)
	}

	// A configuration without replica 2 drops its record; 1 keeps its own.
	h.index++
	conf := raft.Configuration{Servers: []raft.Server{{ID: "1", Address: "a", Suffrage: raft.Voter}}}
	h.f.ApplyBatch([]*raft.Log{{Index: h.index, Type: raft.LogConfiguration, Data: raft.EncodeConfiguration(conf)}})
	if _, ok := h.f.memberRecord("2"); ok {
		t.Fatal("record of a removed member kept")
	}
	if _, ok := h.f.memberRecord("1"); !ok {
		t.Fatal("record of a member dropped")
	}
	if err := reg("2", u); err != nil {
		t.Fatalf("a member added back registers its new dir: %v", err)
	}

	// A configuration entry that does not decode stops the FSM.
	h.index++
	h.f.ApplyBatch([]*raft.Log{{Index: h.index, Type: raft.LogConfiguration, Data: []byte{0xc1, 0xff}}})
	if h.f.failure() == nil {
		t.Fatal("an undecodable configuration entry was applied")
	}
}

// Snapshots of the versions before ensemble ids (2) and before member
// records (1) still restore.
func TestSnapshotVersions1And2StillRestore(t *testing.T) {
	h := newTestFSM(t)
	h.mustCreate("/a", []byte("x"))
	b := snapshotBytes(t, h.f)
	// Version 3 with no records and no ensemble id is version 2 plus an
	// empty id, and version 1 plus a zero count too: take them out.
	d := &dec{b: b[len(snapshotMagic):]}
	d.u32()
	d.u64()
	n := d.count(12)
	for range n {
		d.i64()
		d.i32()
		d.bytes()
	}
	at := len(b) - len(d.b) // where the member count starts
	if d.count(8) != 0 || d.bytes() != nil {
		t.Fatal("the fixture has member records or an ensemble id")
	}
	seal := func(v []byte, version byte) []byte {
		v[len(snapshotMagic)+3] = version
		binary.BigEndian.PutUint32(v[len(v)-4:], crc32.Checksum(v[:len(v)-4], castagnoli))
		return v
	}
	v2 := seal(append(append(bytes.Clone(b[:at+4]), b[at+8:len(b)-4]...), 0, 0, 0, 0), snapshotVersionNoEnsemble)
	v1 := seal(append(append(bytes.Clone(b[:at]), b[at+8:len(b)-4]...), 0, 0, 0, 0), snapshotVersionNoID)
	for name, snap := range map[string][]byte{"version 2": v2, "version 1": v1} {
		dst := newTestFSM(t)
		if err := dst.f.Restore(readCloser(snap)); err != nil {
			t.Fatalf("%s snapshot: %v", name, err)
		}
		if !dst.exists("/a") {
			t.Fatalf("%s snapshot restored without its nodes", name)
		}
	}
}
