package main

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// kazooRecipes are the sub-commands of testdata/kazoo_recipes.py and what
// each prints when the recipe behaves as it does against ZooKeeper.
var kazooRecipes = []struct {
	name, want string
}{
	{"lock", `
lock: 5 contenders x 4 rounds: 20 critical sections, at most 1 inside, counter 20
lock: contenders a b c
lock: b acquired after a's client stopped
lock: c acquired after b's client stopped
lock: no contenders left
lock: waiter acquired once the killed holder's session expired
`},
	{"election", `
election: contenders e1 e2 e3
election: leader e1
election: leader e2 after e1's client stopped
election: leader e3 after e2 resigned
election: leaders in turn e1 e2 e3
`},
	{"counter", `
counter: 4 clients x 25 increments = 100, each value from 1 to 100 reached once: True
counter: float 2.5 (data b'2.5')
counter: curator-compatible 1 (data b'\x00\x00\x00\x01')
`},
	{"barrier", `
barrier: 3 waiters blocked
barrier: removed True
barrier: waiters released [True, True, True]
barrier: wait with timeout on a standing barrier False
barrier: wait on an absent barrier True
`},
	{"doublebarrier", `
doublebarrier: 2 of 3 wait to enter
doublebarrier: all 3 entered
doublebarrier: 2 of 3 wait to leave
doublebarrier: all 3 left
doublebarrier: nodes left behind []
`},
	{"queue", `
queue: length 6
queue: taken in order x y a b c z
queue: 30 entries drained by 3 consumers, each once: True
`},
	{"lockingqueue", `
lockingqueue: c1 got b'urgent'
lockingqueue: c2 got b'a' while c1 holds urgent
lockingqueue: c1 consumed True, c1 holds a lock False
lockingqueue: c2 released True
lockingqueue: c3 got b'a', holds the lock True
lockingqueue: after c3's client stopped, c4 took in order a b c
lockingqueue: length 0
`},
	{"party", `
Party: [m0]
Party: [m0 m1]
Party: [m0 m1 m2]
Party: length 3
Party: [m1 m2] after m0 left
Party: [m2] after m1's client stopped
Party: [] after m2's client stopped
ShallowParty: [m0]
ShallowParty: [m0 m1]
ShallowParty: [m0 m1 m2]
ShallowParty: length 3
ShallowParty: [m1 m2] after m0 left
ShallowParty: [m2] after m1's client stopped
ShallowParty: [] after m2's client stopped
`},
	{"watchers", `
watchers: children [] -
watchers: create a -> children [a] CHILD
watchers: create b -> children [a b] CHILD
watchers: create c -> children [a b c] CHILD
watchers: delete a -> children [b c] CHILD
watchers: create stop -> children [b c stop] CHILD
watchers: no children call after the function returned False
watchers: data None version - -
watchers: create -> data b'v1' version 0 CREATED
watchers: set v2 -> data b'v2' version 1 CHANGED
watchers: set v2 again -> data b'v2' version 2 CHANGED
watchers: delete -> data None version - DELETED
watchers: create v3 -> data b'v3' version 0 CREATED
`},
	{"treecache", `
treecache: initialized with 4 nodes
treecache: converged to 31 nodes after 67 changes
`},
}

// kazoo's recipes (Lock, Election, Counter, Barrier, DoubleBarrier, Queue,
// LockingQueue, Party, ShallowParty, ChildrenWatch, DataWatch, TreeCache)
// against a 3-member ensemble, every client given all three addresses.
// Each recipe runs in its own Python process with several clients spread
// over the members; the script bounds its own run time and the test kills
// it if that fails too.
func TestKazooRecipes(t *testing.T) {
	py := needKazoo(t)
	e := startEnsemble(t, 3)
	hosts := e.hosts()
	for _, tc := range kazooRecipes {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, py, "testdata/kazoo_recipes.py", tc.name, hosts)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			cmd.WaitDelay = 5 * time.Second // a stray child keeping stderr open
			out, err := cmd.Output()
			if stderr.Len() > 0 {
				t.Logf("kazoo_recipes.py %s stderr:\n%s", tc.name, stderr.String())
			}
			if err != nil {
				t.Fatalf("kazoo_recipes.py %s: %v\nstdout:\n%s", tc.name, err, out)
			}
			if want := strings.TrimPrefix(tc.want, "\n"); string(out) != want {
				t.Fatalf("kazoo_recipes.py %s printed:\n%s\nwant (as against ZooKeeper 3.8):\n%s", tc.name, out, want)
			}
		})
	}
}

// needKazoo finds Debian's python3 with its python3-kazoo.
func needKazoo(t *testing.T) string {
	t.Helper()
	py := needTool(t, debianPython, "python3")
	if err := exec.Command(py, "-c", "import kazoo").Run(); err != nil {
		needTool(t, "/usr/lib/python3/dist-packages/kazoo/__init__.py", "python3-kazoo")
	}
	return py
}

// hosts is the connection string with every member's client address.
func (e *ensemble) hosts() string {
	var hosts []string
	for _, m := range e.members {
		hosts = append(hosts, m.clientAddr)
	}
	return strings.Join(hosts, ",")
}
