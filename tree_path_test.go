package zoo

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestValidatePath(t *testing.T) {
	tests := []struct {
		path string
		ok   bool
	}{
		{"/", true},
		{"/a", true},
		{"/a/b/c", true},
		{"/zookeeper/quota", true},
		{"/.a", true},
		{"/a.", true},
		{"/...", true},
		{"/a/..b", true},
		{"/with space", true},
		{"/ü/日本", true},         // BMP letters are fine
		{"/\u00a0", true},       // just above the C1 controls
		{"/\uf900", true},       // just above the private-use block
		{"/\uffef", true},       // just below the specials
		{"/a-0000000001", true}, // a sequential name
		{"/" + strings.Repeat("x", 4096), true},

		{"", false},
		{"a", false},
		{"a/b", false},
		{"/a/", false}, // trailing slash
		{"//", false},  // empty name
		{"//a", false}, // empty name
		{"/a//b", false},
		{"/.", false},
		{"/..", false},
		{"/a/.", false},
		{"/a/./b", false},
		{"/a/../b", false},
		{"/a/..", false},
		{"/\x00", false},
		{"/a\x00b", false},
		{"/\x01", false},
		{"/\t", false},
		{"/\n", false},
		{"/\x1f", false},
		{"/\x7f", false},
		{"/\u0080", false},
		{"/\u009f", false},
		{"/\ue000", false}, // private use
		{"/\uf8ff", false},
		{"/\ufff0", false},
		{"/\ufffd", false}, // the replacement character sits in the specials block
		{"/\uffff", false},
		{"/😀", false}, // non-BMP: Java sees surrogates D83D DE00
		{"/a/\U00010000", false},
		{"/\U0010ffff", false},
		{"/\xff", false},         // not UTF-8
		{"/\xed\xa0\x80", false}, // a UTF-8-encoded surrogate
	}
	for _, tt := range tests {
		err := validatePath(tt.path)
		if tt.ok && err != nil {
			t.Errorf("validatePath(%q) = %v, want ok", tt.path, err)
		}
		if !tt.ok && !errors.Is(err, ErrBadArguments) {
			t.Errorf("validatePath(%q) = %v, want ErrBadArguments", tt.path, err)
		}
	}
}

func TestSplitJoinPath(t *testing.T) {
	tests := []struct{ path, parent, name string }{
		{"/a", "/", "a"},
		{"/a/b", "/a", "b"},
		{"/a/b/c-0000000001", "/a/b", "c-0000000001"},
	}
	for _, tt := range tests {
		p, n := splitPath(tt.path)
		if p != tt.parent || n != tt.name {
			t.Errorf("splitPath(%s) = %q, %q", tt.path, p, n)
		}
		if got := childPath(p, n); got != tt.path {
			t.Errorf("childPath(%q, %q) = %s", p, n, got)
		}
		if k := withKey(tt.path, func(k *znode) [2]string { return [2]string{k.parent(), k.name()} }); k != [2]string{tt.parent, tt.name} {
			t.Errorf("key of %s = %q", tt.path, k)
		}
	}
	for _, p := range []string{"/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config"} {
		if !isReservedPath(p) {
			t.Errorf("%s not reserved", p)
		}
	}
	for _, p := range []string{"/zookeeper/other", "/zookeeperx", "/a"} {
		if isReservedPath(p) {
			t.Errorf("%s reserved", p)
		}
	}
}

// childPath is the inverse of splitPath.
func childPath(parent, name string) string {
	if parent == "/" {
		return "/" + name
	}
	return parent + "/" + name
}

// FuzzValidatePath checks that validation never panics and that every accepted
// path has the shape the tree relies on.
func FuzzValidatePath(f *testing.F) {
	for _, s := range []string{"/", "/a", "/a/b", "/a/", "//", "/.", "/..", "/a/../b", "/\x00", "/😀", "/\uffff", "/日本", "a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if validatePath(p) != nil {
			return
		}
		if !utf8.ValidString(p) || !strings.HasPrefix(p, "/") {
			t.Fatalf("accepted %q", p)
		}
		if p == "/" {
			return
		}
		if strings.HasSuffix(p, "/") || strings.Contains(p, "//") {
			t.Fatalf("accepted %q with an empty name", p)
		}
		for _, seg := range strings.Split(p[1:], "/") {
			if seg == "." || seg == ".." {
				t.Fatalf("accepted relative %q", p)
			}
		}
		for _, r := range p {
			if r < 0x20 || (r >= 0x7f && r <= 0x9f) || (r >= 0xd800 && r <= 0xf8ff) || r >= 0xfff0 {
				t.Fatalf("accepted %q with %U", p, r)
			}
		}
		parent, name := splitPath(p)
		if name == "" || childPath(parent, name) != p || validatePath(parent) != nil {
			t.Fatalf("split %q into %q, %q", p, parent, name)
		}
		if k := withKey(p, func(k *znode) [2]string { return [2]string{k.parent(), k.name()} }); k != [2]string{parent, name} {
			t.Fatalf("key of %q = %q", p, k)
		}
		// A sequential create validates the name with a digit appended; for an
		// accepted path that must hold too.
		if validatePath(p+"0000000001") != nil {
			t.Fatalf("%q accepted but not with a sequence suffix", p)
		}
	})
}
