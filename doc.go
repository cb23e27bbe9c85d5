// Package zoo is an embeddable coordination service with Apache ZooKeeper's
// data model and guarantees: Go services import it and host the replicas
// themselves, so leader election, locks and a shared configuration store need
// no separate server.
//
// # Ensemble and replicas
//
// An [Ensemble] is one replica of a Raft group (github.com/hashicorp/raft). Each
// replica keeps the whole znode tree in memory, in a copy-on-write B-tree, and
// its raft log and snapshots on disk (bbolt). [Open] with a zero [Config] gives
// a one-replica, in-memory ensemble for tests; real deployments give every
// replica a Dir, a BindAddr and the same Peers list.
//
// # Security
//
// Replicas trust each other completely: whoever reaches a replica's port as a
// peer can write anything as anyone. [Config.PeerTLS] makes every link
// mutual TLS 1.3 and admits only replicas whose certificate names a member;
// without it a replica admits connections from members' addresses only,
// which is enough on a trusted network and no more. Sessions authenticate
// with [Session.AddAuth] (digest, ip); a protocol server authenticates a
// client that proved a certificate as x509 ([ServerSession.AddX509Auth],
// [X509ID]). ACLs decide what each identity may do.
//
// # Sessions
//
// All znode operations go through a [Session], created on one replica with
// [Ensemble.NewSession]. A session owns its ephemeral nodes and watches. It
// stays alive while its replica is part of the quorum and keeps reporting it to
// the leader; if the replica dies or is cut off for longer than the session
// timeout, the leader expires the session and its ephemerals vanish in one
// transaction. [Session.Done] tells the owner.
//
// A protocol server that serves remote clients (zkwire, ZooKeeper's wire
// protocol) holds a [ServerSession] for each instead: a Session whose life
// follows its client's pings, whose watches report to one [Watcher] in apply
// order, and which a reconnecting client can resume on any replica. An
// embedder does not need it.
//
// # Consistency
//
// As in ZooKeeper: writes are linearizable (they go through the Raft leader,
// from any replica) and a write returns only after the session's own replica
// applied it, so a session reads its own writes. Reads are served by the local
// replica and may lag other replicas' writes; [Session.Sync] catches the
// replica up with the leader first. Per session, a watch event is delivered
// before any read that reflects the change. A replica outside a quorum refuses
// service with [ErrNotServing]; a read-only session
// ([Ensemble.ReadOnlySession], for ZooKeeper's read-only mode) still reads
// its possibly stale tree there, and is refused every write.
//
// # Watches
//
// [Session.GetW], [Session.ExistsW] and [Session.ChildrenW] set one-shot
// watches: a channel that receives one [Event] and is closed.
// [Session.AddWatch] sets persistent (optionally recursive) watches.
//
// # Errors
//
// Every ZooKeeper error code has one error value ([ErrNoNode], [ErrNodeExists],
// [ErrBadVersion], ...); znode errors come wrapped in a [*PathError]. Compare
// with errors.Is. After [ErrConnectionLoss] the outcome of a write is unknown.
package zoo
