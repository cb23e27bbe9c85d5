// Package testkit is what the tests of zoo's packages share, so that each
// helper has one home (as bbolt's internal/btesting): a context bounded per
// test, and polling for a condition. It imports nothing of zoo, so that any
// package's own tests may use it; helpers that know zoo's errors (retrying a
// write of unknown outcome) are in zootest.
package testkit

import (
	"context"
	"errors"
	"testing"
	"time"
)

// DefaultTimeout bounds everything one test does, unless it asks otherwise.
const DefaultTimeout = 60 * time.Second

// Context returns a context that ends after DefaultTimeout or with the test.
func Context(t testing.TB) context.Context {
	t.Helper()
	return ContextFor(t, DefaultTimeout)
}

// ContextFor returns a context that ends after d or with the test.
func ContextFor(t testing.TB, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// pollEvery is how often Eventually and EventuallyNil check their condition.
const pollEvery = 5 * time.Millisecond

// Eventually polls cond until it holds, failing the test, with what it
// waited for, if it still does not after within.
func Eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	EventuallyNil(t, within, func() error { return Holds(cond(), what) })
}

// EventuallyNil polls cond until it returns nil, failing the test with its
// last error if it still does not after within.
func EventuallyNil(t testing.TB, within time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	tk := time.NewTicker(pollEvery)
	defer tk.Stop()
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %v", within, err)
		}
		<-tk.C
	}
}

// Holds is a condition for EventuallyNil: nil if ok, else an error saying
// what is awaited.
func Holds(ok bool, what string) error {
	if ok {
		return nil
	}
	return errors.New("waiting for " + what)
}
