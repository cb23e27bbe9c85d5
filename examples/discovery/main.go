// Discovery shows service discovery with recipe.Group: service instances
// register themselves with a JSON payload (address, zone, version, status) as
// ephemeral members; a client watches the live set. An instance whose process
// dies vanishes from the set once the ensemble expires its session; one that
// shuts down cleanly leaves at once.
//
// One process, three replicas on loopback (no flags):
//
//	go run ./examples/discovery
//
// Three processes, one replica and one instance (plus a watching client)
// each; kill -9 one and watch the others see it vanish:
//
//	go run ./examples/discovery -id 1 -peers 1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003 -dir /tmp/zoo-discovery/1
//	go run ./examples/discovery -id 2 -peers 1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003 -dir /tmp/zoo-discovery/2
//	go run ./examples/discovery -id 3 -peers 1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003 -dir /tmp/zoo-discovery/3
//
// With -once a process registers, waits until it sees every instance, and
// exits when all have.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/zooraft/zoo"
	"github.com/zooraft/zoo/examples/internal/demo"
	"github.com/zooraft/zoo/recipe"
)

// groupPath is the service's group: one ephemeral member per instance.
const groupPath = "/examples/discovery/api"

func main() { demo.Main("discovery", run, runReplica) }

// Instance is what an instance registers: its member node's JSON payload.
type Instance struct {
	Addr    string
	Zone    string
	Version string
	Status  string
}

// client follows the group: it prints who joins, leaves or changes, and
// keeps the latest live set for waitFor.
type client struct {
	name string
	log  *demo.Log

	mu      sync.Mutex // guards live
	live    map[string]Instance
	changed chan struct{}
}

func newClient(name string, log *demo.Log) *client {
	return &client{name: name, log: log, changed: make(chan struct{}, 1)}
}

// follow reads the group's feed until it ends. Each snapshot is the whole
// membership; follow reports the difference from the previous one.
func (c *client) follow(ctx context.Context, g *recipe.Group) error {
	feed := g.Watch(ctx)
	prev := map[string]Instance{}
	first := true
	for snap := range feed.C() {
		cur := map[string]Instance{}
		for id, payload := range snap {
			var in Instance
			if err := json.Unmarshal(payload, &in); err != nil {
				c.log.Printf("%s member %s: bad payload %q: %v", c.name, id, payload, err)
				continue
			}
			cur[id] = in
		}
		var lines []string
		for _, id := range slices.Sorted(maps.Keys(cur)) {
			old, ok := prev[id]
			switch {
			case !ok && !first:
				lines = append(lines, fmt.Sprintf("+ %s joined: %+v", id, cur[id]))
			case ok && old != cur[id]:
				lines = append(lines, fmt.Sprintf("~ %s changed: %+v", id, cur[id]))
			}
		}
		for _, id := range slices.Sorted(maps.Keys(prev)) {
			if _, ok := cur[id]; !ok {
				lines = append(lines, fmt.Sprintf("- %s left", id))
			}
		}
		for _, l := range lines {
			c.log.Printf("%s %s", c.name, l)
		}
		c.log.Printf("%s live set: %v", c.name, slices.Sorted(maps.Keys(cur)))
		prev, first = cur, false
		c.mu.Lock()
		c.live = cur
		c.mu.Unlock()
		select {
		case c.changed <- struct{}{}:
		default:
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("%s: group feed ended: %w", c.name, feed.Err())
}

// waitFor waits until the live set satisfies ok.
func (c *client) waitFor(ctx context.Context, what string, ok func(map[string]Instance) bool) error {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	for {
		c.mu.Lock()
		live := c.live
		c.mu.Unlock()
		if live != nil && ok(live) {
			return nil
		}
		select {
		case <-c.changed:
		case <-ctx.Done():
			return fmt.Errorf("%s: waiting until %s: %w", c.name, what, ctx.Err())
		}
	}
}

// members returns a predicate: the live set is exactly ids.
func members(ids ...string) func(map[string]Instance) bool {
	return func(live map[string]Instance) bool {
		return slices.Equal(slices.Sorted(maps.Keys(live)), slices.Sorted(slices.Values(ids)))
	}
}

// run is the one-process demo.
func run(ctx context.Context, out io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	log := demo.NewLog(out)

	cl, err := demo.StartCluster(ctx, 3)
	if err != nil {
		return err
	}
	defer cl.Close()
	log.Printf("%s", cl.Describe())

	// The client watches from replica 1.
	cs, err := cl.Session(ctx, 0)
	if err != nil {
		return err
	}
	defer demo.CloseSession(cs)
	watcher, err := recipe.NewGroup(cs, groupPath)
	if err != nil {
		return err
	}
	c := newClient("[client @ replica "+cl.Replicas[0].ID()+"]", log)
	fctx, stopFollowing := context.WithCancel(ctx)
	defer stopFollowing()
	errc := make(chan error, 1)
	go func() { errc <- c.follow(fctx, watcher) }()
	if err := c.waitFor(ctx, "loaded", members()); err != nil {
		return err
	}

	// Instance api-N runs next to replica N, with its own session.
	type instance struct {
		id  string
		s   *zoo.Session
		reg *recipe.Registration
	}
	var ins []*instance
	var ids []string
	for i := range cl.Replicas {
		id := fmt.Sprintf("api-%d", i+1)
		s, err := cl.Session(ctx, i)
		if err != nil {
			return err
		}
		defer demo.CloseSession(s)
		g, err := recipe.NewGroup(s, groupPath)
		if err != nil {
			return err
		}
		payload := Instance{Addr: fmt.Sprintf("10.0.0.%d:8080", i+1), Zone: fmt.Sprintf("zone-%c", 'a'+i), Version: "1.4.2", Status: "serving"}
		log.Printf("[%s @ replica %s] registers", id, cl.Replicas[i].ID())
		rctx, rcancel := context.WithTimeout(ctx, demo.CallTimeout)
		reg, err := g.RegisterJSON(rctx, id, payload)
		rcancel()
		if err != nil {
			return fmt.Errorf("%s register: %w", id, err)
		}
		ins = append(ins, &instance{id: id, s: s, reg: reg})
		ids = append(ids, id)
		if err := c.waitFor(ctx, "all registered", members(ids...)); err != nil {
			return err
		}
	}

	// api-2 starts draining: it updates its payload in place.
	log.Printf("[api-2] starts draining: updates its payload")
	uctx, ucancel := context.WithTimeout(ctx, demo.CallTimeout)
	payload, _ := json.Marshal(Instance{Addr: "10.0.0.2:8080", Zone: "zone-b", Version: "1.4.2", Status: "draining"})
	err = ins[1].reg.Update(uctx, payload)
	ucancel()
	if err != nil {
		return fmt.Errorf("api-2 update: %w", err)
	}
	if err := c.waitFor(ctx, "api-2 draining", func(live map[string]Instance) bool {
		return live["api-2"].Status == "draining"
	}); err != nil {
		return err
	}

	// api-3's replica crashes with its session: the ensemble expires the
	// session after its timeout and the member node goes with it.
	log.Printf("replica %s crashes, with api-3's session on it (expired after its %v timeout)",
		cl.Replicas[2].ID(), ins[2].s.Timeout())
	start := time.Now()
	cl.Replicas[2].Close()
	if err := c.waitFor(ctx, "api-3 vanished", members("api-1", "api-2")); err != nil {
		return err
	}
	log.Printf("api-3 vanished %v after the crash", time.Since(start).Round(100*time.Millisecond))

	// api-1 shuts down cleanly: it leaves at once.
	log.Printf("[api-1] shuts down cleanly: deregisters")
	dctx, dcancel := context.WithTimeout(ctx, demo.CallTimeout)
	err = ins[0].reg.Deregister(dctx)
	dcancel()
	if err != nil {
		return fmt.Errorf("api-1 deregister: %w", err)
	}
	if err := c.waitFor(ctx, "api-1 left", members("api-2")); err != nil {
		return err
	}
	stopFollowing()
	return <-errc
}

// runReplica is one process of a real ensemble: it hosts replica f.ID,
// registers instance api-<id>, and watches the group.
func runReplica(ctx context.Context, out io.Writer, f *demo.Flags) error {
	log := demo.NewLog(out)
	me := "api-" + f.ID
	e, s, err := f.Join(ctx, log)
	if err != nil {
		return err
	}
	defer func() {
		if err := demo.Shutdown(e, s); err != nil {
			log.Printf("[%s] %v", me, err)
		}
	}()
	g, err := recipe.NewGroup(s, groupPath)
	if err != nil {
		return err
	}
	c := newClient("["+me+"]", log)
	fctx, stopFollowing := context.WithCancel(ctx)
	defer stopFollowing()
	errc := make(chan error, 1)
	go func() { errc <- c.follow(fctx, g) }()

	// The instance's (made-up) service address: its replica's port + 1000.
	host, port, _ := net.SplitHostPort(f.Self().Addr)
	pn, _ := strconv.Atoi(port)
	payload := Instance{Addr: net.JoinHostPort(host, strconv.Itoa(pn+1000)), Zone: "zone-" + f.ID, Version: "1.4.2", Status: "serving"}
	// The member node of a previous run of this process may still be
	// there, if that process died less than a session timeout ago: retry
	// until the ensemble has expired it.
	var reg *recipe.Registration
	for {
		rctx, cancel := context.WithTimeout(ctx, demo.CallTimeout)
		reg, err = g.RegisterJSON(rctx, me, payload)
		cancel()
		var exists *recipe.MemberExistsError
		if err == nil || !errors.As(err, &exists) {
			break
		}
		log.Printf("[%s] id held by session 0x%x (a previous run?); retrying until it expires", me, exists.Owner)
		select {
		case <-time.After(f.SessionTimeout / 2):
		case <-ctx.Done():
			return nil
		}
	}
	if err != nil {
		return fmt.Errorf("register: %w", err)
	}
	log.Printf("[%s] registered %s/%s: %+v", me, groupPath, me, payload)

	if f.Once {
		if err := c.waitFor(ctx, "every instance registered", func(live map[string]Instance) bool {
			return len(live) >= len(f.Peers)
		}); err != nil {
			return err
		}
		if err := demo.AllDone(ctx, s, "/examples/discovery/done", len(f.Peers), f.Tick); err != nil {
			return err
		}
		// No Deregister: the member node goes when the session is closed
		// on the way out (or, if the others are gone first, with the
		// ensemble).
		log.Printf("[%s] every instance saw all %d; exiting", me, len(f.Peers))
		return nil
	}
	select {
	case <-ctx.Done():
		dctx, cancel := f.ReleaseContext(ctx)
		defer cancel()
		if err := reg.Deregister(dctx); err != nil {
			log.Printf("[%s] signal: could not deregister (%v): the member goes with the session; closing", me, err)
		} else {
			log.Printf("[%s] signal: deregistered, closing", me)
		}
		return nil
	case <-reg.Done():
		return fmt.Errorf("registration ended: %w", reg.Err())
	case err := <-errc:
		return err
	}
}
