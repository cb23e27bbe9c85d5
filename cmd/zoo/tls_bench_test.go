package main

import (
	"crypto/tls"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
)

// BenchmarkTLSCost measures what TLS costs: the same go-zookeeper load
// against two 3-member zoo ensembles (`zoo server` processes) running side
// by side, one in plaintext and one with mutual TLS between its servers
// (sslQuorum) and TLS with client certificates on the client port. Rounds
// alternate the two, so compare medians of the same shape:
//
//	go test -run '^$' -bench TLSCost -benchtime=3s -count=1 ./cmd/zoo/
func BenchmarkTLSCost(b *testing.B) {
	f := writeTLSFiles(b)
	unlimited := "maxClientCnxns=0\n"
	plain := startEnsembleWith(b, 3, func(int, int) string { return unlimited })
	secure := startEnsembleWith(b, 3, func(_, port int) string { return unlimited + f.clientLines(port) + f.quorumLines() })
	conf, err := cliTLS(f.ca, f.app, "")
	if err != nil {
		b.Fatal(err)
	}
	dialTLS := func(network, addr string, timeout time.Duration) (net.Conn, error) {
		return tls.DialWithDialer(&net.Dialer{Timeout: timeout}, network, addr, conf)
	}
	var plainAddrs, secureAddrs []string
	for i := range plain.members {
		plainAddrs = append(plainAddrs, plain.members[i].clientAddr)
		secureAddrs = append(secureAddrs, secure.members[i].secureAddr)
	}
	for round := 1; round <= 3; round++ {
		for _, op := range []string{"set", "get"} {
			for _, callers := range []int{1, 256} {
				b.Run(fmt.Sprintf("round=%d/%s/callers=%d/plain", round, op, callers), func(b *testing.B) {
					runLoadDial(b, plainAddrs, op, callers, nil)
				})
				b.Run(fmt.Sprintf("round=%d/%s/callers=%d/tls", round, op, callers), func(b *testing.B) {
					runLoadDial(b, secureAddrs, op, callers, zk.Dialer(dialTLS))
				})
			}
		}
	}
}
