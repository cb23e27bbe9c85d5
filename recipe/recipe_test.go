package recipe

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/zooraft/zoo"
	"github.com/zooraft/zoo/internal/testkit"
	"github.com/zooraft/zoo/zootest"
)

// Test helpers shared by every test of the package.
//
// The tests run on zootest's in-process ensembles, on a loaded machine under
// -race, where a raft leader may step down at any moment. Recipe calls must
// ride that out by themselves (that is part of what the tests check); the
// tests' own sessions and writes ride it out through retryUnknown, as the
// ensemble's tests do (ensemble_test.go's retry and sess).

// newCluster starts an n-replica ensemble for the test.
func newCluster(t *testing.T, n int) *zootest.Cluster {
	t.Helper()
	return zootest.New(t, n, zootest.Options{})
}

// session opens a session on replica i as c.Session does, riding out
// elections. The session is closed when the test ends, before its cluster
// stops (cleanups run last-in first-out), so that what recipes still do in
// the background ends with it instead of racing the replicas' shutdown.
func session(t testing.TB, c *zootest.Cluster, i int, opts ...zoo.SessionOption) *zoo.Session {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var s *zoo.Session
	err := zootest.Retry(ctx, func() (err error) {
		s, err = c.Replica(i).NewSession(ctx, opts...)
		return err
	})
	if err != nil {
		t.Fatalf("session on replica %d: %v", i, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Close(ctx) // best effort: its replica may be stopped or cut off
	})
	return s
}

// mustDo runs one of the test's own calls through retryUnknown (done as
// there), failing the test on error.
func mustDo(t testing.TB, what string, call func(ctx context.Context) error, done ...error) {
	t.Helper()
	ctx := testkit.ContextFor(t, 30*time.Second)
	if err := zootest.Retry(ctx, func() error { return call(ctx) }, done...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// mustCreate creates a persistent node with data (and its missing parents).
func mustCreate(t testing.TB, s *zoo.Session, path string, data []byte) {
	t.Helper()
	mustDo(t, "create "+path, func(ctx context.Context) error {
		if err := ensurePath(ctx, s, parentPath(path)); err != nil {
			return err
		}
		_, err := s.Create(ctx, path, data, zoo.ModePersistent, nil)
		return err
	}, zoo.ErrNodeExists)
}

// mustSet sets a node's data, whatever its version.
func mustSet(t testing.TB, s *zoo.Session, path string, data []byte) {
	t.Helper()
	mustDo(t, "set "+path, func(ctx context.Context) error {
		_, err := s.Set(ctx, path, data, -1)
		return err
	})
}

// mustDelete deletes a node, whatever its version.
func mustDelete(t testing.TB, s *zoo.Session, path string) {
	t.Helper()
	mustDo(t, "delete "+path, func(ctx context.Context) error { return s.Delete(ctx, path, -1) }, zoo.ErrNoNode)
}

// mustSync catches s's replica up with the leader.
func mustSync(t testing.TB, s *zoo.Session) {
	t.Helper()
	mustDo(t, "sync", func(ctx context.Context) error { return s.Sync(ctx, "/") })
}

// mustClose closes a session.
func mustClose(t testing.TB, s *zoo.Session) {
	t.Helper()
	mustDo(t, "close session", func(ctx context.Context) error { return s.Close(ctx) })
}

// must fails the test on err.
func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// children lists path's children as the ensemble has them (after a Sync),
// sorted by sequence; nil if path does not exist.
func children(t testing.TB, s *zoo.Session, path string) []string {
	t.Helper()
	var names []string
	mustDo(t, "children of "+path, func(ctx context.Context) error {
		err := s.Sync(ctx, path)
		if err == nil {
			names, _, err = s.Children(ctx, path)
		}
		if errors.Is(err, zoo.ErrNoNode) {
			names, err = nil, nil
		}
		return err
	})
	sortBySequence(names)
	return names
}

// noneLeft waits until path has no children (nodes a recipe deletes in the
// background, after an unknown outcome, may take a while to go).
func noneLeft(t testing.TB, s *zoo.Session, path string) {
	t.Helper()
	var left []string
	testkit.EventuallyNil(t, 30*time.Second, func() error {
		left = children(t, s, path)
		return testkit.Holds(len(left) == 0, fmt.Sprintf("no nodes left in %s: %v", path, left))
	})
}

// owner returns the session owning the ephemeral node at path (0 if gone).
func owner(t testing.TB, s *zoo.Session, path string) int64 {
	t.Helper()
	var st zoo.Stat
	mustDo(t, "exists "+path, func(ctx context.Context) (err error) {
		_, st, err = s.Exists(ctx, path)
		return err
	})
	return st.EphemeralOwner
}

// errList collects errors from goroutines.
type errList struct {
	mu   sync.Mutex
	errs []error
}

func (e *errList) add(format string, args ...any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.errs = append(e.errs, fmt.Errorf(format, args...))
}

func (e *errList) check(t *testing.T) {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	for i, err := range e.errs {
		if i == 10 {
			t.Errorf("... and %d more", len(e.errs)-10)
			break
		}
		t.Error(err)
	}
}

// watchLayout returns, for each session, the contender nodes under dir on
// which it has a data watch.
func watchLayout(dir string, nodes []string, sessions []*zoo.Session) [][]string {
	out := make([][]string, len(sessions))
	for i, s := range sessions {
		for _, n := range nodes {
			if s.HasWatches(dir+"/"+n, zoo.WatcherData) {
				out[i] = append(out[i], n)
			}
		}
	}
	return out
}

// blocked asserts that ch yields nothing for a short while: a blocked call
// stays blocked. (A negative can only be checked for some time.)
func blocked[T any](t *testing.T, ch <-chan T, what string) {
	t.Helper()
	select {
	case v := <-ch:
		t.Fatalf("%s returned early: %v", what, v)
	case <-time.After(300 * time.Millisecond):
	}
}

// recv waits for a value from ch.
func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(60 * time.Second):
		t.Fatalf("%s did not return", what)
		panic("unreachable")
	}
}
