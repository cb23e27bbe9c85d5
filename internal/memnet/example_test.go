package memnet_test

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/hashicorp/raft"
	"github.com/zooraft/zoo/internal/memnet"
)

// Two endpoints exchange a message over peer RPC, then a partition cuts them.
func Example() {
	n := memnet.New()
	a, _ := n.Endpoint("a")
	b, _ := n.Endpoint("b")
	defer a.Close()
	defer b.Close()

	go func() {
		c, err := b.Listener().Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.WriteString(c, "hello from "+c.LocalAddr().String())
	}()
	c, err := a.Dial(context.Background(), "b")
	if err != nil {
		fmt.Println(err)
		return
	}
	msg, _ := io.ReadAll(c)
	c.Close()
	fmt.Println(string(msg))

	n.Partition([]raft.ServerAddress{"a"}, []raft.ServerAddress{"b"})
	_, err = a.Dial(context.Background(), "b")
	fmt.Println(errors.Is(err, memnet.ErrUnreachable))
	// Output:
	// hello from b
	// true
}
