package peer

import (
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// rateLimitedLog logs at most once per interval per key (a remote
// address), so a stranger knocking on the port cannot flood the log.
type rateLimitedLog struct {
	logger   hclog.Logger
	level    hclog.Level
	interval time.Duration

	mu   sync.Mutex // guards last
	last map[string]time.Time
}

func newRateLimitedLog(l hclog.Logger, level hclog.Level, interval time.Duration) *rateLimitedLog {
	return &rateLimitedLog{logger: l, level: level, interval: interval, last: map[string]time.Time{}}
}

func (r *rateLimitedLog) log(key, msg string, args ...any) {
	now := time.Now()
	r.mu.Lock()
	if now.Sub(r.last[key]) < r.interval {
		r.mu.Unlock()
		return
	}
	if len(r.last) >= 1024 {
		for k, at := range r.last {
			if now.Sub(at) >= r.interval {
				delete(r.last, k)
			}
		}
		if len(r.last) >= 1024 { // a crowd: forget them rather than grow
			clear(r.last)
		}
	}
	r.last[key] = now
	r.mu.Unlock()
	r.logger.Log(r.level, msg, args...)
}
