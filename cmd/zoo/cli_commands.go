package main

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-zookeeper/zk"
)

// cliCommand is one zkCli command.
type cliCommand struct {
	name  string
	usage string // arguments as zkCli's usage shows them
	opts  string // options, getopt style: a letter followed by ':' takes a value
	local bool   // runs without a live session
	raw   bool   // takes its arguments as typed, without options (zkCli's shell built-ins)
	run   func(sh *cliShell, a *cliArgs) error
}

// usageLine is zkCli's one-line usage, also its message for wrong arguments.
func (c *cliCommand) usageLine() string { return c.name + " " + c.usage }

// errUsage is a command's usage as an error.
func (c *cliCommand) errUsage() error { return failf("%s", c.usageLine()) }

var cliCommands = []*cliCommand{
	{name: "addauth", usage: "scheme auth", run: cliAddAuth},
	{name: "addWatch", usage: "[-m mode] path # optional mode is one of [PERSISTENT, PERSISTENT_RECURSIVE] - default is PERSISTENT_RECURSIVE", opts: "m:", run: cliAddWatch},
	{name: "close", run: cliClose},
	{name: "config", usage: "[-c] [-w] [-s]", opts: "cws", run: cliConfig},
	{name: "connect", usage: "host:port", local: true, raw: true, run: cliConnect},
	{name: "create", usage: "[-s] [-e] [-c] [-t ttl] path [data] [acl]", opts: "sect:", run: cliCreate},
	{name: "delete", usage: "[-v version] path", opts: "v:", run: cliDelete},
	{name: "deleteall", usage: "path [-b batch size]", opts: "b:", run: cliDeleteAll},
	{name: "get", usage: "[-s] [-w] path", opts: "sw", run: cliGet},
	{name: "getAcl", usage: "[-s] path", opts: "s", run: cliGetACL},
	{name: "getAllChildrenNumber", usage: "path", run: cliUnsupportedPathOp("getAllChildrenNumber", 104)},
	{name: "getEphemerals", usage: "path", run: cliGetEphemerals},
	{name: "history", local: true, raw: true, run: cliHistory},
	{name: "ls", usage: "[-s] [-w] [-R] path", opts: "swR", run: cliLs},
	{name: "printwatches", usage: "on|off", local: true, raw: true, run: cliPrintWatches},
	{name: "quit", local: true, raw: true, run: cliQuit},
	{name: "redo", usage: "cmdno", local: true, raw: true, run: cliRedo},
	{name: "removewatches", usage: "path [-c|-d|-a] [-l]", opts: "cdal", run: cliRemoveWatches},
	{name: "set", usage: "[-s] [-v version] path data", opts: "sv:", run: cliSet},
	{name: "setAcl", usage: "[-s] [-v version] [-R] path acl", opts: "sv:R", run: cliSetACL},
	{name: "stat", usage: "[-w] path", opts: "w", run: cliStat},
	{name: "sync", usage: "path", run: cliSync},
	{name: "version", local: true, run: cliVersion},
	{name: "whoami", run: cliWhoAmI},
}

// cliCommandIndex finds commands by name. It is filled by init, as the
// commands refer to it (redo runs another command).
var cliCommandIndex = map[string]*cliCommand{}

func init() {
	for _, c := range cliCommands {
		cliCommandIndex[c.name] = c
	}
}

// command returns the command a parsed line is for.
func command(a *cliArgs) *cliCommand { return cliCommandIndex[a.cmd] }

// pathArg checks the path argument, the first positional one.
func pathArg(a *cliArgs, sequential bool) (string, error) {
	if len(a.args) < 1 {
		return "", command(a).errUsage()
	}
	p := a.args[0]
	if err := validatePath(p, sequential); err != nil {
		return "", err
	}
	return p, nil
}

// deprecatedWatchArg handles zkCli's old form "cmd path watch": any extra
// argument asks for a watch.
func deprecatedWatchArg(sh *cliShell, a *cliArgs, newForm string) bool {
	if len(a.args) <= 1 {
		return a.has('w')
	}
	sh.con.errln(fmt.Sprintf("'%s path [watch]' has been deprecated. Please use '%s %s' instead.", a.cmd, a.cmd, newForm))
	return true
}

func cliLs(sh *cliShell, a *cliArgs) error {
	if len(a.args) < 1 {
		return command(a).errUsage()
	}
	watch := deprecatedWatchArg(sh, a, "[-w] path")
	path, err := pathArg(a, false)
	if err != nil {
		return err
	}
	conn := sh.sess.conn
	if a.has('R') {
		// zkCli lists the subtree breadth first, the node itself included,
		// and ignores -s.
		return walkTree(conn, path, watch, func(p string) { sh.con.outln(p) })
	}
	children, st, err := getChildren(conn, path, watch)
	if err != nil {
		return keeperError(err, path)
	}
	sort.Strings(children)
	sh.con.outln("[" + strings.Join(children, ", ") + "]")
	if a.has('s') {
		sh.con.stat(st)
	}
	return nil
}

func getChildren(conn *zk.Conn, path string, watch bool) ([]string, *zk.Stat, error) {
	if watch {
		children, st, _, err := conn.ChildrenW(path)
		return children, st, err
	}
	return conn.Children(path)
}

// walkTree visits path and its descendants breadth first, children in
// sorted order, as zkCli's ls -R and deleteall list a subtree.
func walkTree(conn *zk.Conn, path string, watch bool, visit func(string)) error {
	queue := []string{path}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		children, _, err := getChildren(conn, p, watch)
		if err != nil {
			return keeperError(err, p)
		}
		visit(p)
		sort.Strings(children)
		for _, c := range children {
			queue = append(queue, childPath(p, c))
		}
	}
	return nil
}

func childPath(parent, name string) string {
	if parent == "/" {
		return "/" + name
	}
	return parent + "/" + name
}

func cliGet(sh *cliShell, a *cliArgs) error {
	if len(a.args) < 1 {
		return command(a).errUsage()
	}
	watch := deprecatedWatchArg(sh, a, "[-s] [-w] path")
	path, err := pathArg(a, false)
	if err != nil {
		return err
	}
	var data []byte
	var st *zk.Stat
	if watch {
		data, st, _, err = sh.sess.conn.GetW(path)
	} else {
		data, st, err = sh.sess.conn.Get(path)
	}
	if err != nil {
		return keeperError(err, path)
	}
	sh.con.outln(dataString(data))
	if a.has('s') {
		sh.con.stat(st)
	}
	return nil
}

// dataString is znode data as zkCli prints it: "null" for none, otherwise
// the bytes decoded as UTF-8 with invalid sequences replaced.
func dataString(data []byte) string {
	if data == nil {
		return "null"
	}
	if utf8.Valid(data) {
		return string(data)
	}
	return strings.ToValidUTF8(string(data), "\uFFFD")
}

func cliStat(sh *cliShell, a *cliArgs) error {
	if len(a.args) < 1 {
		return command(a).errUsage()
	}
	watch := deprecatedWatchArg(sh, a, "[-w] path")
	path, err := pathArg(a, false)
	if err != nil {
		return err
	}
	var ok bool
	var st *zk.Stat
	if watch {
		ok, st, _, err = sh.sess.conn.ExistsW(path)
	} else {
		ok, st, err = sh.sess.conn.Exists(path)
	}
	if err == nil && !ok {
		err = zk.ErrNoNode
	}
	if err != nil {
		return keeperError(err, path)
	}
	sh.con.stat(st)
	return nil
}

func cliSet(sh *cliShell, a *cliArgs) error {
	if len(a.args) < 2 {
		return command(a).errUsage()
	}
	// A third argument, the old "set path data version" form, is ignored
	// as zkCli 3.8 ignores it.
	path, err := pathArg(a, false)
	if err != nil {
		return err
	}
	version, err := intOption(a, 'v', -1, 32)
	if err != nil {
		return err
	}
	st, err := sh.sess.conn.Set(path, []byte(a.args[1]), int32(version))
	if err != nil {
		return keeperError(err, path)
	}
	if a.has('s') {
		sh.con.stat(st)
	}
	return nil
}

// maxTTL is the largest TTL ZooKeeper accepts, in ms (40 bits).
const maxTTL = 1<<40 - 1

func cliCreate(sh *cliShell, a *cliArgs) error {
	if len(a.args) < 1 {
		return command(a).errUsage()
	}
	seq, eph, cont, hasTTL := a.has('s'), a.has('e'), a.has('c'), a.has('t')
	if cont && (eph || seq) {
		return failf("-c cannot be combined with -s or -e. Containers cannot be ephemeral or sequential.")
	}
	var ttl int64
	if hasTTL {
		var err error
		if ttl, err = strconv.ParseInt(a.values['t'], 10, 64); err != nil {
			return failf("-t argument must be a long value")
		}
		if eph {
			return failf("TTLs cannot be used with Ephemeral znodes")
		}
		if cont {
			return failf("TTLs cannot be used with Container znodes")
		}
	}
	var flags int32
	switch {
	case eph && seq:
		flags = zk.FlagEphemeralSequential
	case eph:
		flags = zk.FlagEphemeral
	case seq && hasTTL:
		flags = zk.FlagPersistentSequentialWithTTL
	case seq:
		flags = zk.FlagSequence
	case cont:
		flags = zk.FlagContainer
	case hasTTL:
		flags = zk.FlagTTL
	}
	if hasTTL && (ttl <= 0 || ttl > maxTTL) {
		return failf("ttl must be positive and cannot be larger than: %d", int64(maxTTL))
	}
	path, err := pathArg(a, seq)
	if err != nil {
		return err
	}
	var data []byte // no data argument: a null value, which get shows as "null"
	if len(a.args) > 1 {
		data = []byte(a.args[1])
	}
	acl := zk.WorldACL(zk.PermAll)
	if len(a.args) > 2 {
		if acl = parseACL(a.args[2], sh.con.errln); len(acl) == 0 {
			// The Java client refuses an empty ACL before sending it.
			sh.con.errln(keeperErrorString(codeInvalidACL, ""))
			return keeperError(zk.ErrInvalidACL, "")
		}
	}
	conn := sh.sess.conn
	var created string
	switch {
	case hasTTL:
		created, err = conn.CreateTTL(path, data, flags, acl, time.Duration(ttl)*time.Millisecond)
	case cont:
		created, err = conn.CreateContainer(path, data, flags, acl)
	default:
		created, err = conn.Create(path, data, flags, acl)
	}
	if err != nil {
		if code, _ := errorCode(err); code == codeInvalidACL {
			sh.con.errln(keeperErrorString(code, path)) // zkCli shows both lines
		}
		return keeperError(err, path)
	}
	sh.con.errln("Created " + created)
	return nil
}

func cliDelete(sh *cliShell, a *cliArgs) error {
	path, err := pathArg(a, false)
	if err != nil {
		return err
	}
	version, err := intOption(a, 'v', -1, 32)
	if err != nil {
		return err
	}
	if len(a.args) > 1 {
		// zkCli 3.8 warns about "delete path version" and then deletes
		// whatever the version.
		sh.con.errln("'delete path [version]' has been deprecated. Please use 'delete [-v version] path' instead.")
		version = -1
	}
	if err := sh.sess.conn.Delete(path, int32(version)); err != nil {
		return keeperError(err, path)
	}
	return nil
}

func cliDeleteAll(sh *cliShell, a *cliArgs) error {
	path, err := pathArg(a, false)
	if err != nil {
		return err
	}
	batch, err := intOption(a, 'b', 1000, 32)
	if err != nil {
		return err
	}
	var tree []string
	if err := walkTree(sh.sess.conn, path, false, func(p string) { tree = append(tree, p) }); err != nil {
		return err
	}
	// Leaves first, in multis of at most batch deletes, as zkCli does; a
	// failed batch ends the command with zkCli's message and exit code 0.
	var ops []any
	for i := len(tree) - 1; i >= 0; i-- {
		ops = append(ops, &zk.DeleteRequest{Path: tree[i], Version: -1})
		if len(ops) < int(batch) && i > 0 {
			continue
		}
		res, err := sh.sess.conn.Multi(ops...)
		failed := err != nil
		for _, r := range res {
			failed = failed || r.Error != nil
		}
		if failed {
			sh.con.errln("Failed to delete some node(s) in the subtree!")
			return nil
		}
		ops = ops[:0]
	}
	return nil
}

func cliSync(sh *cliShell, a *cliArgs) error {
	path, err := pathArg(a, false)
	if err != nil {
		return err
	}
	if _, err := sh.sess.conn.Sync(path); err != nil {
		code, ok := errorCode(err)
		if !ok {
			return keeperError(err, path)
		}
		sh.con.outln(fmt.Sprintf("Sync has failed. rc=%d", code))
		return nil
	}
	sh.con.outln("Sync is OK")
	return nil
}

func cliGetACL(sh *cliShell, a *cliArgs) error {
	path, err := pathArg(a, false)
	if err != nil {
		return err
	}
	acl, st, err := sh.sess.conn.GetACL(path)
	if err != nil {
		return keeperError(err, path)
	}
	for _, e := range acl {
		sh.con.outln(formatACL(e))
	}
	if a.has('s') {
		sh.con.stat(st)
	}
	return nil
}

func cliSetACL(sh *cliShell, a *cliArgs) error {
	if len(a.args) < 2 {
		return command(a).errUsage()
	}
	path, err := pathArg(a, false)
	if err != nil {
		return err
	}
	version, err := intOption(a, 'v', -1, 32)
	if err != nil {
		return err
	}
	acl := parseACL(a.args[1], sh.con.errln)
	if len(acl) == 0 {
		return keeperError(zk.ErrInvalidACL, "") // refused by the Java client before sending
	}
	conn := sh.sess.conn
	if a.has('R') {
		var tree []string
		if err := walkTree(conn, path, false, func(p string) { tree = append(tree, p) }); err != nil {
			return err
		}
		for _, p := range tree {
			if _, err := conn.SetACL(p, acl, int32(version)); err != nil {
				sh.con.errln(keeperError(err, p).msg)
			}
		}
		return nil
	}
	st, err := conn.SetACL(path, acl, int32(version))
	if err != nil {
		return keeperError(err, path)
	}
	if a.has('s') {
		sh.con.stat(st)
	}
	return nil
}

func cliAddAuth(sh *cliShell, a *cliArgs) error {
	if len(a.args) < 1 {
		return command(a).errUsage()
	}
	var auth []byte
	if len(a.args) > 1 {
		auth = []byte(a.args[1])
	}
	if err := sh.addAuth(a.args[0], auth); err != nil {
		return keeperError(err, "")
	}
	return nil
}

func cliConfig(sh *cliShell, a *cliArgs) error {
	if a.has('c') {
		return failf("config -c is not supported by zoo cli")
	}
	const path = "/zookeeper/config"
	var data []byte
	var st *zk.Stat
	var err error
	if a.has('w') {
		data, st, _, err = sh.sess.conn.GetW(path)
	} else {
		data, st, err = sh.sess.conn.Get(path)
	}
	if err != nil {
		return keeperError(err, path)
	}
	sh.con.outln(dataString(data))
	if a.has('s') {
		sh.con.stat(st)
	}
	return nil
}

// unsupported is the error for a request go-zookeeper/zk v1.0.4 cannot send:
// zoo cli says so rather than approximate it with other requests.
func unsupported(cmd string, opcode int) error {
	return failf("%s is not supported by zoo cli: go-zookeeper/zk v1.0.4 cannot send the %s request (opcode %d)", cmd, cmd, opcode)
}

// cliUnsupportedPathOp checks a one-path command's arguments and reports
// the request as unsupported.
func cliUnsupportedPathOp(name string, opcode int) func(*cliShell, *cliArgs) error {
	return func(sh *cliShell, a *cliArgs) error {
		if _, err := pathArg(a, false); err != nil {
			return err
		}
		return unsupported(name, opcode)
	}
}

func cliGetEphemerals(sh *cliShell, a *cliArgs) error {
	if len(a.args) > 0 { // the path is optional, "/" by default
		if err := validatePath(a.args[0], false); err != nil {
			return err
		}
	}
	return unsupported("getEphemerals", 103)
}

func cliAddWatch(sh *cliShell, a *cliArgs) error {
	if len(a.args) < 1 {
		return command(a).errUsage()
	}
	if m, ok := a.values['m']; ok && m != "PERSISTENT" && m != "PERSISTENT_RECURSIVE" {
		return command(a).errUsage()
	}
	if _, err := pathArg(a, false); err != nil {
		return err
	}
	return unsupported("addWatch", 106)
}

func cliRemoveWatches(sh *cliShell, a *cliArgs) error {
	if _, err := pathArg(a, false); err != nil {
		return err
	}
	return unsupported("removeWatches", 18)
}

func cliWhoAmI(sh *cliShell, a *cliArgs) error { return unsupported("whoAmI", 107) }

func cliClose(sh *cliShell, a *cliArgs) error {
	sh.closeSession(true)
	return nil
}

func cliConnect(sh *cliShell, a *cliArgs) error {
	host := sh.host
	if len(a.args) > 0 {
		host = a.args[0]
	}
	sh.closeSession(true)
	return sh.connect(host)
}

func cliQuit(sh *cliShell, a *cliArgs) error {
	sh.closeSession(true)
	sh.quit = true
	// zkCli exits with the code of the command before quit.
	return &cliError{exit: sh.exitCode}
}

func cliHistory(sh *cliShell, a *cliArgs) error {
	for i := max(0, sh.count-10); i <= sh.count; i++ {
		sh.con.outln(fmt.Sprintf("%d - %s", i, sh.history[i]))
	}
	return nil
}

func cliRedo(sh *cliShell, a *cliArgs) error {
	if len(a.args) < 1 {
		return nil // zkCli does nothing, and says nothing
	}
	n, err := strconv.ParseInt(a.args[0], 0, 32) // zkCli takes 0x.. and 0.. (octal) too
	if err != nil || n < 0 || int(n) >= sh.count {
		return failf("Command index out of range")
	}
	line := sh.history[int(n)]
	toks := tokenize(line)
	if toks[0] == "redo" {
		return failf("No redoing redos")
	}
	sh.history[sh.count] = line
	return sh.dispatch(toks)
}

func cliPrintWatches(sh *cliShell, a *cliArgs) error {
	if len(a.args) == 0 {
		on := "off"
		if sh.printWatches.Load() {
			on = "on"
		}
		sh.con.outln("printwatches is " + on)
		return nil
	}
	sh.printWatches.Store(a.args[0] == "on") // as in zkCli, anything but "on" is off
	return nil
}

func cliVersion(sh *cliShell, a *cliArgs) error {
	sh.con.outln("ZooKeeper CLI version: " + version + ", zoo cli on go-zookeeper/zk v1.0.4")
	return nil
}

// completeCommand completes the command name at the start of a line on Tab.
func completeCommand(line string, pos int) (string, int, bool) {
	if strings.ContainsAny(line[:pos], " \t") {
		return "", 0, false
	}
	var matches []string
	for _, c := range cliCommands {
		if strings.HasPrefix(c.name, line[:pos]) {
			matches = append(matches, c.name)
		}
	}
	if len(matches) == 0 {
		return "", 0, false
	}
	common := matches[0]
	for _, m := range matches[1:] {
		for !strings.HasPrefix(m, common) {
			common = common[:len(common)-1]
		}
	}
	if len(matches) == 1 {
		common += " "
	}
	return common + line[pos:], len(common), true
}
