package zoo

import (
	"context"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"fmt"
	"strings"
	"unicode/utf8"
)

// The x509 scheme (ZooKeeper's X509AuthenticationProvider): a client that
// proved a certificate on a TLS client port is authenticated as its
// certificate's subject, written as Java's X500Principal.getName() writes
// it (RFC 2253), e.g. "CN=app1,OU=Eng,O=Acme,C=US". ACL entries match it
// exactly, case and spaces included.

// X509ID returns the x509-scheme id of a client certificate, as ZooKeeper
// forms it: the subject in RFC 2253 form, most specific RDN first. Use it
// to build x509 ACLs for a certificate.
func X509ID(cert *x509.Certificate) string {
	id, err := rfc2253(cert.RawSubject)
	if err != nil {
		// crypto/x509 parsed this subject already; fall back to its form.
		return cert.Subject.String()
	}
	return id
}

// attribute is one type=value of a distinguished name, its value kept raw
// so that strings and other types can be told apart.
type attribute struct {
	Type  asn1.ObjectIdentifier
	Value asn1.RawValue
}

// rdnSET is one relative distinguished name (encoding/asn1 reads a type
// named ...SET as a SET OF).
type rdnSET []attribute

// rfc2253Keywords are the attribute types Java's RFC 2253 output names by
// keyword; any other is written as its OID and the hex of its encoding.
var rfc2253Keywords = map[string]string{
	"2.5.4.3":                    "CN",
	"2.5.4.6":                    "C",
	"2.5.4.7":                    "L",
	"2.5.4.8":                    "ST",
	"2.5.4.10":                   "O",
	"2.5.4.11":                   "OU",
	"2.5.4.9":                    "STREET",
	"0.9.2342.19200300.100.1.25": "DC",
	"0.9.2342.19200300.100.1.1":  "UID",
}

func rfc2253(rawSubject []byte) (string, error) {
	var seq []rdnSET
	if rest, err := asn1.Unmarshal(rawSubject, &seq); err != nil || len(rest) > 0 {
		return "", fmt.Errorf("zoo: subject: %v", err)
	}
	var b strings.Builder
	for i := len(seq) - 1; i >= 0; i-- {
		if i < len(seq)-1 {
			b.WriteByte(',')
		}
		for j, a := range seq[i] {
			if j > 0 {
				b.WriteByte('+')
			}
			kw, known := rfc2253Keywords[a.Type.String()]
			if !known {
				kw = a.Type.String()
			}
			b.WriteString(kw)
			b.WriteByte('=')
			if s, ok := directoryString(a.Value); ok && known {
				b.WriteString(escapeRFC2253(s))
			} else {
				b.WriteByte('#')
				b.WriteString(hex.EncodeToString(a.Value.FullBytes))
			}
		}
	}
	return b.String(), nil
}

// directoryString decodes the values Java writes as text: the string types
// its X500 code knows, whose bytes it reads as UTF-8 whatever the type
// (a BMPString's zero bytes included), one replacement character per byte
// that is not.
func directoryString(v asn1.RawValue) (string, bool) {
	if v.Class != asn1.ClassUniversal {
		return "", false
	}
	switch v.Tag {
	case asn1.TagUTF8String, asn1.TagPrintableString, asn1.TagT61String, asn1.TagIA5String, asn1.TagBMPString, 27 /* GeneralString */ :
	default:
		return "", false
	}
	var b strings.Builder
	for p := v.Bytes; len(p) > 0; {
		r, n := utf8.DecodeRune(p)
		b.WriteRune(r) // utf8.RuneError for a byte that starts no rune
		p = p[n:]
	}
	return b.String(), true
}

// escapeRFC2253 escapes a value as Java does (RFC 2253 section 2.4): a
// backslash before , = + < > # ; " \ anywhere and before every leading
// and trailing space; a NUL character as \00.
func escapeRFC2253(s string) string {
	lead := len(s) - len(strings.TrimLeft(s, " "))
	trail := len(strings.TrimRight(s, " "))
	var b strings.Builder
	for i, r := range s {
		switch {
		case r == 0:
			b.WriteString(`\00`)
			continue
		case strings.ContainsRune(",=+<>#;\"\\", r), r == ' ' && (i < lead || i >= trail):
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// AddX509Auth authenticates the session as the subject of a client
// certificate, x509:[X509ID](cert), as ZooKeeper's X509AuthenticationProvider
// does at a TLS handshake; the holder of Config.X509SuperUser becomes a
// super user. It is for protocol servers (zkwire calls it after a TLS
// handshake): the caller vouches that the client proved possession of the
// certificate's key and that the certificate verified against the CAs it
// trusts.
func (s *ServerSession) AddX509Auth(ctx context.Context, cert *x509.Certificate) error {
	return s.addID(ID{"x509", X509ID(cert)})
}

// x509Keywords are the attribute keywords Java's X500Principal accepts in a
// name it parses (what ZooKeeper's X509AuthenticationProvider.isValid
// tries), in upper case.
var x509Keywords = map[string]bool{
	"CN": true, "C": true, "L": true, "S": true, "ST": true, "O": true, "OU": true, "T": true,
	"IP": true, "STREET": true, "DC": true, "DNQUALIFIER": true, "DNQ": true, "SURNAME": true,
	"GIVENNAME": true, "INITIALS": true, "GENERATION": true, "EMAIL": true, "EMAILADDRESS": true,
	"UID": true, "SERIALNUMBER": true,
}

// validX509ID reports whether id parses as a distinguished name (RFC 2253
// or 1779: type=value pairs joined by , ; or +, types as keywords or OIDs,
// values plain with backslash escapes, quoted, or #hex), as ZooKeeper
// requires of an x509 ACL entry. An empty name is valid, as in Java.
func validX509ID(id string) bool {
	s := strings.TrimSpace(id)
	if s == "" {
		return true
	}
	for {
		// type
		eq := strings.IndexByte(s, '=')
		if eq <= 0 {
			return false
		}
		typ := strings.TrimSpace(s[:eq])
		if !validAttrType(typ) {
			return false
		}
		s = strings.TrimLeft(s[eq+1:], " ")
		// value
		rest, ok := skipDNValue(s)
		if !ok {
			return false
		}
		rest = strings.TrimLeft(rest, " ")
		if rest == "" {
			return true
		}
		if c := rest[0]; c != ',' && c != ';' && c != '+' {
			return false
		}
		s = strings.TrimLeft(rest[1:], " ")
	}
}

func validAttrType(t string) bool {
	if x509Keywords[strings.ToUpper(t)] {
		return true
	}
	t = strings.TrimPrefix(strings.TrimPrefix(t, "OID."), "oid.")
	parts := strings.Split(t, ".")
	if len(parts) < 2 {
		return false
	}
	for _, p := range parts {
		if p == "" || strings.Trim(p, "0123456789") != "" {
			return false
		}
	}
	return true
}

// skipDNValue returns what follows one attribute value at the start of s.
func skipDNValue(s string) (string, bool) {
	switch {
	case strings.HasPrefix(s, "#"):
		i := 1
		for i < len(s) && strings.IndexByte("0123456789abcdefABCDEF", s[i]) >= 0 {
			i++
		}
		return s[i:], i > 1 && (i-1)%2 == 0
	case strings.HasPrefix(s, `"`):
		for i := 1; i < len(s); i++ {
			switch s[i] {
			case '\\':
				i++
			case '"':
				return s[i+1:], true
			}
		}
		return "", false
	}
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if i+1 >= len(s) {
				return "", false
			}
			i++
		case ',', ';', '+':
			return s[i:], true
		case '<', '>', '"':
			return "", false
		}
	}
	return "", true
}
