package zkclient

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/zooraft/zoo"
)

// State is where a Conn's session is, numbered as ZooKeeper's KeeperState
// where it has the state.
type State int32

// Session states.
const (
	// StateDisconnected: a live connection was lost; the client is trying
	// the servers again and the session may still be resumed.
	StateDisconnected State = 0
	// StateConnecting: no session yet; the client is trying the servers.
	StateConnecting State = 1
	// StateConnected: the session is established on a read-write server.
	StateConnected State = 3
	// StateAuthFailed: the server refused an AddAuth and closed; final.
	StateAuthFailed State = 4
	// StateConnectedReadOnly: connected to a server in read-only mode:
	// reads work, writes fail with zoo.ErrNotReadOnly.
	StateConnectedReadOnly State = 5
	// StateClosed: Close was called; final.
	StateClosed State = 7
	// StateExpired: the ensemble expired the session; final.
	StateExpired State = -112
)

func (s State) String() string {
	switch s {
	case StateDisconnected:
		return "Disconnected"
	case StateConnecting:
		return "Connecting"
	case StateConnected:
		return "Connected"
	case StateAuthFailed:
		return "AuthFailed"
	case StateConnectedReadOnly:
		return "ConnectedReadOnly"
	case StateClosed:
		return "Closed"
	case StateExpired:
		return "Expired"
	}
	return fmt.Sprintf("State(%d)", int32(s))
}

// connected reports whether requests can be sent in state s.
func (s State) connected() bool { return s == StateConnected || s == StateConnectedReadOnly }

// Event types the client makes up itself when RemoveWatches removes watches,
// with ZooKeeper's numbers (Watcher.Event.EventType); the zoo package has no
// names for them.
const (
	EventDataWatchRemoved       zoo.EventType = 5
	EventChildWatchRemoved      zoo.EventType = 6
	EventPersistentWatchRemoved zoo.EventType = 7
)

// Event is a watch notification or a session state change.
type Event struct {
	// Type is zoo.EventNone for a state change, else what happened to Path.
	Type zoo.EventType
	// State is the session state: the new one for a state change, the
	// connection's for a notification.
	State State
	// Path is the znode, with the chroot stripped ("" for a state change).
	Path string
	// Zxid is what the server sent with a notification: ZooKeeper 3.8
	// sends -1, zkwire the zxid of the change. 0 for the client's own events.
	Zxid int64
}

func (e Event) String() string {
	if e.Type == zoo.EventNone {
		return "state " + e.State.String()
	}
	return fmt.Sprintf("%v %s", e.Type, e.Path)
}

// eventQueue runs OnEvent on one goroutine, in the order events were queued.
// It counts events queued and delivered, so that a request's caller can wait
// until every notification that preceded its reply on the wire was handled:
// ZooKeeper's promise that a client sees a watch event before the data that
// follows it.
type eventQueue struct {
	fn   func(Event)
	wake chan struct{} // capacity 1: something was queued or closing was set
	done chan struct{} // closed when the delivery goroutine ends
	gid  atomic.Uint64 // id of the delivery goroutine

	mu        sync.Mutex // guards every field below
	q         []Event
	queued    uint64
	delivered uint64
	progress  chan struct{} // closed and replaced when delivered grows
	closing   bool
}

func newEventQueue(fn func(Event)) *eventQueue {
	q := &eventQueue{fn: fn, wake: make(chan struct{}, 1), done: make(chan struct{}),
		progress: make(chan struct{})}
	go q.run()
	return q
}

// push queues an event; it never blocks.
func (q *eventQueue) push(ev Event) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closing {
		return
	}
	q.queued++
	if q.fn == nil {
		q.delivered = q.queued
		return
	}
	q.q = append(q.q, ev)
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// mark returns the number of events queued so far.
func (q *eventQueue) mark() uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.queued
}

// wait blocks until the first seq events were delivered, ctx is done, or
// the queue ends. Called on the delivery goroutine itself (a request made
// from OnEvent), it returns at once: that goroutine cannot wait for itself.
func (q *eventQueue) wait(ctx context.Context, seq uint64) {
	checked := false
	for {
		q.mu.Lock()
		ok, ch := q.delivered >= seq || q.fn == nil, q.progress
		q.mu.Unlock()
		if ok {
			return
		}
		if !checked {
			if q.onDeliveryGoroutine() {
				return
			}
			checked = true
		}
		select {
		case <-ch:
		case <-q.done:
			return
		case <-ctx.Done():
			return
		}
	}
}

// onDeliveryGoroutine reports whether the caller runs inside OnEvent.
func (q *eventQueue) onDeliveryGoroutine() bool { return goid() == q.gid.Load() }

// close delivers what is queued, then ends the delivery goroutine.
func (q *eventQueue) close() {
	q.mu.Lock()
	q.closing = true
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *eventQueue) run() {
	q.gid.Store(goid())
	defer close(q.done)
	for {
		q.mu.Lock()
		if len(q.q) == 0 {
			closing := q.closing
			q.mu.Unlock()
			if closing {
				return
			}
			<-q.wake
			continue
		}
		ev := q.q[0]
		q.q[0] = Event{}
		q.q = q.q[1:]
		q.mu.Unlock()

		q.fn(ev)

		q.mu.Lock()
		q.delivered++
		close(q.progress)
		q.progress = make(chan struct{})
		q.mu.Unlock()
	}
}

// goid returns the current goroutine's id, parsed from its stack header
// ("goroutine 17 [running]:"). Go offers no cheaper way; it is only called
// where a request would otherwise wait for OnEvent, and in Close, so that a
// callback that calls back into the Conn cannot deadlock on itself.
func goid() uint64 {
	var buf [64]byte
	s := string(buf[:runtime.Stack(buf[:], false)])
	s = strings.TrimPrefix(s, "goroutine ")
	if i := strings.IndexByte(s, ' '); i > 0 {
		id, _ := strconv.ParseUint(s[:i], 10, 64)
		return id
	}
	return 0
}
