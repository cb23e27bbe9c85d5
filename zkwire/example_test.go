package zkwire_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zooraft/zoo"
	"github.com/zooraft/zoo/zkwire"
)

// A zoo replica serving ZooKeeper clients: here go-zookeeper/zk.
func Example() {
	ens, err := zoo.Open(zoo.Config{}) // one in-memory replica
	if err != nil {
		log.Fatal(err)
	}
	defer ens.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := ens.WaitServing(ctx); err != nil {
		log.Fatal(err)
	}

	srv, err := zkwire.NewServer(ens, zkwire.Config{})
	if err != nil {
		log.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Close()

	conn, _, err := zk.Connect([]string{ln.Addr().String()}, 10*time.Second, zk.WithLogInfo(false))
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Create("/hello", []byte("world"), 0, zk.WorldACL(zk.PermAll)); err != nil {
		log.Fatal(err)
	}
	data, stat, err := conn.Get("/hello")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s version=%d\n", data, stat.Version)
	// Output: world version=0
}
