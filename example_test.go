package zoo_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/zooraft/zoo"
)

// The zero Config is a one-replica ensemble held in memory: open it, start a
// session, and use it like a ZooKeeper client.
func ExampleOpen() {
	e, err := zoo.Open(zoo.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer e.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	s, err := e.NewSession(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close(ctx)

	if _, err := s.Create(ctx, "/app", []byte("v1"), zoo.ModePersistent, nil); err != nil {
		log.Fatal(err)
	}
	if _, err := s.Set(ctx, "/app", []byte("v2"), 0); err != nil {
		log.Fatal(err)
	}
	data, st, err := s.Get(ctx, "/app")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s version=%d\n", data, st.Version)

	// A stale version is refused.
	_, err = s.Set(ctx, "/app", []byte("v3"), 0)
	fmt.Println(errors.Is(err, zoo.ErrBadVersion))
	// Output:
	// v2 version=1
	// true
}

// A one-shot watch delivers one event, then its channel closes.
func ExampleSession_GetW() {
	// A short TickTime lets the single replica elect itself quickly.
	e, err := zoo.Open(zoo.Config{TickTime: 100 * time.Millisecond})
	if err != nil {
		log.Fatal(err)
	}
	defer e.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := e.NewSession(ctx)
	if err != nil {
		log.Fatal(err)
	}

	if _, err := s.Create(ctx, "/config", []byte("a"), zoo.ModePersistent, nil); err != nil {
		log.Fatal(err)
	}
	_, _, events, err := s.GetW(ctx, "/config")
	if err != nil {
		log.Fatal(err)
	}
	if _, err := s.Set(ctx, "/config", []byte("b"), -1); err != nil {
		log.Fatal(err)
	}
	// The session sees the event before Set returns: it is already queued.
	for ev := range events {
		fmt.Println(ev.Type, ev.Path)
	}
	fmt.Println("watch done")
	// Output:
	// NodeDataChanged /config
	// watch done
}

// A failing Multi changes nothing and reports each op's fate: ops before
// the failing one were rolled back, ops after it never ran.
func ExampleSession_Multi() {
	e, err := zoo.Open(zoo.Config{TickTime: 100 * time.Millisecond})
	if err != nil {
		log.Fatal(err)
	}
	defer e.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := e.NewSession(ctx)
	if err != nil {
		log.Fatal(err)
	}

	results, err := s.Multi(ctx,
		zoo.CreateOp{Path: "/a", Data: []byte("1")},
		zoo.CheckOp{Path: "/missing", Version: -1},
		zoo.CreateOp{Path: "/b"},
	)
	fmt.Println("multi:", err)
	for i, r := range results {
		switch {
		case errors.Is(r.Err, zoo.ErrRolledBack):
			fmt.Println(i, "rolled back")
		case errors.Is(r.Err, zoo.ErrNoNode):
			fmt.Println(i, "failed: no node")
		case errors.Is(r.Err, zoo.ErrRuntimeInconsistency):
			fmt.Println(i, "not run")
		}
	}
	ok, _, _ := s.Exists(ctx, "/a")
	fmt.Println("/a exists:", ok)

	results, err = s.Multi(ctx,
		zoo.CreateOp{Path: "/a", Data: []byte("1")},
		zoo.SetDataOp{Path: "/a", Data: []byte("2"), Version: 0},
	)
	fmt.Println("multi:", err, results[0].Path, results[1].Stat.Version)
	// Output:
	// multi: multi /missing: zk: node does not exist
	// 0 rolled back
	// 1 failed: no node
	// 2 not run
	// /a exists: false
	// multi: <nil> /a 1
}
