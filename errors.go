package zoo

import (
	"errors"
	"fmt"
)

// Code is a ZooKeeper error code, as carried on the wire.
type Code int32

// ZooKeeper error codes (KeeperException.Code). Only the ones zoo produces or
// must recognise are named.
const (
	CodeOK                      Code = 0
	CodeSystemError             Code = -1
	CodeRuntimeInconsistency    Code = -2
	CodeDataInconsistency       Code = -3
	CodeConnectionLoss          Code = -4
	CodeMarshallingError        Code = -5
	CodeUnimplemented           Code = -6
	CodeOperationTimeout        Code = -7
	CodeBadArguments            Code = -8
	CodeNewConfigNoQuorum       Code = -13
	CodeReconfigInProgress      Code = -14
	CodeAPIError                Code = -100
	CodeNoNode                  Code = -101
	CodeNoAuth                  Code = -102
	CodeBadVersion              Code = -103
	CodeNoChildrenForEphemerals Code = -108
	CodeNodeExists              Code = -110
	CodeNotEmpty                Code = -111
	CodeSessionExpired          Code = -112
	CodeInvalidACL              Code = -114
	CodeAuthFailed              Code = -115
	CodeSessionMoved            Code = -118
	CodeNotReadOnly             Code = -119
	CodeNoWatcher               Code = -121
	CodeReconfigDisabled        Code = -123
)

// One error value per ZooKeeper code. Callers compare with errors.Is.
var (
	ErrSystemError             = &codeError{CodeSystemError, "system error"}
	ErrRuntimeInconsistency    = &codeError{CodeRuntimeInconsistency, "runtime inconsistency"}
	ErrDataInconsistency       = &codeError{CodeDataInconsistency, "data inconsistency"}
	ErrConnectionLoss          = &codeError{CodeConnectionLoss, "connection loss: the outcome of the request is unknown"}
	ErrMarshallingError        = &codeError{CodeMarshallingError, "marshalling error"}
	ErrUnimplemented           = &codeError{CodeUnimplemented, "unimplemented"}
	ErrOperationTimeout        = &codeError{CodeOperationTimeout, "operation timeout"}
	ErrBadArguments            = &codeError{CodeBadArguments, "bad arguments"}
	ErrNewConfigNoQuorum       = &codeError{CodeNewConfigNoQuorum, "new config has no quorum"}
	ErrReconfigInProgress      = &codeError{CodeReconfigInProgress, "reconfig in progress"}
	ErrAPIError                = &codeError{CodeAPIError, "api error"}
	ErrNoNode                  = &codeError{CodeNoNode, "node does not exist"}
	ErrNoAuth                  = &codeError{CodeNoAuth, "not authorized"}
	ErrBadVersion              = &codeError{CodeBadVersion, "bad version"}
	ErrNoChildrenForEphemerals = &codeError{CodeNoChildrenForEphemerals, "ephemeral nodes may not have children"}
	ErrNodeExists              = &codeError{CodeNodeExists, "node already exists"}
	ErrNotEmpty                = &codeError{CodeNotEmpty, "node has children"}
	ErrSessionExpired          = &codeError{CodeSessionExpired, "session expired"}
	ErrInvalidACL              = &codeError{CodeInvalidACL, "invalid ACL"}
	ErrAuthFailed              = &codeError{CodeAuthFailed, "authentication failed"}
	ErrSessionMoved            = &codeError{CodeSessionMoved, "session moved"}
	ErrNotReadOnly             = &codeError{CodeNotReadOnly, "not a read-only call"}
	ErrNoWatcher               = &codeError{CodeNoWatcher, "no such watcher"}
	ErrReconfigDisabled        = &codeError{CodeReconfigDisabled, "reconfig disabled"}

	// ErrRolledBack marks an op of a failed multi that would have succeeded: it
	// was undone with the rest. Its code is 0, as ZooKeeper sends it.
	ErrRolledBack = &codeError{CodeOK, "rolled back with the failed transaction"}
)

// Errors that have no ZooKeeper code of their own.
var (
	// ErrClosed is returned by every method after Close (of the Ensemble or the Session).
	ErrClosed = errors.New("zoo: closed")
	// ErrNotServing means this replica is outside a working quorum (no leader reachable),
	// the condition ZooKeeper reports as "not currently serving requests". Nothing was written.
	ErrNotServing = errors.New("zoo: this replica is not currently serving requests")
	// ErrWatchOverflow ends a persistent watch whose consumer fell too far behind.
	ErrWatchOverflow = errors.New("zoo: watch consumer fell behind; watch ended")
	// ErrWatchReset ends a persistent watch when its replica had to install a
	// snapshot and cannot replay the individual changes it skipped.
	ErrWatchReset = errors.New("zoo: replica state replaced from a snapshot; watch ended")
)

var codeErrors = map[Code]*codeError{}

func init() {
	for _, e := range []*codeError{ErrSystemError, ErrRuntimeInconsistency, ErrDataInconsistency,
		ErrConnectionLoss, ErrMarshallingError, ErrUnimplemented, ErrOperationTimeout, ErrBadArguments,
		ErrNewConfigNoQuorum, ErrReconfigInProgress, ErrAPIError, ErrNoNode, ErrNoAuth, ErrBadVersion,
		ErrNoChildrenForEphemerals, ErrNodeExists, ErrNotEmpty, ErrSessionExpired, ErrInvalidACL,
		ErrAuthFailed, ErrSessionMoved, ErrNotReadOnly, ErrNoWatcher, ErrReconfigDisabled} {
		codeErrors[e.code] = e
	}
}

// codeError is the error for one ZooKeeper code.
type codeError struct {
	code Code
	msg  string
}

func (e *codeError) Error() string { return "zk: " + e.msg }

// Code returns the ZooKeeper code of the error.
func (e *codeError) Code() Code { return e.code }

// ErrorForCode returns the error value for a ZooKeeper code (nil for CodeOK). An
// unknown code yields an error that still reports that code through CodeOf.
func ErrorForCode(c Code) error {
	if c == CodeOK {
		return nil
	}
	if e, ok := codeErrors[c]; ok {
		return e
	}
	return &codeError{c, fmt.Sprintf("unknown error %d", int32(c))}
}

// CodeOf returns the ZooKeeper code carried by err (through wrapping), CodeOK for
// nil, CodeSessionExpired for ErrClosed (what a wire client of a closed session
// sees), and CodeSystemError for any other error.
func CodeOf(err error) Code {
	if err == nil {
		return CodeOK
	}
	var ce *codeError
	if errors.As(err, &ce) {
		return ce.code
	}
	if errors.Is(err, ErrClosed) {
		return CodeSessionExpired
	}
	if errors.Is(err, ErrNotServing) {
		return CodeConnectionLoss
	}
	return CodeSystemError
}

// PathError records the operation and path that failed.
type PathError struct {
	Op   string
	Path string
	Err  error
}

// Error reads "op path: reason" ("op: reason" for a multi as a whole).
func (e *PathError) Error() string {
	if e.Path == "" {
		return e.Op + ": " + e.Err.Error()
	}
	return e.Op + " " + e.Path + ": " + e.Err.Error()
}
func (e *PathError) Unwrap() error { return e.Err }

func pathErr(op, path string, err error) error {
	if err == nil {
		return nil
	}
	return &PathError{Op: op, Path: path, Err: err}
}
