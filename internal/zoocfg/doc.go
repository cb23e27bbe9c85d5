// Package zoocfg reads a ZooKeeper zoo.cfg, and the myid file next to the data,
// the way ZooKeeper 3.8's QuorumPeerConfig does, so that `zoo server` can start
// from the files users already have.
//
// # Usage
//
// [Load] reads a zoo.cfg, any dynamicConfigFile it names, and dataDir/myid,
// and settles which server this is ([Config.Self]); [Parse] reads a zoo.cfg
// from an [io.Reader] and stops there. Both fill in ZooKeeper's defaults.
//
// # Syntax
//
// The file is a Java properties file: key=value, key: value or "key value";
// lines starting with # or ! are comments; a backslash at the end of a line
// continues it; \t, \uXXXX and friends are escapes, and a backslash before any
// other character stands for that character (so Java, and ZooKeeper, read
// dataDir=C:\zk\data as "C:zkdata": zoo does the same and warns). Keys and
// values are trimmed. Keys are case-sensitive.
//
// # Keys
//
// Keys zoo uses fill [Config]. Keys that ZooKeeper uses for storage,
// performance or JVM tuning, or for quorum plumbing that raft replaces, are
// accepted silently (see ignoredKeys in keys.go: snapCount, preAllocSize,
// jute.maxbuffer, quorumListenOnAllIPs, metricsProvider.*, ...). Keys for
// ZooKeeper features zoo lacks (TLS: secureClientPort, ssl.*; SASL:
// quorum.auth.*; skipACL, maxCnxns, ...) are accepted with a warning unless
// their value leaves the feature off. Other keys are warned about as unknown,
// with a hint when one differs from a known key only in case; none is an
// error. A key given twice is an error, although Java keeps the last value.
//
// # Errors
//
// A bad value is an [*Error] naming the file, line and key. ZooKeeper's own
// checks apply (dataDir required, ports 1-65535, distinct quorum and election
// ports, observers need participants, initLimit and syncLimit set for an
// ensemble, myid present and listed, clientPort agreeing with this server's
// server.N line), and a few more where ZooKeeper would silently misread a
// value: booleans must be true or false, server IDs and numbers must parse.
package zoocfg
