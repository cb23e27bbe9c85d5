package zoo

import "time"

// Op is one operation of a [Session.Multi] transaction: [CreateOp], [DeleteOp],
// [SetDataOp] or [CheckOp]. The set is closed.
type Op interface{ isOp() }

// CreateOp creates a znode. A nil ACL means [OpenACL]. TTL is for the TTL modes only.
type CreateOp struct {
	Path string
	Data []byte
	ACL  []ACL
	Mode CreateMode
	TTL  time.Duration
}

// DeleteOp deletes a znode; Version -1 matches any version.
type DeleteOp struct {
	Path    string
	Version int32
}

// SetDataOp replaces a znode's data; Version -1 matches any version.
type SetDataOp struct {
	Path    string
	Data    []byte
	Version int32
}

// CheckOp asserts that a znode exists at Version (-1: exists at all).
type CheckOp struct {
	Path    string
	Version int32
}

// setACLOp is setACL carried as a command; ZooKeeper's multi does not take it.
type setACLOp struct {
	path    string
	acl     []ACL
	version int32
}

func (CreateOp) isOp()  {}
func (DeleteOp) isOp()  {}
func (SetDataOp) isOp() {}
func (CheckOp) isOp()   {}
func (setACLOp) isOp()  {}

// OpResult is the outcome of one op. When a multi fails, the ops before the
// failing one carry [ErrRolledBack] (ZooKeeper's result code 0), the failing op
// its own error, and the ops after it [ErrRuntimeInconsistency].
type OpResult struct {
	Path string // created path, for CreateOp
	Stat *Stat  // for CreateOp and SetDataOp
	Err  error
}

// ReadOp is one read of [Session.MultiRead]: [GetDataOp] or [GetChildrenOp].
type ReadOp interface{ isReadOp() }

// GetDataOp reads a znode's data in a MultiRead.
type GetDataOp struct{ Path string }

// GetChildrenOp lists a znode's children in a MultiRead.
type GetChildrenOp struct{ Path string }

func (GetDataOp) isReadOp()     {}
func (GetChildrenOp) isReadOp() {}

// ReadResult is the outcome of one ReadOp; each succeeds or fails on its own.
type ReadResult struct {
	Data     []byte   // GetDataOp
	Children []string // GetChildrenOp
	Stat     Stat
	Err      error
}
