package zoocfg

import (
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// FuzzParse checks that Parse never panics and that what it accepts is
// consistent: an *Error or a Config with sorted, valid servers.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.*"))
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	for _, s := range []string{
		base, base + "server.1=[::1]:1:2:observer;[::1]:3\n", "a\\\n\\\n\\", `\u`, "\uFEFF#", "=\n:\n \\\n",
		base + "server.1=a:1:2;3\nserver.2=b:1:2;3\nserver.3=c:1:2:observer;3\nstandaloneEnabled=false\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		c, err := Parse(strings.NewReader(in), "f.cfg")
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || c != nil {
				t.Fatalf("Parse error %T %v with config %v", err, err, c)
			}
			if !strings.HasPrefix(err.Error(), "f.cfg") {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		if c.TickTime <= 0 || c.DataDir == "" || c.DataLogDir == "" {
			t.Fatalf("accepted %+v", c)
		}
		if !sort.SliceIsSorted(c.Servers, func(i, j int) bool { return idLess(c.Servers[i].ID, c.Servers[j].ID) }) {
			t.Fatalf("servers not sorted: %+v", c.Servers)
		}
		seen := map[string]bool{}
		for _, s := range c.Servers {
			if seen[s.ID] || s.Host == "" || s.QuorumPort == s.ElectionPort || s.QuorumPort < 1 || s.ElectionPort > 65535 {
				t.Fatalf("bad server %+v", s)
			}
			seen[s.ID] = true
			if c.ClientPort == 0 && s.ClientPort == 0 {
				t.Fatalf("no client port for %+v", s)
			}
		}
		if c.ClientPort == 0 && len(c.Servers) == 0 && c.DynamicConfigFile == "" {
			t.Fatalf("no client port at all")
		}
		for _, w := range c.Warnings {
			if !strings.HasPrefix(w, "f.cfg") {
				t.Fatalf("warning %q does not name the file", w)
			}
		}
	})
}
