package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

const debianPython = "/usr/bin/python3"

// Seed 000's kazoo script against a 3-member ensemble, given all three
// addresses as users do. Expected output: the seed's, with child lists sorted.
func TestKazooWalkthroughAgainstAnEnsemble(t *testing.T) {
	py := needTool(t, debianPython, "python3")
	if err := exec.Command(py, "-c", "import kazoo").Run(); err != nil {
		needTool(t, "/usr/lib/python3/dist-packages/kazoo/__init__.py", "python3-kazoo")
	}
	want, err := os.ReadFile("testdata/seed000_kazoo.golden")
	if err != nil {
		t.Fatal(err)
	}
	e := startEnsemble(t, 3)
	var hosts []string
	for _, m := range e.members {
		hosts = append(hosts, m.clientAddr)
	}
	out, err := exec.Command(py, "testdata/seed000_kazoo.py", strings.Join(hosts, ",")).CombinedOutput()
	if err != nil {
		t.Fatalf("kazoo script: %v\n%s", err, out)
	}
	if string(out) != string(want) {
		t.Fatalf("kazoo output:\n%s\nwant:\n%s", out, want)
	}
}
