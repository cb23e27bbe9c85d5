package zkwire

import (
	"encoding/binary"

	"github.com/zooraft/zoo"
	"github.com/zooraft/zoo/internal/jute"
)

// Pipelining: a client may send many requests without waiting for replies
// (go-zookeeper shares one connection between goroutines; node and kazoo's
// async calls do the same). Consecutive writes of one connection run
// concurrently through a zoo.WriteQueue, which hands them to the leader in
// request order, so they commit in that order while their replication and
// fsyncs overlap. Any other request waits until the writes before it have
// replied, so a read sees every earlier write of its connection and replies
// stay in request order, as ZooKeeper's CommitProcessor keeps them.

// maxPipelined bounds the writes in flight on one connection; the reader
// stops taking requests until one finishes.
const maxPipelined = 256

// pipelinedOps are the writes that may overlap.
var pipelinedOps = map[int32]bool{
	jute.OpCreate: true, jute.OpCreate2: true, jute.OpCreateContainer: true, jute.OpCreateTTL: true,
	jute.OpDelete: true, jute.OpSetData: true, jute.OpSetACL: true, jute.OpMulti: true,
}

// pipeline is the reader goroutine's state for writes in flight.
type pipeline struct {
	queue    zoo.WriteQueue
	slots    chan struct{} // capacity maxPipelined: one per write in flight
	lastDone chan struct{} // closed once the latest write's reply is queued; nil if none
}

// pipelinable reports whether a request frame is a write that may overlap.
func pipelinable(frame []byte, s *zoo.ServerSession) bool {
	if len(frame) < 8 || s == nil || s.ReadOnly() {
		return false
	}
	return pipelinedOps[int32(binary.BigEndian.Uint32(frame[4:8]))]
}

// startWrite runs a write concurrently; its reply is queued after the
// previous write's. It returns false once the connection is closing.
func (c *conn) startWrite(frame []byte) bool {
	p := &c.pipe
	select {
	case p.slots <- struct{}{}:
	case <-c.done:
		return false
	}
	prev, mine := p.lastDone, make(chan struct{})
	p.lastDone = mine
	ctx, release := p.queue.Next(c.ctx)
	c.srv.wg.Add(1)
	go func() {
		defer c.srv.wg.Done()
		defer func() { <-p.slots }()
		var reply []byte
		then := closeNow // unless serve returns
		func() {
			defer c.survive()
			reply, then = c.serve(ctx, frame)
		}()
		release()
		if prev != nil {
			<-prev
		}
		if reply != nil {
			// The reply header's zxid is the replica's latest as it is sent,
			// so that zxids never go backwards on the connection.
			binary.BigEndian.PutUint64(reply[8:16], uint64(c.srv.ens.LastZxid()))
		}
		c.deliver(reply, then)
		close(mine)
	}()
	return true
}

// drainWrites waits until every write in flight has queued its reply.
func (c *conn) drainWrites() {
	if p := &c.pipe; p.lastDone != nil {
		<-p.lastDone
		p.lastDone = nil
	}
}
