package recipe_test

import (
	"context"
	"fmt"
	"log"
	"maps"
	"slices"
	"time"

	"github.com/zooraft/zoo"
	"github.com/zooraft/zoo/recipe"
)

// A service keeps its configuration in a TreeCache and follows one JSON
// document with WatchJSON: reads are local, changes arrive as new values.
func ExampleTreeCache() {
	ens, err := zoo.Open(zoo.Config{}) // one in-memory replica
	if err != nil {
		log.Fatal(err)
	}
	defer ens.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := ens.NewSession(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close(ctx)

	for _, p := range []string{"/app", "/app/config"} {
		if _, err := s.Create(ctx, p, nil, zoo.ModePersistent, nil); err != nil {
			log.Fatal(err)
		}
	}
	if _, err := s.Create(ctx, "/app/config/db", []byte(`{"Host":"db1","Pool":4}`), zoo.ModePersistent, nil); err != nil {
		log.Fatal(err)
	}

	cache, err := recipe.NewTreeCache(s, "/app/config", recipe.TreeCacheOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer cache.Close()
	if err := cache.Start(ctx); err != nil {
		log.Fatal(err)
	}
	names, _ := cache.Children("/app/config")
	fmt.Println("children:", names)

	type DB struct {
		Host string
		Pool int
	}
	var db DB
	if err := cache.Decode("/app/config/db", &db); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("decoded: %+v\n", db)

	feed := recipe.WatchJSON[DB](ctx, cache, "/app/config/db")
	fmt.Printf("current: %+v\n", (<-feed.C()).Value)
	if _, err := s.Set(ctx, "/app/config/db", []byte(`{"Host":"db2","Pool":8}`), -1); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("changed: %+v\n", (<-feed.C()).Value)
	// Output:
	// children: [db]
	// decoded: {Host:db1 Pool:4}
	// current: {Host:db1 Pool:4}
	// changed: {Host:db2 Pool:8}
}

// Instances register themselves in a Group; a client watches the group for
// the current set of endpoints.
func ExampleGroup() {
	ens, err := zoo.Open(zoo.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer ens.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	newSession := func() *zoo.Session {
		s, err := ens.NewSession(ctx)
		if err != nil {
			log.Fatal(err)
		}
		return s
	}

	client := newSession()
	defer client.Close(ctx)
	watcher, err := recipe.NewGroup(client, "/services/api")
	if err != nil {
		log.Fatal(err)
	}
	feed := watcher.Watch(ctx)
	// wait returns the first membership snapshot with n members.
	wait := func(n int) []string {
		for m := range feed.C() {
			if len(m) == n {
				var out []string
				for _, id := range slices.Sorted(maps.Keys(m)) {
					out = append(out, id+"="+string(m[id]))
				}
				return out
			}
		}
		log.Fatal(feed.Err())
		return nil
	}
	fmt.Println("members:", wait(0))

	instance1, instance2 := newSession(), newSession()
	for i, s := range []*zoo.Session{instance1, instance2} {
		g, err := recipe.NewGroup(s, "/services/api")
		if err != nil {
			log.Fatal(err)
		}
		if _, err := g.Register(ctx, fmt.Sprintf("i%d", i+1), fmt.Appendf(nil, "10.0.0.%d:8080", i+1)); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Println("members:", wait(2))

	// An instance whose session ends (closed here; expired if its process
	// died) leaves the group by itself.
	instance1.Close(ctx)
	fmt.Println("members:", wait(1))
	instance2.Close(ctx)
	// Output:
	// members: []
	// members: [i1=10.0.0.1:8080 i2=10.0.0.2:8080]
	// members: [i2=10.0.0.2:8080]
}
