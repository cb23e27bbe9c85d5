package zoo

import (
	"context"
	"testing"
	"time"

	"github.com/zooraft/zoo/internal/testkit"
)

// loneSession opens a lone replica with cfg and a session on it, for tests
// that look inside. The context ends with the test (or after a minute);
// closing the replica is the caller's, as tests reopen its dir.
func loneSession(t *testing.T, cfg Config) (*Ensemble, *Session, context.Context) {
	t.Helper()
	e, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := testkit.ContextFor(t, time.Minute)
	s, err := e.NewSession(ctx)
	if err != nil {
		e.Close()
		t.Fatal(err)
	}
	return e, s, ctx
}
