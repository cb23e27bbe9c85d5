package zkclient_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"time"

	"github.com/zooraft/zoo"
	"github.com/zooraft/zoo/internal/zkclient"
	"github.com/zooraft/zoo/zkwire"
)

// A client of a zoo replica served over the ZooKeeper protocol: a chroot,
// an ephemeral node, and a recursive watch that reports each change before
// the reply of the request that made it returns.
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

	root, err := zkclient.Connect([]string{ln.Addr().String()}, zkclient.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer root.Close()
	if _, err := root.Create(ctx, "/app", nil, zoo.ModePersistent, nil); err != nil {
		log.Fatal(err)
	}

	c, err := zkclient.Connect([]string{ln.Addr().String()}, zkclient.Options{
		Chroot: "/app",
		OnEvent: func(ev zkclient.Event) {
			if ev.Type != zoo.EventNone {
				fmt.Println("event:", ev.Type, ev.Path)
			}
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := c.AddWatch(ctx, "/", zoo.WatchPersistentRecursive); err != nil {
		log.Fatal(err)
	}
	p, err := c.Create(ctx, "/worker-", []byte("up"), zoo.ModeEphemeralSequential, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("created:", p)
	eph, err := c.GetEphemerals(ctx, "/")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("ephemerals:", eph)
	// Closing ends the session: its ephemeral goes at once, and the watch
	// reports that before Close returns.
	if err := c.Close(); err != nil {
		log.Fatal(err)
	}
	fmt.Println("closed:", c.State())
	// Output:
	// event: NodeCreated /worker-0000000000
	// created: /worker-0000000000
	// ephemerals: [/worker-0000000000]
	// event: NodeDeleted /worker-0000000000
	// closed: Closed
}
