package zoo

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// javaRunner returns a command running testdata/x509/X509Names.java, or
// skips the test without a JDK (fails it in CI, where .ci/run installs one).
func javaRunner(t *testing.T) func(stdin string, args ...string) []string {
	t.Helper()
	java, err := exec.LookPath("java")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("java missing in CI")
		}
		t.Skip("no JDK: cannot compare with Java's X500Principal")
	}
	return func(stdin string, args ...string) []string {
		t.Helper()
		cmd := exec.Command(java, append([]string{filepath.Join("testdata", "x509", "X509Names.java")}, args...)...)
		cmd.Stdin = strings.NewReader(stdin)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("java: %v\n%s", err, stderr.String())
		}
		return strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	}
}

var (
	oidCN     = asn1.ObjectIdentifier{2, 5, 4, 3}
	oidO      = asn1.ObjectIdentifier{2, 5, 4, 10}
	oidOU     = asn1.ObjectIdentifier{2, 5, 4, 11}
	oidC      = asn1.ObjectIdentifier{2, 5, 4, 6}
	oidL      = asn1.ObjectIdentifier{2, 5, 4, 7}
	oidST     = asn1.ObjectIdentifier{2, 5, 4, 8}
	oidStreet = asn1.ObjectIdentifier{2, 5, 4, 9}
	oidSerial = asn1.ObjectIdentifier{2, 5, 4, 5}
	oidPostal = asn1.ObjectIdentifier{2, 5, 4, 17}
	oidDC     = asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 25}
	oidUID    = asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 1}
	oidEmail  = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}
)

func atv(oid asn1.ObjectIdentifier, v any) pkix.AttributeTypeAndValue {
	return pkix.AttributeTypeAndValue{Type: oid, Value: v}
}

func ia5(s string) asn1.RawValue {
	return asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagIA5String, Bytes: []byte(s)}
}

func tagged(tag int, s string) asn1.RawValue {
	return asn1.RawValue{Class: asn1.ClassUniversal, Tag: tag, Bytes: []byte(s)}
}

func bmp(s string) asn1.RawValue {
	var b []byte
	for _, r := range s {
		b = append(b, byte(r>>8), byte(r))
	}
	return asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagBMPString, Bytes: b}
}

// X509ID must say exactly what Java's X500Principal.getName() says, which
// is what ZooKeeper puts into a session's x509 id.
func TestX509IDMatchesJava(t *testing.T) {
	run := javaRunner(t)
	subjects := []pkix.RDNSequence{
		{{atv(oidC, "US")}, {atv(oidO, "Acme")}, {atv(oidOU, "Eng")}, {atv(oidCN, "client1")}},
		{{atv(oidCN, "client2")}},
		{{atv(oidCN, "a,b+c")}, {atv(oidO, `x"y`)}},
		{{atv(oidO, "Acme")}, {atv(oidCN, "m1"), atv(oidUID, "u1")}},
		{{atv(oidCN, "client5")}, {atv(oidEmail, ia5("client5@example.com"))}},
		{{atv(oidDC, ia5("com"))}, {atv(oidDC, ia5("example"))}, {atv(oidCN, "client6")}},
		{{atv(oidCN, "#hash")}, {atv(oidO, " lead and trail ")}, {atv(oidOU, `back\slash;semi<lt>gt=eq`)}},
		{{atv(oidCN, "café ünïcode")}, {atv(oidL, "Zürich")}, {atv(oidST, "ZH")}, {atv(oidStreet, "Main St 1")}},
		{{atv(oidSerial, "12345")}, {atv(oidPostal, "8000")}, {atv(oidCN, "types Java names by OID")}},
		{{atv(oidCN, bmp("bmp name"))}},
		{{atv(oidCN, "x")}, {atv(oidCN, "y")}},
		{{atv(oidO, "Acme"), atv(oidOU, "A"), atv(oidOU, "B")}},
		{{atv(oidCN, "tab\there\x7f\x01")}},
		{{atv(oidCN, "nul\x00byte")}},
		{{atv(oidCN, "mid#hash")}, {atv(oidO, "  two leading")}, {atv(oidOU, "two trailing  ")}, {atv(oidL, "   ")}},
		{{atv(oidCN, tagged(18, "123"))}},                // NumericString
		{{atv(oidCN, bmp("café"))}},                      // BMPString beyond ASCII
		{{atv(oidCN, tagged(asn1.TagT61String, "t61"))}}, // T61String
		{{atv(asn1.ObjectIdentifier{1, 2, 3, 4}, "unknown type")}},
	}
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var files, ours []string
	for i, subj := range subjects {
		raw, err := asn1.Marshal(subj)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(int64(i + 1)), RawSubject: raw,
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
		if err != nil {
			t.Fatal(err)
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(dir, fmt.Sprintf("%d.pem", i))
		if err := os.WriteFile(f, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
		ours = append(ours, X509ID(cert))
	}
	java := run("", append([]string{"subject"}, files...)...)
	if len(java) != len(ours) {
		t.Fatalf("java printed %d names for %d certificates: %q", len(java), len(ours), java)
	}
	for i := range ours {
		if ours[i] != java[i] {
			t.Errorf("subject %d: zoo %q, Java %q", i, ours[i], java[i])
		}
	}
}

// An x509 ACL id must parse as a name, as ZooKeeper asks of Java's
// X500Principal; Java decides each case here.
func TestValidX509IDMatchesJava(t *testing.T) {
	run := javaRunner(t)
	cases := []string{
		"CN=client1,OU=Eng,O=Acme,C=US", "CN=client2", `O=x\"y,CN=a\,b\+c`, "O=Acme,CN=m1+UID=u1",
		"1.2.840.113549.1.9.1=#1613636c69656e7435406578616d706c652e636f6d,CN=client5",
		"CN=client6,DC=example,DC=com", "cn=lower,o=case", "CN = spaced , O = Acme", "CN=a;O=b",
		"EMAILADDRESS=a@b.c,CN=x", "OID.2.5.4.3=oid", `CN="quoted, value"`, "CN=", "",
		"not a dn", "CN", "=value", "FOO=bar", "CN=x,", "CN=x,,O=y", "CN=#zz", "CN=#123",
		`CN=trailing\`, `CN="unterminated`, "2.5=short oid", "1..2=x", "CN=a=b", "CN=<x>", `CN=a"b`, "CN=a>b", "CN=\\<x\\>",
	}
	java := run(strings.Join(cases, "\n") + "\n")
	if len(java) != len(cases) {
		t.Fatalf("java answered %d lines for %d cases: %q", len(java), len(cases), java)
	}
	for i, c := range cases {
		if got := validX509ID(c); got != (java[i] == "ok") {
			t.Errorf("validX509ID(%q) = %v, Java says %s", c, got, java[i])
		}
	}
}
