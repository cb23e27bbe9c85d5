package testkit

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// fatalRecorder is a testing.TB that records Fatalf instead of stopping.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (r *fatalRecorder) Helper() {}
func (r *fatalRecorder) Fatalf(format string, args ...any) {
	r.msg = fmt.Sprintf(format, args...)
	panic(r)
}

func TestEventuallyWaitsThenFails(t *testing.T) {
	n := 0
	Eventually(t, time.Second, "three polls", func() bool { n++; return n == 3 })
	if n != 3 {
		t.Fatalf("polled %d times, want 3", n)
	}
	r := &fatalRecorder{TB: t}
	func() {
		defer func() {
			if p := recover(); p != r {
				t.Fatalf("Eventually on a false condition did not fail the test (recovered %v)", p)
			}
			if !strings.Contains(r.msg, "never") {
				t.Fatalf("failure %q does not carry the last error", r.msg)
			}
		}()
		EventuallyNil(r, 20*time.Millisecond, func() error { return errors.New("never") })
	}()
}

func TestContextEndsWithTheTest(t *testing.T) {
	var ctx interface{ Err() error }
	t.Run("inner", func(t *testing.T) { ctx = ContextFor(t, time.Hour) })
	if ctx.Err() == nil {
		t.Fatal("the context outlived its test")
	}
}
