// Command zoo runs zoo as a standalone ZooKeeper-compatible server and talks to
// one, the way ZooKeeper's own scripts do:
//
//	zoo server --config zoo.cfg        # like zkServer.sh start-foreground
//	zoo status --config zoo.cfg        # like zkServer.sh status: "Mode: leader"
//	zoo status -server host:port [-tls-ca FILE -tls-cert FILE]
//	zoo bench -server host:port,... -mix get=90,set=10 -callers 256   # throughput and latency
//	zoo cli -server host:port[,...]    # like zkCli.sh, same commands and output
//	zoo certs -config zoo.cfg -client app [-apply]  # a CA and certificates for sslQuorum, secureClientPort and clients
//	zoo version
package main

import (
	"fmt"
	"io"
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "server":
		return serverCmd(args[1:], stdout, stderr)
	case "cli":
		return cliCmd(args[1:], stdout, stderr)
	case "status":
		return statusCmd(args[1:], stdout, stderr)
	case "certs":
		return certsCmd(args[1:], stdout, stderr)
	case "bench":
		return benchCmd(args[1:], stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "zoo", version)
		return 0
	case "help", "-h", "--help":
		usage(stdout)
		return 0
	}
	fmt.Fprintf(stderr, "zoo: unknown command %q\n", args[0])
	usage(stderr)
	return 2
}

// version is what srvr and envi report, in ZooKeeper's form.
const version = "3.9.4-zoo"

func usage(w io.Writer) {
	fmt.Fprint(w, `usage:
  zoo server --config zoo.cfg     run a replica as described by a ZooKeeper zoo.cfg (+ dataDir/myid)
  zoo status --config zoo.cfg     print this server's mode, like zkServer.sh status
  zoo status -server host:port    the same for any server (-tls-ca, -tls-cert: over TLS)
  zoo cli [-server host:port,...[/chroot]] [-timeout ms] [-r] [-tls-ca FILE [-tls-cert FILE]] [command args...]
                                  a zkCli.sh-compatible shell (one command, piped commands, or interactive);
                                  -r accepts a read-only server; -tls-* connect to a secureClientPort
  zoo bench -server host:port,... [-mix get=90,set=10] [-callers 16] [-duration 10s] [-json]
                                  drive any ZooKeeper-protocol ensemble and print ops/s and p50/p99/p999
  zoo certs [-config zoo.cfg]... [-apply] [-hosts h1,h2,...] [-client NAME]... [-dir certs] [-days 730] [-force]
                                  a CA, server and client certificates (PEM) for sslQuorum and secureClientPort;
                                  -apply switches the -config files to them
  zoo version
`)
}
