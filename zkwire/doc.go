// Package zkwire serves Apache ZooKeeper's client wire protocol on top of a
// replica of a zoo ensemble, so that existing ZooKeeper clients and tools
// (zkCli.sh, Curator, kazoo, go-zookeeper/zk, node-zookeeper-client, `echo
// srvr | nc`) work against zoo unchanged.
//
// # Usage
//
//	srv, err := zkwire.NewServer(ens, zkwire.Config{})
//	ln, err := net.Listen("tcp", ":2181")
//	go srv.Serve(ln)
//	defer srv.Close()
//
// Run one Server per replica; a client given every replica's address fails
// over between them and keeps its session (ZooKeeper's session resumption).
//
// # Protocol
//
// Frames are length-prefixed jute records (see jute.go). A connection starts
// with a ConnectRequest, which creates a session or resumes one by id and
// password on any replica, or with a four-letter word. Every ZooKeeper 3.8
// opcode is served except sasl; reconfig only with Config.ReconfigEnabled
// (else ZRECONFIGDISABLED), as membership changes of the ensemble (see
// reconfig.go for how it differs from ZooKeeper's). Unknown opcodes get
// ZUNIMPLEMENTED and the connection is closed. Requests
// of one connection are processed strictly in order; watch notifications are
// queued as the replica applies the write that fires them, so a client sees
// them before that write's reply and before any later read's.
//
// # Sessions
//
// A session outlives its connection: when the connection drops (or Close
// runs) the session is detached and expires after its timeout unless the
// client resumes it. A replica that stops serving (cut off from its quorum)
// drops its clients so that they fail over while their sessions live. With
// Config.ReadOnlyMode it turns read-only instead, as ZooKeeper's
// readonlymode.enabled: clients that connect asking for read-only get reads
// from the replica's (possibly stale) tree and ZNOTREADONLY for writes, until
// the replica serves again and closes their connections.
package zkwire
