// Quickstart starts a 3-replica zoo ensemble on loopback TCP inside one
// process, with real bbolt data dirs, and walks through what ZooKeeper users do
// with zkCli.sh: create a config node, list, get with Stat, watch, ephemeral
// and sequential nodes, a session closing, and the leader stopping.
//
//	go run ./examples/quickstart
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/zooraft/zoo"
)

func main() {
	if err := run(); err != nil {
		log.Fatal(err)
	}
}

func run() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	dir, err := os.MkdirTemp("", "zoo-quickstart-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	// Three replicas, as three services importing zoo would host them.
	addrs, err := freeAddrs(3)
	if err != nil {
		return err
	}
	var peers []zoo.Peer
	for i, a := range addrs {
		peers = append(peers, zoo.Peer{ID: fmt.Sprint(i + 1), Addr: a})
	}
	replicas := make([]*zoo.Ensemble, 3)
	for i := range replicas {
		replicas[i], err = zoo.Open(zoo.Config{
			ID: peers[i].ID, Dir: filepath.Join(dir, peers[i].ID), BindAddr: addrs[i], Peers: peers,
			TickTime: 200 * time.Millisecond,
		})
		if err != nil {
			return err
		}
		defer replicas[i].Close()
	}
	for _, r := range replicas {
		if err := r.WaitServing(ctx); err != nil {
			return err
		}
	}
	leader := leaderOf(replicas)
	fmt.Printf("ensemble up: 3 replicas on %v, leader is replica %s\n\n", addrs, replicas[leader].ID())

	// A session on a follower: writes go through the leader, reads are local.
	follower := (leader + 1) % 3
	s, err := replicas[follower].NewSession(ctx, zoo.WithSessionTimeout(2*time.Second))
	if err != nil {
		return err
	}
	fmt.Printf("[replica %s] session 0x%x\n", replicas[follower].ID(), s.ID())

	prompt := func(cmd string) { fmt.Printf("[zoo: replica %s] %s\n", replicas[follower].ID(), cmd) }

	prompt(`ls /`)
	names, _, err := s.Children(ctx, "/")
	if err != nil {
		return err
	}
	fmt.Println(list(names))

	prompt(`create /myapp ""`)
	if _, err := s.Create(ctx, "/myapp", []byte{}, zoo.ModePersistent, nil); err != nil {
		return err
	}
	fmt.Println("Created /myapp")

	config := `{"DB_URL": "mongodb://mongoserver:27017/myapp"}`
	prompt(`create /myapp/config '` + config + `'`)
	if _, err := s.Create(ctx, "/myapp/config", []byte(config), zoo.ModePersistent, nil); err != nil {
		return err
	}
	fmt.Println("Created /myapp/config")

	prompt(`ls /`)
	names, _, _ = s.Children(ctx, "/")
	fmt.Println(list(names))

	prompt(`get -s /myapp/config`)
	data, st, err := s.Get(ctx, "/myapp/config")
	if err != nil {
		return err
	}
	fmt.Printf("%s\n%s", data, st)

	// A watch set by a session on another replica fires when the config changes.
	other := (leader + 2) % 3
	w, err := replicas[other].NewSession(ctx)
	if err != nil {
		return err
	}
	_, _, events, err := w.GetW(ctx, "/myapp/config")
	if err != nil {
		return err
	}
	prompt(`set /myapp/config '{"DB_URL": "mongodb://mongo2:27017/myapp"}'`)
	if _, err := s.Set(ctx, "/myapp/config", []byte(`{"DB_URL": "mongodb://mongo2:27017/myapp"}`), -1); err != nil {
		return err
	}
	select {
	case ev := <-events:
		fmt.Printf("WATCHER (session on replica %s): WatchedEvent state:SyncConnected type:%s path:%s\n",
			replicas[other].ID(), ev.Type, ev.Path)
	case <-ctx.Done():
		return errors.New("watch did not fire")
	}

	// Ephemeral and sequential nodes: a worker registers itself.
	worker, err := replicas[other].NewSession(ctx, zoo.WithSessionTimeout(2*time.Second))
	if err != nil {
		return err
	}
	if _, err := s.Create(ctx, "/myapp/workers", nil, zoo.ModePersistent, nil); err != nil {
		return err
	}
	for i := 0; i < 2; i++ {
		p, err := worker.Create(ctx, "/myapp/workers/worker-", []byte("host"), zoo.ModeEphemeralSequential, nil)
		if err != nil {
			return err
		}
		fmt.Printf("[worker session 0x%x] create -e -s /myapp/workers/worker- host\nCreated %s\n", worker.ID(), p)
	}
	// Reads are served by each replica from its own copy, like ZooKeeper's:
	// Sync first to see what another replica's session just wrote.
	prompt(`sync /myapp/workers`)
	if err := s.Sync(ctx, "/myapp/workers"); err != nil {
		return err
	}
	prompt(`ls /myapp/workers`)
	names, _, _ = s.Children(ctx, "/myapp/workers")
	fmt.Println(list(names))

	fmt.Printf("[worker session 0x%x] close\n", worker.ID())
	if err := worker.Close(ctx); err != nil {
		return err
	}
	if err := s.Sync(ctx, "/"); err != nil {
		return err
	}
	prompt(`ls /myapp/workers`)
	names, _, _ = s.Children(ctx, "/myapp/workers")
	fmt.Println(list(names), "(the worker's ephemerals went with its session)")

	// Stop the leader: the other two elect a new one and keep every write.
	fmt.Printf("\nstopping the leader, replica %s ...\n", replicas[leader].ID())
	start := time.Now()
	replicas[leader].Close()
	survivor := replicas[follower]
	for {
		st, err := survivor.Status()
		if err != nil {
			return err
		}
		if st.Role != zoo.RoleNotServing && st.LeaderID != replicas[leader].ID() {
			fmt.Printf("new leader: replica %s, elected in %v\n", st.LeaderID, time.Since(start).Round(10*time.Millisecond))
			break
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		time.Sleep(20 * time.Millisecond)
	}
	prompt(`create /myapp/loglevel WARN`)
	if _, err := s.Create(ctx, "/myapp/loglevel", []byte("WARN"), zoo.ModePersistent, nil); err != nil {
		return err
	}
	fmt.Println("Created /myapp/loglevel")
	prompt(`ls /myapp`)
	names, _, _ = s.Children(ctx, "/myapp")
	fmt.Println(list(names))
	prompt(`get /myapp/config`)
	data, _, err = s.Get(ctx, "/myapp/config")
	if err != nil {
		return err
	}
	fmt.Printf("%s\n", data)
	fmt.Printf("session 0x%x is still %s after the failover\n", s.ID(), s.State())
	return s.Close(ctx)
}

// list prints child names the way zkCli's ls does.
func list(names []string) string { return "[" + strings.Join(names, ", ") + "]" }

// leaderOf returns the index of the replica that leads.
func leaderOf(rs []*zoo.Ensemble) int {
	for i, r := range rs {
		if st, err := r.Status(); err == nil && st.Role == zoo.RoleLeader {
			return i
		}
	}
	return 0
}

// freeAddrs reserves n loopback ports. Each member must know every member's
// address before it starts, as in a zoo.cfg.
func freeAddrs(n int) ([]string, error) {
	var out []string
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		out = append(out, l.Addr().String())
		l.Close()
	}
	return out, nil
}
