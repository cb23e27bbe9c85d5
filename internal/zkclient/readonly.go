package zkclient

import (
	"errors"
	"io"
	"time"
)

// Pauses between rounds of looking for a read-write server while connected
// read-only, as the Java client's pingRwServer: 100ms, doubling up to 60s.
const (
	minProbe = 100 * time.Millisecond
	maxProbe = 60 * time.Second
)

var errFoundRW = errors.New("zkclient: found a read-write server")

// probeRW looks for a read-write server while cn is read-only: it asks the
// other servers "isro" (the four-letter word ZooKeeper always allows in
// read-only mode) and, when one answers "rw", drops cn so that the
// connection loop connects there next.
func (c *Conn) probeRW(cn *conn) {
	pause := minProbe
	n := len(c.servers)
	for {
		t := time.NewTimer(pause)
		select {
		case <-cn.done:
			t.Stop()
			return
		case <-t.C:
		}
		pause = min(pause*2, maxProbe)
		for i := 1; i < n; i++ {
			index := (cn.index + i) % n
			if c.isReadWrite(c.servers[index]) {
				c.mu.Lock()
				c.preferred = index
				c.mu.Unlock()
				c.log.Info("zkclient: found a read-write server", "server", c.servers[index])
				cn.kill(errFoundRW)
				return
			}
			select {
			case <-cn.done:
				return
			default:
			}
		}
	}
}

// isReadWrite reports whether the server at addr answers isro with "rw".
func (c *Conn) isReadWrite(addr string) bool {
	nc, err := c.dial(c.ctx, addr)
	if err != nil {
		return false
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(c.opts.DialTimeout))
	if _, err := nc.Write([]byte("isro")); err != nil {
		return false
	}
	b, _ := io.ReadAll(io.LimitReader(nc, 16))
	return string(b) == "rw"
}
