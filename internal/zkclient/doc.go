// Package zkclient is a ZooKeeper client: the wire protocol of ZooKeeper
// 3.8/3.9 (every request up to whoAmI, persistent and recursive watches,
// multiRead, read-only mode, chroot), spoken to any ZooKeeper-compatible
// server, zoo's zkwire included. It exists because go-zookeeper/zk cannot
// send addWatch, removeWatches, checkWatches, getEphemerals,
// getAllChildrenNumber or whoAmI and has neither chroot nor read-only mode;
// zoo's cli is built on it.
//
// # Sessions
//
// [Connect] returns at once; a [Conn] connects in the background, trying its
// servers in order, round-robin, and keeps its session across connection
// losses: it resumes it on the next server with the session id, password and
// last zxid seen, replays its [Conn.AddAuth] identities and re-arms its
// watches (setWatches, in 128 KiB batches). Requests made while there is no
// connection wait for one, as long as their context allows; requests in
// flight when a connection drops fail with zoo.ErrConnectionLoss, their
// outcome unknown. The session ends for good when the ensemble expired it
// ([StateExpired], zoo.ErrSessionExpired), when a server refused an AddAuth
// ([StateAuthFailed], zoo.ErrAuthFailed), or on [Conn.Close] (zoo.ErrClosed).
//
// The client pings after a third of the session timeout without sending and
// drops a connection that was silent for two thirds of it.
//
// # Ordering
//
// Requests are pipelined: many may be in flight on the connection, and the
// server answers them in the order sent (a reply out of order is a protocol
// error that drops the connection). Calls made one after another by one
// goroutine therefore take effect in that order. Every watch notification and
// state change goes to Options.OnEvent, on one goroutine, in order; a call
// returns only after OnEvent handled every notification that reached the
// client before the call's reply, which is ZooKeeper's promise that a client
// sees a watch event before the data that follows it.
//
// # Watches
//
// Get, Exists and Children take a watch flag; [Conn.AddWatch] sets persistent
// and recursive watches. The client records a watch only when the reply says
// the server set it (exists sets one on a missing node too), as the Java
// client's ZKWatchManager does, and forgets one-shot watches when they fire;
// that record is what setWatches re-arms on a new connection, relative to the
// last zxid seen, so changes missed while disconnected arrive as events.
//
// # Chroot
//
// With Options.Chroot every path sent is prefixed and every path received
// (created paths, multi results, event paths, getEphemerals results) has the
// prefix stripped. getConfig reads /zookeeper/config outside the chroot, as
// the Java client does. The Java 3.8 client applies no chroot to
// getEphemerals at all; this client roots the prefix at the chroot and
// returns only the ephemerals inside it.
package zkclient
