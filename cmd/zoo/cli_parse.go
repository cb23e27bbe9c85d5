package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf16"

	"github.com/zooraft/zoo"
)

// This file holds the parts of `zoo cli` that turn what the user typed into
// requests, and errors into the lines zkCli.sh prints, without touching the
// network: the tokenizer, the option parser, path and ACL checks, and the
// KeeperException messages.

// cliError is a failed command: the message zkCli prints on stderr (empty
// for none) and the exit code it leaves.
type cliError struct {
	msg  string
	exit int
}

func (e *cliError) Error() string { return e.msg }

// failf is a failed command with exit code 1, zkCli's code for every failure
// but an unknown command.
func failf(format string, a ...any) *cliError {
	return &cliError{msg: fmt.Sprintf(format, a...), exit: 1}
}

// tokenize splits a command line as zkCli does: a token is a run of
// non-space characters that does not start with a quote, or a "..." or '...'
// string whose quotes are removed. There is no escaping; a quote inside an
// unquoted token is an ordinary character, and an opening quote without a
// closing one is skipped.
func tokenize(line string) []string {
	var toks []string
	i := 0
	for i < len(line) {
		c := line[i]
		switch {
		case isJavaSpace(c):
			i++
		case c == '"' || c == '\'':
			end := strings.IndexByte(line[i+1:], c)
			if end < 0 {
				i++ // no closing quote: the quote itself is dropped
				continue
			}
			toks = append(toks, line[i+1:i+1+end])
			i += end + 2
		default:
			j := i
			for j < len(line) && !isJavaSpace(line[j]) {
				j++
			}
			toks = append(toks, line[i:j])
			i = j
		}
	}
	return toks
}

// isJavaSpace is Java's \s: space, tab, newline, vertical tab, form feed, CR.
func isJavaSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

// cliArgs is a parsed command line: the command, its options and its
// positional arguments (without the command name).
type cliArgs struct {
	cmd    string
	flags  map[byte]bool
	values map[byte]string
	args   []string
}

func (a *cliArgs) has(opt byte) bool { return a.flags[opt] }

// parseOptions parses toks[1:] against spec, a getopt-style list of option
// letters where a letter followed by ':' takes a value. As in zkCli (Apache
// commons-cli), options may come anywhere, "-sR" sets both -s and -R, "-v5"
// and "-v 5" give -v the value 5, the value may itself start with '-', "--"
// ends the options, and any other token starting with '-' is an error, so
// data such as "-1" can only be given after "--".
func parseOptions(toks []string, spec string) (*cliArgs, error) {
	a := &cliArgs{cmd: toks[0], flags: map[byte]bool{}, values: map[byte]string{}}
	takesValue := func(c byte) (known, value bool) {
		i := strings.IndexByte(spec, c)
		if i < 0 || c == ':' {
			return false, false
		}
		return true, i+1 < len(spec) && spec[i+1] == ':'
	}
	rest := toks[1:]
	for i := 0; i < len(rest); i++ {
		tok := rest[i]
		if tok == "--" {
			a.args = append(a.args, rest[i+1:]...)
			break
		}
		if len(tok) < 2 || tok[0] != '-' {
			a.args = append(a.args, tok)
			continue
		}
		// Every letter must be an option; a value-taking one ends the
		// token and takes its remainder, or else the next token.
		for j := 1; j < len(tok); j++ {
			known, value := takesValue(tok[j])
			if !known {
				return nil, &cliError{msg: "org.apache.commons.cli.UnrecognizedOptionException: Unrecognized option: " + tok, exit: 1}
			}
			if !value {
				a.flags[tok[j]] = true
				continue
			}
			v := tok[j+1:]
			if v == "" {
				if i+1 >= len(rest) {
					return nil, &cliError{msg: "org.apache.commons.cli.MissingArgumentException: Missing argument for option: " + string(tok[j]), exit: 1}
				}
				i++
				v = rest[i]
			}
			a.flags[tok[j]] = true
			a.values[tok[j]] = v
			break
		}
	}
	return a, nil
}

// intOption reads a numeric option value such as -v's version. zkCli dies
// with a Java stack trace on a non-number; zoo cli says what is wrong.
func intOption(a *cliArgs, opt byte, def int64, bits int) (int64, error) {
	v, ok := a.values[opt]
	if !ok {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, bits)
	if err != nil {
		return 0, failf("-%c argument must be a number: %s", opt, v)
	}
	return n, nil
}

// validatePath applies ZooKeeper's client-side path rules (the Java client's
// PathUtils) and returns zkCli's message for a bad path. Positions count
// UTF-16 code units, as Java does, so a character outside the Basic
// Multilingual Plane is reported as an invalid character (its surrogates).
func validatePath(path string, sequential bool) error {
	if sequential {
		path += "1" // a sequential path may end in '/': the counter follows
	}
	if path == "" {
		return failf("Path length must be > 0")
	}
	if path[0] != '/' {
		return failf("Path must start with / character")
	}
	if len(path) == 1 {
		return nil
	}
	if path[len(path)-1] == '/' {
		return failf("Path must not end with / character")
	}
	u := utf16.Encode([]rune(path))
	// atSegmentEnd reports whether u[i] is the last unit of a path segment.
	atSegmentEnd := func(i int) bool { return i+1 == len(u) || u[i+1] == '/' }
	reason := ""
	for i := 1; i < len(u) && reason == ""; i++ {
		c, last := u[i], u[i-1]
		switch {
		case c == 0:
			reason = "null character not allowed"
		case c == '/' && last == '/':
			reason = "empty node name specified"
		case c == '.' && last == '.':
			if u[i-2] == '/' && atSegmentEnd(i) {
				reason = "relative paths not allowed"
			}
		case c == '.':
			if last == '/' && atSegmentEnd(i) {
				reason = "relative paths not allowed"
			}
		case c > 0 && c <= 0x1f, c >= 0x7f && c <= 0x9f, c >= 0xd800 && c <= 0xf8ff, c >= 0xfff0:
			reason = "invalid character"
		}
		if reason != "" {
			reason += " @" + strconv.Itoa(i)
		}
	}
	if reason != "" {
		return failf("Invalid path string \"%s\" caused by %s", path, reason)
	}
	return nil
}

// parseACL reads zkCli's ACL syntax, "scheme:id:perms[,scheme:id:perms...]",
// where the id is everything between the first and the last colon. Like zkCli
// it reports malformed entries and unknown permission letters on warn and
// goes on without them, so the result may be empty.
func parseACL(s string, warn func(string)) []zoo.ACL {
	var acl []zoo.ACL
	for _, part := range strings.Split(s, ",") {
		first, last := strings.IndexByte(part, ':'), strings.LastIndexByte(part, ':')
		if first < 0 || first == last {
			warn(part + " does not have the form scheme:id:perm")
			continue
		}
		acl = append(acl, zoo.ACL{Perms: parsePerms(part[last+1:], warn), ID: zoo.ID{Scheme: part[:first], ID: part[first+1 : last]}})
	}
	return acl
}

func parsePerms(s string, warn func(string)) int32 {
	var p int32
	for _, c := range s {
		switch c {
		case 'r':
			p |= zoo.PermRead
		case 'w':
			p |= zoo.PermWrite
		case 'c':
			p |= zoo.PermCreate
		case 'd':
			p |= zoo.PermDelete
		case 'a':
			p |= zoo.PermAdmin
		default:
			warn("Unknown perm type: " + string(c))
		}
	}
	return p
}

// permString is zkCli's spelling of a permission mask, in its order: cdrwa.
func permString(p int32) string {
	var b strings.Builder
	for _, x := range []struct {
		bit int32
		c   byte
	}{{zoo.PermCreate, 'c'}, {zoo.PermDelete, 'd'}, {zoo.PermRead, 'r'}, {zoo.PermWrite, 'w'}, {zoo.PermAdmin, 'a'}} {
		if p&x.bit != 0 {
			b.WriteByte(x.c)
		}
	}
	return b.String()
}

// formatACL prints an ACL entry as getAcl does: the id in the CSV form of
// ZooKeeper's record printer ('scheme,'id and a line break), then ": perms".
func formatACL(a zoo.ACL) string {
	return "'" + csvEscape(a.Scheme) + ",'" + csvEscape(a.ID.ID) + "\n: " + permString(a.Perms)
}

// csvEscape percent-encodes the characters ZooKeeper's CSV record printer
// escapes in strings.
func csvEscape(s string) string {
	return strings.NewReplacer("%", "%25", "\x00", "%00", "\n", "%0A", "\r", "%0D", ",", "%2C", "}", "%7D").Replace(s)
}

// ZooKeeper error codes that zoo cli names.
const (
	codeSystemError             = int32(zoo.CodeSystemError)
	codeConnectionLoss          = int32(zoo.CodeConnectionLoss)
	codeUnimplemented           = int32(zoo.CodeUnimplemented)
	codeBadArguments            = int32(zoo.CodeBadArguments)
	codeAPIError                = int32(zoo.CodeAPIError)
	codeNoNode                  = int32(zoo.CodeNoNode)
	codeNoAuth                  = int32(zoo.CodeNoAuth)
	codeBadVersion              = int32(zoo.CodeBadVersion)
	codeNoChildrenForEphemerals = int32(zoo.CodeNoChildrenForEphemerals)
	codeNodeExists              = int32(zoo.CodeNodeExists)
	codeNotEmpty                = int32(zoo.CodeNotEmpty)
	codeSessionExpired          = int32(zoo.CodeSessionExpired)
	codeInvalidACL              = int32(zoo.CodeInvalidACL)
	codeAuthFailed              = int32(zoo.CodeAuthFailed)
	codeSessionMoved            = int32(zoo.CodeSessionMoved)
	codeNotReadOnly             = int32(zoo.CodeNotReadOnly)
	codeNoWatcher               = int32(zoo.CodeNoWatcher)
	codeReconfigDisabled        = int32(zoo.CodeReconfigDisabled)
	codeQuotaExceeded           = -125
)

// errNoServer cancels a request that waited for a connection while the
// client's connection attempt failed: the Java client fails such a request
// with ConnectionLoss.
var errNoServer = errors.New("zoo cli: no server answered")

// errorCode recovers the ZooKeeper code of an error from zkclient, or
// ok=false for an error that does not stand for one. A request given up
// for want of a server is ConnectionLoss, and one made on a closed client
// SessionExpired, as the Java client reports them.
func errorCode(err error) (code int32, ok bool) {
	var coded interface{ Code() zoo.Code }
	switch {
	case errors.As(err, &coded):
		return int32(coded.Code()), true
	case errors.Is(err, errNoServer), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return codeConnectionLoss, true
	case errors.Is(err, zoo.ErrClosed):
		return codeSessionExpired, true
	}
	return 0, false
}

// codeNames are the Java client's KeeperException code messages.
var codeNames = map[int32]string{
	codeSystemError: "SystemError", -2: "RuntimeInconsistency", -3: "DataInconsistency",
	codeConnectionLoss: "ConnectionLoss", -5: "MarshallingError", codeUnimplemented: "Unimplemented",
	-7: "OperationTimeout", codeBadArguments: "BadArguments", -13: "NewConfigNoQuorum",
	-14: "ReconfigInProgress", codeAPIError: "APIError", codeNoNode: "NoNode", codeNoAuth: "NoAuth",
	codeBadVersion: "BadVersion", codeNoChildrenForEphemerals: "NoChildrenForEphemerals",
	codeNodeExists: "NodeExists", codeInvalidACL: "InvalidACL", codeAuthFailed: "AuthFailed",
	codeNotEmpty: "Directory not empty", codeSessionExpired: "Session expired", -113: "Invalid callback",
	codeSessionMoved: "Session moved", codeNotReadOnly: "Not a read-only call",
	-120: "Ephemeral node on local session", codeNoWatcher: "No such watcher",
	-122: "Request timeout", codeReconfigDisabled: "Reconfig is disabled",
	-124: "Session closed because client failed to authenticate", codeQuotaExceeded: "Quota has exceeded",
	-127: "Op throttled due to high load",
}

// keeperErrorString is a KeeperException's own message: "KeeperErrorCode =
// NoNode for /x", or without " for path" when the client had no path.
func keeperErrorString(code int32, path string) string {
	name, ok := codeNames[code]
	if !ok {
		name = fmt.Sprintf("Unknown error %d", code)
	}
	if path == "" {
		return "KeeperErrorCode = " + name
	}
	return "KeeperErrorCode = " + name + " for " + path
}

// keeperError turns an error from zkclient about path into zkCli's
// message for it: its own wording for the common codes, the exception's
// message for the others.
func keeperError(err error, path string) *cliError {
	var ce *cliError
	if errors.As(err, &ce) {
		return ce
	}
	code, ok := errorCode(err)
	if !ok {
		return failf("%v", err)
	}
	shown := path
	if shown == "" {
		shown = "null" // Java's rendering of an exception without a path
	}
	switch code {
	case codeNoNode:
		return failf("Node does not exist: %s", shown)
	case codeNoChildrenForEphemerals:
		return failf("Ephemerals cannot have children: %s", shown)
	case codeNodeExists:
		return failf("Node already exists: %s", shown)
	case codeNotEmpty:
		return failf("Node not empty: %s", shown)
	case codeNotReadOnly:
		return failf("Not a read-only call: %s", shown)
	case codeInvalidACL:
		return failf("Acl is not valid : %s", shown)
	case codeNoAuth:
		return failf("Insufficient permission : %s", shown)
	case codeBadArguments:
		return failf("Arguments are not valid : %s", shown)
	case codeBadVersion:
		return failf("version No is not valid : %s", shown)
	case codeQuotaExceeded:
		return failf("Quota has exceeded : %s", shown)
	}
	return failf("%s", keeperErrorString(code, path))
}
