package zoo

import (
	"context"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// Permission bits of an ACL entry.
const (
	PermRead   int32 = 1 << 0
	PermWrite  int32 = 1 << 1
	PermCreate int32 = 1 << 2
	PermDelete int32 = 1 << 3
	PermAdmin  int32 = 1 << 4
	PermAll    int32 = 0x1f
)

// ID names who an ACL entry or an authenticated identity is: a scheme and an id
// in that scheme ("world"/"anyone", "digest"/"user:hash", "ip"/"10.0.0.0/8").
type ID struct {
	Scheme string
	ID     string
}

// ACL grants Perms to an ID.
type ACL struct {
	Perms int32
	ID
}

// Standard ACLs, as ZooDefs.Ids defines them.
var (
	OpenACL     = []ACL{{PermAll, ID{"world", "anyone"}}}
	ReadACL     = []ACL{{PermRead, ID{"world", "anyone"}}}
	CreatorACL  = []ACL{{PermAll, ID{"auth", ""}}}
	superUserID = ID{"super", ""}
)

// DigestID returns the digest-scheme id for user and password as ZooKeeper
// stores it: "user:base64(sha1(user:password))". Use it to build digest ACLs.
func DigestID(user, password string) string {
	sum := sha1.Sum([]byte(user + ":" + password))
	return user + ":" + base64.StdEncoding.EncodeToString(sum[:])
}

// authIDFor turns an addauth call into the identity it grants. Digest auth never
// fails (any "user:password" yields an id), as in ZooKeeper.
func authIDFor(scheme string, auth []byte) (ID, error) {
	switch scheme {
	case "digest":
		// ZooKeeper's generateDigest: the text before the first ':' (all of
		// it when there is none) plus the hash of the whole string.
		user, _, _ := strings.Cut(string(auth), ":")
		sum := sha1.Sum(auth)
		return ID{"digest", user + ":" + base64.StdEncoding.EncodeToString(sum[:])}, nil
	case "ip":
		if _, err := netip.ParseAddr(string(auth)); err != nil {
			return ID{}, fmt.Errorf("%w: bad ip %q", ErrAuthFailed, auth)
		}
		return ID{"ip", string(auth)}, nil
	}
	return ID{}, fmt.Errorf("%w: unknown scheme %q", ErrAuthFailed, scheme)
}

// fixupACL validates an ACL list for create/setACL and expands the "auth"
// placeholder into the caller's authenticated (non-ip) ids, as ZooKeeper's
// PrepRequestProcessor.fixupACL does.
func fixupACL(acl []ACL, ids []ID) ([]ACL, error) {
	if len(acl) == 0 {
		return nil, fmt.Errorf("%w: empty ACL list", ErrInvalidACL)
	}
	out := make([]ACL, 0, len(acl))
	for _, a := range acl {
		if a.Perms&^PermAll != 0 {
			return nil, fmt.Errorf("%w: bad perms %d", ErrInvalidACL, a.Perms)
		}
		switch a.Scheme {
		case "world":
			if a.ID.ID != "anyone" {
				return nil, fmt.Errorf("%w: world id must be anyone", ErrInvalidACL)
			}
			out = append(out, a)
		case "auth":
			n := 0
			for _, id := range ids {
				if id.Scheme == "ip" || id.Scheme == "super" || id.Scheme == "" {
					continue
				}
				out = append(out, ACL{a.Perms, id})
				n++
			}
			if n == 0 {
				return nil, fmt.Errorf("%w: auth scheme needs an authenticated id", ErrInvalidACL)
			}
		case "digest":
			user, hash, ok := strings.Cut(a.ID.ID, ":")
			if !ok || user == "" || hash == "" {
				return nil, fmt.Errorf("%w: digest id must be user:hash", ErrInvalidACL)
			}
			out = append(out, a)
		case "ip":
			if _, err := parseIPACL(a.ID.ID); err != nil {
				return nil, fmt.Errorf("%w: %v", ErrInvalidACL, err)
			}
			out = append(out, a)
		case "x509":
			if !validX509ID(a.ID.ID) {
				return nil, fmt.Errorf("%w: x509 id %q is not a distinguished name", ErrInvalidACL, a.ID.ID)
			}
			out = append(out, a)
		default:
			return nil, fmt.Errorf("%w: unknown scheme %q", ErrInvalidACL, a.Scheme)
		}
	}
	return internACL(dedupACL(out)), nil
}

// commonACLs are private copies: the exported OpenACL and ReadACL could be
// modified by a caller, these are never handed out.
var commonACLs = [][]ACL{
	{{PermAll, ID{"world", "anyone"}}},
	{{PermRead, ID{"world", "anyone"}}},
}

// internACL shares one slice among all nodes with the same common ACL: most
// trees use world:anyone everywhere, and a copy per node costs ~50 bytes.
// ACL slices in the tree are never modified in place.
func internACL(acl []ACL) []ACL {
	for _, common := range commonACLs {
		if slices.Equal(acl, common) {
			return common
		}
	}
	return acl
}

func dedupACL(acl []ACL) []ACL {
	out := acl[:0]
	for i, a := range acl {
		dup := false
		for _, b := range acl[:i] {
			if a == b {
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, a)
		}
	}
	return out
}

func parseIPACL(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// checkACL reports whether ids hold perm on a node with the given ACL, following
// ZooKeeperServer.checkACL: the super id passes everything, an empty ACL allows
// everyone.
func checkACL(acl []ACL, ids []ID, perm int32) error {
	if len(acl) == 0 {
		return nil
	}
	for _, id := range ids {
		if id == superUserID {
			return nil
		}
	}
	for _, a := range acl {
		if a.Perms&perm == 0 {
			continue
		}
		switch a.Scheme {
		case "world":
			if a.ID.ID == "anyone" {
				return nil
			}
		case "ip":
			p, err := parseIPACL(a.ID.ID)
			if err != nil {
				continue
			}
			for _, id := range ids {
				if id.Scheme != "ip" {
					continue
				}
				if addr, err := netip.ParseAddr(id.ID); err == nil && p.Contains(addr.Unmap()) {
					return nil
				}
			}
		default:
			for _, id := range ids {
				if id.Scheme == a.Scheme && id.ID == a.ID.ID {
					return nil
				}
			}
		}
	}
	return ErrNoAuth
}

// maskACL hides digest hashes from callers without ADMIN, as getACL does in 3.8.4+.
func maskACL(acl []ACL) []ACL {
	out := make([]ACL, len(acl))
	for i, a := range acl {
		if a.Scheme == "digest" {
			user, _, _ := strings.Cut(a.ID.ID, ":")
			a.ID.ID = user + ":x"
		}
		out[i] = a
	}
	return out
}

// CheckAccess reports whether the session may do perm (PermRead, PermWrite,
// ... or several OR-ed: any of them suffices) on the znode at path, as
// ZooKeeper checks a request against the node's ACL: nil if allowed (a super
// user always is), [ErrNoAuth] if not, [ErrNoNode] if there is no such node.
// It reads the local tree, as a read does; protocol servers use it for
// operations that ZooKeeper guards by a node's ACL without writing the node
// (reconfig needs WRITE on /zookeeper/config).
func (s *ServerSession) CheckAccess(ctx context.Context, path string, perm int32) error {
	if perm == 0 || perm&^PermAll != 0 {
		return pathErr("checkAccess", path, fmt.Errorf("%w: permission bits %#x", ErrBadArguments, perm))
	}
	return s.read(ctx, "checkAccess", path, func(t *tree) error {
		n := t.get(path)
		if n == nil {
			return ErrNoNode
		}
		return checkACL(n.acl, s.authIDs(), perm)
	})
}
