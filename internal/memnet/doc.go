// Package memnet is an in-process network of replica endpoints, for tests and
// for the zero-config single-replica ensemble, where opening a TCP port would
// be both unnecessary and a source of flakiness.
//
// # Usage
//
// A [Network] holds endpoints addressed by [raft.ServerAddress]. Each
// [Endpoint] carries two kinds of traffic, matching what a replica needs from
// its transport:
//
//   - raft traffic, through a [raft.InmemTransport] returned by
//     [Endpoint.Raft]; the Network keeps the routes between the in-memory
//     transports in step with which endpoints are alive and reachable, so
//     callers never call Connect or Disconnect themselves;
//   - zoo peer RPC, through [Endpoint.Dial] and [Endpoint.Listener], as
//     [net.Pipe] connections.
//
// # Faults
//
// [Network.Partition], [Network.Isolate] and [Network.Heal] change which
// endpoints can reach each other. A cut takes effect before the call returns:
// raft routes across it are removed (so raft RPCs across it fail), peer-RPC
// connections across it are closed, and new dials across it fail with
// [ErrUnreachable]. Reachability belongs to addresses, not to Endpoint values,
// so a replica restarted at the same address (Close, then [Network.Endpoint]
// again) stays on its side of the partition, as a restarted host would.
//
// # Concurrency
//
// All methods are safe for concurrent use. The package starts no goroutines.
package memnet
