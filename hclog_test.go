package zoo

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"

	"github.com/hashicorp/go-hclog"
)

// recordingHandler keeps records with their attrs (including WithAttrs ones).
type recordingHandler struct {
	level slog.Level
	attrs []slog.Attr
	mu    *sync.Mutex // guards recs
	recs  *[]loggedRecord
}

type loggedRecord struct {
	level slog.Level
	msg   string
	attrs map[string]string
}

func newRecordingHandler(level slog.Level) *recordingHandler {
	return &recordingHandler{level: level, mu: new(sync.Mutex), recs: new([]loggedRecord)}
}

func (h *recordingHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }

func (h *recordingHandler) Handle(_ context.Context, r slog.Record) error {
	rec := loggedRecord{level: r.Level, msg: r.Message, attrs: map[string]string{}}
	for _, a := range h.attrs {
		rec.attrs[a.Key] = a.Value.String()
	}
	r.Attrs(func(a slog.Attr) bool {
		rec.attrs[a.Key] = a.Value.String()
		return true
	})
	h.mu.Lock()
	*h.recs = append(*h.recs, rec)
	h.mu.Unlock()
	return nil
}

func (h *recordingHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append(append([]slog.Attr(nil), h.attrs...), as...)
	return &c
}

func (h *recordingHandler) WithGroup(string) slog.Handler { return h }

func (h *recordingHandler) take() []loggedRecord {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := *h.recs
	*h.recs = nil
	return r
}

func TestHCLoggerLevels(t *testing.T) {
	h := newRecordingHandler(slog.LevelInfo)
	l := newHCLogger(slog.New(h), "raft")

	if l.IsTrace() || l.IsDebug() || !l.IsInfo() || !l.IsWarn() || !l.IsError() {
		t.Fatalf("Is* at slog Info: trace=%v debug=%v info=%v warn=%v error=%v",
			l.IsTrace(), l.IsDebug(), l.IsInfo(), l.IsWarn(), l.IsError())
	}
	if got := l.GetLevel(); got != hclog.Info {
		t.Fatalf("GetLevel = %v, want info", got)
	}
	l.Trace("t")
	l.Debug("d")
	l.Info("entering follower state", "follower", "node1")
	l.Warn("w")
	l.Error("e", "error", errors.New("boom"))
	l.Log(hclog.Warn, "via Log")

	want := []struct {
		level slog.Level
		msg   string
	}{
		{slog.LevelInfo, "entering follower state"},
		{slog.LevelWarn, "w"},
		{slog.LevelError, "e"},
		{slog.LevelWarn, "via Log"},
	}
	got := h.take()
	if len(got) != len(want) {
		t.Fatalf("got %d records %+v, want %d", len(got), got, len(want))
	}
	for i, w := range want {
		if got[i].level != w.level || got[i].msg != w.msg {
			t.Errorf("record %d = %v %q, want %v %q", i, got[i].level, got[i].msg, w.level, w.msg)
		}
	}
	if got[0].attrs["follower"] != "node1" || got[0].attrs["logger"] != "raft" {
		t.Errorf("attrs = %v", got[0].attrs)
	}
	if got[2].attrs["error"] != "boom" {
		t.Errorf("error attr = %v", got[2].attrs)
	}

	// Trace and Debug both land on slog Debug.
	dh := newRecordingHandler(slog.LevelDebug)
	dl := newHCLogger(slog.New(dh), "")
	dl.Trace("t")
	dl.Debug("d")
	for _, r := range dh.take() {
		if r.level != slog.LevelDebug {
			t.Errorf("%q logged at %v, want debug", r.msg, r.level)
		}
	}
	if dl.GetLevel() != hclog.Trace || !dl.IsTrace() {
		t.Errorf("GetLevel at slog Debug = %v", dl.GetLevel())
	}

	// SetLevel can only quieten, and applies to derived loggers too.
	sub := dl.Named("sub")
	dl.SetLevel(hclog.Warn)
	if sub.IsInfo() || !sub.IsWarn() {
		t.Errorf("derived logger ignores SetLevel")
	}
	dl.SetLevel(hclog.Off)
	dl.Error("dropped")
	if r := dh.take(); len(r) != 0 {
		t.Errorf("logged at Off: %+v", r)
	}
}

func TestHCLoggerNamesAndArgs(t *testing.T) {
	h := newRecordingHandler(slog.LevelDebug)
	root := newHCLogger(slog.New(h), "zoo")

	named := root.Named("raft").Named("net")
	if named.Name() != "zoo.raft.net" {
		t.Fatalf("Named = %q", named.Name())
	}
	with := named.With("node", "n1")
	with.Info("x", "k", 1)
	reset := with.ResetNamed("snap")
	if reset.Name() != "snap" {
		t.Fatalf("ResetNamed = %q", reset.Name())
	}
	if args := reset.ImpliedArgs(); len(args) != 2 || args[0] != "node" {
		t.Fatalf("ImpliedArgs = %v", args)
	}
	reset.Info("y", "hex", hclog.Hex(255), "fmt", hclog.Fmt("%d-%s", 3, "a"), "odd")

	recs := h.take()
	if len(recs) != 2 {
		t.Fatalf("records = %+v", recs)
	}
	if a := recs[0].attrs; a["logger"] != "zoo.raft.net" || a["node"] != "n1" || a["k"] != "1" {
		t.Errorf("With record attrs = %v", a)
	}
	if a := recs[1].attrs; a["logger"] != "snap" || a["node"] != "n1" || a["hex"] != "0xff" ||
		a["fmt"] != "3-a" || a[hclogExtraKey] != "odd" {
		t.Errorf("ResetNamed record attrs = %v", a)
	}
}

func TestHCLoggerStandardLogger(t *testing.T) {
	h := newRecordingHandler(slog.LevelDebug)
	l := newHCLogger(slog.New(h), "")

	l.StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true}).Print("[WARN] disk slow")
	l.StandardLogger(nil).Print("[ERR] kept as text")
	l.StandardLogger(&hclog.StandardLoggerOptions{ForceLevel: hclog.Error}).Print("[INFO] forced")
	l.StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true, InferLevelsWithTimestamp: true}).
		Print("2024/01/02 03:04:05 [DEBUG] stamped")

	want := []loggedRecord{
		{level: slog.LevelWarn, msg: "disk slow"},
		{level: slog.LevelInfo, msg: "[ERR] kept as text"},
		{level: slog.LevelError, msg: "forced"},
		{level: slog.LevelDebug, msg: "stamped"},
	}
	got := h.take()
	if len(got) != len(want) {
		t.Fatalf("records = %+v", got)
	}
	for i := range want {
		if got[i].level != want[i].level || got[i].msg != want[i].msg {
			t.Errorf("record %d = %v %q, want %v %q", i, got[i].level, got[i].msg, want[i].level, want[i].msg)
		}
	}
}

func TestHCLoggerNilDiscards(t *testing.T) {
	l := newHCLogger(nil, "x")
	if l.IsError() {
		t.Fatal("nil slog logger should discard")
	}
	l.Error("nothing", "k", "v")
	l.StandardLogger(nil).Print("nothing")
}
