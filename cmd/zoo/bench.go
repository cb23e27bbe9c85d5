package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zooraft/zoo"
	"github.com/zooraft/zoo/internal/zkclient"
)

// zoo bench drives any ZooKeeper-protocol ensemble, zoo or Apache
// ZooKeeper, with a mix of operations from many callers at once, and prints
// throughput and latency percentiles per operation. Each caller runs one
// request at a time, so -callers is the number of requests outstanding;
// callers share -connections sessions, spread over the servers.

// benchOps are the operations a mix may name.
var benchOps = []string{"get", "set", "create", "ephemeral"}

// benchConfig is what the flags ask for.
type benchConfig struct {
	servers     []string
	mix         map[string]int // op -> weight
	callers     int
	connections int
	valueSize   int
	keys        int
	duration    time.Duration
	warmup      time.Duration
	root        string
	keep        bool // leave root in place (a filled tree)
	progress    time.Duration
}

// benchResult is one operation's (or the total's) figures, as -json prints
// them.
type benchResult struct {
	Op        string  `json:"op"`
	Ops       int     `json:"ops"`
	Errors    int     `json:"errors"`
	OpsPerSec float64 `json:"ops_per_sec"`
	P50ms     float64 `json:"p50_ms"`
	P99ms     float64 `json:"p99_ms"`
	P999ms    float64 `json:"p999_ms"`
}

// benchReport is the whole run, as -json prints it.
type benchReport struct {
	Servers     []string      `json:"servers"`
	Mix         string        `json:"mix"`
	Callers     int           `json:"callers"`
	Connections int           `json:"connections"`
	ValueSize   int           `json:"value_size"`
	Keys        int           `json:"keys"`
	Seconds     float64       `json:"seconds"`
	Results     []benchResult `json:"results"`
}

func benchCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("zoo bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	server := fs.String("server", "localhost:2181", "comma-separated `host:port` list of the ensemble's client ports")
	mix := fs.String("mix", "set=100", "operation `mix` as op=weight,...: get (a key's data), set (a key's data), create (a persistent node, removed at the end), ephemeral (create an ephemeral node and delete it: two requests)")
	callers := fs.Int("callers", 16, "callers, each with one request outstanding at a time")
	connections := fs.Int("connections", 0, "sessions the callers share, spread over the servers (default: one per caller, at most 64)")
	valueSize := fs.Int("value-size", 100, "bytes of data written by set and create")
	keys := fs.Int("keys", 1000, "keys read and written by get and set")
	duration := fs.Duration("duration", 10*time.Second, "how long to measure")
	warmup := fs.Duration("warmup", 2*time.Second, "how long to run before measuring")
	root := fs.String("root", "/zoo-bench", "znode under which the run works; removed at the end")
	asJSON := fs.Bool("json", false, "print the results as JSON")
	progress := fs.Duration("progress", time.Second, "interval of the progress line on stderr (0: none)")
	compare := fs.Bool("compare", false, "start a 3-member zoo ensemble and, if installed, a 3-member Apache ZooKeeper, and run -shapes on each in turn (-server, -mix and -callers are not used)")
	shapesFlag := fs.String("shapes", defaultShapes, "with -compare: `mix@callers;...` to run")
	rounds := fs.Int("rounds", 3, "with -compare: measured rounds after the warm-up round (the table gives medians)")
	fill := fs.Duration("fill", 0, "with -compare: after the shapes, fill each ensemble with creates at 256 callers for this long, then give its memory, sets at 256 on the big tree, and the time a restart of all members takes")
	failovers := fs.Int("failovers", 0, "with -compare: after the shapes, kill each ensemble's leader this many times, taking turns, and give the median time to the next successful write")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	usageErr := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "zoo bench: "+format+"\n", a...)
		return 2
	}
	weights, err := parseMix(*mix)
	switch {
	case fs.NArg() > 0:
		return usageErr("unexpected argument %q", fs.Arg(0))
	case err != nil:
		return usageErr("-mix: %v", err)
	case *callers < 1:
		return usageErr("-callers %d: want at least 1", *callers)
	case *connections < 0:
		return usageErr("-connections %d: want 0 or more", *connections)
	case *valueSize < 0 || *valueSize > 1<<20:
		return usageErr("-value-size %d: want 0 to 1048576", *valueSize)
	case *keys < 1:
		return usageErr("-keys %d: want at least 1", *keys)
	case *duration <= 0 || *warmup < 0:
		return usageErr("-duration must be positive and -warmup not negative")
	case !strings.HasPrefix(*root, "/") || *root == "/":
		return usageErr("-root %q: want an absolute path other than /", *root)
	}
	cfg := benchConfig{mix: weights, callers: *callers, connections: *connections, valueSize: *valueSize,
		keys: *keys, duration: *duration, warmup: *warmup, root: strings.TrimSuffix(*root, "/"), progress: *progress}
	for _, s := range strings.Split(*server, ",") {
		if s = strings.TrimSpace(s); s != "" {
			cfg.servers = append(cfg.servers, s)
		}
	}
	if len(cfg.servers) == 0 {
		return usageErr("-server: no servers")
	}
	if cfg.connections == 0 {
		cfg.connections = min(cfg.callers, 64)
	}
	cfg.connections = min(cfg.connections, cfg.callers)

	if *compare {
		shapes, err := parseShapes(*shapesFlag)
		switch {
		case err != nil:
			return usageErr("-shapes: %v", err)
		case *rounds < 1:
			return usageErr("-rounds %d: want at least 1", *rounds)
		case *fill < 0:
			return usageErr("-fill %v: want 0 or more", *fill)
		case *failovers < 0:
			return usageErr("-failovers %d: want 0 or more", *failovers)
		case *asJSON:
			return usageErr("-json is not available with -compare yet")
		}
		if err := runCompare(cfg, shapes, *rounds, *fill, *failovers, stdout, stderr); err != nil {
			fmt.Fprintln(stderr, "zoo bench -compare:", err)
			return 1
		}
		return 0
	}

	report, err := runBench(cfg, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "zoo bench:", err)
		return 1
	}
	report.Mix = *mix
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(report)
		return 0
	}
	printBench(stdout, report)
	return 0
}

// parseMix reads "op=weight,...".
func parseMix(s string) (map[string]int, error) {
	out := map[string]int{}
	for _, part := range strings.Split(s, ",") {
		op, w, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			w = "1"
		}
		if !slices.Contains(benchOps, op) {
			return nil, fmt.Errorf("unknown operation %q (want %s)", op, strings.Join(benchOps, ", "))
		}
		n, err := strconv.Atoi(w)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("%s=%s: want a weight of 0 or more", op, w)
		}
		out[op] += n
	}
	total := 0
	for _, n := range out {
		total += n
	}
	if total == 0 {
		return nil, errors.New("all weights are 0")
	}
	return out, nil
}

// benchSamples are one caller's measured latencies, by operation.
type benchSamples struct {
	lat    map[string][]time.Duration
	errors map[string]int
}

func runBench(cfg benchConfig, stderr io.Writer) (*benchReport, error) {
	conns := make([]*zkclient.Conn, cfg.connections)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	for i := range conns {
		// Rotated so that the connections spread over the servers.
		servers := append(slices.Clone(cfg.servers[i%len(cfg.servers):]), cfg.servers[:i%len(cfg.servers)]...)
		c, err := zkclient.Connect(servers, zkclient.Options{SessionTimeout: 30 * time.Second})
		if err != nil {
			return nil, err
		}
		conns[i] = c
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := benchSetup(ctx, conns[0], cfg); err != nil {
		return nil, err
	}
	if !cfg.keep {
		defer benchCleanup(conns[0], cfg, stderr)
	}

	var ops []string // one entry per unit of weight, to draw from
	for _, op := range benchOps {
		for range cfg.mix[op] {
			ops = append(ops, op)
		}
	}
	value := make([]byte, cfg.valueSize)
	for i := range value {
		value[i] = 'a' + byte(i%26)
	}

	var measuring atomic.Bool
	var done atomic.Bool
	var count atomic.Int64 // measured operations, for the progress line
	samples := make([]benchSamples, cfg.callers)
	var wg sync.WaitGroup
	for w := range cfg.callers {
		samples[w] = benchSamples{lat: map[string][]time.Duration{}, errors: map[string]int{}}
		rng := rand.New(rand.NewPCG(uint64(w), 42))
		c := conns[w%len(conns)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := &samples[w]
			for n := 0; !done.Load(); n++ {
				op := ops[rng.IntN(len(ops))]
				start := time.Now()
				err := benchOp(c, cfg, op, rng, value, w, n)
				d := time.Since(start)
				if !measuring.Load() {
					continue
				}
				if err != nil {
					s.errors[op]++
					continue
				}
				s.lat[op] = append(s.lat[op], d)
				count.Add(1)
			}
		}()
	}

	time.Sleep(cfg.warmup)
	measuring.Store(true)
	start := time.Now()
	stopProgress := make(chan struct{})
	progressDone := make(chan struct{})
	go func() {
		defer close(progressDone)
		if cfg.progress <= 0 {
			return
		}
		tick := time.NewTicker(cfg.progress)
		defer tick.Stop()
		last, lastAt := int64(0), start
		for {
			select {
			case <-stopProgress:
				return
			case now := <-tick.C:
				n := count.Load()
				fmt.Fprintf(stderr, "zoo bench: %5.0fs  %9.0f ops/s\n", now.Sub(start).Seconds(), float64(n-last)/now.Sub(lastAt).Seconds())
				last, lastAt = n, now
			}
		}
	}()
	time.Sleep(cfg.duration)
	measuring.Store(false)
	elapsed := time.Since(start)
	close(stopProgress)
	<-progressDone
	done.Store(true)
	wg.Wait()

	report := &benchReport{Servers: cfg.servers, Callers: cfg.callers, Connections: cfg.connections,
		ValueSize: cfg.valueSize, Keys: cfg.keys, Seconds: elapsed.Seconds()}
	var all []time.Duration
	allErrors := 0
	for _, op := range benchOps {
		if cfg.mix[op] == 0 {
			continue
		}
		var lat []time.Duration
		errs := 0
		for _, s := range samples {
			lat = append(lat, s.lat[op]...)
			errs += s.errors[op]
		}
		all = append(all, lat...)
		allErrors += errs
		report.Results = append(report.Results, benchFigures(op, lat, errs, elapsed))
	}
	if len(report.Results) > 1 {
		report.Results = append(report.Results, benchFigures("total", all, allErrors, elapsed))
	}
	return report, nil
}

// benchFigures sums up one operation's latencies.
func benchFigures(op string, lat []time.Duration, errs int, elapsed time.Duration) benchResult {
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		i := min(int(p*float64(len(lat))), len(lat)-1)
		return float64(lat[i]) / float64(time.Millisecond)
	}
	return benchResult{Op: op, Ops: len(lat), Errors: errs, OpsPerSec: float64(len(lat)) / elapsed.Seconds(),
		P50ms: pct(0.50), P99ms: pct(0.99), P999ms: pct(0.999)}
}

// benchOp runs one operation of caller w, its n-th.
func benchOp(c *zkclient.Conn, cfg benchConfig, op string, rng *rand.Rand, value []byte, w, n int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	key := fmt.Sprintf("%s/k/%d", cfg.root, rng.IntN(cfg.keys))
	switch op {
	case "get":
		_, _, err := c.Get(ctx, key, false)
		return err
	case "set":
		_, err := c.Set(ctx, key, value, -1)
		return err
	case "create":
		_, err := c.Create(ctx, fmt.Sprintf("%s/c/%d-%d", cfg.root, w, n), value, zoo.ModePersistent, zoo.OpenACL)
		return err
	}
	p := fmt.Sprintf("%s/e/%d-%d", cfg.root, w, n)
	if _, err := c.Create(ctx, p, nil, zoo.ModeEphemeral, zoo.OpenACL); err != nil {
		return err
	}
	return c.Delete(ctx, p, -1)
}

// benchSetup makes the root, its parents, and the keys.
func benchSetup(ctx context.Context, c *zkclient.Conn, cfg benchConfig) error {
	create := func(p string, data []byte) error {
		_, err := c.Create(ctx, p, data, zoo.ModePersistent, zoo.OpenACL)
		if err != nil && !errors.Is(err, zoo.ErrNodeExists) {
			return fmt.Errorf("create %s: %w", p, err)
		}
		return nil
	}
	parts := strings.Split(strings.TrimPrefix(cfg.root, "/"), "/")
	for i := range parts {
		if err := create("/"+strings.Join(parts[:i+1], "/"), nil); err != nil {
			return err
		}
	}
	for _, d := range []string{"k", "c", "e"} {
		if err := create(cfg.root+"/"+d, nil); err != nil {
			return err
		}
	}
	if cfg.mix["get"]+cfg.mix["set"] == 0 {
		return nil
	}
	return benchParallel(ctx, cfg.keys, func(ctx context.Context, i int) error {
		return create(fmt.Sprintf("%s/k/%d", cfg.root, i), make([]byte, cfg.valueSize))
	})
}

// benchCleanup removes the root and everything under it.
func benchCleanup(c *zkclient.Conn, cfg benchConfig, stderr io.Writer) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	for _, d := range []string{"k", "c", "e"} {
		dir := cfg.root + "/" + d
		children, err := c.Children(ctx, dir, false)
		if err != nil && !errors.Is(err, zoo.ErrNoNode) {
			fmt.Fprintf(stderr, "zoo bench: cleanup: list %s: %v\n", dir, err)
			return
		}
		err = benchParallel(ctx, len(children), func(ctx context.Context, i int) error {
			err := c.Delete(ctx, dir+"/"+children[i], -1)
			if errors.Is(err, zoo.ErrNoNode) {
				return nil
			}
			return err
		})
		if err == nil {
			err = c.Delete(ctx, dir, -1)
		}
		if err != nil && !errors.Is(err, zoo.ErrNoNode) {
			fmt.Fprintf(stderr, "zoo bench: cleanup of %s: %v\n", dir, err)
			return
		}
	}
	if err := c.Delete(ctx, cfg.root, -1); err != nil && !errors.Is(err, zoo.ErrNoNode) {
		fmt.Fprintf(stderr, "zoo bench: cleanup of %s: %v\n", cfg.root, err)
	}
}

// benchParallel runs f for 0..n-1 with 64 requests outstanding.
func benchParallel(ctx context.Context, n int, f func(context.Context, int) error) error {
	var next atomic.Int64
	errs := make(chan error, 64)
	for range 64 {
		go func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					errs <- nil
					return
				}
				if err := f(ctx, i); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	var first error
	for range 64 {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// printBench prints the report as a table.
func printBench(w io.Writer, r *benchReport) {
	fmt.Fprintf(w, "%d callers on %d connections to %s, %d-byte values, %d keys, %.1fs measured\n",
		r.Callers, r.Connections, strings.Join(r.Servers, ","), r.ValueSize, r.Keys, r.Seconds)
	fmt.Fprintf(w, "%-10s %10s %12s %9s %9s %9s %7s\n", "op", "ops", "ops/s", "p50 ms", "p99 ms", "p999 ms", "errors")
	for _, res := range r.Results {
		fmt.Fprintf(w, "%-10s %10d %12.0f %9.2f %9.2f %9.2f %7d\n", res.Op, res.Ops, res.OpsPerSec, res.P50ms, res.P99ms, res.P999ms, res.Errors)
	}
}
