package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
)

// BenchmarkVsZooKeeper runs the same client load, through go-zookeeper/zk, against
// a 3-member zoo ensemble (`zoo server` processes) and a 3-member Apache
// ZooKeeper ensemble (Debian's zookeeper package), side by side on this
// machine: both on loopback, both fsyncing their logs, same tickTime. Each
// caller has its own connection; callers are spread over the three servers
// (at most 128 callers: both servers allow 60 connections per client address).
//
//	go test -run '^$' -bench VsZooKeeper -benchtime=2s ./cmd/zoo/
//
// It reports ops/s and logs, per system, the resident memory of the three
// server processes after the run (shown with -v).
func BenchmarkVsZooKeeper(b *testing.B) {
	java := needTool(b, "/usr/bin/java", "zookeeper")
	needTool(b, zkCli, "zookeeper")
	systems := []struct {
		name  string
		start func(b *testing.B) ([]string, []*exec.Cmd)
	}{
		{"zoo", func(b *testing.B) ([]string, []*exec.Cmd) {
			e := startEnsemble(b, 3)
			var addrs []string
			var cmds []*exec.Cmd
			for _, m := range e.members {
				addrs = append(addrs, m.clientAddr)
				cmds = append(cmds, m.cmd)
			}
			return addrs, cmds
		}},
		{"zookeeper", func(b *testing.B) ([]string, []*exec.Cmd) { return startZooKeeper(b, java, 3) }},
	}
	for _, sys := range systems {
		b.Run(sys.name, func(b *testing.B) {
			addrs, cmds := sys.start(b)
			for _, op := range []string{"create", "set", "get"} {
				for _, callers := range []int{1, 16, 128} { // 128: under maxClientCnxns (60 per IP) on each of 3 servers
					b.Run(fmt.Sprintf("%s/callers=%d", op, callers), func(b *testing.B) {
						runLoad(b, addrs, op, callers)
					})
				}
			}
			mib, _ := residentMiB(cmds)
			b.Logf("%s: resident memory of the 3 servers after the run: %.0f MiB", sys.name, mib)
		})
	}
}

// runLoad spreads b.N operations over callers connections.
func runLoad(b *testing.B, addrs []string, op string, callers int) {
	runLoadDial(b, addrs, op, callers, nil)
}

// runLoadDial is runLoad with connections made by dial (nil: plain TCP).
func runLoadDial(b *testing.B, addrs []string, op string, callers int, dial zk.Dialer) {
	conns := make([]*zk.Conn, callers)
	for i := range conns {
		opts := zkOptions(zk.WithLogInfo(false))
		if dial != nil {
			opts = append(opts, zk.WithDialer(dial))
		}
		c, _, err := zk.Connect([]string{addrs[i%len(addrs)]}, 10*time.Second, opts...)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		conns[i] = c
	}
	data := make([]byte, 100)
	root := fmt.Sprintf("/bench-%s-%d-%d", op, callers, time.Now().UnixNano())
	if _, err := conns[0].Create(root, nil, 0, zk.WorldACL(zk.PermAll)); err != nil {
		b.Fatal(err)
	}
	for i := range conns { // one node per caller for set and get
		if _, err := conns[0].Create(fmt.Sprintf("%s/n%d", root, i), data, 0, zk.WorldACL(zk.PermAll)); err != nil {
			b.Fatal(err)
		}
	}
	// Every connection must see the nodes before it reads them.
	for _, c := range conns {
		if _, err := c.Sync(root); err != nil {
			b.Fatal(err)
		}
	}
	var next atomic.Int64
	var failed atomic.Int64
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine := fmt.Sprintf("%s/n%d", root, i)
			for {
				n := next.Add(1)
				if n > int64(b.N) {
					return
				}
				var err error
				switch op {
				case "create":
					_, err = c.Create(fmt.Sprintf("%s/c%d", root, n), data, 0, zk.WorldACL(zk.PermAll))
				case "set":
					_, err = c.Set(mine, data, -1)
				case "get":
					_, _, err = c.Get(mine)
				}
				if err != nil {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	if f := failed.Load(); f > 0 {
		b.Fatalf("%d of %d operations failed", f, b.N)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "ops/s")
}

// zkOptions makes a slice of go-zookeeper's unexported option type.
func zkOptions[O any](opts ...O) []O { return opts }

// startZooKeeper runs an n-member Apache ZooKeeper ensemble from Debian's jars.
func startZooKeeper(b *testing.B, java string, n int) ([]string, []*exec.Cmd) {
	ports := freePorts(b, 3*n)
	dir := b.TempDir()
	var servers strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&servers, "server.%d=127.0.0.1:%d:%d\n", i, ports[3*(i-1)], ports[3*(i-1)+1])
	}
	var addrs []string
	var cmds []*exec.Cmd
	for i := 1; i <= n; i++ {
		data := filepath.Join(dir, strconv.Itoa(i))
		if err := os.MkdirAll(data, 0o755); err != nil {
			b.Fatal(err)
		}
		os.WriteFile(filepath.Join(data, "myid"), []byte(strconv.Itoa(i)), 0o644)
		cfg := filepath.Join(dir, fmt.Sprintf("zoo.%d.cfg", i))
		os.WriteFile(cfg, []byte(servers.String()+fmt.Sprintf(
			"tickTime=200\ninitLimit=10\nsyncLimit=5\ndataDir=%s\nclientPort=%d\nadmin.enableServer=false\n4lw.commands.whitelist=*\n",
			data, ports[3*(i-1)+2])), 0o644)
		logf, err := os.Create(filepath.Join(dir, fmt.Sprintf("zk.%d.log", i)))
		if err != nil {
			b.Fatal(err)
		}
		cmd := exec.Command(java, "-Xmx1g", "-cp", "/usr/share/java/*",
			"org.apache.zookeeper.server.quorum.QuorumPeerMain", cfg)
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait(); logf.Close() })
		addrs = append(addrs, fmt.Sprintf("127.0.0.1:%d", ports[3*(i-1)+2]))
		cmds = append(cmds, cmd)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		modes := []string{}
		for _, a := range addrs {
			for _, l := range strings.Split(fourLetters(a, "srvr"), "\n") {
				if v, ok := strings.CutPrefix(l, "Mode: "); ok {
					modes = append(modes, v)
				}
			}
		}
		if len(modes) == n && slices.Contains(modes, "leader") {
			return addrs, cmds
		}
		if time.Now().After(deadline) {
			b.Fatalf("ZooKeeper ensemble not up: modes %v", modes)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
