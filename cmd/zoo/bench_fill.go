package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/zooraft/zoo/internal/zkclient"
)

// zoo bench -compare -fill D: each ensemble in turn takes creates of
// 100-byte znodes from 256 callers for D (150s makes about a million on this
// machine), kept; then: how many znodes each holds, the resident memory of
// its servers, sets at 256 callers on the big tree (medians of -rounds,
// alternating), and how long a restart of all three members takes, from
// their start to the first write that succeeds.

// fillRoot is where the creates of -fill go.
const fillRoot = "/zoo-bench-fill"

// runFill fills every system, measures them, and prints the figures.
func runFill(base benchConfig, systems []*compareSystem, fill time.Duration, rounds int, stdout, stderr io.Writer) error {
	creates := make([]*benchReport, len(systems))
	for j, sys := range systems {
		cfg := base
		cfg.servers, cfg.mix, cfg.callers, cfg.connections = sys.servers, map[string]int{"create": 1}, 256, 64
		cfg.duration, cfg.warmup, cfg.root, cfg.keep, cfg.progress = fill, 0, fillRoot, true, 0
		fmt.Fprintf(stderr, "zoo bench: filling %s for %v\n", sys.name, fill)
		r, err := runBench(cfg, stderr)
		if err != nil {
			return fmt.Errorf("fill %s: %w", sys.name, err)
		}
		creates[j] = r
	}
	var line strings.Builder
	fmt.Fprintf(&line, "fill, create=1@256 for %v:", fill)
	for j, sys := range systems {
		n, err := znodeCount(sys)
		if err != nil {
			return fmt.Errorf("count %s's znodes: %w", sys.name, err)
		}
		fmt.Fprintf(&line, " %s %.0f ops/s, %d znodes;", sys.name, total(creates[j]).OpsPerSec, n)
	}
	if len(systems) == 2 {
		fmt.Fprintf(&line, " ratio %.2f", total(creates[0]).OpsPerSec/total(creates[1]).OpsPerSec)
	}
	fmt.Fprintln(stdout, strings.TrimSuffix(line.String(), ";"))
	printMemory(stdout, systems, "with the filled trees")

	sets := make([][]*benchReport, len(systems))
	for round := range rounds {
		for j, sys := range systems {
			cfg := base
			cfg.servers, cfg.mix, cfg.callers, cfg.connections, cfg.progress = sys.servers, map[string]int{"set": 1}, 256, 64, 0
			fmt.Fprintf(stderr, "zoo bench: round %d of %d: set=1@256 on %s's filled tree\n", round+1, rounds, sys.name)
			r, err := runBench(cfg, stderr)
			if err != nil {
				return fmt.Errorf("set on %s's filled tree: %w", sys.name, err)
			}
			sets[j] = append(sets[j], r)
		}
	}
	line.Reset()
	fmt.Fprintf(&line, "set=1@256 on the filled tree, median of %d:", rounds)
	for j, sys := range systems {
		fmt.Fprintf(&line, " %s %.0f ops/s (p99 %.2f ms);", sys.name, median(sets[j], func(r benchResult) float64 { return r.OpsPerSec }),
			median(sets[j], func(r benchResult) float64 { return r.P99ms }))
	}
	if len(systems) == 2 {
		fmt.Fprintf(&line, " ratio %.2f", median(sets[0], func(r benchResult) float64 { return r.OpsPerSec })/
			median(sets[1], func(r benchResult) float64 { return r.OpsPerSec }))
	}
	fmt.Fprintln(stdout, strings.TrimSuffix(line.String(), ";"))

	line.Reset()
	fmt.Fprintf(&line, "restart of all 3 members with the filled tree, to the first successful write:")
	for _, sys := range systems {
		fmt.Fprintf(stderr, "zoo bench: restarting %s\n", sys.name)
		d, err := restartAll(sys)
		if err != nil {
			return fmt.Errorf("restart %s: %w", sys.name, err)
		}
		fmt.Fprintf(&line, " %s %.2fs", sys.name, d.Seconds())
	}
	fmt.Fprintln(stdout, line.String())
	return nil
}

// total is a report's last result: the total, or the only operation.
func total(r *benchReport) benchResult {
	if len(r.Results) == 0 {
		return benchResult{}
	}
	return r.Results[len(r.Results)-1]
}

// znodeCount asks the system's members for zk_znode_count and returns the
// largest answer.
func znodeCount(sys *compareSystem) (int, error) {
	best := -1
	for _, a := range sys.servers {
		lines, err := fourLetterWord(a, "mntr", nil)
		if err != nil {
			continue
		}
		for _, l := range lines {
			if v, ok := strings.CutPrefix(l, "zk_znode_count"); ok {
				if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
					best = max(best, n)
				}
			}
		}
	}
	if best < 0 {
		return 0, errors.New("no member answered mntr with zk_znode_count")
	}
	return best, nil
}

// restartAll stops every member with SIGTERM, starts them all again, and
// returns the time from the start to the first write that succeeds.
func restartAll(sys *compareSystem) (time.Duration, error) {
	for _, p := range sys.procs {
		p.Process.Signal(syscall.SIGTERM)
	}
	for _, p := range sys.procs {
		p.Wait()
	}
	started := time.Now()
	for i, start := range sys.starts {
		p, err := start()
		if err != nil {
			return 0, fmt.Errorf("start member %d: %w", i+1, err)
		}
		sys.procs[i] = p
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for {
		if err := writeOnce(ctx, sys.servers); err == nil {
			return time.Since(started), nil
		} else if ctx.Err() != nil {
			return 0, fmt.Errorf("no write succeeded within 5 minutes: %w", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// writeOnce connects to servers and sets the fill root's data.
func writeOnce(ctx context.Context, servers []string) error {
	conn, err := zkclient.Connect(slices.Clone(servers), zkclient.Options{SessionTimeout: 10 * time.Second, DialTimeout: 200 * time.Millisecond})
	if err != nil {
		return err
	}
	defer conn.Close()
	attempt, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err = conn.Set(attempt, fillRoot, []byte("restarted"), -1)
	return err
}
