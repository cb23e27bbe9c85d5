package testkit

import (
	"fmt"
	"math/rand/v2"
	"net"
	"testing"
)

// Ports for servers that tests start as separate processes are picked
// below the kernel's ephemeral range (Linux: 32768 and up), where no
// outgoing connection of any process can take one between the moment the
// test finds it free and the moment the server binds it.
const (
	portsFrom = 10000
	portsTo   = 32000
)

// FreePorts returns n loopback ports that were free a moment ago, below the
// ephemeral range.
func FreePorts(tb testing.TB, n int) []int {
	tb.Helper()
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	var ports []int
	for p := portsFrom + rand.IntN(portsTo-portsFrom); len(ports) < n; p++ {
		if p >= portsTo {
			p = portsFrom
		}
		if len(lns) > 0 && p == lns[0].Addr().(*net.TCPAddr).Port {
			tb.Fatalf("testkit: fewer than %d free ports in [%d, %d)", n, portsFrom, portsTo)
		}
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue // taken
		}
		lns = append(lns, ln)
		ports = append(ports, p)
	}
	return ports
}
