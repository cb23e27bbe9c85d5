package main

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/zooraft/zoo"
	"github.com/zooraft/zoo/internal/zkclient"
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
	{name: "getAllChildrenNumber", usage: "path", run: cliGetAllChildrenNumber},
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
	if a.has('R') {
		// zkCli lists the subtree breadth first, the node itself included,
		// and ignores -s.
		return walkTree(sh.ctx, sh.sess.conn, path, watch, func(p string) { sh.con.outln(p) })
	}
	var children []string
	var st zoo.Stat
	if a.has('s') {
		children, st, err = sh.sess.conn.ChildrenWithStat(sh.ctx, path, watch)
	} else {
		children, err = sh.sess.conn.Children(sh.ctx, path, watch)
	}
	if err != nil {
		return keeperError(err, path)
	}
	sh.con.outln(javaList(children, true))
	if a.has('s') {
		sh.con.stat(st)
	}
	return nil
}

// javaList prints a list of strings as Java's List.toString does, sorted
// or in the order given.
func javaList(items []string, sorted bool) string {
	if sorted {
		items = append([]string(nil), items...)
		sort.Strings(items)
	}
	return "[" + strings.Join(items, ", ") + "]"
}

// walkTree visits path and its descendants breadth first, children in
// sorted order, as zkCli's ls -R and deleteall list a subtree.
func walkTree(ctx context.Context, conn *zkclient.Conn, path string, watch bool, visit func(string)) error {
	queue := []string{path}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		children, err := conn.Children(ctx, p, watch)
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
	data, st, err := sh.sess.conn.Get(sh.ctx, path, watch)
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
	ok, st, err := sh.sess.conn.Exists(sh.ctx, path, watch)
	if err == nil && !ok {
		err = zoo.ErrNoNode
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
	st, err := sh.sess.conn.Set(sh.ctx, path, []byte(a.args[1]), int32(version))
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
	mode := zoo.ModePersistent
	switch {
	case eph && seq:
		mode = zoo.ModeEphemeralSequential
	case eph:
		mode = zoo.ModeEphemeral
	case seq && hasTTL:
		mode = zoo.ModePersistentSequentialWithTTL
	case seq:
		mode = zoo.ModePersistentSequential
	case cont:
		mode = zoo.ModeContainer
	case hasTTL:
		mode = zoo.ModePersistentWithTTL
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
	acl := zoo.OpenACL
	if len(a.args) > 2 {
		if acl = parseACL(a.args[2], sh.con.errln); len(acl) == 0 {
			// The Java client refuses an empty ACL before sending it.
			sh.con.errln(keeperErrorString(codeInvalidACL, ""))
			return keeperError(zoo.ErrInvalidACL, "")
		}
	}
	var created string
	if hasTTL {
		// The Java client sends createTTL (21); otherwise create (1), or
		// createContainer (19) for -c, as zkclient's Create does.
		created, _, err = sh.sess.conn.CreateWithStat(sh.ctx, zoo.CreateOp{Path: path, Data: data, ACL: acl, Mode: mode,
			TTL: time.Duration(ttl) * time.Millisecond})
	} else {
		created, err = sh.sess.conn.Create(sh.ctx, path, data, mode, acl)
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
	if path == "/" {
		// The Java client sends delete of "/" unchrooted, which the server
		// always refuses; under a chroot zkclient would send the chroot.
		return keeperError(zoo.ErrBadArguments, path)
	}
	if err := sh.sess.conn.Delete(sh.ctx, path, int32(version)); err != nil {
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
	if err := walkTree(sh.ctx, sh.sess.conn, path, false, func(p string) { tree = append(tree, p) }); err != nil {
		return err
	}
	// Leaves first, in multis of at most batch deletes, as zkCli does; a
	// failed batch ends the command with zkCli's message and exit code 0.
	var ops []zoo.Op
	for i := len(tree) - 1; i >= 0; i-- {
		ops = append(ops, zoo.DeleteOp{Path: tree[i], Version: -1})
		if len(ops) < int(batch) && i > 0 {
			continue
		}
		if _, err := sh.sess.conn.Multi(sh.ctx, ops...); err != nil {
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
	if err := sh.sess.conn.Sync(sh.ctx, path); err != nil {
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
	acl, st, err := sh.sess.conn.GetACL(sh.ctx, path)
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
		return keeperError(zoo.ErrInvalidACL, "") // refused by the Java client before sending
	}
	conn := sh.sess.conn
	if a.has('R') {
		var tree []string
		if err := walkTree(sh.ctx, conn, path, false, func(p string) { tree = append(tree, p) }); err != nil {
			return err
		}
		for _, p := range tree {
			if _, err := conn.SetACL(sh.ctx, p, acl, int32(version)); err != nil {
				sh.con.errln(keeperError(err, p).msg)
			}
		}
		return nil
	}
	st, err := conn.SetACL(sh.ctx, path, acl, int32(version))
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
	if err := sh.addAuth(sh.ctx, a.args[0], auth); err != nil {
		return keeperError(err, "")
	}
	return nil
}

func cliConfig(sh *cliShell, a *cliArgs) error {
	if a.has('c') {
		return failf("config -c is not supported by zoo cli")
	}
	const path = "/zookeeper/config"
	data, st, err := sh.sess.conn.GetConfig(sh.ctx, a.has('w'))
	if err != nil {
		return keeperError(err, path)
	}
	sh.con.outln(dataString(data))
	if a.has('s') {
		sh.con.stat(st)
	}
	return nil
}

func cliGetAllChildrenNumber(sh *cliShell, a *cliArgs) error {
	path, err := pathArg(a, false)
	if err != nil {
		return err
	}
	n, err := sh.sess.conn.AllChildrenNumber(sh.ctx, path)
	if err != nil {
		return keeperError(err, path)
	}
	sh.con.outln(strconv.Itoa(n))
	return nil
}

// cliGetEphemerals lists the session's ephemerals under a path prefix, "/"
// when none is given, in the server's order as zkCli prints them. Under a
// chroot zkclient roots the prefix there and strips it from the result;
// the Java 3.8 client applies no chroot to getEphemerals at all.
func cliGetEphemerals(sh *cliShell, a *cliArgs) error {
	prefix := "/"
	if len(a.args) > 0 {
		prefix = a.args[0]
		if err := validatePath(prefix, false); err != nil {
			return err
		}
	}
	paths, err := sh.sess.conn.GetEphemerals(sh.ctx, prefix)
	if err != nil {
		return keeperError(err, prefix)
	}
	sh.con.outln(javaList(paths, false))
	return nil
}

// watchModes are addWatch's modes by name; zkCli takes them in any case.
var watchModes = map[string]zoo.WatchMode{
	"PERSISTENT":           zoo.WatchPersistent,
	"PERSISTENT_RECURSIVE": zoo.WatchPersistentRecursive,
}

func cliAddWatch(sh *cliShell, a *cliArgs) error {
	if len(a.args) != 1 {
		return command(a).errUsage()
	}
	mode := zoo.WatchPersistentRecursive
	if m, ok := a.values['m']; ok {
		if mode, ok = watchModes[strings.ToUpper(m)]; !ok {
			return command(a).errUsage()
		}
	}
	// zkCli dies of an IllegalArgumentException on a bad path; zoo cli
	// says what is wrong, as for the other commands.
	path, err := pathArg(a, false)
	if err != nil {
		return err
	}
	if err := sh.sess.conn.AddWatch(sh.ctx, path, mode); err != nil {
		return keeperError(err, path)
	}
	return nil
}

// cliRemoveWatches removes the session's watches of a type on a path: -c
// child watches, -d data (and exist) watches, -a or none of them any watch,
// persistent ones included, in that order of precedence as in zkCli. With
// -l the watches are removed locally too when the server cannot be asked.
// Each removed kind shows as a DataWatchRemoved, ChildWatchRemoved or
// PersistentWatchRemoved event.
func cliRemoveWatches(sh *cliShell, a *cliArgs) error {
	path, err := pathArg(a, false)
	if err != nil {
		return err
	}
	typ := zoo.WatcherAny
	switch {
	case a.has('c'):
		typ = zoo.WatcherChildren
	case a.has('d'):
		typ = zoo.WatcherData
	}
	if err := sh.sess.conn.RemoveWatches(sh.ctx, path, typ, a.has('l')); err != nil {
		return keeperError(err, path)
	}
	return nil
}

// cliWhoAmI prints the identities the server holds for the session, as
// "scheme: user" lines under zkCli's header.
func cliWhoAmI(sh *cliShell, a *cliArgs) error {
	ids, err := sh.sess.conn.WhoAmI(sh.ctx)
	if err != nil {
		return keeperError(err, "")
	}
	sh.con.outln("Auth scheme: User")
	for _, id := range ids {
		sh.con.outln(id.Scheme + ": " + id.ID)
	}
	return nil
}

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
	sh.con.outln("ZooKeeper CLI version: " + version)
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
