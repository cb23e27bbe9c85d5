// Config shows a config store: services keep a recipe.TreeCache of a config
// subtree (reads are local, no round trip) and follow one JSON document as a
// typed Go struct with recipe.WatchJSON. An admin on another replica edits
// the document; every service sees the typed change. A hand edit that is not
// valid JSON is reported and the last good config kept, until it is fixed.
//
// One process, three replicas on loopback (no flags):
//
//	go run ./examples/config
//
// Three processes, one replica and one service each; -set applies a JSON
// patch to the config once the process has joined, and so does every line
// typed on its standard input:
//
//	go run ./examples/config -id 1 -peers 1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003 -dir /tmp/zoo-config/1
//	go run ./examples/config -id 2 -peers 1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003 -dir /tmp/zoo-config/2
//	go run ./examples/config -id 3 -peers 1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003 -dir /tmp/zoo-config/3 -set '{"LogLevel":"debug"}'
//
// With -once a process applies its -set (if any), waits until every process
// has loaded the config and applied its own, prints the final config and exits.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/zooraft/zoo"
	"github.com/zooraft/zoo/examples/internal/demo"
	"github.com/zooraft/zoo/recipe"
)

const (
	configRoot = "/examples/config"
	appPath    = configRoot + "/app"
	dbPath     = configRoot + "/db"
)

// AppConfig is the typed form of the JSON document at appPath.
type AppConfig struct {
	LogLevel string
	MaxConns int
	Features []string
}

// DBConfig is the typed form of the JSON document at dbPath.
type DBConfig struct {
	Host string
	Pool int
}

var (
	initialApp = AppConfig{LogLevel: "info", MaxConns: 10, Features: []string{"search"}}
	initialDB  = DBConfig{Host: "db1:5432", Pool: 4}
)

// setPatch is the -set flag of the multi-process form.
var setPatch string

func main() {
	demo.Main("config", run, runReplica, func(fs *flag.FlagSet) {
		fs.StringVar(&setPatch, "set", "", `a JSON patch to apply to `+appPath+` once joined, e.g. '{"LogLevel":"debug"}'`)
	})
}

// diff describes what changed from a to b, field by field.
func diff(a, b AppConfig) string {
	var parts []string
	if a.LogLevel != b.LogLevel {
		parts = append(parts, fmt.Sprintf("LogLevel %q -> %q", a.LogLevel, b.LogLevel))
	}
	if a.MaxConns != b.MaxConns {
		parts = append(parts, fmt.Sprintf("MaxConns %d -> %d", a.MaxConns, b.MaxConns))
	}
	if !slices.Equal(a.Features, b.Features) {
		parts = append(parts, fmt.Sprintf("Features %q -> %q", a.Features, b.Features))
	}
	if len(parts) == 0 {
		return "no field changed"
	}
	return strings.Join(parts, ", ")
}

// seed creates the config subtree with its initial documents, unless it
// exists.
func seed(ctx context.Context, s *zoo.Session) error {
	ctx, cancel := context.WithTimeout(ctx, demo.CallTimeout)
	defer cancel()
	app, _ := json.Marshal(initialApp)
	db, _ := json.Marshal(initialDB)
	for _, n := range []struct {
		path string
		data []byte
	}{{"/examples", nil}, {configRoot, nil}, {appPath, app}, {dbPath, db}} {
		if _, err := s.Create(ctx, n.path, n.data, zoo.ModePersistent, nil); err != nil && !errors.Is(err, zoo.ErrNodeExists) {
			return err
		}
	}
	return nil
}

// patch applies a JSON patch to the app config: the current document is
// decoded into an AppConfig, the patch decoded over it (fields it names
// replace those), and the result written at the version read. It returns the
// new version.
func patch(ctx context.Context, s *zoo.Session, p string) (int32, error) {
	ctx, cancel := context.WithTimeout(ctx, demo.CallTimeout)
	defer cancel()
	for {
		if err := s.Sync(ctx, appPath); err != nil {
			return 0, err
		}
		data, st, err := s.Get(ctx, appPath)
		if err != nil {
			return 0, err
		}
		var cfg AppConfig
		if err := json.Unmarshal(data, &cfg); err != nil {
			cfg = initialApp // the stored document is broken: patch the default
		}
		if err := json.Unmarshal([]byte(p), &cfg); err != nil {
			return 0, fmt.Errorf("patch %s: %w", p, err)
		}
		data, _ = json.Marshal(cfg)
		st, err = s.Set(ctx, appPath, data, st.Version)
		if errors.Is(err, zoo.ErrBadVersion) {
			continue // edited meanwhile: patch the newer version
		}
		return st.Version, err
	}
}

// write replaces the app config document with raw data, as an operator's
// hand edit in zkCli would.
func write(ctx context.Context, s *zoo.Session, data string) (int32, error) {
	ctx, cancel := context.WithTimeout(ctx, demo.CallTimeout)
	defer cancel()
	st, err := s.Set(ctx, appPath, []byte(data), -1)
	return st.Version, err
}

// service is one config user: a TreeCache of the config subtree and a typed
// feed of the app document. It prints what it loads and each change, and
// records the last version it handled (see waitVersion).
type service struct {
	name string
	s    *zoo.Session
	log  *demo.Log

	mu      sync.Mutex // guards version
	version int32      // the last version handled, -1 before the first
	changed chan struct{}
}

func newService(name string, s *zoo.Session, log *demo.Log) *service {
	return &service{name: name, s: s, log: log, version: -1, changed: make(chan struct{}, 1)}
}

// waitVersion waits until the service has handled version v or a later one.
func (sv *service) waitVersion(ctx context.Context, v int32) error {
	ctx, cancel := context.WithTimeout(ctx, demo.CallTimeout)
	defer cancel()
	for {
		sv.mu.Lock()
		have := sv.version
		sv.mu.Unlock()
		if have >= v {
			return nil
		}
		select {
		case <-sv.changed:
		case <-ctx.Done():
			return fmt.Errorf("%s never saw config version %d (last %d): %w", sv.name, v, have, ctx.Err())
		}
	}
}

// run loads the cache and follows the app config until ctx ends; it closes
// ready once loaded.
func (sv *service) run(ctx context.Context, ready chan<- struct{}) error {
	cache, err := recipe.NewTreeCache(sv.s, configRoot, recipe.TreeCacheOptions{})
	if err != nil {
		return err
	}
	defer cache.Close()
	sctx, cancel := context.WithTimeout(ctx, demo.CallTimeout)
	err = cache.Start(sctx)
	cancel()
	if err != nil {
		return fmt.Errorf("%s: load %s: %w", sv.name, configRoot, err)
	}
	names, _ := cache.Children(configRoot)
	var db DBConfig
	if err := cache.Decode(dbPath, &db); err != nil {
		return fmt.Errorf("%s: %w", sv.name, err)
	}
	sv.log.Printf("%s cached %s: %v; db = %+v", sv.name, configRoot, names, db)
	close(ready)

	var cur AppConfig
	have := false
	feed := recipe.WatchJSON[AppConfig](ctx, cache, appPath)
	for v := range feed.C() {
		switch {
		case !v.Exists:
			sv.log.Printf("%s %s was deleted: keeping %+v", sv.name, appPath, cur)
		case v.Err != nil:
			sv.log.Printf("%s version %d does not decode (%v): keeping %+v", sv.name, v.Stat.Version, v.Err, cur)
		case !have:
			sv.log.Printf("%s config version %d: %+v", sv.name, v.Stat.Version, v.Value)
		default:
			sv.log.Printf("%s config version %d: %s", sv.name, v.Stat.Version, diff(cur, v.Value))
		}
		if v.Exists && v.Err == nil {
			cur, have = v.Value, true
		}
		sv.mu.Lock()
		sv.version = max(sv.version, v.Stat.Version)
		sv.mu.Unlock()
		select {
		case sv.changed <- struct{}{}:
		default:
		}
	}
	if err := feed.Err(); ctx.Err() == nil {
		return fmt.Errorf("%s: config feed ended: %w", sv.name, err)
	}
	return nil
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

	admin, err := cl.Session(ctx, 0)
	if err != nil {
		return err
	}
	defer demo.CloseSession(admin)
	adminName := "[admin @ replica " + cl.Replicas[0].ID() + "]"
	if err := seed(ctx, admin); err != nil {
		return err
	}
	app, _ := json.Marshal(initialApp)
	log.Printf("%s wrote %s = %s", adminName, appPath, app)

	// Two services, on the two other replicas.
	sctx, stopServices := context.WithCancel(ctx)
	defer stopServices()
	var svcs []*service
	errc := make(chan error, 2)
	for i, name := range []string{"svc-a", "svc-b"} {
		s, err := cl.Session(ctx, i+1)
		if err != nil {
			return err
		}
		defer demo.CloseSession(s)
		sv := newService(fmt.Sprintf("[%s @ replica %s]", name, cl.Replicas[i+1].ID()), s, log)
		ready := make(chan struct{})
		go func() { errc <- sv.run(sctx, ready) }()
		// Start them one after the other, for a tidy narrative.
		select {
		case <-ready:
		case err := <-errc:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
		if err := sv.waitVersion(ctx, 0); err != nil {
			return err
		}
		svcs = append(svcs, sv)
	}
	waitAll := func(v int32) error {
		for _, sv := range svcs {
			if err := sv.waitVersion(ctx, v); err != nil {
				return err
			}
		}
		return nil
	}

	steps := []struct {
		say   string
		apply func() (int32, error)
	}{
		{`sets LogLevel "debug" and MaxConns 20`, func() (int32, error) {
			return patch(ctx, admin, `{"LogLevel":"debug","MaxConns":20}`)
		}},
		{`hand-edits the document and breaks it: {"LogLevel": "warn", "MaxConns": }`, func() (int32, error) {
			return write(ctx, admin, `{"LogLevel": "warn", "MaxConns": }`)
		}},
		{`fixes it: {"LogLevel":"warn","MaxConns":20,"Features":["search","dark-mode"]}`, func() (int32, error) {
			return write(ctx, admin, `{"LogLevel":"warn","MaxConns":20,"Features":["search","dark-mode"]}`)
		}},
	}
	for _, step := range steps {
		log.Printf("%s %s", adminName, step.say)
		v, err := step.apply()
		if err != nil {
			return fmt.Errorf("admin: %w", err)
		}
		if err := waitAll(v); err != nil {
			return err
		}
	}
	stopServices()
	for range svcs {
		if err := <-errc; err != nil {
			return err
		}
	}
	return nil
}

// runReplica is one process of a real ensemble: it hosts replica f.ID and
// runs service svc-<id>, which follows the config; it applies -set and every
// line of its standard input as a patch.
func runReplica(ctx context.Context, out io.Writer, f *demo.Flags) error {
	log := demo.NewLog(out)
	me := "[svc-" + f.ID + "]"
	e, s, err := f.Join(ctx, log)
	if err != nil {
		return err
	}
	defer func() {
		if err := demo.Shutdown(e, s); err != nil {
			log.Printf("%s %v", me, err)
		}
	}()
	if err := seed(ctx, s); err != nil {
		return err
	}
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	sv := newService(me, s, log)
	ready := make(chan struct{})
	errc := make(chan error, 1)
	go func() { errc <- sv.run(sctx, ready) }()
	select {
	case <-ready:
	case err := <-errc:
		return err
	}
	apply := func(p string) error {
		v, err := patch(ctx, s, p)
		if err != nil {
			return err
		}
		log.Printf("%s applied %s: version %d", me, p, v)
		return sv.waitVersion(ctx, v)
	}
	if setPatch != "" {
		if err := apply(setPatch); err != nil {
			return err
		}
	}
	if f.Once {
		if err := demo.AllDone(ctx, s, configRoot+"-done", len(f.Peers), f.Tick); err != nil {
			return err
		}
		// Every process applied its patch before it entered: print up to
		// the version now current.
		cfg, v, err := current(ctx, s)
		if err != nil {
			return err
		}
		if err := sv.waitVersion(ctx, v); err != nil {
			return err
		}
		log.Printf("%s every process is done: config version %d = %+v", me, v, cfg)
		return nil
	}
	go func() {
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			if line := strings.TrimSpace(sc.Text()); line != "" {
				if err := apply(line); err != nil {
					log.Printf("%s patch %s: %v", me, line, err)
				}
			}
		}
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		log.Printf("%s signal: closing", me)
		return nil
	}
}

// current reads the app config as the ensemble has it now.
func current(ctx context.Context, s *zoo.Session) (AppConfig, int32, error) {
	ctx, cancel := context.WithTimeout(ctx, demo.CallTimeout)
	defer cancel()
	var cfg AppConfig
	if err := s.Sync(ctx, appPath); err != nil {
		return cfg, 0, err
	}
	data, st, err := s.Get(ctx, appPath)
	if err != nil {
		return cfg, 0, err
	}
	err = json.Unmarshal(data, &cfg)
	return cfg, st.Version, err
}
