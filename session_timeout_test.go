package zoo_test

import (
	"errors"
	"testing"
	"time"

	"github.com/zooraft/zoo"
	"github.com/zooraft/zoo/internal/testkit"
)

// openConfig opens a one-replica in-memory ensemble with cfg, closed with the
// test (openMem with a Config of the test's choosing).
func openConfig(t *testing.T, cfg zoo.Config) *zoo.Ensemble {
	t.Helper()
	e, err := zoo.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// A requested session timeout is negotiated into [MinSessionTimeout,
// MaxSessionTimeout], by default [2, 20] TickTimes, as ZooKeeper's server
// does; no request at all gets the maximum. The negotiated value is what the
// handle reports, what a read-only handle gets, and what is replicated (a
// resumed handle reads it back from the session table).
func TestSessionTimeoutNegotiation(t *testing.T) {
	const none = time.Duration(-1 << 63) // no WithSessionTimeout option
	type ask struct {
		name string
		req  time.Duration
		want time.Duration
	}
	for _, tc := range []struct {
		name string
		cfg  zoo.Config
		asks []ask
	}{
		{"default bounds, tick 100ms", zoo.Config{TickTime: 100 * time.Millisecond}, []ask{
			{"below", 50 * time.Millisecond, 200 * time.Millisecond},
			{"just below min", 199 * time.Millisecond, 200 * time.Millisecond},
			{"at min", 200 * time.Millisecond, 200 * time.Millisecond},
			{"inside", 700 * time.Millisecond, 700 * time.Millisecond},
			{"at max", 2 * time.Second, 2 * time.Second},
			{"just above max", 2001 * time.Millisecond, 2 * time.Second},
			{"above", time.Hour, 2 * time.Second},
			{"zero", 0, 200 * time.Millisecond}, // ZooKeeper raises a requested 0 to the minimum
			{"negative", -time.Second, 200 * time.Millisecond},
			{"default", none, 2 * time.Second},
		}},
		{"default bounds, tick 50ms", zoo.Config{TickTime: 50 * time.Millisecond}, []ask{
			{"below", 10 * time.Millisecond, 100 * time.Millisecond},
			{"inside", 450 * time.Millisecond, 450 * time.Millisecond},
			{"above", 10 * time.Second, time.Second},
			{"zero", 0, 100 * time.Millisecond},
			{"default", none, time.Second},
		}},
		{"explicit bounds", zoo.Config{TickTime: 100 * time.Millisecond,
			MinSessionTimeout: 350 * time.Millisecond, MaxSessionTimeout: 900 * time.Millisecond}, []ask{
			{"below", 200 * time.Millisecond, 350 * time.Millisecond},
			{"inside", 500 * time.Millisecond, 500 * time.Millisecond},
			{"at max", 900 * time.Millisecond, 900 * time.Millisecond},
			{"above 20 ticks", 5 * time.Second, 900 * time.Millisecond},
			{"zero", 0, 350 * time.Millisecond},
			{"default", none, 900 * time.Millisecond},
		}},
		{"explicit max only", zoo.Config{TickTime: 100 * time.Millisecond, MaxSessionTimeout: 5 * time.Second}, []ask{
			{"below", 100 * time.Millisecond, 200 * time.Millisecond},
			{"above 20 ticks", 4 * time.Second, 4 * time.Second},
			{"above", time.Minute, 5 * time.Second},
			{"default", none, 5 * time.Second},
		}},
		{"explicit min only", zoo.Config{TickTime: 100 * time.Millisecond, MinSessionTimeout: time.Second}, []ask{
			{"below", 500 * time.Millisecond, time.Second},
			{"inside", 1500 * time.Millisecond, 1500 * time.Millisecond},
			{"above", time.Minute, 2 * time.Second},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := openConfig(t, tc.cfg)
			ctx := testkit.Context(t)
			for _, a := range tc.asks {
				t.Run(a.name, func(t *testing.T) {
					var opts []zoo.SessionOption
					if a.req != none {
						opts = append(opts, zoo.WithSessionTimeout(a.req))
					}
					s, err := e.NewSession(ctx, opts...)
					if err != nil {
						t.Fatal(err)
					}
					if got := s.Timeout(); got != a.want {
						t.Errorf("NewSession: negotiated %v, want %v", got, a.want)
					}
					ss, err := e.NewServerSession(ctx, nil, opts...)
					if err != nil {
						t.Fatal(err)
					}
					if got := ss.Timeout(); got != a.want {
						t.Errorf("NewServerSession: negotiated %v, want %v", got, a.want)
					}
					// The replicated session table holds the same value.
					r, err := e.ResumeSession(ctx, ss.ID(), ss.Password(), nil)
					if err != nil {
						t.Fatal(err)
					}
					if got := r.Timeout(); got != a.want {
						t.Errorf("ResumeSession: timeout %v, want %v", got, a.want)
					}
					if err := r.Close(ctx); err != nil {
						t.Fatal(err)
					}
					ro, err := e.ReadOnlySession(0, nil, nil, opts...)
					if err != nil {
						t.Fatal(err)
					}
					if got := ro.Timeout(); got != a.want {
						t.Errorf("ReadOnlySession: negotiated %v, want %v", got, a.want)
					}
					ro.Close(ctx)
				})
			}
		})
	}
}

// The clamped timeout is the one the ensemble enforces, not only the one it
// reports: a silent client that asked for an hour expires once the (much
// shorter) maximum has passed.
func TestSessionTimeoutClampEnforced(t *testing.T) {
	e := openConfig(t, zoo.Config{TickTime: 50 * time.Millisecond, MaxSessionTimeout: 300 * time.Millisecond})
	ctx := testkit.Context(t)
	s, err := e.NewServerSession(ctx, nil, zoo.WithSessionTimeout(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if s.Timeout() != 300*time.Millisecond {
		t.Fatalf("negotiated %v, want 300ms", s.Timeout())
	}
	select {
	case <-s.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("a silent session that asked for an hour was not expired within 30s: the clamp is not enforced")
	}
	if !errors.Is(s.Err(), zoo.ErrSessionExpired) {
		t.Fatalf("session ended with %v, want ErrSessionExpired", s.Err())
	}
}

// What a handle reports as its negotiated timeout is what the ensemble keeps
// in its replicated session table (and enforces): a resumed handle reads the
// same value back. ZooKeeper timeouts are whole milliseconds in an int32, so
// a finer request must come out the same on both sides, and bounds too large
// for an int32 of milliseconds must be refused by Config (a *ConfigError) or
// kept intact, never wrapped into a negative timeout.
func TestSessionTimeoutReplicatedAsNegotiated(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  zoo.Config
		req  []zoo.SessionOption
	}{
		{"sub-millisecond request", zoo.Config{TickTime: 100 * time.Millisecond},
			[]zoo.SessionOption{zoo.WithSessionTimeout(700*time.Millisecond + 500*time.Microsecond)}},
		{"max beyond int32 milliseconds", zoo.Config{TickTime: 100 * time.Millisecond, MaxSessionTimeout: 30 * 24 * time.Hour}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := zoo.Open(tc.cfg)
			if err != nil {
				var ce *zoo.ConfigError
				if errors.As(err, &ce) && ce.Field == "MaxSessionTimeout" {
					return // refusing the bound is a fine answer
				}
				t.Fatalf("Open: %v", err)
			}
			t.Cleanup(func() { e.Close() })
			ctx := testkit.Context(t)
			s, err := e.NewServerSession(ctx, nil, tc.req...)
			if err != nil {
				t.Fatal(err)
			}
			r, err := e.ResumeSession(ctx, s.ID(), s.Password(), nil)
			if err != nil {
				t.Fatalf("resume a session just created (negotiated %v): %v", s.Timeout(), err)
			}
			if r.Timeout() != s.Timeout() || r.Timeout() <= 0 {
				t.Fatalf("handle negotiated %v, but the ensemble keeps %v", s.Timeout(), r.Timeout())
			}
		})
	}
}
