package zoo_test

import (
	"crypto/x509/pkix"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/zooraft/zoo"
	"github.com/zooraft/zoo/internal/certgen"
	"github.com/zooraft/zoo/internal/testkit"
)

func digestACL(perms int32, user, password string) zoo.ACL {
	return zoo.ACL{Perms: perms, ID: zoo.ID{Scheme: "digest", ID: zoo.DigestID(user, password)}}
}

// GetACL through the public API, as ZooKeeper 3.8.4+ serves getACL: ADMIN
// sees the ACL as stored; READ without ADMIN sees digest ids masked as
// "user:x" (other schemes as stored); neither READ nor ADMIN is ErrNoAuth.
func TestSessionGetACLMasking(t *testing.T) {
	e := openConfig(t, zoo.Config{TickTime: tick, SuperDigest: zoo.DigestID("super", "root")})
	ctx := testkit.Context(t)
	stored := []zoo.ACL{
		digestACL(zoo.PermAdmin, "alice", "a-pw"),
		digestACL(zoo.PermRead, "bob", "b-pw"),
		digestACL(zoo.PermWrite|zoo.PermCreate|zoo.PermDelete, "carol", "c-pw"),
		{Perms: zoo.PermRead, ID: zoo.ID{Scheme: "ip", ID: "10.0.0.0/8"}},
	}
	masked := []zoo.ACL{
		{Perms: zoo.PermAdmin, ID: zoo.ID{Scheme: "digest", ID: "alice:x"}},
		{Perms: zoo.PermRead, ID: zoo.ID{Scheme: "digest", ID: "bob:x"}},
		{Perms: zoo.PermWrite | zoo.PermCreate | zoo.PermDelete, ID: zoo.ID{Scheme: "digest", ID: "carol:x"}},
		{Perms: zoo.PermRead, ID: zoo.ID{Scheme: "ip", ID: "10.0.0.0/8"}},
	}
	creator, err := e.NewSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := creator.Create(ctx, "/guarded", []byte("x"), zoo.ModePersistent, stored); err != nil {
		t.Fatal(err)
	}
	// aversion 1, so a Stat that came from somewhere else would show.
	if _, err := creator.SetACL(ctx, "/guarded", stored, 0); !errors.Is(err, zoo.ErrNoAuth) {
		t.Fatalf("SetACL by a session without ADMIN: %v, want ErrNoAuth", err)
	}
	as := func(scheme, auth string) *zoo.Session {
		t.Helper()
		s, err := e.NewSession(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if scheme != "" {
			if err := s.AddAuth(ctx, scheme, []byte(auth)); err != nil {
				t.Fatal(err)
			}
		}
		return s
	}
	alice := as("digest", "alice:a-pw")
	st, err := alice.SetACL(ctx, "/guarded", stored, 0)
	if err != nil {
		t.Fatal(err)
	}
	if st.Aversion != 1 {
		t.Fatalf("aversion after SetACL: %d", st.Aversion)
	}

	for _, tc := range []struct {
		name string
		s    *zoo.Session
		want []zoo.ACL // nil: ErrNoAuth
	}{
		{"ADMIN by digest", alice, stored},
		{"super user", as("digest", "super:root"), stored},
		{"READ by digest", as("digest", "bob:b-pw"), masked},
		{"READ by ip", as("ip", "10.20.30.40"), masked},
		{"WRITE, CREATE and DELETE but no READ or ADMIN", as("digest", "carol:c-pw"), nil},
		{"wrong password", as("digest", "alice:wrong"), nil},
		{"ip outside the range", as("ip", "192.168.0.1"), nil},
		{"no identity", as("", ""), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			acl, st, err := tc.s.GetACL(ctx, "/guarded")
			if tc.want == nil {
				if !errors.Is(err, zoo.ErrNoAuth) {
					t.Fatalf("GetACL = %v, %v; want ErrNoAuth", acl, err)
				}
				var pe *zoo.PathError
				if !errors.As(err, &pe) || pe.Path != "/guarded" {
					t.Errorf("error %v does not name the path", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(acl, tc.want) {
				t.Errorf("GetACL = %v\nwant     %v", acl, tc.want)
			}
			if st.Aversion != 1 || st.Version != 0 || st.DataLength != 1 {
				t.Errorf("GetACL stat %+v, want aversion 1, version 0, 1 byte", st)
			}
			// A missing node is ErrNoNode for everyone, before any permission check.
			if _, _, err := tc.s.GetACL(ctx, "/guarded-missing"); !errors.Is(err, zoo.ErrNoNode) {
				t.Errorf("GetACL of a missing node: %v, want ErrNoNode", err)
			}
		})
	}
	// Masking a reader's copy leaves the stored ACL alone.
	if acl, _, err := alice.GetACL(ctx, "/guarded"); err != nil || !slices.Equal(acl, stored) {
		t.Fatalf("ADMIN after the masked reads: %v, %v", acl, err)
	}
}

// The ip scheme end to end through Session: AddAuth("ip") grants what an ip
// ACL (one address or a CIDR range, IPv4-mapped IPv6 callers included) allows
// and nothing else; a bad address fails AddAuth; "auth" never expands to ip
// ids, as in ZooKeeper.
func TestSessionIPACL(t *testing.T) {
	e := openConfig(t, zoo.Config{TickTime: tick, MaxSessionTimeout: time.Minute}) // server sessions live without Touch
	ctx := testkit.Context(t)
	root, err := e.NewSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	lan := []zoo.ACL{
		{Perms: zoo.PermRead | zoo.PermCreate | zoo.PermDelete, ID: zoo.ID{Scheme: "ip", ID: "10.0.0.0/8"}},
		{Perms: zoo.PermAll, ID: zoo.ID{Scheme: "ip", ID: "192.168.1.7"}},
	}
	if _, err := root.Create(ctx, "/lan", []byte("v0"), zoo.ModePersistent, lan); err != nil {
		t.Fatal(err)
	}
	from := func(ip string) *zoo.ServerSession {
		t.Helper()
		s, err := e.NewServerSession(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.AddAuth(ctx, "ip", []byte(ip)); err != nil {
			t.Fatalf("AddAuth ip %s: %v", ip, err)
		}
		return s
	}

	inRange, mapped, host, outside := from("10.1.2.3"), from("::ffff:10.9.9.9"), from("192.168.1.7"), from("192.168.1.8")
	if ids := inRange.AuthIDs(); !slices.Contains(ids, zoo.ID{Scheme: "ip", ID: "10.1.2.3"}) {
		t.Fatalf("AuthIDs after AddAuth ip: %v", ids)
	}
	for _, tc := range []struct {
		name string
		call func() error
		want error
	}{
		{"range reads", func() error { _, _, err := inRange.Get(ctx, "/lan"); return err }, nil},
		{"mapped v6 reads", func() error { _, _, err := mapped.Get(ctx, "/lan"); return err }, nil},
		{"range creates a child", func() error {
			_, err := inRange.Create(ctx, "/lan/kid", nil, zoo.ModePersistent, nil)
			return err
		}, nil},
		{"range may not write", func() error { _, err := inRange.Set(ctx, "/lan", []byte("v1"), -1); return err }, zoo.ErrNoAuth},
		{"range may not setACL", func() error { _, err := inRange.SetACL(ctx, "/lan", lan, -1); return err }, zoo.ErrNoAuth},
		{"outside may not read", func() error { _, _, err := outside.Get(ctx, "/lan"); return err }, zoo.ErrNoAuth},
		{"outside may not list", func() error { _, _, err := outside.Children(ctx, "/lan"); return err }, zoo.ErrNoAuth},
		{"outside may not create", func() error {
			_, err := outside.Create(ctx, "/lan/other", nil, zoo.ModePersistent, nil)
			return err
		}, zoo.ErrNoAuth},
		{"anonymous may not read", func() error { _, _, err := root.Get(ctx, "/lan"); return err }, zoo.ErrNoAuth},
		{"host writes", func() error { _, err := host.Set(ctx, "/lan", []byte("v1"), 0); return err }, nil},
		{"outside may not delete the child", func() error { return outside.Delete(ctx, "/lan/kid", -1) }, zoo.ErrNoAuth},
		{"mapped v6 deletes the child", func() error { return mapped.Delete(ctx, "/lan/kid", -1) }, nil},
		{"bad address", func() error { return root.AddAuth(ctx, "ip", []byte("10.0.0.0/8")) }, zoo.ErrAuthFailed},
		{"auth scheme with only an ip id", func() error {
			_, err := inRange.Create(ctx, "/lan/mine", nil, zoo.ModePersistent, zoo.CreatorACL)
			return err
		}, zoo.ErrInvalidACL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.call(); !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	data, st, err := host.Get(ctx, "/lan")
	if err != nil || string(data) != "v1" || st.Version != 1 || st.NumChildren != 0 {
		t.Fatalf("/lan after the calls: %q %+v %v", data, st, err)
	}
}

// x509 identities through the public API: what zkwire adds for a client
// certificate. Matching is exact; the configured superuser passes all.
func TestSessionX509ACL(t *testing.T) {
	e := openConfig(t, zoo.Config{TickTime: tick, X509SuperUser: "CN=admin,O=Acme", MaxSessionTimeout: time.Minute})
	ctx := testkit.Context(t)
	ca, err := certgen.NewCA("clients", certgen.Options{})
	if err != nil {
		t.Fatal(err)
	}
	as := func(subject ...string) *zoo.ServerSession {
		t.Helper()
		s, err := e.NewServerSession(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(subject) > 0 {
			name := pkix.Name{CommonName: subject[0], Organization: []string{subject[1]}}
			leaf, err := ca.Client(name, certgen.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.AddX509Auth(ctx, leaf.Cert); err != nil {
				t.Fatalf("AddX509Auth %v: %v", name, err)
			}
		}
		return s
	}
	app, other, spaced, admin, anon := as("app", "Acme"), as("other", "Acme"), as("app ", "Acme"), as("admin", "Acme"), as()
	if _, err := app.Create(ctx, "/mine", []byte("v"), zoo.ModePersistent, zoo.CreatorACL); err != nil {
		t.Fatalf("create with auth:: as an x509 client: %v", err)
	}
	acl, _, err := app.GetACL(ctx, "/mine")
	if want := []zoo.ACL{{Perms: zoo.PermAll, ID: zoo.ID{Scheme: "x509", ID: "CN=app,O=Acme"}}}; err != nil || !slices.Equal(acl, want) {
		t.Fatalf("auth:: expanded to %v (%v), want %v", acl, err, want)
	}
	if _, _, err := app.Get(ctx, "/mine"); err != nil {
		t.Fatalf("owner reads: %v", err)
	}
	for name, s := range map[string]*zoo.ServerSession{"another subject": other, "a subject with a trailing space": spaced, "no certificate": anon} {
		if _, _, err := s.Get(ctx, "/mine"); !errors.Is(err, zoo.ErrNoAuth) {
			t.Errorf("%s reads: %v, want ErrNoAuth", name, err)
		}
	}
	if _, err := admin.Set(ctx, "/mine", []byte("w"), -1); err != nil {
		t.Fatalf("X509SuperUser writes: %v", err)
	}
	if !slices.Contains(admin.AuthIDs(), zoo.ID{Scheme: "super", ID: ""}) {
		t.Fatalf("superuser ids: %v", admin.AuthIDs())
	}
	// addauth data cannot claim an x509 identity, the superuser's least of all.
	if err := anon.AddAuth(ctx, "x509", []byte("CN=admin,O=Acme")); !errors.Is(err, zoo.ErrAuthFailed) {
		t.Fatalf("AddAuth x509: %v", err)
	}
	if _, _, err := anon.Get(ctx, "/mine"); !errors.Is(err, zoo.ErrNoAuth) {
		t.Fatalf("after a refused AddAuth x509: %v", err)
	}
	if _, err := anon.Create(ctx, "/bad", nil, zoo.ModePersistent, []zoo.ACL{{Perms: zoo.PermAll, ID: zoo.ID{Scheme: "x509", ID: "CN"}}}); !errors.Is(err, zoo.ErrInvalidACL) {
		t.Fatalf("x509 ACL that is not a name: %v", err)
	}
	if _, err := zoo.Open(zoo.Config{X509SuperUser: "admin"}); err == nil {
		t.Fatal("Open took an X509SuperUser that is not a name")
	}
}
