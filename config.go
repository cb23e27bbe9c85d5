package zoo

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/hashicorp/raft"
)

// Config configures one replica. The zero value is a working single-replica
// ensemble held in memory: handy in tests, not durable.
type Config struct {
	// ID names this replica in the ensemble. Default "1".
	ID string
	// Dir holds the raft log, raft.db (bbolt: raft's term and vote, the dir's
	// identity) and snapshots. Empty means in memory: nothing survives Close. A
	// Dir may be opened by one process at a time.
	Dir string
	// LogStore is where Dir keeps the raft log: [LogStoreWAL] (the default
	// for a fresh Dir) or [LogStoreBolt]. A Dir keeps the store it was created
	// with (one from before the WAL, raft.db); asking for the other is an
	// error. Empty: whichever the Dir has.
	LogStore LogStore
	// BindAddr is the TCP address replicas use to reach this one (raft and zoo's
	// peer RPC share it). Empty with no Peers and no Transport means an in-memory
	// transport (a one-replica ensemble needs no network).
	BindAddr string
	// AdvertiseAddr is the address other replicas dial; default: the bound address.
	AdvertiseAddr string
	// Peers lists the initial members, this replica included (at the address it
	// advertises), when bootstrapping a fresh Dir; at least one must vote. Every
	// member must be given the same list. Ignored when Dir already holds state.
	// Empty: a one-replica ensemble of this replica. With Join, Peers lists the
	// current members instead: nothing is bootstrapped, but until this replica
	// is added only they are admitted on its port.
	Peers []Peer
	// Join starts a fresh replica without bootstrapping: it waits to be added by
	// [Ensemble.AddVoter] or [Ensemble.AddObserver] on a member. Give it the
	// current members as Peers: without them it admits anyone who reaches its
	// port (with PeerTLS, any replica certificate of the CA) until it is added.
	Join bool
	// PeerTLS secures the links between replicas with mutual TLS 1.3 (see
	// [PeerTLS]); every member must set it. Nil: plaintext links, which
	// anyone who can reach the port and comes from a member's address can
	// use as a replica would: for trusted networks only.
	PeerTLS *PeerTLS
	// Transport overrides how replicas reach each other (zootest uses an
	// in-memory one); BindAddr, AdvertiseAddr and PeerTLS must then be
	// empty. Default: TCP on BindAddr.
	Transport Transport

	// TickTime is the base time unit, as ZooKeeper's tickTime. Default 2s. Raft's
	// heartbeat and election timeouts are TickTime/2; the leader checks session
	// expiry and replicas report their live sessions every TickTime/2.
	TickTime time.Duration
	// MinSessionTimeout and MaxSessionTimeout bound negotiated session timeouts.
	// Defaults 2 and 20 TickTimes.
	MinSessionTimeout time.Duration
	MaxSessionTimeout time.Duration
	// SnapshotThreshold is the number of log entries between snapshots while
	// the tree is small; for a tree of more than eight times as many znodes it
	// is an eighth of the tree's size (see snapshot_schedule.go). Default 8192.
	SnapshotThreshold uint64
	// SnapshotsRetained is how many snapshots to keep on disk. Default 2.
	SnapshotsRetained int
	// ContainerCheckInterval is how often the leader deletes empty containers and
	// expired TTL nodes. Default 60s, as ZooKeeper's znode.container.checkIntervalMs.
	ContainerCheckInterval time.Duration
	// SuperDigest, if set, is a digest id ("super:base64sha1", see [DigestID])
	// whose holder bypasses every ACL, as DigestAuthenticationProvider.superDigest.
	SuperDigest string
	// X509SuperUser, if set, is an x509 id (a certificate subject in RFC 2253
	// form, see [X509ID]) whose holder bypasses every ACL, as ZooKeeper's
	// X509AuthenticationProvider.superUser.
	X509SuperUser string
	// Logger receives zoo's and raft's logs. Nil discards them.
	Logger *slog.Logger

	// hooks lets this package's tests reach inside; nil in real use.
	hooks *testHooks
}

// testHooks are knobs for this package's tests.
type testHooks struct {
	tuneRaft          func(*raft.Config) // adjusts raft's configuration last
	noCommitBroadcast bool               // the leader sends no commit notices
	afterVerifyLeader func()             // runs in leaderSyncIndex right after the leadership check
	noCheckpoints     bool               // the leader appends no verifier checkpoints on its own
}

// Peer is one member of the ensemble.
type Peer struct {
	ID   string
	Addr string
	// Observer makes the member a non-voting observer: it serves reads and
	// forwards writes but does not count toward the quorum.
	Observer bool
}

// ConfigError reports a bad Config field.
type ConfigError struct {
	Field  string
	Reason string
}

func (e *ConfigError) Error() string { return "zoo: config " + e.Field + ": " + e.Reason }

// ErrDirLocked means another process holds the data dir.
var ErrDirLocked = errors.New("zoo: data dir is locked by another process")

// withDefaults returns cfg with defaults filled in, or a *ConfigError.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.ID == "" {
		cfg.ID = "1"
	}
	if cfg.TickTime == 0 {
		cfg.TickTime = 2 * time.Second
	}
	if cfg.TickTime < 10*time.Millisecond {
		return cfg, &ConfigError{"TickTime", fmt.Sprintf("%v is below the 10ms minimum", cfg.TickTime)}
	}
	if cfg.MinSessionTimeout == 0 {
		cfg.MinSessionTimeout = 2 * cfg.TickTime
	}
	if cfg.MaxSessionTimeout == 0 {
		cfg.MaxSessionTimeout = 20 * cfg.TickTime
	}
	if cfg.MinSessionTimeout < 0 || cfg.MaxSessionTimeout < cfg.MinSessionTimeout {
		return cfg, &ConfigError{"MaxSessionTimeout", fmt.Sprintf("bounds [%v, %v] are contradictory",
			cfg.MinSessionTimeout, cfg.MaxSessionTimeout)}
	}
	if limit := time.Duration(math.MaxInt32) * time.Millisecond; cfg.MaxSessionTimeout > limit {
		// Sessions carry their timeout as ZooKeeper does, in int32 milliseconds.
		return cfg, &ConfigError{"MaxSessionTimeout", fmt.Sprintf("%v is above ZooKeeper's limit of %v", cfg.MaxSessionTimeout, limit)}
	}
	if cfg.MinSessionTimeout < cfg.TickTime {
		return cfg, &ConfigError{"MinSessionTimeout", "must be at least one TickTime"}
	}
	if cfg.SnapshotThreshold == 0 {
		cfg.SnapshotThreshold = 8192
	}
	if cfg.LogStore != "" && cfg.LogStore != LogStoreWAL && cfg.LogStore != LogStoreBolt {
		return cfg, &ConfigError{"LogStore", fmt.Sprintf("%q is neither %q nor %q", cfg.LogStore, LogStoreWAL, LogStoreBolt)}
	}
	if cfg.SnapshotsRetained == 0 {
		cfg.SnapshotsRetained = 2
	}
	if cfg.SnapshotsRetained < 0 {
		return cfg, &ConfigError{"SnapshotsRetained", "must not be negative"}
	}
	if cfg.ContainerCheckInterval == 0 {
		cfg.ContainerCheckInterval = 60 * time.Second
	}
	if cfg.ContainerCheckInterval < 0 {
		return cfg, &ConfigError{"ContainerCheckInterval", "must not be negative"}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	seen, seenAddr := map[string]bool{}, map[string]bool{}
	self, voter := false, false
	for i, p := range cfg.Peers {
		field := fmt.Sprintf("Peers[%d]", i)
		if p.ID == "" || p.Addr == "" {
			return cfg, &ConfigError{field, "needs both ID and Addr"}
		}
		if seen[p.ID] {
			return cfg, &ConfigError{field, fmt.Sprintf("duplicate ID %q", p.ID)}
		}
		seen[p.ID] = true
		if seenAddr[p.Addr] {
			// raft would refuse the bootstrap configuration.
			return cfg, &ConfigError{field, fmt.Sprintf("duplicate Addr %q", p.Addr)}
		}
		seenAddr[p.Addr] = true
		if p.ID == cfg.ID {
			self = true
		}
		voter = voter || !p.Observer
	}
	if len(cfg.Peers) > 0 && !voter {
		return cfg, &ConfigError{"Peers", "needs at least one voting member: all are observers"}
	}
	if len(cfg.Peers) > 0 && !self && !cfg.Join {
		return cfg, &ConfigError{"Peers", fmt.Sprintf("does not include this replica's ID %q", cfg.ID)}
	}
	if len(cfg.Peers) > 0 && cfg.BindAddr == "" && cfg.Transport == nil {
		return cfg, &ConfigError{"BindAddr", "required when Peers are given"}
	}
	if cfg.Join && cfg.BindAddr == "" && cfg.Transport == nil {
		return cfg, &ConfigError{"BindAddr", "required to join an ensemble"}
	}
	if cfg.Transport != nil && cfg.BindAddr != "" {
		return cfg, &ConfigError{"BindAddr", "contradicts Transport: a custom transport decides addresses"}
	}
	if cfg.Transport != nil && cfg.AdvertiseAddr != "" {
		return cfg, &ConfigError{"AdvertiseAddr", "contradicts Transport: a custom transport decides addresses"}
	}
	if cfg.PeerTLS != nil {
		if cfg.Transport != nil {
			return cfg, &ConfigError{"PeerTLS", "contradicts Transport: a custom transport secures its own links"}
		}
		if cfg.BindAddr == "" {
			return cfg, &ConfigError{"PeerTLS", "needs BindAddr: a replica without it has no links to secure"}
		}
		if err := cfg.PeerTLS.check(); err != nil {
			return cfg, err
		}
	}
	if cfg.AdvertiseAddr != "" && cfg.BindAddr == "" {
		return cfg, &ConfigError{"AdvertiseAddr", "needs BindAddr: without it the replica does not listen"}
	}
	if cfg.SuperDigest != "" {
		if _, err := fixupACL([]ACL{{PermAll, ID{"digest", cfg.SuperDigest}}}, nil); err != nil {
			return cfg, &ConfigError{"SuperDigest", "must be user:base64hash as DigestID returns"}
		}
	}
	if cfg.X509SuperUser != "" && !validX509ID(cfg.X509SuperUser) {
		return cfg, &ConfigError{"X509SuperUser", fmt.Sprintf("%q is not a distinguished name (e.g. CN=admin,O=Acme)", cfg.X509SuperUser)}
	}
	return cfg, nil
}

// clampTimeout negotiates a session timeout into the configured bounds, in
// whole milliseconds as sessions carry it.
func (cfg *Config) clampTimeout(d time.Duration) time.Duration {
	return min(max(d, cfg.MinSessionTimeout), cfg.MaxSessionTimeout).Truncate(time.Millisecond)
}
