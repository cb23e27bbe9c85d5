package zkwire

import (
	"errors"
	"net"
	"testing"
	"time"

	"github.com/zooraft/zoo"
	"github.com/zooraft/zoo/internal/jute"
	"github.com/zooraft/zoo/internal/testkit"
)

func TestNewServerConfig(t *testing.T) {
	t.Parallel()
	ens := openSingle(t)
	for _, tc := range []struct {
		cfg   Config
		field string
	}{
		{Config{MaxFrameSize: -1}, "MaxFrameSize"},
		{Config{Version: "3.9 beta"}, "Version"},
		{Config{FourLetterWords: []string{"srvr", "bogus"}}, "FourLetterWords"},
	} {
		_, err := NewServer(ens, tc.cfg)
		var ce *zoo.ConfigError
		if !errors.As(err, &ce) || ce.Field != tc.field {
			t.Errorf("%+v: %v, want a ConfigError for %s", tc.cfg, err, tc.field)
		}
	}
	srv, err := NewServer(ens, Config{})
	if err != nil {
		t.Fatal(err)
	}
	if srv.cfg.MaxClientCnxns != 60 || srv.cfg.MaxFrameSize != 1048575 || srv.Addr() != nil ||
		!srv.words["srvr"] || len(srv.words) != 1 || srv.cfg.Version != DefaultVersion {
		t.Fatalf("defaults: %+v", srv.cfg)
	}
}

// Close drops the connections but not their sessions: the client can resume.
func TestServerCloseDetaches(t *testing.T) {
	t.Parallel()
	ens := openSingle(t)
	srv, addr := serve(t, ens, Config{})
	testkit.Eventually(t, 5*time.Second, "Addr reports the listener", func() bool {
		a := srv.Addr()
		return a != nil && a.String() == addr
	})
	c := dialRaw(t, addr)
	sid, pw := c.handshake()
	c.call(jute.OpCreate, createBody("/kept", nil, int32(zoo.ModeEphemeral)))
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	c.expectClosed()
	if srv.Addr() != nil {
		t.Fatal("Addr after Close")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(ln); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve after Close: %v", err)
	}

	_, addr2 := serve(t, ens, Config{})
	d := dialRaw(t, addr2)
	d.write(connectFrame(ens.LastZxid(), 10000, sid, pw, false))
	frame, err := d.readFrame()
	if err != nil {
		t.Fatal(err)
	}
	r := jute.NewReader(frame)
	_, _ = r.Int(), r.Int()
	if got := r.Long(); got != sid {
		t.Fatalf("resumed %x, want %x", got, sid)
	}
	if rep := d.call(jute.OpExists, pathWatchBody("/kept", false)); rep.err != 0 {
		t.Fatalf("ephemeral after the server closed: %d", rep.err)
	}
}
