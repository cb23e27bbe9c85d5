package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zooraft/zoo"
)

// cliCmd is `zoo cli`, a zkCli.sh-compatible shell built on go-zookeeper/zk,
// the Go ecosystem's ZooKeeper client. It prints what zkCli.sh 3.8 prints, on
// the same streams (data on stdout; "Created", usage and errors on stderr),
// so scripts written against zkCli and its transcripts read the same:
//
//	zoo cli -server host:port[,host:port...] [-timeout ms] [-r] [cmd args...]
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
		fmt.Fprintln(stderr, "usage: zoo cli [-server host:port,...] [-timeout ms] [-r] [-waitforconnection] [cmd args...]")
		fs.PrintDefaults()
	}
	server := fs.String("server", "localhost:2181", "comma-separated `host:port` list of servers")
	timeoutMs := fs.Int("timeout", 30000, "session timeout in `ms`")
	readOnly := fs.Bool("r", false, "allow a read-only session (not supported by go-zookeeper/zk: ignored with a warning)")
	wait := fs.Bool("waitforconnection", false, "wait for the session before running commands")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *timeoutMs <= 0 {
		fmt.Fprintln(stderr, "zoo cli: -timeout must be positive")
		return 2
	}
	sh := &cliShell{host: *server, timeout: time.Duration(*timeoutMs) * time.Millisecond, history: map[int]string{}}
	sh.printWatches.Store(true)
	if *readOnly {
		fmt.Fprintln(stderr, "zoo cli: -r ignored: go-zookeeper/zk v1.0.4 cannot ask for a read-only session")
	}

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
// events from go-zookeeper's goroutines.
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

// stat prints a Stat block on stdout, in zkCli's format (zoo.Stat's String;
// go-zookeeper's Stat has the same fields in the same order).
func (c *console) stat(st *zk.Stat) { c.write(c.out, zoo.Stat(*st).String()) }

// cliShell is one zkCli session: the connection, the command history and
// the exit code of the last command.
type cliShell struct {
	con          *console
	host         string        // server list as given to -server or connect, shown in the prompt
	timeout      time.Duration // session timeout asked for
	printWatches atomic.Bool   // read by event callbacks on go-zookeeper's goroutines

	// The fields below belong to the goroutine running commands.
	sess     *cliSession
	history  map[int]string // command number -> line, as zkCli numbers them
	count    int            // number of the command being read or run
	exitCode int
	quit     bool
}

// cliSession is one go-zookeeper connection and what zkCli shows of it.
type cliSession struct {
	conn       *zk.Conn
	servers    int         // number of servers in the list
	closed     atomic.Bool // closed by the shell: later events are not shown
	authFailed atomic.Bool // the server refused addauth and dropped us, as zkCli's AUTH_FAILED
	synced     atomic.Bool // the last state shown was SyncConnected

	ready      chan struct{} // closed when the session is first established
	readyOnce  sync.Once
	attempts   atomic.Int32  // connection attempts go-zookeeper has announced
	settled    chan struct{} // closed when ready, or when every server has been tried once
	settleOnce sync.Once

	authMu         sync.Mutex // guards authPending and heldDisconnect
	authPending    bool       // an addauth is waiting for its answer
	heldDisconnect bool       // a Disconnected event came meanwhile, not yet shown
}

func (s *cliSession) settle() { s.settleOnce.Do(func() { close(s.settled) }) }

// start opens the session for the -server list, waiting for it with
// -waitforconnection. It returns the exit code when that fails.
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

// connect opens a session to host, a comma-separated server list. Like the
// Java client it returns at once; requests wait for the connection.
func (sh *cliShell) connect(host string) error {
	var servers []string
	for _, s := range strings.Split(host, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		if strings.Contains(s, "/") {
			return failf("%s: a chroot suffix is not supported by zoo cli (go-zookeeper/zk v1.0.4 has no chroot)", host)
		}
		servers = append(servers, s)
	}
	if len(servers) == 0 {
		return failf("no server given in %q", host)
	}
	sess := &cliSession{ready: make(chan struct{}), settled: make(chan struct{}), servers: len(servers)}
	conn, _, err := zk.Connect(servers, sh.timeout, zk.WithLogger(discardLogger{}), zk.WithLogInfo(false),
		zk.WithEventCallback(sh.onEvent(sess)))
	if err != nil {
		return failf("%v", err)
	}
	sess.conn = conn
	sh.sess, sh.host = sess, host
	return nil
}

// discardLogger silences go-zookeeper's connection log; zkCli's goes to its
// log4j file, not to the transcript.
type discardLogger struct{}

func (discardLogger) Printf(string, ...any) {}

// javaEventTypes are the Java client's names of event types.
var javaEventTypes = map[zk.EventType]string{
	zk.EventNodeCreated: "NodeCreated", zk.EventNodeDeleted: "NodeDeleted",
	zk.EventNodeDataChanged: "NodeDataChanged", zk.EventNodeChildrenChanged: "NodeChildrenChanged",
	5: "DataWatchRemoved", 6: "ChildWatchRemoved", 7: "PersistentWatchRemoved",
}

// onEvent returns the callback that shows sess's events as zkCli's default
// watcher does. go-zookeeper calls it on its own goroutines, for every watch
// notification from the server (in order, before the reply that follows it)
// and every session state change.
func (sh *cliShell) onEvent(sess *cliSession) zk.EventCallback {
	return func(ev zk.Event) {
		if sess.closed.Load() {
			return
		}
		state := "SyncConnected"
		switch ev.Type {
		case zk.EventNotWatching:
			return // go-zookeeper's own notice that it dropped a watch
		case zk.EventSession:
			switch ev.State {
			case zk.StateHasSession:
				sess.readyOnce.Do(func() { close(sess.ready) })
				sess.settle()
				sess.synced.Store(true)
			case zk.StateDisconnected:
				// go-zookeeper reports every failed attempt; the Java
				// client only the loss of a live connection.
				if !sess.synced.Swap(false) {
					return
				}
				// A server that refuses addauth drops the connection;
				// the Java client reports only AuthFailed then.
				sess.authMu.Lock()
				held := sess.authPending
				sess.heldDisconnect = sess.heldDisconnect || held
				sess.authMu.Unlock()
				if held {
					return
				}
				state = "Disconnected"
			case zk.StateExpired:
				sess.synced.Store(false)
				state = "Expired"
			case zk.StateConnecting:
				// go-zookeeper announces each server it tries; one more
				// than the list means a full round failed.
				if int(sess.attempts.Add(1)) > sess.servers {
					sess.settle()
				}
				return
			default:
				return // TCP connected: no Java counterpart
			}
			sh.showEvent(state, "None", "null")
			return
		}
		typ, ok := javaEventTypes[ev.Type]
		if !ok {
			typ = fmt.Sprint(int32(ev.Type))
		}
		sh.showEvent(state, typ, ev.Path)
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

// alive reports whether commands can be sent, zkCli's "Not connected" test.
func (sh *cliShell) alive() bool { return sh.sess != nil && !sh.sess.closed.Load() }

// closeSession closes the session if it is open, showing zkCli's Closed event
// when show is set.
func (sh *cliShell) closeSession(show bool) {
	s := sh.sess
	if s == nil || s.closed.Swap(true) {
		return
	}
	s.conn.Close()
	if show {
		sh.showEvent("Closed", "None", "null")
	}
}

// addAuth sends addauth. When the server refuses it, it does what the Java
// client does: shows AuthFailed (and not the Disconnected that follows, as
// the server drops the connection) and leaves the session unusable.
func (sh *cliShell) addAuth(scheme string, auth []byte) error {
	s := sh.sess
	s.authMu.Lock()
	s.authPending, s.heldDisconnect = true, false
	s.authMu.Unlock()
	err := s.conn.AddAuth(scheme, auth)
	failed := errors.Is(err, zk.ErrAuthFailed)
	if failed {
		sh.showEvent("AuthFailed", "None", "null")
		s.authFailed.Store(true)
		s.closed.Store(true) // before authPending is cleared: no event shows after this
		s.conn.Close()
		err = nil
	}
	s.authMu.Lock()
	held := s.heldDisconnect && !failed
	s.authPending, s.heldDisconnect = false, false
	s.authMu.Unlock()
	if held {
		sh.showEvent("Disconnected", "None", "null")
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
	case zk.StateHasSession:
		return "CONNECTED"
	case zk.StateConnectedReadOnly:
		return "CONNECTEDREADONLY"
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
	var b strings.Builder
	b.WriteString("zoo cli -server host:port[,host:port...] [-timeout ms] [-r] cmd args\n")
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
