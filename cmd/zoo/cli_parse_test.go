package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/zooraft/zoo"
)

func TestCliTokenize(t *testing.T) {
	for _, c := range []struct {
		line string
		want []string
	}{
		{"ls /", []string{"ls", "/"}},
		{"  ls \t /a  ", []string{"ls", "/a"}},
		{`create /a "x y"`, []string{"create", "/a", "x y"}},
		{`create /a 'x "y"'`, []string{"create", "/a", `x "y"`}},
		{`create /a ""`, []string{"create", "/a", ""}},
		{`create /a 'it''s'`, []string{"create", "/a", "it", "s"}},
		{`create /a x"y z"`, []string{"create", "/a", `x"y`, `z"`}},
		{`create /a "x"y`, []string{"create", "/a", "x", "y"}},
		{`create /a "open`, []string{"create", "/a", "open"}},
		{`create /a '`, []string{"create", "/a"}},
		{"", nil},
		{"   ", nil},
	} {
		if got := tokenize(c.line); strings.Join(got, "|") != strings.Join(c.want, "|") || len(got) != len(c.want) {
			t.Errorf("tokenize(%q) = %q, want %q", c.line, got, c.want)
		}
	}
}

func TestCliParseOptions(t *testing.T) {
	for _, c := range []struct {
		toks  []string
		spec  string
		flags string
		vals  string
		args  string
		err   string
	}{
		{[]string{"ls", "-s", "-R", "/a"}, "swR", "R s", "", "/a", ""},
		{[]string{"ls", "-sR", "/a"}, "swR", "R s", "", "/a", ""},
		{[]string{"ls", "/a", "-w"}, "swR", "w", "", "/a", ""},
		{[]string{"set", "-v", "3", "/a", "d"}, "sv:", "v", "v=3", "/a d", ""},
		{[]string{"set", "-v3", "/a", "d"}, "sv:", "v", "v=3", "/a d", ""},
		{[]string{"set", "-sv", "3", "/a", "d"}, "sv:", "s v", "v=3", "/a d", ""},
		{[]string{"set", "-v", "-1", "/a", "d"}, "sv:", "v", "v=-1", "/a d", ""},
		{[]string{"set", "/a", "--", "-d"}, "sv:", "", "", "/a -d", ""},
		{[]string{"set", "/a", "-"}, "sv:", "", "", "/a -", ""},
		{[]string{"set", "/a", "-1"}, "sv:", "", "", "", "Unrecognized option: -1"},
		{[]string{"ls", "-sx", "/"}, "swR", "", "", "", "Unrecognized option: -sx"},
		{[]string{"set", "/a", "d", "-v"}, "sv:", "", "", "", "Missing argument for option: v"},
	} {
		a, err := parseOptions(c.toks, c.spec)
		if c.err != "" {
			if err == nil || !strings.HasSuffix(err.Error(), c.err) {
				t.Errorf("parseOptions(%q): err %v, want %q", c.toks, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseOptions(%q): %v", c.toks, err)
			continue
		}
		var flags, vals []string
		for f := range a.flags {
			flags = append(flags, string(f))
		}
		for f, v := range a.values {
			vals = append(vals, string(f)+"="+v)
		}
		sort.Strings(flags)
		sort.Strings(vals)
		if got := strings.Join(flags, " "); got != c.flags {
			t.Errorf("parseOptions(%q) flags %q, want %q", c.toks, got, c.flags)
		}
		if got := strings.Join(vals, " "); got != c.vals {
			t.Errorf("parseOptions(%q) values %q, want %q", c.toks, got, c.vals)
		}
		if got := strings.Join(a.args, " "); got != c.args {
			t.Errorf("parseOptions(%q) args %q, want %q", c.toks, got, c.args)
		}
	}
}

func TestCliValidatePath(t *testing.T) {
	for _, c := range []struct {
		path string
		seq  bool
		want string
	}{
		{"/", false, ""},
		{"/a/b", false, ""},
		{"/a/b.", false, ""},
		{"/a/..b", false, ""},
		{"/a/", true, ""},
		{"", false, "Path length must be > 0"},
		{"a", false, "Path must start with / character"},
		{"/a/", false, "Path must not end with / character"},
		{"/a//b", false, `Invalid path string "/a//b" caused by empty node name specified @3`},
		{"/a//", true, `Invalid path string "/a//1" caused by empty node name specified @3`},
		{"/a/./b", false, `Invalid path string "/a/./b" caused by relative paths not allowed @3`},
		{"/a/..", false, `Invalid path string "/a/.." caused by relative paths not allowed @4`},
		{"/a\x00", false, `Invalid path string "/a` + "\x00" + `" caused by null character not allowed @2`},
		{"/a\x01", false, `Invalid path string "/a` + "\x01" + `" caused by invalid character @2`},
		{"/a\u0085", false, `Invalid path string "/a` + "\u0085" + `" caused by invalid character @2`},
		{"/é/\U0001F600", false, `Invalid path string "/é/` + "\U0001F600" + `" caused by invalid character @3`},
		{"/\ufff0", false, `Invalid path string "/` + "\ufff0" + `" caused by invalid character @1`},
	} {
		err := validatePath(c.path, c.seq)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != c.want {
			t.Errorf("validatePath(%q, %v) = %q, want %q", c.path, c.seq, got, c.want)
		}
	}
}

func TestCliACL(t *testing.T) {
	for _, c := range []struct {
		in    string
		want  string // formatted as getAcl prints, entries joined by |
		warns string
	}{
		{"world:anyone:cdrwa", "'world,'anyone\n: cdrwa", ""},
		{"world:anyone:awrdc", "'world,'anyone\n: cdrwa", ""},
		{"digest:u:hash=:r,ip:10.0.0.0/8:rw", "'digest,'u:hash=\n: r|'ip,'10.0.0.0/8\n: rw", ""},
		{"world:anyone:", "'world,'anyone\n: ", ""},
		{"world:anyone:rq", "'world,'anyone\n: r", "Unknown perm type: q"},
		{"foo,world:anyone:r", "'world,'anyone\n: r", "foo does not have the form scheme:id:perm"},
		{"a:b", "", "a:b does not have the form scheme:id:perm"},
	} {
		var warns []string
		acl := parseACL(c.in, func(s string) { warns = append(warns, s) })
		var got []string
		for _, a := range acl {
			got = append(got, formatACL(a))
		}
		if strings.Join(got, "|") != c.want || strings.Join(warns, "|") != c.warns {
			t.Errorf("parseACL(%q) = %q warnings %q, want %q warnings %q", c.in, got, warns, c.want, c.warns)
		}
	}
	if got, want := formatACL(zoo.ACL{Perms: zoo.PermRead, ID: zoo.ID{Scheme: "x", ID: "a,b%}\n"}}), "'x,'a%2Cb%25%7D%0A\n: r"; got != want {
		t.Errorf("formatACL escapes to %q, want %q", got, want)
	}
}

func TestCliErrorMessages(t *testing.T) {
	for _, c := range []struct {
		err  error
		path string
		want string
	}{
		{zoo.ErrNoNode, "/x", "Node does not exist: /x"},
		{&zoo.PathError{Op: "get", Path: "/x", Err: zoo.ErrNoNode}, "/x", "Node does not exist: /x"},
		{zoo.ErrNodeExists, "/x", "Node already exists: /x"},
		{zoo.ErrNotEmpty, "/x", "Node not empty: /x"},
		{zoo.ErrBadVersion, "/x", "version No is not valid : /x"},
		{zoo.ErrNoChildrenForEphemerals, "/x", "Ephemerals cannot have children: /x"},
		{zoo.ErrNoAuth, "/x", "Insufficient permission : /x"},
		{zoo.ErrInvalidACL, "", "Acl is not valid : null"},
		{zoo.ErrBadArguments, "/", "Arguments are not valid : /"},
		{zoo.ErrSessionExpired, "/x", "KeeperErrorCode = Session expired for /x"},
		{zoo.ErrClosed, "/x", "KeeperErrorCode = Session expired for /x"},
		{fmt.Errorf("%w (EOF)", zoo.ErrConnectionLoss), "/x", "KeeperErrorCode = ConnectionLoss for /x"},
		{errNoServer, "/x", "KeeperErrorCode = ConnectionLoss for /x"},
		{context.Canceled, "/x", "KeeperErrorCode = ConnectionLoss for /x"},
		{zoo.ErrUnimplemented, "/x", "KeeperErrorCode = Unimplemented for /x"},
		{zoo.ErrNotReadOnly, "/x", "Not a read-only call: /x"},
		{zoo.ErrNoWatcher, "/x", "KeeperErrorCode = No such watcher for /x"},
		{zoo.ErrorForCode(-125), "/x", "Quota has exceeded : /x"},
		{zoo.ErrorForCode(-999), "/x", "KeeperErrorCode = Unknown error -999 for /x"},
		{errors.New("something else"), "/x", "something else"},
	} {
		if got := keeperError(c.err, c.path).msg; got != c.want {
			t.Errorf("keeperError(%v, %q) = %q, want %q", c.err, c.path, got, c.want)
		}
	}
}

func TestCliCompleteCommand(t *testing.T) {
	for _, c := range []struct {
		line    string
		pos     int
		want    string
		wantPos int
		ok      bool
	}{
		{"del", 3, "delete", 6, true}, // delete and deleteall share "delete"
		{"getA", 4, "getA", 4, true},  // getAcl and getAllChildrenNumber
		{"getAc", 5, "getAcl ", 7, true},
		{"q", 1, "quit ", 5, true},
		{"zz", 2, "", 0, false},
		{"ls /a", 5, "", 0, false}, // past the command name
	} {
		got, pos, ok := completeCommand(c.line, c.pos)
		if got != c.want || pos != c.wantPos || ok != c.ok {
			t.Errorf("completeCommand(%q, %d) = %q, %d, %v; want %q, %d, %v", c.line, c.pos, got, pos, ok, c.want, c.wantPos, c.ok)
		}
	}
}
