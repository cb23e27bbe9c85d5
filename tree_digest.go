package zoo

import (
	"encoding/binary"
	"hash/crc64"
)

// The tree digest (ZooKeeper's zookeeper.digest.enabled idea): a 64-bit sum,
// kept as the tree changes, of a hash of every znode (path, data, ACL and
// every Stat field). The leader puts its digest at some applied index into
// each command it proposes, and every replica compares its own digest at
// that index when it applies the command (fsm.go): a replica whose tree
// diverged, from a bug in apply or a corruption no checksum saw, stops
// instead of serving it. A sum, not a hash of the whole tree, so that one
// change costs the hashes of the nodes it replaces, whatever the tree's size.

var digestTable = crc64.MakeTable(crc64.ECMA)

// nodeDigest hashes everything a replica serves of n.
func nodeDigest(n *znode) uint64 {
	var b [8 * 11]byte
	h := crc64.Update(0, digestTable, []byte(n.path))
	if n.data == nil {
		h = crc64.Update(h, digestTable, []byte{0})
	} else {
		h = crc64.Update(h, digestTable, []byte{1})
		h = crc64.Update(h, digestTable, n.data)
	}
	for i, v := range []int64{n.czxid, n.mzxid, n.pzxid, n.ctime, n.mtime, int64(n.version),
		int64(n.childCreates), int64(n.aversion), n.owner, int64(n.numChildren), int64(len(n.acl))} {
		binary.BigEndian.PutUint64(b[8*i:], uint64(v))
	}
	h = crc64.Update(h, digestTable, b[:])
	for _, a := range n.acl {
		binary.BigEndian.PutUint32(b[:4], uint32(a.Perms))
		h = crc64.Update(h, digestTable, b[:4])
		h = crc64.Update(h, digestTable, []byte(a.Scheme))
		h = crc64.Update(h, digestTable, []byte{0})
		h = crc64.Update(h, digestTable, []byte(a.ID.ID))
		h = crc64.Update(h, digestTable, []byte{0})
	}
	return h
}

// replaced updates the digest for a node stored (n) over another (prev);
// either may be nil.
func (t *tree) replaced(prev, n *znode) {
	if t.noDigest {
		return
	}
	if prev != nil {
		t.digest -= nodeDigest(prev)
	}
	if n != nil {
		t.digest += nodeDigest(n)
	}
}

// recomputeDigest sums the digest of a whole tree (after a restore).
func (t *tree) recomputeDigest() {
	t.digest = 0
	if t.noDigest {
		return
	}
	t.nodes.Ascend(func(n *znode) bool {
		t.digest += nodeDigest(n)
		return true
	})
}

// digestHistory remembers the digest after recent indexes, so that a
// command carrying the leader's digest at an index this replica applied a
// little while ago can be checked.
type digestHistory struct {
	at     [digestHistorySize]uint64 // index, by index % size
	digest [digestHistorySize]uint64
}

const digestHistorySize = 4096

func (h *digestHistory) record(index, digest uint64) {
	h.at[index%digestHistorySize], h.digest[index%digestHistorySize] = index, digest
}

// lookup returns the digest after index, if it is still remembered.
func (h *digestHistory) lookup(index uint64) (uint64, bool) {
	i := index % digestHistorySize
	if index == 0 || h.at[i] != index {
		return 0, false
	}
	return h.digest[i], true
}

func (h *digestHistory) reset() { *h = digestHistory{} }

// digestMark is the tree digest after an index.
type digestMark struct{ at, digest uint64 }
