package recipe

import (
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/zooraft/zoo"
)

// What the recipes know about znode names: which paths a recipe accepts, the
// sequence numbers ZooKeeper appends to sequential nodes and how to order
// them across the counter's wrap, and the random ids a recipe puts in a
// node's name so that a create whose outcome is unknown can be found again.

// checkArgs validates a recipe constructor's session and path, so that bad
// input fails before any I/O: a nil session wraps zoo.ErrBadArguments, a
// malformed path is a *zoo.PathError wrapping it. The root is refused unless
// root is set (a recipe needs a node of its own; a TreeCache may cover
// everything).
func checkArgs(op string, s *zoo.Session, path string, root bool) error {
	if s == nil {
		return fmt.Errorf("%s: nil session: %w", op, zoo.ErrBadArguments)
	}
	if why := pathProblem(path, root); why != "" {
		return &zoo.PathError{Op: op, Path: path, Err: fmt.Errorf("%w: %s", zoo.ErrBadArguments, why)}
	}
	return nil
}

// pathProblem says what is wrong with path ("" if nothing), following
// ZooKeeper's PathUtils.validatePath. root allows "/".
func pathProblem(p string, root bool) string {
	switch {
	case p == "":
		return "empty path"
	case p[0] != '/':
		return "path must start with /"
	case p == "/":
		if root {
			return ""
		}
		return "a recipe needs a node of its own, not the root"
	case strings.HasSuffix(p, "/"):
		return "path must not end with /"
	}
	for _, seg := range strings.Split(p[1:], "/") {
		switch seg {
		case "":
			return "empty path segment (//)"
		case ".", "..":
			return "path segment . or .."
		}
	}
	for _, r := range p {
		// ZooKeeper refuses control characters, surrogates and private use,
		// U+FFF0..U+FFFF, and (being UTF-16 based) anything beyond the BMP;
		// invalid UTF-8 decodes to U+FFFD and is refused with them.
		if r < 0x20 || (r >= 0x7f && r <= 0x9f) || (r >= 0xd800 && r <= 0xf8ff) || r >= 0xfff0 {
			return fmt.Sprintf("character %U is not allowed in a path", r)
		}
	}
	return ""
}

// parentPath returns the parent of a valid path other than "/".
func parentPath(p string) string {
	i := strings.LastIndexByte(p, '/')
	if i == 0 {
		return "/"
	}
	return p[:i]
}

// baseName returns the last segment of a path.
func baseName(p string) string { return p[strings.LastIndexByte(p, '/')+1:] }

// joinPath joins a parent path and a child name.
func joinPath(parent, name string) string {
	if parent == "/" {
		return "/" + name
	}
	return parent + "/" + name
}

// sequenceOf returns the sequence number ZooKeeper appended to a sequential
// node's name: its last 10 characters, "%010d". ok is false when name does not
// end that way. Negative numbers (the signed 32-bit counter wraps after
// 2147483647) are recognised in the 10-character form "-000000005"; the
// 11-character ones (-2147483648 to -1000000000) cannot be told from a '-'
// separator followed by 10 digits and read as positive: a recipe that knows
// the text before the number should use seqParse.
func sequenceOf(name string) (int64, bool) {
	if len(name) < 10 {
		return 0, false
	}
	suf := name[len(name)-10:]
	neg := suf[0] == '-'
	if neg {
		suf = suf[1:]
	}
	var n int64
	for i := 0; i < len(suf); i++ {
		c := suf[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

// seqParse returns the sequence number of name, a sequential node created
// with a path ending in marker: the signed decimal after the last marker.
// Unlike sequenceOf it reads every value of the wrapped counter.
func seqParse(name, marker string) (int64, bool) {
	i := strings.LastIndex(name, marker)
	if i < 0 {
		return 0, false
	}
	n, err := strconv.ParseInt(name[i+len(marker):], 10, 32)
	if err != nil {
		return 0, false
	}
	return n, true
}

// sortBySequence sorts sequential node names by their sequence numbers
// (sequenceOf), ties by name; names without one go last, by name. It orders a
// set that straddles the counter's wrap (very high and negative numbers at
// once) as created: the negative ones after.
func sortBySequence(names []string) {
	slices.Sort(names)
	sortBySeq(names, sequenceOf)
}

// sortBySeq sorts xs stably by the sequence number seq reads from each;
// those it reads none from go last. Sequence numbers are a signed int32 that
// wraps after 2147483647 (ZooKeeper's documented behaviour): a set holding
// both very high and negative numbers is ordered as if it had not wrapped.
func sortBySeq[T any](xs []T, seq func(T) (int64, bool)) {
	hi, neg := false, false
	for _, x := range xs {
		if v, ok := seq(x); ok {
			hi = hi || v > math.MaxInt32/2
			neg = neg || v < 0
		}
	}
	key := func(x T) (int64, bool) {
		v, ok := seq(x)
		if ok && hi && neg && v < 0 {
			v += 1 << 32
		}
		return v, ok
	}
	slices.SortStableFunc(xs, func(a, b T) int {
		va, oka := key(a)
		vb, okb := key(b)
		switch {
		case oka != okb:
			if oka {
				return -1
			}
			return 1
		case !oka:
			return 0
		}
		return cmp.Compare(va, vb)
	})
}

// newUUID returns a random version-4 UUID, the form Curator's protected mode
// embeds in node names ("_c_<uuid>-").
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// tokenLen is the length of a newToken.
const tokenLen = 16

// newToken returns a random 16-hex-digit token that marks a node as created
// by one call (the shorter names of the barrier and queue recipes).
func newToken() string {
	var b [tokenLen / 2]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}

// parseTokened parses "<prefix><token>-<sequence>", the name of a node
// created by createTokened with prefix+token+"-".
func parseTokened(name, prefix string) (token string, seq int64, ok bool) {
	rest, ok := strings.CutPrefix(name, prefix)
	if !ok || len(rest) < tokenLen+2 || rest[tokenLen] != '-' {
		return "", 0, false
	}
	seq, err := strconv.ParseInt(rest[tokenLen+1:], 10, 32)
	if err != nil {
		return "", 0, false
	}
	return rest[:tokenLen], seq, true
}
