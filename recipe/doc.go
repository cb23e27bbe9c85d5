// Package recipe implements ZooKeeper's coordination recipes (the ones Apache
// Curator and etcd's concurrency package made standard) on top of a
// [zoo.Session], using only its public API: the same znodes, watches and
// sessions any ZooKeeper client has. They work on an embedded session and,
// through the same node layout, next to Curator clients connected to a zoo
// replica's ZooKeeper port.
//
// # Recipes
//
//	Recipe          Constructor                 What it gives
//	Election        NewElection                 leader election: Campaign/Resign (latch), Lead/LeadLoop (selector),
//	                                            Leader, Observe, Proclaim
//	Mutex           NewMutex                    exclusive lock with fencing token (Lock, TryLock, Unlock, Token, Lost)
//	RWMutex         NewRWMutex                  readers-writer lock, writers not starved (RLock, Lock, Downgrade)
//	Semaphore       NewSemaphore                N leases at a time (Acquire, TryAcquire, Lease.Release)
//	Barrier         NewBarrier                  a gate: Wait blocks while the barrier is set
//	DoubleBarrier   NewDoubleBarrier            N participants enter together and leave together
//	Queue           NewQueue, NewPriorityQueue  distributed FIFO (or priority) queue, each item taken exactly once
//	Counter         NewCounter                  shared counter by versioned compare-and-set (Add, CompareAndSet, Watch)
//	Group           NewGroup                    group membership / service discovery (Register, Members, Watch)
//	TreeCache       NewTreeCache                a local, watched copy of a subtree (WatchJSON: typed config values)
//
// Every constructor takes the session and the recipe's path; none does I/O.
// Bad input (a nil session, an empty or malformed path, a count below one)
// is reported by the constructor as an error wrapping zoo.ErrBadArguments, a
// bad path as a *zoo.PathError.
//
// What each recipe does when its session ends (expired by the ensemble, or
// closed) and when the session's replica loses its connection to the leader
// or its quorum (zoo.ErrConnectionLoss, zoo.ErrNotServing; see the sections
// below for the rules they share):
//
//	Recipe         Session expired or closed                Connection loss, no quorum
//	Election       leadership lost: Lost closes, Lead's     retried; a campaign node created with an unknown
//	               context is cancelled; the next leads     outcome is found by its UUID; a leader whose replica
//	                                                        is out of quorum past the suspend grace steps down
//	Mutex,         the lock is lost: Lost closes, Unlock    as Election (ErrSuspended past the grace)
//	RWMutex        reports ErrLost; the next waiter locks
//	Semaphore      the lease is lost: Lease.Lost closes,    as Election
//	               Release reports ErrLost
//	Barrier        the node is persistent and stays set;    retried: every operation is idempotent
//	               Wait returns the session's error
//	DoubleBarrier  the participant's node goes: it stops    retried; a participant node is found by its token,
//	               counting; Enter/Leave return the         and never counts twice
//	               session's error
//	Queue,         items are persistent and stay; a         Take: settled through its claim marker, never lost
//	PriorityQueue  blocked Take returns the session's       nor duplicated; Put: found by its token, or an error
//	               error                                    wrapping zoo.ErrConnectionLoss (outcome unknown)
//	Counter        the node is persistent and stays;        the same versioned write is retried while it can only
//	               calls return the session's error         apply once; else an error wrapping ErrConnectionLoss
//	Group          the member's node goes; Registration     retried; Register finds its own node by its owner
//	               ends (Done, Err); Watch's feed ends
//	TreeCache      the cache stops (Done, Err) and keeps    retried; the cache serves its last state meanwhile,
//	               answering from its last state            and resyncs if its watch was reset
//
// # Contenders
//
// Election, Mutex, RWMutex and Semaphore queue contenders as ephemeral
// sequential znodes under the recipe's path. The lowest sequence goes first;
// each waiter watches only the node it waits for, so a release wakes one
// waiter (no herd effect) and waiters are served in arrival order. Node names
// carry a fresh UUID per acquisition ("_c_<uuid>-lock-0000000007", the form
// of Curator's protected mode), which is how a contender finds its own node
// when the outcome of its create is unknown.
//
// A recipe value is one participant and is not reentrant: acquiring through a
// value that already holds, or is already acquiring, returns
// [ErrNotReentrant] rather than deadlocking. Values are cheap; goroutines
// that contend use one each, on one session or many.
//
// # Sessions
//
// Everything a recipe holds lives in its session. When the session ends
// (closed, or expired by the ensemble because its replica was cut off or died
// for longer than the session timeout), its ephemeral nodes vanish: locks,
// leases and leadership pass to the next in line, group members leave. A
// blocked call then returns the session's error (zoo.ErrSessionExpired or
// zoo.ErrClosed); a session cannot be revived, so a recipe whose session ended
// is done: make new values on a new session.
//
// The holder of a lock, lease or leadership is told the moment its hold
// ends, through a Lost channel (and a cancelled context for
// [Election.Lead]). An embedded session's replica that is cut off from the
// quorum cannot learn that the ensemble expired the session until it is back,
// and meanwhile the ensemble may already have let the next contender in. So a
// holder also gives up when its replica has not been able to serve for
// longer than a grace period (by default a third of the session timeout,
// [WithSuspendGrace]): its Lost channel closes with [ErrSuspended], and the
// recipe deletes its node when it can, so that a holder that gave up does not
// block the others if its session survives. A holder must stop acting on the
// hold when Lost closes; where that cannot be guaranteed in time, protect the
// resource with the hold's fencing token (Token methods: the zxid of the
// node's creation, increasing from one holder to the next).
//
// # Connection loss and quorum loss
//
// zoo.ErrConnectionLoss (a write's outcome is unknown: it may still commit)
// and zoo.ErrNotServing (the replica is out of quorum; nothing was done) are
// transient. Recipes retry them, with a short backoff, until the call's
// context or the session ends, and never assume that a write failed: a
// sequential create is found again by the UUID or token in its name (after a
// Sync), deletes are idempotent, and compare-and-set operations re-read
// before retrying. Where the outcome cannot be established (see Counter and
// Queue.Put), the call says so with an error wrapping zoo.ErrConnectionLoss
// rather than guess.
//
// # Contexts and cleanup
//
// Every call that can block takes a context. When it ends, the call returns
// its error and removes what it created: a Lock, Campaign, Acquire or
// DoubleBarrier.Enter that gives up deletes its node, with a fresh context
// bounded by the session timeout (between one and five seconds), and keeps
// trying in the background if the ensemble cannot be reached, until the node
// is gone or the session ends. A create cut short may still commit after
// that (it was in flight at a raft leader being replaced), so after an
// unknown outcome the background also looks again for a while (twice the
// session timeout) and deletes a late copy. Releases (Unlock, Resign,
// Release) do the same when their context ends first.
package recipe
