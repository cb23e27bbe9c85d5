package zoo

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/google/btree"
	"github.com/hashicorp/raft"
)

// Snapshot format, version 3:
//
//	magic "ZOOSNAP\x00" | u32 version | u64 applied index
//	u32 session count | sessions (i64 id, i32 timeout, bytes password), by id
//	u32 member count  | member records (str replica id, bytes instance id), by id
//	bytes ensemble id (empty until the first leader named the ensemble)
//	u64 node count    | nodes in tree order (see writeNode)
//	u32 CRC-32C of everything before it
//
// Versions 2 (no ensemble id) and 1 (no member records either), written by
// earlier zoo, are still read.
// The checksum is verified before any state is replaced.
const (
	snapshotMagic             = "ZOOSNAP\x00"
	snapshotVersion           = 3
	snapshotVersionNoEnsemble = 2
	snapshotVersionNoID       = 1
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// fsmSnapshot is a point-in-time copy of the FSM: a B-tree clone shares nodes
// with the live tree until either side writes.
type fsmSnapshot struct {
	nodes    *btree.BTreeG[*znode]
	sessions []sessionEntry
	members  []memberRecord // by id
	ensemble []byte
	applied  uint64
}

// Persist writes the snapshot; it runs concurrently with Apply.
func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := s.writeTo(sink); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s *fsmSnapshot) Release() {}

func (s *fsmSnapshot) writeTo(w io.Writer) error {
	crc := crc32.New(castagnoli)
	bw := bufio.NewWriterSize(io.MultiWriter(w, crc), 1<<16)
	e := &enc{b: make([]byte, 0, 4096)}
	flush := func() error {
		_, err := bw.Write(e.b)
		e.b = e.b[:0]
		return err
	}
	e.b = append(e.b, snapshotMagic...)
	e.u32(snapshotVersion)
	e.u64(s.applied)
	e.u32(uint32(len(s.sessions)))
	for _, se := range s.sessions {
		e.i64(se.id)
		e.i32(se.timeout)
		e.bytes(se.password)
	}
	e.u32(uint32(len(s.members)))
	for _, m := range s.members {
		e.str(m.id)
		e.bytes(m.instance)
	}
	e.bytes(s.ensemble)
	e.u64(uint64(s.nodes.Len()))
	var err error
	s.nodes.Ascend(func(n *znode) bool {
		writeNode(e, n)
		if len(e.b) >= 1<<15 {
			err = flush()
		}
		return err == nil
	})
	if err != nil {
		return err
	}
	if err := flush(); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	var sum [4]byte
	binary.BigEndian.PutUint32(sum[:], crc.Sum32())
	_, err = w.Write(sum[:])
	return err
}

func writeNode(e *enc, n *znode) {
	e.str(n.path)
	e.bytes(n.data)
	e.acl(n.acl)
	e.i64(n.czxid)
	e.i64(n.mzxid)
	e.i64(n.pzxid)
	e.i64(n.ctime)
	e.i64(n.mtime)
	e.i32(n.version)
	e.i32(n.childCreates)
	e.i32(n.aversion)
	e.i64(n.owner)
	e.i32(n.numChildren)
}

// restoredState is a decoded, verified snapshot.
type restoredState struct {
	tree     *tree
	sessions map[int64]*sessionEntry
	members  map[string][]byte
	ensemble []byte
	applied  uint64
}

func readSnapshot(r io.Reader) (*restoredState, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("zoo: read snapshot: %w", err)
	}
	return decodeSnapshot(b)
}

func decodeSnapshot(b []byte) (*restoredState, error) {
	if len(b) < len(snapshotMagic)+4+4 || string(b[:len(snapshotMagic)]) != snapshotMagic {
		return nil, fmt.Errorf("%w: not a zoo snapshot", errCorrupt)
	}
	body, sum := b[:len(b)-4], binary.BigEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return nil, errSnapshotChecksum
	}
	d := &dec{b: body[len(snapshotMagic):]}
	v := d.u32()
	if v != snapshotVersion && v != snapshotVersionNoEnsemble && v != snapshotVersionNoID {
		return nil, fmt.Errorf("%w: snapshot version %d", errCorrupt, v)
	}
	st := &restoredState{tree: &tree{nodes: btree.NewG(32, lessZnode)}, sessions: map[int64]*sessionEntry{},
		members: map[string][]byte{}}
	st.applied = d.u64()
	ns := d.count(12)
	for i := 0; i < ns && d.err == nil; i++ {
		e := &sessionEntry{id: d.i64(), timeout: d.i32(), password: d.bytes(), ephemerals: map[string]struct{}{}}
		st.sessions[e.id] = e
	}
	if v >= snapshotVersionNoEnsemble {
		nm := d.count(8)
		for i := 0; i < nm && d.err == nil; i++ {
			st.members[d.str()] = d.bytes()
		}
	}
	if v >= snapshotVersion {
		if id := d.bytes(); len(id) > 0 {
			st.ensemble = id
		}
	}
	nn := d.u64()
	if d.err == nil && nn > uint64(len(d.b)) {
		return nil, fmt.Errorf("%w: node count %d", errCorrupt, nn)
	}
	for i := uint64(0); i < nn && d.err == nil; i++ {
		n := &znode{path: d.str(), data: d.bytes(), acl: internACL(d.acl()), czxid: d.i64(), mzxid: d.i64(),
			pzxid: d.i64(), ctime: d.i64(), mtime: d.i64(), version: d.i32(), childCreates: d.i32(),
			aversion: d.i32(), owner: d.i64(), numChildren: d.i32()}
		if d.err != nil {
			break
		}
		if n.path != "/" && validatePath(n.path) != nil {
			return nil, fmt.Errorf("%w: bad path %q", errCorrupt, n.path)
		}
		n.setKey()
		st.tree.nodes.ReplaceOrInsert(n)
		if isSessionOwner(n.owner) {
			s := st.sessions[n.owner]
			if s == nil {
				return nil, fmt.Errorf("%w: ephemeral %s of unknown session %#x", errCorrupt, n.path, n.owner)
			}
			s.ephemerals[n.path] = struct{}{}
		}
	}
	if d.err != nil {
		return nil, d.err
	}
	if len(d.b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", errCorrupt, len(d.b))
	}
	if err := checkStructure(st.tree); err != nil {
		return nil, err
	}
	return st, nil
}

// checkStructure refuses a tree that a checksum cannot vouch for: one whose
// root is missing, whose nodes lack parents, whose child counts are wrong or
// whose ephemerals have children. Applying entries to such a tree would fail
// later, far from the cause.
func checkStructure(t *tree) error {
	if t.get("/") == nil {
		return fmt.Errorf("%w: snapshot has no root", errCorrupt)
	}
	counts := map[string]int32{}
	var err error
	t.nodes.Ascend(func(n *znode) bool {
		if n.path == "/" {
			return true
		}
		parent := t.get(n.parent())
		switch {
		case parent == nil:
			err = fmt.Errorf("%w: %s has no parent", errCorrupt, n.path)
		case isSessionOwner(parent.owner):
			err = fmt.Errorf("%w: ephemeral %s has children", errCorrupt, parent.path)
		}
		counts[n.parent()]++
		return err == nil
	})
	if err != nil {
		return err
	}
	t.nodes.Ascend(func(n *znode) bool {
		if n.numChildren != counts[n.path] {
			err = fmt.Errorf("%w: %s counts %d children, has %d", errCorrupt, n.path, n.numChildren, counts[n.path])
		}
		return err == nil
	})
	return err
}
