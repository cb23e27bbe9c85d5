package zoo

import (
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"testing"
)

func TestDigestID(t *testing.T) {
	// The value ZooKeeper's admin guide shows for superDigest with password "test"
	// (DigestAuthenticationProvider.generateDigest("super:test")).
	if got := DigestID("super", "test"); got != "super:D/InIHSb7yEEbrWz8b9l71RjZJU=" {
		t.Errorf("DigestID(super, test) = %s", got)
	}
	// Computed independently: base64(sha1("user:password")), with the user in clear.
	for _, up := range [][2]string{{"alice", "s3cret"}, {"bob", ""}, {"ünï", "p:w:d"}} {
		sum := sha1.Sum([]byte(up[0] + ":" + up[1]))
		want := up[0] + ":" + base64.StdEncoding.EncodeToString(sum[:])
		if got := DigestID(up[0], up[1]); got != want {
			t.Errorf("DigestID(%q, %q) = %s, want %s", up[0], up[1], got, want)
		}
	}
}

func TestAuthIDFor(t *testing.T) {
	tests := []struct {
		scheme, auth string
		want         ID
		err          error
	}{
		{"digest", "alice:pw", ID{"digest", DigestID("alice", "pw")}, nil},
		{"digest", "alice:pw:with:colons", ID{"digest", DigestID("alice", "pw:with:colons")}, nil},
		{"digest", ":", ID{"digest", DigestID("", "")}, nil}, // digest auth never fails
		// ZooKeeper accepts any string: user = the text before ':', hash of it all
		// ("nocolon:" + base64(sha1("nocolon")), computed with Python's hashlib).
		{"digest", "nocolon", ID{"digest", "nocolon:Ra+cHr2ZoHvBjtNArFGNGlVie4g="}, nil},
		{"ip", "10.1.2.3", ID{"ip", "10.1.2.3"}, nil},
		{"ip", "::1", ID{"ip", "::1"}, nil},
		{"ip", "10.0.0.0/8", ID{}, ErrAuthFailed},
		{"world", "anyone", ID{}, ErrAuthFailed},
		{"sasl", "x", ID{}, ErrAuthFailed},
	}
	for _, tt := range tests {
		got, err := authIDFor(tt.scheme, []byte(tt.auth))
		if !errors.Is(err, tt.err) || (tt.err == nil && err != nil) || got != tt.want {
			t.Errorf("authIDFor(%s, %q) = %v, %v; want %v, %v", tt.scheme, tt.auth, got, err, tt.want, tt.err)
		}
	}
}

func TestCheckACL(t *testing.T) {
	alice := ID{"digest", DigestID("alice", "pw")}
	bob := ID{"digest", DigestID("bob", "pw")}
	tests := []struct {
		name string
		acl  []ACL
		ids  []ID
		perm int32
		ok   bool
	}{
		{"world anyone", OpenACL, nil, PermAdmin, true},
		{"world read only", ReadACL, nil, PermWrite, false},
		{"world read", ReadACL, nil, PermRead, true},
		{"empty acl allows all", []ACL{}, nil, PermDelete, true},
		{"digest match", []ACL{{PermAll, alice}}, []ID{bob, alice}, PermWrite, true},
		{"digest other user", []ACL{{PermAll, alice}}, []ID{bob}, PermRead, false},
		{"digest needs exact id", []ACL{{PermAll, alice}}, []ID{{"digest", "alice:x"}}, PermRead, false},
		{"digest missing perm", []ACL{{PermRead, alice}}, []ID{alice}, PermWrite, false},
		{"perms from several entries", []ACL{{PermRead, alice}, {PermWrite, ID{"world", "anyone"}}}, []ID{bob}, PermWrite, true},
		{"scheme must match", []ACL{{PermAll, ID{"digest", "10.0.0.1"}}}, []ID{{"ip", "10.0.0.1"}}, PermRead, false},
		{"ip exact", []ACL{{PermAll, ID{"ip", "10.0.0.1"}}}, []ID{{"ip", "10.0.0.1"}}, PermRead, true},
		{"ip other", []ACL{{PermAll, ID{"ip", "10.0.0.1"}}}, []ID{{"ip", "10.0.0.2"}}, PermRead, false},
		{"ip prefix", []ACL{{PermAll, ID{"ip", "10.0.0.0/8"}}}, []ID{{"ip", "10.200.3.4"}}, PermRead, true},
		{"ip prefix outside", []ACL{{PermAll, ID{"ip", "10.0.0.0/8"}}}, []ID{{"ip", "11.0.0.1"}}, PermRead, false},
		{"ip prefix unmasked", []ACL{{PermAll, ID{"ip", "10.9.9.9/8"}}}, []ID{{"ip", "10.1.1.1"}}, PermRead, true},
		{"ip v4-mapped caller", []ACL{{PermAll, ID{"ip", "10.0.0.0/8"}}}, []ID{{"ip", "::ffff:10.0.0.7"}}, PermRead, true},
		{"ip v6 prefix", []ACL{{PermAll, ID{"ip", "fd00::/8"}}}, []ID{{"ip", "fd12::1"}}, PermRead, true},
		{"ip v6 outside", []ACL{{PermAll, ID{"ip", "fd00::/8"}}}, []ID{{"ip", "fe80::1"}}, PermRead, false},
		{"ip garbage caller", []ACL{{PermAll, ID{"ip", "10.0.0.0/8"}}}, []ID{{"ip", "ten"}}, PermRead, false},
		{"ip garbage acl", []ACL{{PermAll, ID{"ip", "nonsense"}}}, []ID{{"ip", "10.0.0.1"}}, PermRead, false},
		{"super bypasses", []ACL{{0, alice}}, []ID{bob, superUserID}, PermAdmin, true},
		{"super-looking digest does not", []ACL{{0, alice}}, []ID{{"digest", "super:x"}}, PermRead, false},
		{"no ids", []ACL{{PermAll, alice}}, nil, PermRead, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkACL(tt.acl, tt.ids, tt.perm)
			if tt.ok && err != nil {
				t.Errorf("denied: %v", err)
			}
			if !tt.ok && !errors.Is(err, ErrNoAuth) {
				t.Errorf("got %v, want ErrNoAuth", err)
			}
		})
	}
}

func TestFixupACL(t *testing.T) {
	alice := ID{"digest", DigestID("alice", "pw")}
	tests := []struct {
		name string
		acl  []ACL
		ids  []ID
		want []ACL
		err  error
	}{
		{"open", OpenACL, nil, OpenACL, nil},
		{"nil", nil, nil, nil, ErrInvalidACL},
		{"empty", []ACL{}, nil, nil, ErrInvalidACL},
		{"world someone", []ACL{{PermAll, ID{"world", "someone"}}}, nil, nil, ErrInvalidACL},
		{"bad perms", []ACL{{PermAll + 1, ID{"world", "anyone"}}}, nil, nil, ErrInvalidACL},
		{"negative perms", []ACL{{-1, ID{"world", "anyone"}}}, nil, nil, ErrInvalidACL},
		{"unknown scheme", []ACL{{PermAll, ID{"sasl", "a"}}}, nil, nil, ErrInvalidACL},
		{"x509 not a name", []ACL{{PermAll, ID{"x509", "not a dn"}}}, nil, nil, ErrInvalidACL},
		{"x509", []ACL{{PermRead, ID{"x509", "CN=app,O=Acme"}}}, nil, []ACL{{PermRead, ID{"x509", "CN=app,O=Acme"}}}, nil},
		{"auth expands to x509", CreatorACL, []ID{{"ip", "10.0.0.1"}, {"x509", "CN=app"}}, []ACL{{PermAll, ID{"x509", "CN=app"}}}, nil},
		{"digest without hash", []ACL{{PermAll, ID{"digest", "alice"}}}, nil, nil, ErrInvalidACL},
		{"digest empty user", []ACL{{PermAll, ID{"digest", ":hash"}}}, nil, nil, ErrInvalidACL},
		{"digest", []ACL{{PermRead, alice}}, nil, []ACL{{PermRead, alice}}, nil},
		{"ip", []ACL{{PermRead, ID{"ip", "10.0.0.0/8"}}}, nil, []ACL{{PermRead, ID{"ip", "10.0.0.0/8"}}}, nil},
		{"bad ip", []ACL{{PermRead, ID{"ip", "10.0.0.0/33"}}}, nil, nil, ErrInvalidACL},
		// The auth placeholder expands to the caller's authenticated ids only.
		{"auth without ids", CreatorACL, nil, nil, ErrInvalidACL},
		{"auth with only ip", CreatorACL, []ID{{"ip", "10.0.0.1"}}, nil, ErrInvalidACL},
		{"auth with only super", CreatorACL, []ID{superUserID}, nil, ErrInvalidACL},
		{"auth expands", []ACL{{PermRead | PermWrite, ID{"auth", ""}}}, []ID{{"ip", "10.0.0.1"}, alice, superUserID},
			[]ACL{{PermRead | PermWrite, alice}}, nil},
		{"auth id text ignored", []ACL{{PermAll, ID{"auth", "whatever"}}}, []ID{alice}, []ACL{{PermAll, alice}}, nil},
		{"one bad entry spoils the list", []ACL{{PermAll, ID{"world", "anyone"}}, {PermAll, ID{"auth", ""}}}, nil, nil, ErrInvalidACL},
		{"duplicates removed", []ACL{{PermAll, alice}, {PermAll, ID{"auth", ""}}}, []ID{alice}, []ACL{{PermAll, alice}}, nil},
		{"same id, other perms kept", []ACL{{PermRead, alice}, {PermAll, alice}}, nil, []ACL{{PermRead, alice}, {PermAll, alice}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := slices.Clone(tt.acl)
			got, err := fixupACL(tt.acl, tt.ids)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("got %v, %v; want %v", got, err, tt.err)
				}
				return
			}
			if err != nil || !slices.Equal(got, tt.want) {
				t.Fatalf("got %v, %v; want %v", got, err, tt.want)
			}
			if !slices.Equal(in, tt.acl) {
				t.Errorf("input modified: %v", tt.acl)
			}
		})
	}
}

func TestMaskACL(t *testing.T) {
	in := []ACL{
		{PermAll, ID{"digest", DigestID("alice", "pw")}},
		{PermRead, ID{"world", "anyone"}},
		{PermRead, ID{"ip", "10.0.0.0/8"}},
	}
	orig := slices.Clone(in)
	got := maskACL(in)
	want := []ACL{
		{PermAll, ID{"digest", "alice:x"}},
		{PermRead, ID{"world", "anyone"}},
		{PermRead, ID{"ip", "10.0.0.0/8"}},
	}
	if !slices.Equal(got, want) {
		t.Errorf("masked %v, want %v", got, want)
	}
	if !slices.Equal(in, orig) {
		t.Errorf("maskACL modified its input: %v", in)
	}
}

// TestACLEnforcedAtApply checks where each permission is enforced once the
// command reaches the FSM: CREATE and DELETE on the parent, WRITE/READ/ADMIN on
// the node itself.
func TestACLEnforcedAtApply(t *testing.T) {
	alice := ID{"digest", DigestID("alice", "pw")}
	bob := ID{"digest", DigestID("bob", "pw")}
	asAlice := []ID{{"ip", "127.0.0.1"}, alice}
	asBob := []ID{{"ip", "127.0.0.1"}, bob}
	asSuper := []ID{bob, superUserID}
	fromLAN := []ID{{"ip", "192.168.1.20"}}

	h := newTestFSM(t)
	// /home: only alice may do anything; /home/file is world-readable alice data.
	h.mustDo(CreateOp{Path: "/home", ACL: []ACL{{PermAll, alice}}})
	wantErr(t, "alice creates /home/file", h.do(0, asAlice, CreateOp{Path: "/home/file",
		ACL: []ACL{{PermAll, ID{"auth", ""}}, {PermRead, ID{"world", "anyone"}}}}).Err, nil)
	if got := h.node("/home/file").acl; !slices.Equal(got, []ACL{{PermAll, alice}, {PermRead, ID{"world", "anyone"}}}) {
		t.Fatalf("auth placeholder stored as %v", got)
	}
	// /lan: the 192.168/16 network may create and delete children.
	h.mustDo(CreateOp{Path: "/lan", ACL: []ACL{{PermCreate | PermDelete | PermRead, ID{"ip", "192.168.0.0/16"}}}})

	tests := []struct {
		name string
		ids  []ID
		op   Op
		want error
	}{
		{"create under parent without CREATE", asBob, CreateOp{Path: "/home/x"}, ErrNoAuth},
		{"create without any id", nil, CreateOp{Path: "/home/x"}, ErrNoAuth},
		{"create with CREATE on parent", asAlice, CreateOp{Path: "/home/x"}, nil},
		{"create by ip range", fromLAN, CreateOp{Path: "/lan/x"}, nil},
		{"create outside ip range", asBob, CreateOp{Path: "/lan/x"}, ErrNoAuth},
		{"delete needs DELETE on parent", asBob, DeleteOp{Path: "/home/file", Version: -1}, ErrNoAuth},
		{"delete with DELETE on parent", asAlice, DeleteOp{Path: "/home/file", Version: -1}, nil},
		{"setData needs WRITE on node", asBob, SetDataOp{Path: "/home/file", Version: -1}, ErrNoAuth},
		{"setData with WRITE", asAlice, SetDataOp{Path: "/home/file", Version: -1}, nil},
		{"check needs READ", asBob, CheckOp{Path: "/home", Version: -1}, ErrNoAuth},
		{"check with READ from world", asBob, CheckOp{Path: "/home/file", Version: -1}, nil},
		{"setACL needs ADMIN", asBob, setACLOp{path: "/home/file", acl: OpenACL, version: -1}, ErrNoAuth},
		{"setACL with ADMIN", asAlice, setACLOp{path: "/home/file", acl: OpenACL, version: -1}, nil},
		{"setACL auth placeholder without id", nil, setACLOp{path: "/lan", acl: CreatorACL, version: -1}, ErrInvalidACL},
		{"super creates", asSuper, CreateOp{Path: "/home/s"}, nil},
		{"super sets data", asSuper, SetDataOp{Path: "/home/file", Version: -1}, nil},
		{"super sets ACL", asSuper, setACLOp{path: "/home", acl: OpenACL, version: -1}, nil},
		{"super deletes", asSuper, DeleteOp{Path: "/home/file", Version: -1}, nil},
		{"config is read-only for all but super", asAlice, SetDataOp{Path: configPath, Version: -1}, ErrNoAuth},
		{"super may write config", asSuper, SetDataOp{Path: configPath, Version: -1}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newTestFSM(t)
			if err := g.f.Restore(readCloser(snapshotBytes(t, h.f))); err != nil {
				t.Fatal(err)
			}
			g.index = h.index
			wantErr(t, fmt.Sprintf("%T", tt.op), g.do(0, tt.ids, tt.op).Err, tt.want)
		})
	}

	// READ on a read: what the session layer checks on getData.
	if err := checkACL(h.node("/home").acl, asBob, PermRead); !errors.Is(err, ErrNoAuth) {
		t.Errorf("bob reads /home: %v", err)
	}
	if err := checkACL(h.node("/home/file").acl, nil, PermRead); err != nil {
		t.Errorf("anyone reads /home/file: %v", err)
	}
}
