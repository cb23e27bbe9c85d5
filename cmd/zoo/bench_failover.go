package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"syscall"
	"time"

	"github.com/zooraft/zoo"
	"github.com/zooraft/zoo/internal/zkclient"
)

// zoo bench -compare -failovers N: how long an ensemble takes to take writes
// again after its leader is killed. A client connected to the two followers
// writes one key in a loop; the leader gets SIGKILL; the figure is the time
// from the kill to the end of the first write that succeeds after it. The
// killed member is started again and the ensemble left to settle before the
// next one. Systems take turns, kill after kill.

// failoverSettle is how long an ensemble runs after it has a leader again
// before the next kill: the restarted member catches up.
const failoverSettle = 3 * time.Second

// measureFailover kills sys's leader once and returns the time to the next
// successful write.
func measureFailover(sys *compareSystem) (time.Duration, error) {
	modes := sys.modes()
	leader := slices.Index(modes, "leader")
	if leader < 0 {
		return 0, fmt.Errorf("no leader (modes %q)", modes)
	}
	var followers []string
	for i, a := range sys.servers {
		if i != leader {
			followers = append(followers, a)
		}
	}
	conn, err := zkclient.Connect(followers, zkclient.Options{SessionTimeout: 20 * time.Second})
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const key = "/zoo-bench-failover"
	if _, err := conn.Create(ctx, key, nil, zoo.ModePersistent, zoo.OpenACL); err != nil && !errors.Is(err, zoo.ErrNodeExists) {
		return 0, err
	}
	if _, err := conn.Set(ctx, key, []byte("before"), -1); err != nil {
		return 0, err
	}

	proc := sys.procs[leader]
	killed := time.Now()
	if err := proc.Process.Signal(syscall.SIGKILL); err != nil {
		return 0, err
	}
	proc.Wait()
	var took time.Duration
	for {
		attempt, stop := context.WithTimeout(ctx, 5*time.Second)
		_, err := conn.Set(attempt, key, []byte("after"), -1)
		stop()
		if err == nil {
			took = time.Since(killed)
			break
		}
		if ctx.Err() != nil {
			return 0, fmt.Errorf("no write succeeded within 60s of the kill: %w", err)
		}
		time.Sleep(time.Millisecond)
	}

	restarted, err := sys.starts[leader]()
	if err != nil {
		return 0, fmt.Errorf("restart member %d: %w", leader+1, err)
	}
	sys.procs[leader] = restarted
	if err := sys.waitLeader(90 * time.Second); err != nil {
		return 0, err
	}
	time.Sleep(failoverSettle)
	return took, nil
}

// runFailovers measures n failovers of each system, taking turns, and
// prints the medians.
func runFailovers(systems []*compareSystem, n int, stdout, stderr io.Writer) error {
	took := make([][]time.Duration, len(systems))
	for k := range n {
		for j, sys := range systems {
			fmt.Fprintf(stderr, "zoo bench: failover %d of %d on %s\n", k+1, n, sys.name)
			d, err := measureFailover(sys)
			if err != nil {
				return fmt.Errorf("failover on %s: %w", sys.name, err)
			}
			took[j] = append(took[j], d)
		}
	}
	fmt.Fprintf(stdout, "leader SIGKILL to the next successful write (a client on the followers), median of %d:", n)
	for j, sys := range systems {
		slices.Sort(took[j])
		fmt.Fprintf(stdout, " %s %.2fs (%.2f-%.2f)", sys.name, took[j][n/2].Seconds(), took[j][0].Seconds(), took[j][n-1].Seconds())
	}
	if len(systems) == 2 {
		fmt.Fprintf(stdout, " (ratio %.2f)", took[0][n/2].Seconds()/took[1][n/2].Seconds())
	}
	fmt.Fprintln(stdout)
	return nil
}
