package zoo

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
)

// hclogExtraKey names a trailing value that came without a key, the way
// hclog itself labels it, so such lines read the same in either logger.
const hclogExtraKey = "EXTRA_VALUE_AT_END"

// hclogAdapter lets raft (which only speaks hclog) write into the user's
// slog.Logger, so the ensemble has one log stream and one level policy.
type hclogAdapter struct {
	// base is the user's handler before our name and With args; derived
	// loggers start from it again so ResetNamed can drop the old name.
	base    slog.Handler
	handler slog.Handler // base plus name and implied args
	name    string
	implied []any
	// level is an optional extra floor set through SetLevel, shared by every
	// logger derived from the same root as hclog requires; hclog.NoLevel
	// means "whatever slog enables".
	level *atomic.Int32
}

// newHCLogger bridges l to hclog under the given name; a nil l discards.
func newHCLogger(l *slog.Logger, name string) hclog.Logger {
	var base slog.Handler = slog.DiscardHandler
	if l != nil {
		base = l.Handler()
	}
	a := &hclogAdapter{base: base, name: name, level: new(atomic.Int32)}
	a.level.Store(int32(hclog.NoLevel))
	a.handler = a.build()
	return a
}

// derive returns a copy with a new name and implied args, sharing the level.
func (a *hclogAdapter) derive(name string, implied []any) *hclogAdapter {
	d := &hclogAdapter{base: a.base, name: name, implied: implied, level: a.level}
	d.handler = d.build()
	return d
}

func (a *hclogAdapter) build() slog.Handler {
	var attrs []slog.Attr
	if a.name != "" {
		attrs = append(attrs, slog.String("logger", a.name))
	}
	attrs = append(attrs, hclogAttrs(a.implied)...)
	if len(attrs) == 0 {
		return a.base
	}
	return a.base.WithAttrs(attrs)
}

// slogLevel maps hclog levels onto slog's four; slog has no Trace, and
// raft's chatty Info lines ("entering follower state") stay Info.
func slogLevel(l hclog.Level) slog.Level {
	switch {
	case l <= hclog.Debug:
		return slog.LevelDebug
	case l == hclog.Info:
		return slog.LevelInfo
	case l == hclog.Warn:
		return slog.LevelWarn
	default:
		return slog.LevelError
	}
}

func (a *hclogAdapter) enabled(l hclog.Level) bool {
	if l == hclog.Off || l == hclog.NoLevel {
		return false
	}
	if floor := hclog.Level(a.level.Load()); floor != hclog.NoLevel && l < floor {
		return false
	}
	return a.handler.Enabled(context.Background(), slogLevel(l))
}

// emit writes one record. pc is the caller's program counter so slog's
// AddSource points at raft, not at this file; 0 means unknown.
func (a *hclogAdapter) emit(l hclog.Level, pc uintptr, msg string, args []any) {
	if !a.enabled(l) {
		return
	}
	r := slog.NewRecord(time.Now(), slogLevel(l), msg, pc)
	r.AddAttrs(hclogAttrs(args)...)
	_ = a.handler.Handle(context.Background(), r)
}

// callerPC returns the PC of the function that called the public logging
// method; skip 3 = runtime.Callers, callerPC, the public method.
func callerPC() uintptr {
	var pcs [1]uintptr
	runtime.Callers(3, pcs[:])
	return pcs[0]
}

func (a *hclogAdapter) Log(l hclog.Level, msg string, args ...any) {
	a.emit(l, callerPC(), msg, args)
}
func (a *hclogAdapter) Trace(msg string, args ...any) { a.emit(hclog.Trace, callerPC(), msg, args) }
func (a *hclogAdapter) Debug(msg string, args ...any) { a.emit(hclog.Debug, callerPC(), msg, args) }
func (a *hclogAdapter) Info(msg string, args ...any)  { a.emit(hclog.Info, callerPC(), msg, args) }
func (a *hclogAdapter) Warn(msg string, args ...any)  { a.emit(hclog.Warn, callerPC(), msg, args) }
func (a *hclogAdapter) Error(msg string, args ...any) { a.emit(hclog.Error, callerPC(), msg, args) }

func (a *hclogAdapter) IsTrace() bool { return a.enabled(hclog.Trace) }
func (a *hclogAdapter) IsDebug() bool { return a.enabled(hclog.Debug) }
func (a *hclogAdapter) IsInfo() bool  { return a.enabled(hclog.Info) }
func (a *hclogAdapter) IsWarn() bool  { return a.enabled(hclog.Warn) }
func (a *hclogAdapter) IsError() bool { return a.enabled(hclog.Error) }

func (a *hclogAdapter) ImpliedArgs() []any { return append([]any(nil), a.implied...) }

func (a *hclogAdapter) With(args ...any) hclog.Logger {
	implied := append(append([]any(nil), a.implied...), args...)
	return a.derive(a.name, implied)
}

func (a *hclogAdapter) Name() string { return a.name }

func (a *hclogAdapter) Named(name string) hclog.Logger {
	if a.name != "" {
		name = a.name + "." + name
	}
	return a.derive(name, a.implied)
}

func (a *hclogAdapter) ResetNamed(name string) hclog.Logger { return a.derive(name, a.implied) }

// SetLevel adds a floor on top of slog's own; it can only make logging
// quieter, since the slog handler's level belongs to the user.
func (a *hclogAdapter) SetLevel(l hclog.Level) { a.level.Store(int32(l)) }

// GetLevel reports the lowest level that would actually be written.
func (a *hclogAdapter) GetLevel() hclog.Level {
	for l := hclog.Trace; l <= hclog.Error; l++ {
		if a.enabled(l) {
			return l
		}
	}
	return hclog.Off
}

func (a *hclogAdapter) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return log.New(a.StandardWriter(opts), "", 0)
}

func (a *hclogAdapter) StandardWriter(opts *hclog.StandardLoggerOptions) io.Writer {
	w := &hclogStdWriter{a: a}
	if opts != nil {
		w.opts = *opts
	}
	return w
}

// hclogStdWriter turns stdlib log lines into records, honouring the
// "[WARN] ..." prefixes that libraries written for hclog emit.
type hclogStdWriter struct {
	a    *hclogAdapter
	opts hclog.StandardLoggerOptions
}

func (w *hclogStdWriter) Write(p []byte) (int, error) {
	line := strings.TrimRight(string(p), "\r\n")
	level := hclog.Info
	switch {
	case w.opts.ForceLevel != hclog.NoLevel:
		level = w.opts.ForceLevel
		_, line = stdLevelPrefix(line, false)
	case w.opts.InferLevels:
		if l, rest := stdLevelPrefix(line, w.opts.InferLevelsWithTimestamp); l != hclog.NoLevel {
			level, line = l, rest
		}
	}
	w.a.emit(level, 0, line, nil)
	return len(p), nil
}

// stdLevelPrefix strips a leading "[LEVEL]" (optionally after a timestamp)
// and returns the level it named, or NoLevel and the line unchanged.
func stdLevelPrefix(line string, skipTimestamp bool) (hclog.Level, string) {
	s := line
	if skipTimestamp {
		s = strings.TrimLeft(s, "0123456789 :/.+-TZ")
	}
	for _, p := range [...]struct {
		tag   string
		level hclog.Level
	}{
		{"[TRACE]", hclog.Trace},
		{"[DEBUG]", hclog.Debug},
		{"[INFO]", hclog.Info},
		{"[WARN]", hclog.Warn},
		{"[ERROR]", hclog.Error},
		{"[ERR]", hclog.Error},
	} {
		if rest, ok := strings.CutPrefix(s, p.tag); ok {
			return p.level, strings.TrimSpace(rest)
		}
	}
	return hclog.NoLevel, line
}

// hclogAttrs converts hclog's alternating key/value args into slog attrs,
// rendering hclog's formatting wrappers the way hclog would.
func hclogAttrs(args []any) []slog.Attr {
	if len(args) == 0 {
		return nil
	}
	attrs := make([]slog.Attr, 0, (len(args)+1)/2)
	for i := 0; i < len(args); i += 2 {
		if i+1 == len(args) {
			attrs = append(attrs, slog.Any(hclogExtraKey, hclogValue(args[i])))
			break
		}
		key, ok := args[i].(string)
		if !ok {
			key = fmt.Sprint(args[i])
		}
		attrs = append(attrs, slog.Any(key, hclogValue(args[i+1])))
	}
	return attrs
}

func hclogValue(v any) any {
	switch v := v.(type) {
	case hclog.Format:
		if len(v) == 0 {
			return ""
		}
		if f, ok := v[0].(string); ok {
			return fmt.Sprintf(f, v[1:]...)
		}
		return fmt.Sprint(v...)
	case hclog.Hex:
		return "0x" + strconv.FormatUint(uint64(v), 16)
	case hclog.Octal:
		return "0" + strconv.FormatUint(uint64(v), 8)
	case hclog.Binary:
		return "0b" + strconv.FormatUint(uint64(v), 2)
	case hclog.Quote:
		return strconv.Quote(string(v))
	}
	return v
}
