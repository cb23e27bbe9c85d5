package zkwire

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
)

// BenchmarkSharedConnection: goroutines sharing one go-zookeeper connection,
// as Go services usually use it, writing through a follower of a 3-replica
// ensemble (zootest: in-memory raft transport, bbolt on disk). The
// connection's writes overlap (pipeline.go); before they did, the callers
// took turns.
//
//	go test -run '^$' -bench SharedConnection ./zkwire/
func BenchmarkSharedConnection(b *testing.B) {
	c := newCluster(b, Config{})
	leader := c.WaitLeader()
	conn, _, err := zk.Connect([]string{c.addrs[(leader+1)%3]}, 10*time.Second, zk.WithLogInfo(false), zk.WithLogger(quietLogger{}))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	acl := zk.WorldACL(zk.PermAll)
	for _, op := range []string{"create", "set"} {
		for _, callers := range []int{1, 16, 64} {
			b.Run(fmt.Sprintf("%s/callers=%d", op, callers), func(b *testing.B) {
				root := fmt.Sprintf("/shared-%s-%d-%d", op, callers, time.Now().UnixNano())
				if _, err := conn.Create(root, nil, 0, acl); err != nil {
					b.Fatal(err)
				}
				for i := 0; i < callers; i++ {
					if _, err := conn.Create(fmt.Sprintf("%s/%d", root, i), nil, 0, acl); err != nil {
						b.Fatal(err)
					}
				}
				data := make([]byte, 100)
				var next atomic.Int64
				var wg sync.WaitGroup
				b.ResetTimer()
				for i := 0; i < callers; i++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for {
							k := next.Add(1)
							if k > int64(b.N) {
								return
							}
							var err error
							if op == "create" {
								_, err = conn.Create(fmt.Sprintf("%s/%d/%d", root, i, k), data, 0, acl)
							} else {
								_, err = conn.Set(fmt.Sprintf("%s/%d", root, i), data, -1)
							}
							if err != nil {
								b.Error(err)
								return
							}
						}
					}()
				}
				wg.Wait()
				b.StopTimer()
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
			})
		}
	}
}
