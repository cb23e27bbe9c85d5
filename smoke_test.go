package zoo

import (
	"context"
	"testing"
	"time"
)

func TestSmokeZeroConfig(t *testing.T) {
	e, err := Open(Config{TickTime: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := e.NewSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.Create(ctx, "/a", []byte("x"), ModePersistent, nil)
	if err != nil {
		t.Fatal(err)
	}
	data, st, err := s.Get(ctx, p)
	t.Logf("%s %q %+v %v", p, data, st, err)
	names, st, err := s.Children(ctx, "/")
	t.Logf("%v %+v %v", names, st, err)
}
