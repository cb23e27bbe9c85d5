package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zooraft/zoo"
	"github.com/zooraft/zoo/internal/zkclient"
	"github.com/zooraft/zoo/zkwire"
)

// Seed 000's zkCli session through `zoo cli` instead of zkCli.sh, against a
// 3-member zoo ensemble through a follower, compared with the transcript of
// Apache ZooKeeper 3.8's zkCli.sh (testdata/seed000.golden, the golden file
// of TestSeed000ZkCliMatchesZooKeeper).
//
// Legitimate differences, removed before comparing:
//   - zkCli.sh's banner, "Welcome to ZooKeeper!", and "JLine support is
//     disabled", which is about its Java classpath. zoo cli prints neither.
//   - "Connecting to host:port", which zoo cli prints as zkCli does; the
//     normalizer drops it from both since the port differs.
//
// Everything else must match from the first line on: the SyncConnected
// event, every result and error message, the Stat blocks (zxids renamed in
// order of appearance, times blanked), the Closed event of quit, and the
// exit code, 1, as the command before quit failed.
func TestCliSeed000MatchesZooKeeper(t *testing.T) {
	golden, err := os.ReadFile("testdata/seed000.golden")
	if err != nil {
		t.Fatal(err)
	}
	want := dropLines(string(golden), "Welcome to ZooKeeper!", "JLine support is disabled")
	script, err := os.ReadFile("testdata/seed000.zk")
	if err != nil {
		t.Fatal(err)
	}
	e := startEnsemble(t, 3)
	var follower *member
	for _, m := range e.members {
		if mode(m) == "follower" {
			follower = m
			break
		}
	}
	if follower == nil {
		t.Fatal("no follower")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self, "cli", "-server", follower.clientAddr)
	cmd.Env = append(os.Environ(), execEnv+"=1")
	cmd.Stdin = bytes.NewReader(script)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("zoo cli did not finish:\n%s", out.String())
	}
	if got := normalizeZkCli(out.String()); got != want {
		t.Errorf("zoo cli transcript differs from zkCli.sh's.\n--- got\n%s\n--- want (ZooKeeper 3.8's zkCli.sh)\n%s", got, want)
	}
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) || exitErr.ExitCode() != 1 {
		t.Errorf("exit: %v, want exit status 1 (the command before quit failed)", err)
	}
}

// dropLines removes whole lines equal to one of drop.
func dropLines(s string, drop ...string) string {
	var b strings.Builder
	for _, line := range strings.SplitAfter(s, "\n") {
		keep := true
		for _, d := range drop {
			keep = keep && strings.TrimSuffix(line, "\n") != d
		}
		if keep {
			b.WriteString(line)
		}
	}
	return b.String()
}

// cliServer is one in-process zoo replica serving ZooKeeper clients on a
// loopback port, shared by the command tables, with an admin connection
// (authenticated as the super user) that empties the tree between cases.
type cliServer struct {
	addr  string
	admin *zkclient.Conn
}

func startCliServer(t *testing.T) *cliServer {
	t.Helper()
	ens, err := zoo.Open(zoo.Config{TickTime: 200 * time.Millisecond, SuperDigest: zoo.DigestID("super", "secret")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ens.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := ens.WaitServing(ctx); err != nil {
		t.Fatal(err)
	}
	srv, err := zkwire.NewServer(ens, zkwire.Config{ExtendedTypesEnabled: true})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	s := &cliServer{addr: ln.Addr().String()}
	s.admin = adminConn(t, s.addr)
	return s
}

// adminConn is a session as the super user ("super:secret"), closed with
// the test.
func adminConn(t *testing.T, addr string) *zkclient.Conn {
	t.Helper()
	c, err := zkclient.Connect([]string{addr}, zkclient.Options{SessionTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.AddAuth(ctx, "digest", []byte("super:secret")); err != nil {
		t.Fatal(err)
	}
	return c
}

// reset deletes every node but /zookeeper and its children.
func (s *cliServer) reset(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var del func(p string)
	del = func(p string) {
		children, err := s.admin.Children(ctx, p, false)
		if err != nil && !errors.Is(err, zoo.ErrNoNode) {
			t.Fatalf("reset: %s: %v", p, err)
		}
		for _, c := range children {
			if p == "/" && c == "zookeeper" {
				continue
			}
			del(childPath(p, c))
		}
		if p != "/" {
			if err := s.admin.Delete(ctx, p, -1); err != nil && !errors.Is(err, zoo.ErrNoNode) {
				t.Fatalf("reset: %s: %v", p, err)
			}
		}
	}
	del("/")
}

// create creates nodes as the admin.
func (s *cliServer) create(t *testing.T, paths ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, p := range paths {
		if _, err := s.admin.Create(ctx, p, nil, zoo.ModePersistent, nil); err != nil {
			t.Fatalf("create %s: %v", p, err)
		}
	}
}

// syncBuffer is stdout and stderr of an in-process zoo cli, which
// zkclient's event goroutine writes to as well.
type syncBuffer struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// runZooCli runs `zoo cli -server addr args...` in process with script on
// stdin, returning stdout and stderr interleaved, and the exit code.
func runZooCli(addr, script string, args ...string) (string, int) {
	var out syncBuffer
	code := runCli(append([]string{"-server", addr}, args...), strings.NewReader(script), &out, &out)
	return out.String(), code
}

const syncConnectedEvent = "\nWATCHER::\n\nWatchedEvent state:SyncConnected type:None path:null\n"

var ephemeralOwnerLine = regexp.MustCompile(`(?m)^ephemeralOwner = 0x[1-9a-f][0-9a-f]*$`)

// normalizeCliCase normalizes a transcript as normalizeZkCli does, drops
// zkCli.sh's banner and the session's SyncConnected event wherever it comes
// (every case connects), and hides session ids.
func normalizeCliCase(out string) string {
	// The connection event usually comes first, but a command that fails on
	// its arguments may finish before the session is established.
	return strings.Replace(normalizeCliOutput(out), syncConnectedEvent, "", 1)
}

// normalizeCliOutput is normalizeCliCase keeping the first event.
func normalizeCliOutput(out string) string {
	s := dropLines(normalizeZkCli(out), "Welcome to ZooKeeper!", "JLine support is disabled")
	s = ephemeralOwnerLine.ReplaceAllString(s, "ephemeralOwner = SESSION")
	return strings.TrimRight(s, "\n") + "\n"
}

// stat is a normalized Stat block, fields in zkCli's order.
func stat(czxid, mzxid, pzxid string, cversion, version, aversion int, owner string, dataLength, numChildren int) string {
	return "cZxid = " + czxid + "\nctime = T\nmZxid = " + mzxid + "\nmtime = T\npZxid = " + pzxid +
		"\ncversion = " + strconv.Itoa(cversion) + "\ndataVersion = " + strconv.Itoa(version) + "\naclVersion = " + strconv.Itoa(aversion) +
		"\nephemeralOwner = " + owner + "\ndataLength = " + strconv.Itoa(dataLength) + "\nnumChildren = " + strconv.Itoa(numChildren) + "\n"
}

func event(typ, path string) string {
	return "\nWATCHER::\n\nWatchedEvent state:SyncConnected type:" + typ + " path:" + path + "\n"
}

// zkDiff is what zkCli.sh prints instead of a case's want, and why.
type zkDiff struct {
	out, why string
	exit     int
}

// cliCase is a script for the shell, fed on stdin as a pipe, and the
// transcript it must print (normalized by normalizeCliCase) with the exit
// code it must leave. Unless zk says otherwise, zkCli.sh 3.8 prints the same
// (TestCliCommandsMatchZkCli checks it where zkCli.sh is installed).
type cliCase struct {
	name   string
	chroot string   // suffix of the -server connect string
	setup  []string // nodes the admin creates first
	script string
	want   string
	exit   int
	zk     *zkDiff
	zkSkip string // why the case is not compared with zkCli.sh at all
}

// addWatchUsage is addWatch's usage line, its message for wrong arguments.
const addWatchUsage = "addWatch [-m mode] path # optional mode is one of [PERSISTENT, PERSISTENT_RECURSIVE] - default is PERSISTENT_RECURSIVE\n"

// cliCases is a function, not a table variable, as cliUsage needs the
// command index that init fills.
func cliCases() []cliCase {
	return []cliCase{
		{
			name: "ls",
			script: `create /a
create /a/b x
create /a/c
ls /a
ls -s /a
ls -R /a
ls -sR /a
ls -R /
ls /nope
ls -R /nope
ls /a/b
ls
ls a
ls -x /a
ls -v /a
ls /a 1
`,
			want: "Created /a\nCreated /a/b\nCreated /a/c\n[b, c]\n[b, c]\n" + stat("Z1", "Z1", "Z2", 2, 0, 0, "0x0", 0, 2) +
				"/a\n/a/b\n/a/c\n/a\n/a/b\n/a/c\n/\n/a\n/zookeeper\n/a/b\n/a/c\n/zookeeper/config\n/zookeeper/quota\n" +
				"Node does not exist: /nope\nNode does not exist: /nope\n[]\n" +
				"ls [-s] [-w] [-R] path\nPath must start with / character\n" +
				"org.apache.commons.cli.UnrecognizedOptionException: Unrecognized option: -x\n" +
				"org.apache.commons.cli.UnrecognizedOptionException: Unrecognized option: -v\n" +
				"'ls path [watch]' has been deprecated. Please use 'ls [-w] path' instead.\n[b, c]\n",
		},
		{
			name: "get and set",
			script: `create /g "x y"
get /g
create /n
get /n
create /e ""
get /e
get -s /g
set /g z
set -s /g zz
set -v 5 /g q
set -v 2 /g q
get /g
set /g
set /nope x
set /g -1
set /g -- -1
get /g
get /g 1
get
get /nope
get /g/
`,
			want: "Created /g\nx y\nCreated /n\nnull\nCreated /e\n\nx y\n" + stat("Z1", "Z1", "Z1", 0, 0, 0, "0x0", 3, 0) +
				stat("Z1", "Z2", "Z1", 0, 2, 0, "0x0", 2, 0) +
				"version No is not valid : /g\nq\nset [-s] [-v version] path data\nNode does not exist: /nope\n" +
				"org.apache.commons.cli.UnrecognizedOptionException: Unrecognized option: -1\n-1\n" +
				"'get path [watch]' has been deprecated. Please use 'get [-s] [-w] path' instead.\n-1\n" +
				"get [-s] [-w] path\nNode does not exist: /nope\nPath must not end with / character\n",
			exit: 1,
		},
		{
			name: "create",
			script: `create /c
create /c
create -e /c/eph e
stat /c/eph
create /c/eph/x
create -s /c/s- a
create -s /c/s- b
create -s -e /c/se- c
create -c /c/cont
create -t 100000 /c/ttl
create -s -t 100000 /c/ttl-
create -c -e /c/x
create -c -s /c/x
create -t 10 -e /c/x
create -t 10 -c /c/x
create -t x /c/x
create -t 0 /c/x
create -t 1099511627776 /c/x
create -t
create /c/q 'single quoted'
get /c/q
create /c/r "a 'b' c"
get /c/r
create /c/u a"b
get /c/u
create /c/v "unclosed
get /c/v
create /nope/x
create c
create /c//x
create /c/.
create /c/
create -s /c/
create
ls /c
`,
			want: "Created /c\nNode already exists: /c\nCreated /c/eph\n" + stat("Z1", "Z1", "Z1", 0, 0, 0, "SESSION", 1, 0) +
				"Ephemerals cannot have children: /c/eph/x\nCreated /c/s-0000000001\nCreated /c/s-0000000002\n" +
				"Created /c/se-0000000003\nCreated /c/cont\nCreated /c/ttl\nCreated /c/ttl-0000000006\n" +
				"-c cannot be combined with -s or -e. Containers cannot be ephemeral or sequential.\n" +
				"-c cannot be combined with -s or -e. Containers cannot be ephemeral or sequential.\n" +
				"TTLs cannot be used with Ephemeral znodes\nTTLs cannot be used with Container znodes\n" +
				"-t argument must be a long value\n" +
				"ttl must be positive and cannot be larger than: 1099511627775\n" +
				"ttl must be positive and cannot be larger than: 1099511627775\n" +
				"org.apache.commons.cli.MissingArgumentException: Missing argument for option: t\n" +
				"Created /c/q\nsingle quoted\nCreated /c/r\na 'b' c\nCreated /c/u\na\"b\nCreated /c/v\nunclosed\n" +
				"Node does not exist: /nope/x\nPath must start with / character\n" +
				"Invalid path string \"/c//x\" caused by empty node name specified @3\n" +
				"Invalid path string \"/c/.\" caused by relative paths not allowed @3\n" +
				"Path must not end with / character\nCreated /c/0000000011\n" +
				"create [-s] [-e] [-c] [-t ttl] path [data] [acl]\n" +
				"[0000000011, cont, eph, q, r, s-0000000001, s-0000000002, se-0000000003, ttl, ttl-0000000006, u, v]\n",
		},
		{
			name: "delete and deleteall",
			script: `create /d
create /d/a
create /d/a/b
create /d/c x
delete /d
delete -v 3 /d/c
delete -v 0 /d/c
delete /d/c
delete /nope
delete /d/a 7
deleteall /d
ls /
deleteall /nope
deleteall
delete
delete /
delete /zookeeper
`,
			want: "Created /d\nCreated /d/a\nCreated /d/a/b\nCreated /d/c\nNode not empty: /d\n" +
				"version No is not valid : /d/c\nNode does not exist: /d/c\nNode does not exist: /nope\n" +
				"'delete path [version]' has been deprecated. Please use 'delete [-v version] path' instead.\n" +
				"Node not empty: /d/a\n[zookeeper]\nNode does not exist: /nope\n" +
				"deleteall path [-b batch size]\ndelete [-v version] path\nArguments are not valid : /\n" +
				"Arguments are not valid : /zookeeper\n",
			exit: 1,
		},
		{
			name:   "deleteall fails",
			script: "deleteall /zookeeper\nls /zookeeper\n",
			want:   "Failed to delete some node(s) in the subtree!\n[config, quota]\n",
			zkSkip: "zkCli.sh may not notice the failure: it reads the outcome before its callback records it",
		},
		{
			name: "stat",
			script: `create /s x
stat /s
stat /nope
stat
stat /s 1
stat s
`,
			want: "Created /s\n" + stat("Z1", "Z1", "Z1", 0, 0, 0, "0x0", 1, 0) + "Node does not exist: /nope\nstat [-w] path\n" +
				"'stat path [watch]' has been deprecated. Please use 'stat [-w] path' instead.\n" +
				stat("Z1", "Z1", "Z1", 0, 0, 0, "0x0", 1, 0) + "Path must start with / character\n",
			exit: 1,
		},
		{
			// zoo cli prints an event before the reply that follows it, as
			// zkclient delivers them in the server's order.
			name: "watches",
			script: `create /w 1
create /w/c
get -w /w
set /w 2
set /w 3
ls -w /w
delete /w/c
stat -w /w
set /w 4
stat -w /w/x
create /w/x
ls -w /w
create /w/y
get /w
`,
			want: "Created /w\nCreated /w/c\n1\n" + event("NodeDataChanged", "/w") + "[c]\n" +
				event("NodeChildrenChanged", "/w") + stat("Z1", "Z2", "Z3", 2, 2, 0, "0x0", 1, 0) +
				event("NodeDataChanged", "/w") + "Node does not exist: /w/x\n" + event("NodeCreated", "/w/x") +
				"Created /w/x\n[x]\n" + event("NodeChildrenChanged", "/w") + "Created /w/y\n4\n",
		},
		{
			// Without printwatches on again: zkCli prints events from a
			// thread of its own, which may run after it.
			name: "printwatches",
			script: `create /p 1
printwatches
printwatches xx
printwatches
get -w /p
set /p 2
get /p
`,
			want: "Created /p\nprintwatches is on\nprintwatches is off\n1\n2\n",
		},
		{
			name: "acl",
			script: `create /acl x
setAcl -v 5 /acl world:anyone:cdrwa
setAcl -s /acl world:anyone:cdrwa
setAcl /acl world:anyone:rw,ip:127.0.0.1:cdrwa
getAcl /acl
create /acl/r x world:anyone:r
set /acl/r y
getAcl -s /acl/r
create /acl/e x world:anyone:
getAcl /acl/e
create /acl/z x world:anyone:rz
getAcl /acl/z
create /acl/bad x foo
create /acl/inv x nope:x:r
setAcl /acl/r foo
setAcl /acl/r
getAcl /nope
setAcl /nope world:anyone:r
addauth digest u:p
create /acl/d x auth::cdrwa
getAcl /acl/d
create /acl/p x digest:u:xyz:cdrwa,world:anyone:r
getAcl /acl/p
getAcl
`,
			want: "Created /acl\nversion No is not valid : /acl\n" + stat("Z1", "Z1", "Z1", 0, 0, 1, "0x0", 1, 0) +
				"'world,'anyone\n: rw\n'ip,'127.0.0.1\n: cdrwa\nCreated /acl/r\nInsufficient permission : /acl/r\n" +
				"'world,'anyone\n: r\n" + stat("Z2", "Z2", "Z2", 0, 0, 0, "0x0", 1, 0) +
				"Created /acl/e\nInsufficient permission : /acl/e\nUnknown perm type: z\nCreated /acl/z\n'world,'anyone\n: r\n" +
				"foo does not have the form scheme:id:perm\nKeeperErrorCode = InvalidACL\nAcl is not valid : null\n" +
				"KeeperErrorCode = InvalidACL for /acl/inv\nAcl is not valid : /acl/inv\n" +
				"foo does not have the form scheme:id:perm\nAcl is not valid : null\n" +
				"setAcl [-s] [-v version] [-R] path acl\n" +
				"Node does not exist: /nope\nNode does not exist: /nope\n" +
				"Created /acl/d\n'digest,'u:Jq7wMyA/w2Vd5WIDAKdu4OIIFEQ=\n: cdrwa\n" +
				"Created /acl/p\n'digest,'u:x\n: cdrwa\n'world,'anyone\n: r\ngetAcl [-s] path\n",
			exit: 1,
		},
		{
			name: "setAcl -R",
			script: `create /t
create /t/a
create /t/a/b
setAcl -R /t world:anyone:cdr
getAcl /t/a/b
getAcl /t
`,
			want: "Created /t\nCreated /t/a\nCreated /t/a/b\n'world,'anyone\n: cdr\n'world,'anyone\n: cdr\n",
		},
		{
			name: "quoting",
			script: `create /q
create /q/a "two words"
get /q/a
create /q/b 'it''s'
create /q/c "say 'hi'"
get /q/c
create /q/d 'say "hi"'
get /q/d
create /q/e    spaced	 	out
get /q/e
  get   /q/a  
set /q/a ""
get -s /q/a
`,
			want: "Created /q\nCreated /q/a\ntwo words\ns does not have the form scheme:id:perm\n" +
				"KeeperErrorCode = InvalidACL\nAcl is not valid : null\nCreated /q/c\nsay 'hi'\n" +
				"Created /q/d\nsay \"hi\"\nout does not have the form scheme:id:perm\n" +
				"KeeperErrorCode = InvalidACL\nAcl is not valid : null\nNode does not exist: /q/e\ntwo words\n\n" +
				stat("Z1", "Z2", "Z1", 0, 1, 0, "0x0", 0, 0),
		},
		{
			name: "sync",
			script: `sync /
sync /nope
sync
sync x
`,
			want: "Sync is OK\nSync is OK\nsync path\nPath must start with / character\n",
			exit: 1,
		},
		{
			name: "history and redo",
			script: `create /h
get /h
redo 1
redo 0
redo 9
redo 4
redo -1
redo
history
`,
			want: "Created /h\nnull\nnull\nNode already exists: /h\nCommand index out of range\nNo redoing redos\n" +
				"Command index out of range\n" +
				"0 - create /h\n1 - get /h\n2 - get /h\n3 - create /h\n4 - redo 9\n5 - redo 4\n6 - redo -1\n" +
				"7 - redo\n8 - history\n",
		},
		{
			name: "close, connect and quit",
			script: `ls /
close
ls /
close
connect
ls /
quit
ls /
`,
			want: "[zookeeper]\n" + closedEvent + "Not connected\nNot connected\n" + syncConnectedEvent + "[zookeeper]\n" + closedEvent,
		},
		{
			// zkCli.sh dies of a NumberFormatException on each of these.
			name: "numbers",
			script: `create /n
set -v abc /n x
delete -v 1.5 /n
setAcl -v x /n world:anyone:r
deleteall -b many /n
redo x
set -v 4294967296 /n x
create -t 9999999999999999999 /n/t
`,
			want: "Created /n\n-v argument must be a number: abc\n-v argument must be a number: 1.5\n" +
				"-v argument must be a number: x\n-b argument must be a number: many\nCommand index out of range\n" +
				"-v argument must be a number: 4294967296\n-t argument must be a long value\n",
			exit:   1,
			zkSkip: "zkCli.sh dies of a NumberFormatException",
		},
		{
			name:   "quit keeps the exit code of the command before",
			script: "get /nope\nquit\n",
			want:   "Node does not exist: /nope\n" + closedEvent,
			exit:   1,
		},
		{
			name:   "unknown command",
			script: "ls /\nfoo bar\n",
			want:   "[zookeeper]\n" + cliUsage() + "Command not found: Command not found foo\n",
			exit:   127,
			zk: &zkDiff{
				why: "zoo cli's usage names itself and lacks the commands it does not have (quotas, reconfig)",
				out: "[zookeeper]\nZooKeeper -server host:port -client-configuration properties-file cmd args\n" +
					zkCliUsage + "Command not found: Command not found foo\n",
				exit: 127,
			},
		},
		{
			// Persistent watches print their events as one-shot ones do, and
			// stay; a recursive one sees the whole subtree.
			name: "addWatch",
			script: `create /aw
addWatch /aw
create /aw/c
set /aw/c x
delete /aw/c
set /aw y
addWatch -m persistent /aw/p
create /aw/p
create /aw/p/k
addWatch -m PERSISTENT_RECURSIVE /nope
addWatch -m FOO /aw
addWatch
addWatch /aw extra
addWatch -m
addWatch -x /aw
`,
			want: "Created /aw\n" + event("NodeCreated", "/aw/c") + "Created /aw/c\n" + event("NodeDataChanged", "/aw/c") +
				event("NodeDeleted", "/aw/c") + event("NodeDataChanged", "/aw") + event("NodeCreated", "/aw/p") + "Created /aw/p\n" +
				event("NodeCreated", "/aw/p/k") + event("NodeChildrenChanged", "/aw/p") + "Created /aw/p/k\n" +
				addWatchUsage + addWatchUsage + addWatchUsage +
				"org.apache.commons.cli.MissingArgumentException: Missing argument for option: m\n" +
				"org.apache.commons.cli.UnrecognizedOptionException: Unrecognized option: -x\n",
			exit: 1,
		},
		{
			name:   "addWatch bad path",
			script: "addWatch aw\naddWatch /aw/\n",
			want:   "Path must start with / character\nPath must not end with / character\n",
			exit:   1,
			zkSkip: "zkCli.sh dies of an IllegalArgumentException on a bad addWatch path",
		},
		{
			// The client holds the watches: it removes what it has, by type
			// (-c child, -d data and exist, -a or nothing: any, persistent
			// ones too), shows an event per removed kind, and refuses what
			// it does not have.
			name: "removewatches",
			script: `create /rw x
get -w /rw
ls -w /rw
removewatches /rw -c
removewatches /rw -c
removewatches /rw -d
removewatches /rw -d
stat -w /rw/missing
removewatches /rw/missing -d
get -w /rw
ls -w /rw
removewatches /rw
get -w /rw
ls -w /rw
removewatches /rw -a -l
get -w /rw
removewatches -l /rw -d
addWatch /rw
removewatches /rw
set /rw y
removewatches /rw
removewatches /nope
removewatches
removewatches rw
removewatches /rw -p
`,
			want: "Created /rw\nx\n[]\n" + event("ChildWatchRemoved", "/rw") + "KeeperErrorCode = No such watcher for /rw\n" +
				event("DataWatchRemoved", "/rw") + "KeeperErrorCode = No such watcher for /rw\n" +
				"Node does not exist: /rw/missing\n" + event("DataWatchRemoved", "/rw/missing") +
				"x\n[]\n" + event("DataWatchRemoved", "/rw") + event("ChildWatchRemoved", "/rw") +
				"x\n[]\n" + event("DataWatchRemoved", "/rw") + event("ChildWatchRemoved", "/rw") +
				"x\n" + event("DataWatchRemoved", "/rw") +
				event("PersistentWatchRemoved", "/rw") +
				"KeeperErrorCode = No such watcher for /rw\nKeeperErrorCode = No such watcher for /nope\n" +
				"removewatches path [-c|-d|-a] [-l]\nPath must start with / character\n" +
				"org.apache.commons.cli.UnrecognizedOptionException: Unrecognized option: -p\n",
			exit: 1,
		},
		{
			// getEphemerals takes a plain string prefix, "/" by default.
			name: "getEphemerals and getAllChildrenNumber",
			script: `getEphemerals
create /ge
create -e /ge/e1
create -e /ge/e2
create -e /ge2
create -s -e /ge/s-
create /ge/p
create /ge/p/q
getEphemerals
getEphemerals /ge
getEphemerals /ge/
getEphemerals /nope
getEphemerals ge
getAllChildrenNumber /ge
getAllChildrenNumber /ge/p/q
getAllChildrenNumber /
getAllChildrenNumber /nope
getAllChildrenNumber
getAllChildrenNumber ge
getAllChildrenNumber /ge /x
`,
			want: "[]\nCreated /ge\nCreated /ge/e1\nCreated /ge/e2\nCreated /ge2\nCreated /ge/s-0000000002\nCreated /ge/p\nCreated /ge/p/q\n" +
				"[/ge/e1, /ge/e2, /ge/s-0000000002, /ge2]\n[/ge/e1, /ge/e2, /ge/s-0000000002, /ge2]\n" +
				"Path must not end with / character\n[]\nPath must start with / character\n" +
				"5\n0\n10\nNode does not exist: /nope\ngetAllChildrenNumber path\nPath must start with / character\n5\n",
		},
		{
			name: "whoami",
			script: `whoami
addauth digest alice:pw
whoami
whoami extra
`,
			want: "Auth scheme: User\nip: 127.0.0.1\nAuth scheme: User\nip: 127.0.0.1\ndigest: alice\n" +
				"Auth scheme: User\nip: 127.0.0.1\ndigest: alice\n",
		},
		{
			// With a chroot every path is the chroot's: created paths,
			// listings, events, errors.
			name:   "chroot",
			chroot: "/app",
			setup:  []string{"/app", "/other"},
			script: `ls /
create /x
create -e /e
create -s /s-
ls -R /
get -w /x
set /x 1
stat -w /y
create /y
addWatch /x
create /x/k
removewatches /x
getAllChildrenNumber /
getEphemerals
getEphemerals /e
getEphemerals /app
sync /
getAcl /
get /other
delete /
`,
			want: "[]\nCreated /x\nCreated /e\nCreated /s-0000000002\n/\n/e\n/s-0000000002\n/x\nnull\n" +
				event("NodeDataChanged", "/x") + "Node does not exist: /y\n" + event("NodeCreated", "/y") + "Created /y\n" +
				event("NodeCreated", "/x/k") + "Created /x/k\n" + event("PersistentWatchRemoved", "/x") +
				"5\n[/e]\n[/e]\n[]\nSync is OK\n'world,'anyone\n: cdrwa\nNode does not exist: /other\n" +
				"Arguments are not valid : /\n",
			exit: 1,
			zk: &zkDiff{
				why: "the Java 3.8 client applies no chroot to getEphemerals: it sends the prefix as given and prints server paths",
				out: "[]\nCreated /x\nCreated /e\nCreated /s-0000000002\n/\n/e\n/s-0000000002\n/x\nnull\n" +
					event("NodeDataChanged", "/x") + "Node does not exist: /y\n" + event("NodeCreated", "/y") + "Created /y\n" +
					event("NodeCreated", "/x/k") + "Created /x/k\n" + event("PersistentWatchRemoved", "/x") +
					"5\n[/app/e]\n[]\n[/app/e]\nSync is OK\n'world,'anyone\n: cdrwa\nNode does not exist: /other\n" +
					"Arguments are not valid : /\n",
				exit: 1,
			},
		},
		{
			// The Java client sees AUTH_FAILED and stops; the next command
			// races with that in zkCli.sh.
			name:   "addauth refused",
			script: "ls /\naddauth foo bar\nls /\n",
			want:   "[zookeeper]\n\nWATCHER::\n\nWatchedEvent state:AuthFailed type:None path:null\nNot connected\n",
			zkSkip: "zkCli.sh says Not connected or KeeperErrorCode = AuthFailed for /, depending on its threads",
		},
		{
			name:   "config",
			script: "config\nconfig -s\n",
			// aclVersion -1 as a real ZooKeeper 3.8 serves it (zkwire's
			// TestBuiltinNodesMatchZooKeeper).
			want: "\n\n" + stat("Z1", "Z1", "Z1", 0, 0, -1, "0x0", 0, 0),
		},
	}
}

const closedEvent = "\nWATCHER::\n\nWatchedEvent state:Closed type:None path:null\n"

// zkCliUsage is the command list of zkCli.sh 3.8.
const zkCliUsage = "\taddWatch [-m mode] path # optional mode is one of [PERSISTENT, PERSISTENT_RECURSIVE] - default is PERSISTENT_RECURSIVE\n" +
	"\taddauth scheme auth\n\tclose \n\tconfig [-c] [-w] [-s]\n\tconnect host:port\n" +
	"\tcreate [-s] [-e] [-c] [-t ttl] path [data] [acl]\n\tdelete [-v version] path\n" +
	"\tdeleteall path [-b batch size]\n\tdelquota [-n|-b|-N|-B] path\n\tget [-s] [-w] path\n" +
	"\tgetAcl [-s] path\n\tgetAllChildrenNumber path\n\tgetEphemerals path\n\thistory \n\tlistquota path\n" +
	"\tls [-s] [-w] [-R] path\n\tprintwatches on|off\n\tquit \n" +
	"\treconfig [-s] [-v version] [[-file path] | [-members serverID=host:port1:port2;port3[,...]*]] | [-add serverId=host:port1:port2;port3[,...]]* [-remove serverId[,...]*]\n" +
	"\tredo cmdno\n\tremovewatches path [-c|-d|-a] [-l]\n\tset [-s] [-v version] path data\n" +
	"\tsetAcl [-s] [-v version] [-R] path acl\n\tsetquota -n|-b|-N|-B val path\n\tstat [-w] path\n" +
	"\tsync path\n\tversion \n\twhoami \n"

func TestCliCommands(t *testing.T) {
	s := startCliServer(t)
	for _, c := range cliCases() {
		t.Run(c.name, func(t *testing.T) {
			s.reset(t)
			s.create(t, c.setup...)
			out, code := runZooCli(s.addr+c.chroot, c.script)
			if got := normalizeCliCase(out); got != c.want {
				t.Errorf("transcript:\n%s\n--- want\n%s\n--- raw\n%s", got, c.want, out)
			}
			if code != c.exit {
				t.Errorf("exit code %d, want %d", code, c.exit)
			}
		})
	}
}

// The command table through zkCli.sh itself: the expected transcripts are
// zkCli's, except where a case says why zoo cli differs.
func TestCliCommandsMatchZkCli(t *testing.T) {
	cli := needTool(t, zkCli, "zookeeper")
	s := startCliServer(t)
	for _, c := range cliCases() {
		t.Run(c.name, func(t *testing.T) {
			if c.zkSkip != "" {
				t.Skip(c.zkSkip)
			}
			s.reset(t)
			s.create(t, c.setup...)
			want, wantExit := c.want, c.exit
			if c.zk != nil {
				want, wantExit = c.zk.out, c.zk.exit
			}
			cmd := exec.Command(cli, "-server", s.addr+c.chroot)
			cmd.Stdin = strings.NewReader(c.script)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			err := cmd.Run()
			code := 0
			var exitErr *exec.ExitError
			if errors.As(err, &exitErr) {
				code = exitErr.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			// zkCli.sh prints events from a thread of its own, so they may
			// come a little later than zoo cli's: compare them apart.
			got, gotEvents := splitEvents(normalizeCliOutput(out.String()))
			want, wantEvents := splitEvents(syncConnectedEvent + want)
			if strings.Contains(c.script, "printwatches off") {
				// zkCli.sh's event thread may print the connection event
				// only after the script turned printing off: then never.
				connected := strings.TrimSpace(strings.TrimPrefix(syncConnectedEvent, "\nWATCHER::\n"))
				gotEvents = strings.TrimSpace(strings.Replace(gotEvents, connected, "", 1))
				wantEvents = strings.TrimSpace(strings.Replace(wantEvents, connected, "", 1))
			}
			if got != want || gotEvents != wantEvents {
				t.Errorf("zkCli.sh transcript without events:\n%s\n--- want\n%s\n--- events\n%s\n--- want\n%s\n--- raw\n%s",
					got, want, gotEvents, wantEvents, out.String())
			}
			if code != wantExit {
				t.Errorf("zkCli.sh exit code %d, want %d", code, wantExit)
			}
		})
	}
}

// splitEvents takes the watch events out of a transcript, for comparing
// with zkCli.sh: it prints them from a thread of its own, as two writes
// ("WATCHER::" and the event, each after an empty line), so they interleave
// with the other output. It returns the other lines but empty ones, and the
// events sorted.
func splitEvents(s string) (rest, events string) {
	var lines, evs []string
	for _, line := range strings.Split(s, "\n") {
		switch {
		case line == "" || line == "WATCHER::":
		case strings.HasPrefix(line, "WatchedEvent "):
			evs = append(evs, line)
		default:
			lines = append(lines, line)
		}
	}
	sort.Strings(evs)
	return strings.Join(lines, "\n"), strings.Join(evs, "\n")
}

// One command from the command line: its arguments are taken as given, and
// the exit code is the command's.
func TestCliCommandLine(t *testing.T) {
	s := startCliServer(t)
	s.reset(t)
	for _, c := range []struct {
		args []string
		want string
		exit int
	}{
		{[]string{"create", "/cl", "two words"}, "Created /cl\n", 0},
		{[]string{"get", "/cl"}, "two words\n", 0},
		{[]string{"get", "/nope"}, "Node does not exist: /nope\n", 1},
		{[]string{"ls"}, "ls [-s] [-w] [-R] path\n", 1},
		{[]string{"create", "/cl"}, "Node already exists: /cl\n", 1},
		{[]string{"foo"}, cliUsage() + "Command not found: Command not found foo\n", 127},
		// Commands that need no server do not connect.
		{[]string{"printwatches"}, "printwatches is on\n", 0},
		{[]string{"version"}, "ZooKeeper CLI version: " + version + "\n", 0},
		{[]string{"getAllChildrenNumber", "/cl"}, "0\n", 0},
		{[]string{"getEphemerals"}, "[]\n", 0},
		{[]string{"whoami"}, "Auth scheme: User\nip: 127.0.0.1\n", 0},
		{[]string{"addWatch", "/cl"}, "", 0},
		{[]string{"addWatch", "-m", "nope", "/cl"}, addWatchUsage, 1},
		{[]string{"removewatches", "/cl"}, "KeeperErrorCode = No such watcher for /cl\n", 1},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			out, code := runZooCli(s.addr, "", c.args...)
			if got := normalizeCliCase(out); got != c.want {
				t.Errorf("output:\n%s\n--- want\n%s", got, c.want)
			}
			if code != c.exit {
				t.Errorf("exit code %d, want %d", code, c.exit)
			}
		})
	}
}

func TestCliFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
		exit int
	}{
		{[]string{"-nope"}, "flag provided but not defined: -nope", 2},
		{[]string{"-timeout", "0"}, "zoo cli: -timeout must be positive", 2},
		{[]string{"-server", "h:1/app/", "ls", "/"}, "Path must not end with / character", 1},
		{[]string{"-server", "h:1/a//b", "ls", "/"}, `Invalid path string "/a//b" caused by empty node name specified @3`, 1},
		{[]string{"-server", "h:x:y", "ls", "/"}, "h:x:y: zkclient:", 1},
		{[]string{"-h"}, "[/chroot]", 2},
		{[]string{"-h"}, "\tremovewatches path [-c|-d|-a] [-l]\n", 2},
	} {
		var out syncBuffer
		code := runCli(c.args, strings.NewReader(""), &out, &out)
		if code != c.exit || !strings.Contains(out.String(), c.want) {
			t.Errorf("zoo cli %v: exit %d, output:\n%s\nwant exit %d and %q", c.args, code, out.String(), c.exit, c.want)
		}
	}
}

// A server that cannot be reached: commands fail as the Java client's do,
// with ConnectionLoss, once every server has been tried.
func TestCliNoServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	out, code := runZooCli(addr, "ls /\nget /x\n")
	if want := "KeeperErrorCode = ConnectionLoss for /\nKeeperErrorCode = ConnectionLoss for /x\n"; normalizeCliCase(out) != want || code != 1 {
		t.Errorf("exit %d, output:\n%s\nwant exit 1 and\n%s", code, out, want)
	}
	out, code = runZooCli(addr, "", "-timeout", "500", "-waitforconnection", "ls", "/")
	if want := "KeeperErrorCode = ConnectionLoss\n"; normalizeCliCase(out) != want || code != 1 {
		t.Errorf("-waitforconnection: exit %d, output:\n%s\nwant exit 1 and\n%s", code, out, want)
	}
}
