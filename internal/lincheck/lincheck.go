// Package lincheck records histories of operations on znode "registers" and
// checks them for linearizability with porcupine. Tests only: zoo's fault
// tests (the library's and the wire server's) share the model.
//
// A register is one znode: its data and version. A write sets it (with
// version -1, or as a compare-and-set on the version) and bumps the version; a
// read made after a sync must see the latest write. A write whose outcome is
// unknown (connection lost, timeout) may or may not have happened, at any
// time after it was called.
//
// A fresh key (Input.Fresh) is a znode that starts absent: it is also
// created (version 0; NodeExists if present) and deleted (any version or
// an expected one), writes to it fail with NoNode while it is absent, and a
// read may find it absent.
package lincheck

import (
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"
)

// Op is what an operation does to its register.
type Op int

const (
	Read   Op = iota // sync, then read
	Write            // set with version -1
	CAS              // set with an expected version
	Create           // create with Value (fresh keys)
	Delete           // delete with Version, -1 for any (fresh keys)
)

// Why a write failed, as Output.Err says it.
const (
	ErrNoNode     = "nonode"
	ErrNodeExists = "exists"
	ErrBadVersion = "badversion"
)

// Input describes an operation as called.
type Input struct {
	Key     int    // which register
	Op      Op     //
	Value   string // written (Write, CAS, Create)
	Version int32  // expected (CAS; Delete, where -1 is any)
	Fresh   bool   // the key starts absent (every operation on it says so)
}

// Output is what the operation returned.
type Output struct {
	Value   string // read
	Version int32  // read, or the version a successful write made
	Absent  bool   // read: the znode does not exist
	OK      bool   // the write happened
	Err     string // why it did not: ErrNoNode, ErrNodeExists, ErrBadVersion ("" is ErrBadVersion)
	Unknown bool   // the write's outcome is unknown
}

// register is a key's state; a zero one is not yet known: the first
// operation on the key says whether it starts absent.
type register struct {
	known   bool
	exists  bool
	value   string
	version int32
}

// failedWith reports whether out is a write that may have failed with err
// (or whose outcome is unknown).
func failedWith(out Output, err string) bool {
	return out.Unknown || (!out.OK && (out.Err == err || (err == ErrBadVersion && out.Err == "")))
}

func step(s register, in Input, out Output) []any {
	if !s.known {
		s = register{known: true, exists: !in.Fresh}
	}
	stays := func(ok bool) []any {
		if ok {
			return []any{s}
		}
		return nil
	}
	switch in.Op {
	case Read:
		return stays(out.Absent == !s.exists && (!s.exists || (out.Value == s.value && out.Version == s.version)))
	case Create:
		if s.exists {
			return stays(failedWith(out, ErrNodeExists))
		}
		next := register{known: true, exists: true, value: in.Value}
		switch {
		case out.Unknown:
			return []any{s, next}
		case out.OK && out.Version == 0:
			return []any{next}
		}
		return nil
	case Delete:
		switch {
		case !s.exists:
			return stays(failedWith(out, ErrNoNode))
		case in.Version != -1 && in.Version != s.version:
			return stays(failedWith(out, ErrBadVersion))
		}
		next := register{known: true}
		switch {
		case out.Unknown:
			return []any{s, next}
		case out.OK:
			return []any{next}
		}
		return nil
	}
	// Write, CAS.
	switch {
	case !s.exists:
		return stays(failedWith(out, ErrNoNode))
	case in.Op == CAS && in.Version != s.version:
		return stays(failedWith(out, ErrBadVersion))
	}
	next := register{known: true, exists: true, value: in.Value, version: s.version + 1}
	switch {
	case out.Unknown:
		return []any{s, next}
	case out.OK && out.Version == next.version:
		return []any{next}
	}
	return nil
}

// Model is the registers' sequential specification, partitioned by key.
var Model = (&porcupine.NondeterministicModel{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[int][]porcupine.Operation{}
		for _, op := range history {
			k := op.Input.(Input).Key
			byKey[k] = append(byKey[k], op)
		}
		var out [][]porcupine.Operation
		for _, ops := range byKey {
			out = append(out, ops)
		}
		return out
	},
	Init: func() []any { return []any{register{}} },
	Step: func(state, input, output any) []any {
		return step(state.(register), input.(Input), output.(Output))
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(Input), output.(Output)
		switch in.Op {
		case Read:
			if out.Absent {
				return fmt.Sprintf("k%d read -> absent", in.Key)
			}
			return fmt.Sprintf("k%d read -> %q v%d", in.Key, out.Value, out.Version)
		case Write:
			return fmt.Sprintf("k%d set %q -> ok=%v %s v%d unknown=%v", in.Key, in.Value, out.OK, out.Err, out.Version, out.Unknown)
		case Create:
			return fmt.Sprintf("k%d create %q -> ok=%v %s unknown=%v", in.Key, in.Value, out.OK, out.Err, out.Unknown)
		case Delete:
			return fmt.Sprintf("k%d delete(v%d) -> ok=%v %s unknown=%v", in.Key, in.Version, out.OK, out.Err, out.Unknown)
		}
		return fmt.Sprintf("k%d cas(v%d) %q -> ok=%v %s v%d unknown=%v", in.Key, in.Version, in.Value, out.OK, out.Err, out.Version, out.Unknown)
	},
}).ToModel()

// History collects operations from many goroutines. Registers start empty
// (data "", version 0): create their znodes with empty data before recording.
type History struct {
	start time.Time
	mu    sync.Mutex
	ops   []porcupine.Operation
}

// NewHistory starts a history; its clock starts now.
func NewHistory() *History { return &History{start: time.Now()} }

// Now is the history's clock (monotonic nanoseconds). Take it just before
// calling an operation.
func (h *History) Now() int64 { return int64(time.Since(h.start)) }

// Add records an operation of client called at call that just returned out.
// A read that failed must not be added (it changed nothing); a write with an
// unknown outcome is added with Unknown set.
func (h *History) Add(client int, in Input, call int64, out Output) {
	ret := h.Now()
	if out.Unknown {
		ret = math.MaxInt64 // it may still take effect, at any later time
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ops = append(h.ops, porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret})
}

// Counts reports how many reads, writes with a known outcome and writes with
// an unknown outcome were recorded.
func (h *History) Counts() (reads, writes, unknown int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, op := range h.ops {
		in, out := op.Input.(Input), op.Output.(Output)
		switch {
		case in.Op == Read:
			reads++
		case out.Unknown:
			unknown++
		default:
			writes++
		}
	}
	return reads, writes, unknown
}

// Check checks the history; the error says why it is not known to be
// linearizable (not linearizable, or the check timed out).
func (h *History) Check(timeout time.Duration) error {
	h.mu.Lock()
	ops := append([]porcupine.Operation(nil), h.ops...)
	h.mu.Unlock()
	res, info := porcupine.CheckOperationsVerbose(Model, ops, timeout)
	switch res {
	case porcupine.Ok:
		return nil
	case porcupine.Illegal:
		longest := 0
		for _, part := range info.PartialLinearizations() {
			for _, p := range part {
				longest = max(longest, len(p))
			}
		}
		return fmt.Errorf("history of %d operations is not linearizable (longest linearizable prefix of a register: %d)", len(ops), longest)
	}
	return fmt.Errorf("linearizability check of %d operations inconclusive: %s", len(ops), res)
}
