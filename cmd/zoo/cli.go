package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zooraft/zoo"
	"github.com/zooraft/zoo/internal/keystore"
	"github.com/zooraft/zoo/internal/zkclient"
)

// cliCmd is `zoo cli`, a zkCli.sh-compatible shell built on zoo's own
// ZooKeeper client (internal/zkclient), which speaks every request zkCli
// 3.8 sends. It prints what zkCli.sh 3.8 prints, on the same streams (data
// on stdout; "Created", usage and errors on stderr), so scripts written
// against zkCli and its transcripts read the same:
//
//	zoo cli -server host:port[,host:port...][/chroot] [-timeout ms] [-r] [-waitforconnection] [cmd args...]
//
// A chroot suffix roots every path at that znode, as in zkCli. With -r a
// server that lost its quorum will do: the session is read-only (the prompt
// says CONNECTEDREADONLY, writes fail with "Not a read-only call") and moves
// to a read-write server as soon as one is found.
//
// With a command it runs that and exits 0, or 1 on failure (127 for an
// unknown command). Without one it reads commands from stdin: with a prompt,
// line editing and history when stdin and stdout are a terminal, silently
// otherwise, and exits with the code of the last command, as zkCli does.
func cliCmd(args []string, stdout, stderr io.Writer) int {
	return runCli(args, os.Stdin, stdout, stderr)
}

// runCli is `zoo cli` with commands from stdin, when none is in args.
func runCli(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("zoo cli", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: zoo cli [-server host:port[,host:port...][/chroot]] [-timeout ms] [-r] [-waitforconnection] [-tls-ca FILE [-tls-cert FILE [-tls-key FILE]]] [cmd args...]")
		fs.PrintDefaults()
		fmt.Fprint(stderr, "Without a command, commands are read from stdin. Commands:\n"+cliCommandList())
	}
	server := fs.String("server", "localhost:2181", "comma-separated `host:port` list of servers, optionally followed by a chroot path (host:port/app)")
	timeoutMs := fs.Int("timeout", 30000, "session timeout in `ms`")
	readOnly := fs.Bool("r", false, "allow a read-only session on a server that lost its quorum")
	wait := fs.Bool("waitforconnection", false, "wait for the session before running commands")
	tlsCA := fs.String("tls-ca", "", "connect over TLS (a server's secureClientPort), trusting the CA certificates in `FILE` (PEM or PKCS#12)")
	tlsCert := fs.String("tls-cert", "", "client certificate chain in `FILE`, with its key unless -tls-key (PEM, as zoo certs writes it, or PKCS#12): the session's x509 identity")
	tlsKey := fs.String("tls-key", "", "the client certificate's private key in `FILE` (PEM)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	tlsConf, err := cliTLS(*tlsCA, *tlsCert, *tlsKey)
	if err != nil {
		fmt.Fprintln(stderr, "zoo cli:", err)
		return 2
	}
	if *timeoutMs <= 0 {
		fmt.Fprintln(stderr, "zoo cli: -timeout must be positive")
		return 2
	}
	sh := &cliShell{host: *server, timeout: time.Duration(*timeoutMs) * time.Millisecond, readOnly: *readOnly,
		tls: tlsConf, history: map[int]string{}}
	sh.printWatches.Store(true)

	if fs.NArg() > 0 {
		// One command from the command line, its arguments taken as given.
		sh.con = &console{out: stdout, err: stderr}
		toks := fs.Args()
		sh.history[0] = strings.Join(toks, " ")
		if cmd, ok := cliCommandIndex[toks[0]]; ok && !cmd.local {
			if code, ok := sh.start(*wait); !ok {
				return code
			}
		}
		sh.exec(toks)
		sh.closeSession(false)
		return sh.exitCode
	}

	var lines lineReader
	if t, ok := newTermLineReader(stdin, stdout, stderr); ok {
		defer t.restore()
		lines = t
		sh.con = &console{out: t, err: t.errWriter()}
		t.complete = completeCommand
	} else {
		lines = &plainLineReader{r: bufio.NewReader(stdin)}
		sh.con = &console{out: stdout, err: stderr}
	}
	if code, ok := sh.start(*wait); !ok {
		return code
	}
	for !sh.quit {
		line, err := lines.readLine(sh.prompt())
		if err != nil {
			break
		}
		// zkCli skips empty lines but re-runs the previous command on a
		// line of blanks (its parser keeps the last command); zoo cli skips
		// both.
		toks := tokenize(line)
		if len(toks) == 0 {
			continue
		}
		sh.history[sh.count] = line
		sh.exec(toks)
		sh.count++
	}
	// zkCli exits at end of input without closing its session, leaving its
	// ephemerals until the session times out; zoo cli closes it, quietly.
	sh.closeSession(false)
	return sh.exitCode
}

// lineReader reads the next command line; prompt is shown where there is
// someone to see it.
type lineReader interface {
	readLine(prompt string) (string, error)
}

// plainLineReader reads lines from a pipe or file, without a prompt, as
// zkCli does without a terminal.
type plainLineReader struct{ r *bufio.Reader }

func (p *plainLineReader) readLine(string) (string, error) {
	line, err := p.r.ReadString('\n')
	if err != nil && (line == "" || !errors.Is(err, io.EOF)) {
		return "", err
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// console serializes output: command results from the shell and watch
// events from zkclient's event goroutine.
type console struct {
	mu  sync.Mutex // guards writes to out and err
	out io.Writer
	err io.Writer
}

func (c *console) write(w io.Writer, s string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	io.WriteString(w, s)
}

// outln prints a line on stdout.
func (c *console) outln(s string) { c.write(c.out, s+"\n") }

// errln prints a line on stderr.
func (c *console) errln(s string) { c.write(c.err, s+"\n") }

// stat prints a Stat block on stdout, in zkCli's format.
func (c *console) stat(st zoo.Stat) { c.write(c.out, st.String()) }

// cliShell is one zkCli session: the connection, the command history and
// the exit code of the last command.
type cliShell struct {
	con          *console
	host         string        // connect string as given to -server or connect, shown in the prompt
	timeout      time.Duration // session timeout asked for
	readOnly     bool          // -r: a read-only server will do
	tls          *tls.Config   // -tls-*: connections are TLS (nil: plaintext)
	printWatches atomic.Bool   // read by the event callback on zkclient's goroutine

	// The fields below belong to the goroutine running commands.
	sess     *cliSession
	ctx      context.Context // for the running command's requests (see cliSession.requestContext)
	history  map[int]string  // command number -> line, as zkCli numbers them
	count    int             // number of the command being read or run
	exitCode int
	quit     bool
}

// cliSession is one zkclient session and what zkCli shows of it.
type cliSession struct {
	conn       *zkclient.Conn
	tls        *tls.Config // nil: plaintext
	servers    int         // number of servers in the list
	closed     atomic.Bool // closed by the shell: later events are not shown
	authFailed atomic.Bool // the server refused addauth and dropped us, as zkCli's AUTH_FAILED

	ready      chan struct{} // closed when the session is first established
	readyOnce  sync.Once
	settled    chan struct{} // closed when ready, or when every server has been tried once
	settleOnce sync.Once

	mu       sync.Mutex    // guards conn while Connect runs (dial reads it) and dialed
	dialed   chan struct{} // closed and replaced when a connection attempt starts
	attempts atomic.Int32  // connection attempts started
}

func (s *cliSession) settle() { s.settleOnce.Do(func() { close(s.settled) }) }

// dial opens the connections zkclient asks for, watching its attempts: a
// new attempt while there is no session means the one before failed (or
// is the first). Dials made while connected are a read-only session's
// probes for a read-write server, not attempts.
func (s *cliSession) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	s.mu.Lock()
	c := s.conn
	s.mu.Unlock()
	if c == nil || !connected(c.State()) {
		// One more attempt than servers: a full round failed.
		if int(s.attempts.Add(1)) > s.servers {
			s.settle()
		}
		s.mu.Lock()
		close(s.dialed)
		s.dialed = make(chan struct{})
		s.mu.Unlock()
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, network, addr)
	if err != nil || s.tls == nil {
		return nc, err
	}
	return clientTLS(ctx, nc, addr, s.tls)
}

// cliTLS builds the client TLS of the -tls-* flags; nil without them.
func cliTLS(caFile, certFile, keyFile string) (*tls.Config, error) {
	if caFile == "" {
		if certFile != "" || keyFile != "" {
			return nil, errors.New("-tls-cert and -tls-key need -tls-ca, the CA that vouches for the server")
		}
		return nil, nil
	}
	if keyFile != "" && certFile == "" {
		return nil, errors.New("-tls-key needs -tls-cert")
	}
	cas, err := keystore.LoadTrustStore(keystore.TrustStore{Path: caFile})
	if err != nil {
		return nil, fmt.Errorf("-tls-ca: %w", err)
	}
	conf := &tls.Config{RootCAs: keystore.Pool(cas), MinVersion: tls.VersionTLS12}
	if certFile != "" {
		cert, err := keystore.LoadKeyStore(keystore.KeyStore{Path: certFile, KeyPath: keyFile})
		if err != nil {
			return nil, fmt.Errorf("-tls-cert: %w", err)
		}
		conf.Certificates = []tls.Certificate{*cert}
	}
	return conf, nil
}

func connected(st zkclient.State) bool {
	return st == zkclient.StateConnected || st == zkclient.StateConnectedReadOnly
}

// requestContext is the context of one command's requests. zkclient lets a
// request wait for a connection; the Java client fails it with
// ConnectionLoss when the connection attempt under way fails. So the
// context ends, with errNoServer, when the next attempt starts without a
// session established meanwhile; a request already sent is failed by
// zkclient itself when its connection drops.
func (s *cliSession) requestContext() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(context.Background())
	s.mu.Lock()
	next := s.dialed
	s.mu.Unlock()
	stop := make(chan struct{})
	go func() {
		select {
		case <-next:
			cancel(errNoServer)
		case <-stop:
		}
	}()
	return ctx, func() {
		close(stop)
		cancel(nil)
	}
}

// start opens the session for the -server connect string, waiting for it
// with -waitforconnection. It returns the exit code when that fails.
func (sh *cliShell) start(wait bool) (code int, ok bool) {
	sh.con.outln("Connecting to " + sh.host)
	if err := sh.connect(sh.host); err != nil {
		sh.con.errln(err.Error())
		return 1, false
	}
	if wait {
		select {
		case <-sh.sess.ready:
		case <-time.After(sh.timeout):
			sh.closeSession(false)
			sh.con.errln(keeperErrorString(codeConnectionLoss, ""))
			return 1, false
		}
	}
	return 0, true
}

// connect opens a session for a connect string, "host:port[,host:port...]"
// with an optional chroot suffix ("/app"). Like the Java client it returns
// at once; requests wait for the connection.
func (sh *cliShell) connect(host string) error {
	if i := strings.IndexByte(host, '/'); i >= 0 && i+1 < len(host) {
		// The chroot with zkCli's message, which is the Java client's
		// path check's.
		if err := validatePath(host[i:], false); err != nil {
			return err
		}
	}
	servers, chroot, err := zkclient.ParseConnectString(host)
	if err != nil {
		return failf("%s: %v", host, err)
	}
	sess := &cliSession{ready: make(chan struct{}), settled: make(chan struct{}), dialed: make(chan struct{}),
		servers: len(servers), tls: sh.tls}
	conn, err := zkclient.Connect(servers, zkclient.Options{
		SessionTimeout: sh.timeout,
		Chroot:         chroot,
		CanBeReadOnly:  sh.readOnly,
		OnEvent:        sh.onEvent(sess),
		Dialer:         sess.dial,
	})
	if err != nil {
		return failf("%s: %v", host, err)
	}
	sess.mu.Lock()
	sess.conn = conn
	sess.mu.Unlock()
	sh.sess, sh.host = sess, host
	return nil
}

// javaEventTypes are the Java client's names of event types.
var javaEventTypes = map[zoo.EventType]string{
	zoo.EventNodeCreated: "NodeCreated", zoo.EventNodeDeleted: "NodeDeleted",
	zoo.EventNodeDataChanged: "NodeDataChanged", zoo.EventNodeChildrenChanged: "NodeChildrenChanged",
	zkclient.EventDataWatchRemoved: "DataWatchRemoved", zkclient.EventChildWatchRemoved: "ChildWatchRemoved",
	zkclient.EventPersistentWatchRemoved: "PersistentWatchRemoved",
}

// javaStates are the Java client's names of the session states zkCli's
// watcher shows; zkclient's other states (Connecting, Closed) have no
// event there.
var javaStates = map[zkclient.State]string{
	zkclient.StateConnected: "SyncConnected", zkclient.StateConnectedReadOnly: "ConnectedReadOnly",
	zkclient.StateDisconnected: "Disconnected", zkclient.StateExpired: "Expired",
	zkclient.StateAuthFailed: "AuthFailed",
}

// onEvent returns the callback that shows sess's events as zkCli's default
// watcher does. zkclient calls it on one goroutine, in order, for every
// watch notification (before the reply that follows it), every watch
// removal and every session state change.
func (sh *cliShell) onEvent(sess *cliSession) func(zkclient.Event) {
	return func(ev zkclient.Event) {
		if ev.Type == zoo.EventNone {
			switch ev.State {
			case zkclient.StateConnected, zkclient.StateConnectedReadOnly:
				sess.readyOnce.Do(func() { close(sess.ready) })
				sess.settle()
			case zkclient.StateAuthFailed:
				sess.authFailed.Store(true)
			}
		}
		if sess.closed.Load() {
			return
		}
		if ev.Type == zoo.EventNone {
			if state, ok := javaStates[ev.State]; ok {
				sh.showEvent(state, "None", "null")
			}
			return
		}
		typ, ok := javaEventTypes[ev.Type]
		if !ok {
			typ = fmt.Sprint(int32(ev.Type))
		}
		// The server sends SyncConnected with every notification, and the
		// Java client makes its watch-removed events with it too, read-only
		// or not.
		sh.showEvent("SyncConnected", typ, ev.Path)
	}
}

// showEvent prints an event as zkCli's watcher does, unless printwatches is off.
func (sh *cliShell) showEvent(state, typ, path string) {
	if sh.printWatches.Load() {
		sh.con.write(sh.con.out, "\nWATCHER::\n\nWatchedEvent state:"+state+" type:"+typ+" path:"+path+"\n")
	}
}

// awaitFirstConnect waits until a new session is established, or until
// every server has been tried once (then requests fail as they do while
// disconnected), at most the session timeout. The Java client does not
// wait, but a command that sends a request waits there for the connection
// and its SyncConnected event; waiting for every command makes transcripts
// the same whether or not the command gets as far as sending.
func (sh *cliShell) awaitFirstConnect() {
	t := time.NewTimer(sh.timeout)
	defer t.Stop()
	select {
	case <-sh.sess.settled:
	case <-t.C:
	}
}

// alive reports whether commands can be sent, zkCli's "Not connected"
// test: not after close, a refused addauth or the session's expiry.
func (sh *cliShell) alive() bool {
	s := sh.sess
	if s == nil || s.closed.Load() || s.authFailed.Load() {
		return false
	}
	st := s.conn.State()
	return st != zkclient.StateExpired && st != zkclient.StateAuthFailed && st != zkclient.StateClosed
}

// closeSession closes the session if it is open, showing zkCli's Closed event
// when show is set. As in the Java client, a session that already ended
// (expired, refused addauth) closes without an event.
func (sh *cliShell) closeSession(show bool) {
	s := sh.sess
	if s == nil || s.closed.Swap(true) {
		return
	}
	st := s.conn.State()
	s.conn.Close()
	if show && st != zkclient.StateExpired && st != zkclient.StateAuthFailed {
		sh.showEvent("Closed", "None", "null")
	}
}

// addAuth sends addauth. When the server refuses it, the client has shown
// AuthFailed (the server drops the connection, and zkclient, as the Java
// client, reports only that) and the session is unusable.
func (sh *cliShell) addAuth(ctx context.Context, scheme string, auth []byte) error {
	s := sh.sess
	err := s.conn.AddAuth(ctx, scheme, auth)
	if errors.Is(err, zoo.ErrAuthFailed) {
		s.authFailed.Store(true)
		s.closed.Store(true) // no event shows after this
		s.conn.Close()
		return nil
	}
	return err
}

// prompt is zkCli's: "[zk: host:port(CONNECTED) 3] ".
func (sh *cliShell) prompt() string {
	return fmt.Sprintf("[zk: %s(%s) %d] ", sh.host, sh.state(), sh.count)
}

// state names the session state as the Java client does.
func (sh *cliShell) state() string {
	s := sh.sess
	switch {
	case s == nil:
		return "CLOSED"
	case s.authFailed.Load():
		return "AUTH_FAILED"
	case s.closed.Load():
		return "CLOSED"
	}
	switch s.conn.State() {
	case zkclient.StateConnected:
		return "CONNECTED"
	case zkclient.StateConnectedReadOnly:
		return "CONNECTEDREADONLY"
	case zkclient.StateAuthFailed:
		return "AUTH_FAILED"
	case zkclient.StateExpired, zkclient.StateClosed:
		return "CLOSED"
	}
	return "CONNECTING"
}

// exec runs one command and records its exit code.
func (sh *cliShell) exec(toks []string) {
	err := sh.dispatch(toks)
	sh.exitCode = 0
	if err == nil {
		return
	}
	var ce *cliError
	if !errors.As(err, &ce) {
		ce = failf("%v", err)
	}
	if ce.msg != "" {
		sh.con.errln(ce.msg)
	}
	sh.exitCode = ce.exit
}

// dispatch finds and runs a command.
func (sh *cliShell) dispatch(toks []string) error {
	cmd, ok := cliCommandIndex[toks[0]]
	if !ok {
		sh.con.write(sh.con.err, cliUsage())
		return &cliError{msg: "Command not found: Command not found " + toks[0], exit: 127}
	}
	if !cmd.local {
		if !sh.alive() {
			sh.con.outln("Not connected")
			return nil
		}
		sh.awaitFirstConnect()
		ctx, cancel := sh.sess.requestContext()
		defer cancel()
		outer := sh.ctx // redo runs a command within a command
		sh.ctx = ctx
		defer func() { sh.ctx = outer }()
	}
	a := &cliArgs{cmd: toks[0], args: toks[1:]}
	if !cmd.raw {
		var err error
		if a, err = parseOptions(toks, cmd.opts); err != nil {
			return err
		}
	}
	return cmd.run(sh, a)
}

// cliUsage is the command list zkCli prints for an unknown command.
func cliUsage() string {
	return "zoo cli -server host:port[,host:port...][/chroot] [-timeout ms] [-r] [-waitforconnection] cmd args\n" +
		cliCommandList()
}

// cliCommandList is every command's usage, one a line, in zkCli's order.
func cliCommandList() string {
	var b strings.Builder
	names := make([]string, 0, len(cliCommandIndex))
	for name := range cliCommandIndex {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		b.WriteString("\t" + cliCommandIndex[name].usageLine() + "\n")
	}
	return b.String()
}
