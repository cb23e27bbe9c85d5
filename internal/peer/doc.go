// Package peer is how replicas reach each other, and who may: one TCP port
// per replica carries both raft and zoo's own peer RPC (forwarded writes,
// session touches, sync, membership, commit notices).
//
//   - transport.go: the port. Every connection is admitted (admit.go), then
//     names what it carries in its first byte and is handed to raft or to
//     the RPC server.
//   - admit.go: who may connect. With TLS, a peer proves itself by a
//     certificate that chains to the configured CA and names the host of a
//     member (or a configured identity); without, its source address must
//     be a member's. Connections per remote address are bounded and a
//     handshake has a deadline.
//   - tls.go: the mutual TLS 1.3 settings of both ends of a link.
//   - frame.go, server.go, client.go: the framed request/response RPC, whose
//     frames are bounded and whose buffers grow only as bytes arrive.
//
// The package knows nothing of the ensemble: the root package gives it the
// current members and the handlers.
package peer
