package recipe

import (
	"errors"
	"slices"
	"testing"

	"github.com/zooraft/zoo"
)

func TestSequenceOf(t *testing.T) {
	for _, tc := range []struct {
		name string
		seq  int64
		ok   bool
	}{
		{"lock-0000000000", 0, true},
		{"_c_0f1e-lock-0000000042", 42, true},
		{"0000000007", 7, true},
		{"x-2147483647", 2147483647, true},
		{"x--000000005", -5, true},
		{"lock-", 0, false},
		{"lock-00000001", 0, false},
		{"lock-00000a0001", 0, false},
		{"", 0, false},
	} {
		seq, ok := sequenceOf(tc.name)
		if seq != tc.seq || ok != tc.ok {
			t.Errorf("sequenceOf(%q) = %d, %v; want %d, %v", tc.name, seq, ok, tc.seq, tc.ok)
		}
	}
}

func TestSeqParse(t *testing.T) {
	for _, tc := range []struct {
		name, marker string
		seq          int64
		ok           bool
	}{
		{"_c_ab-lock-0000000042", "lock-", 42, true},
		{"_c_ab-lock--2147483648", "lock-", -2147483648, true},
		{"_c_ab-lock--1000000001", "lock-", -1000000001, true},
		{"_c_ab-__READ__0000000003", "__READ__", 3, true},
		{"_c_ab-lock-", "lock-", 0, false},
		{"_c_ab-latch-0000000003", "lock-", 0, false},
		{"lock-99999999999", "lock-", 0, false}, // beyond int32
	} {
		seq, ok := seqParse(tc.name, tc.marker)
		if seq != tc.seq || ok != tc.ok {
			t.Errorf("seqParse(%q, %q) = %d, %v; want %d, %v", tc.name, tc.marker, seq, ok, tc.seq, tc.ok)
		}
	}
}

func TestSortBySequence(t *testing.T) {
	names := []string{"b-0000000010", "junk", "a-0000000002", "c-0000000001", "a-0000000010"}
	sortBySequence(names)
	want := []string{"c-0000000001", "a-0000000002", "a-0000000010", "b-0000000010", "junk"}
	if !slices.Equal(names, want) {
		t.Errorf("sorted %v, want %v", names, want)
	}
	// Across the int32 wrap, in creation order.
	wrapped := []string{"lock--2147483647", "lock-2147483646", "lock--2147483648", "lock-2147483647"}
	sortBySeq(wrapped, func(n string) (int64, bool) { return seqParse(n, "lock-") })
	want = []string{"lock-2147483646", "lock-2147483647", "lock--2147483648", "lock--2147483647"}
	if !slices.Equal(wrapped, want) {
		t.Errorf("sorted across wrap %v, want %v", wrapped, want)
	}
}

func TestCheckArgs(t *testing.T) {
	s := &zoo.Session{} // never used: only checked for nil
	for _, tc := range []struct {
		path string
		ok   bool
	}{
		{"/locks/a", true},
		{"/a", true},
		{"/a/b.c/d-e_f", true},
		{"", false},
		{"/", false},
		{"a/b", false},
		{"/a/", false},
		{"/a//b", false},
		{"/a/./b", false},
		{"/a/..", false},
		{"/a\x00b", false},
		{"/a\u007fb", false},
		{"/a\U0001F600", false},
		{"/a\xffb", false},
	} {
		err := checkArgs("test", s, tc.path, false)
		if (err == nil) != tc.ok {
			t.Errorf("checkArgs(%q) = %v, want ok=%v", tc.path, err, tc.ok)
			continue
		}
		if err != nil {
			var pe *zoo.PathError
			if !errors.As(err, &pe) || !errors.Is(err, zoo.ErrBadArguments) {
				t.Errorf("checkArgs(%q) = %v (%T): want a *zoo.PathError wrapping ErrBadArguments", tc.path, err, err)
			}
		}
	}
	if err := checkArgs("test", nil, "/a", false); !errors.Is(err, zoo.ErrBadArguments) {
		t.Errorf("nil session: %v, want ErrBadArguments", err)
	}
	if err := checkArgs("test", s, "/", true); err != nil {
		t.Errorf("the root where allowed: %v", err)
	}
	// Every constructor checks.
	_, e1 := NewMutex(nil, "/a")
	_, e2 := NewRWMutex(s, "a")
	_, e3 := NewElection(s, "/")
	_, e4 := NewSemaphore(s, "/a", 0)
	_, e5 := NewSemaphore(s, "/a/", 1)
	_, e6 := NewBarrier(s, "/")
	_, e7 := NewDoubleBarrier(s, "/a", 0)
	_, e8 := NewQueue(s, "q")
	_, e9 := NewPriorityQueue(nil, "/q")
	_, e10 := NewCounter(s, "/a//b")
	_, e11 := NewGroup(s, "/a/.")
	_, e12 := NewTreeCache(s, "/a\x00", TreeCacheOptions{})
	for i, err := range []error{e1, e2, e3, e4, e5, e6, e7, e8, e9, e10, e11, e12} {
		if !errors.Is(err, zoo.ErrBadArguments) {
			t.Errorf("constructor %d: %v, want ErrBadArguments", i+1, err)
		}
	}
}

func TestTokenedNames(t *testing.T) {
	tok := newToken()
	if len(tok) != tokenLen || tok == newToken() {
		t.Fatalf("newToken() = %q", tok)
	}
	for _, tc := range []struct {
		name, prefix, token string
		seq                 int64
		ok                  bool
	}{
		{"p-" + tok + "-0000000003", "p-", tok, 3, true},
		{"p-" + tok + "--2147483648", "p-", tok, -2147483648, true},
		{"p-" + tok + "-", "p-", "", 0, false},
		{"p-" + tok[1:] + "-0000000003", "p-", "", 0, false},
		{"q-" + tok + "-0000000003", "p-", "", 0, false},
		{"ready", "p-", "", 0, false},
	} {
		token, seq, ok := parseTokened(tc.name, tc.prefix)
		if token != tc.token || seq != tc.seq || ok != tc.ok {
			t.Errorf("parseTokened(%q, %q) = %q, %d, %v", tc.name, tc.prefix, token, seq, ok)
		}
	}
	for _, tc := range [][2]string{{"/a/b", "/a"}, {"/a", "/"}} {
		if got := parentPath(tc[0]); got != tc[1] {
			t.Errorf("parentPath(%q) = %q", tc[0], got)
		}
		if got := joinPath(tc[1], baseName(tc[0])); got != tc[0] {
			t.Errorf("joinPath(parentPath, baseName) of %q = %q", tc[0], got)
		}
	}
}
