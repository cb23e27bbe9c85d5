package lincheck

import (
	"testing"
	"time"
)

// op is one sequential operation for the tests: called and returned in turn.
type op struct {
	in  Input
	out Output
}

func check(t *testing.T, ops ...op) error {
	t.Helper()
	h := NewHistory()
	for _, o := range ops {
		h.Add(0, o.in, h.Now(), o.out)
	}
	return h.Check(10 * time.Second)
}

func TestFreshKeys(t *testing.T) {
	read := func(out Output) op { return op{Input{Key: 1, Op: Read, Fresh: true}, out} }
	create := func(v string, out Output) op { return op{Input{Key: 1, Op: Create, Value: v, Fresh: true}, out} }
	set := func(v string, out Output) op { return op{Input{Key: 1, Op: Write, Value: v, Fresh: true}, out} }
	del := func(version int32, out Output) op {
		return op{Input{Key: 1, Op: Delete, Version: version, Fresh: true}, out}
	}
	ok := func(version int32) Output { return Output{OK: true, Version: version} }
	fail := func(err string) Output { return Output{Err: err} }
	good := []op{
		read(Output{Absent: true}),
		set("x", fail(ErrNoNode)),
		del(-1, fail(ErrNoNode)),
		create("a", ok(0)),
		create("b", fail(ErrNodeExists)),
		read(Output{Value: "a"}),
		set("c", ok(1)),
		del(0, fail(ErrBadVersion)),
		del(1, Output{OK: true}),
		read(Output{Absent: true}),
		create("d", Output{Unknown: true}),
		read(Output{Value: "d"}),
	}
	if err := check(t, good...); err != nil {
		t.Fatalf("a legal history: %v", err)
	}
	for name, bad := range map[string][]op{
		"read sees a deleted node":    {create("a", ok(0)), del(-1, Output{OK: true}), read(Output{Value: "a"})},
		"created twice":               {create("a", ok(0)), create("b", ok(0))},
		"set on an absent node":       {set("x", ok(1))},
		"delete of the wrong version": {create("a", ok(0)), del(3, Output{OK: true})},
		"NodeExists when absent":      {create("a", fail(ErrNodeExists))},
		"a version not reset by create": {create("a", ok(0)), set("b", ok(1)), del(-1, Output{OK: true}),
			create("c", ok(0)), read(Output{Value: "c", Version: 2})},
	} {
		if err := check(t, bad...); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// Registers (keys that start existing, empty) keep their rules.
func TestRegisters(t *testing.T) {
	read := func(v string, version int32) op {
		return op{Input{Key: 2, Op: Read}, Output{Value: v, Version: version}}
	}
	if err := check(t, read("", 0), op{Input{Key: 2, Op: Write, Value: "a"}, Output{OK: true, Version: 1}}, read("a", 1),
		op{Input{Key: 2, Op: CAS, Value: "b", Version: 0}, Output{}}, read("a", 1)); err != nil {
		t.Fatalf("a legal history: %v", err)
	}
	if err := check(t, op{Input{Key: 2, Op: CAS, Value: "b", Version: 0}, Output{}}); err == nil {
		t.Fatal("a CAS on the right version that failed: accepted")
	}
}
