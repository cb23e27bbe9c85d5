package zkwire

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/zooraft/zoo"
	"github.com/zooraft/zoo/internal/jute"
)

// A client that sends many requests without waiting gets every reply in
// request order; its writes commit in that order (sequence numbers rise with
// the xid), a failed write does not disturb the ones after it, and a read
// sees every write sent before it.
func TestPipelinedRequests(t *testing.T) {
	t.Parallel()
	run := func(t *testing.T, addr string) {
		c := dialRaw(t, addr)
		c.handshake()
		type expect struct {
			xid   int32
			code  zoo.Code
			check func(rep rawReply)
		}
		var (
			buf     bytes.Buffer
			want    []expect
			xid     int32
			lastSeq = -1
			created = 0
		)
		send := func(op int32, body func(w *jute.Writer), code zoo.Code, check func(rawReply)) {
			xid++
			buf.Write(requestFrame(xid, op, body))
			want = append(want, expect{xid, code, check})
		}
		send(jute.OpCreate, createBody("/pl", nil, 0), zoo.CodeOK, nil)
		for k := 0; k < 300; k++ {
			send(jute.OpCreate, createBody("/pl/s-", []byte(strconv.Itoa(k)), 2 /* sequential */), zoo.CodeOK, func(rep rawReply) {
				path := rep.body.UString()
				seq, err := strconv.Atoi(strings.TrimPrefix(path, "/pl/s-"))
				if err != nil || seq <= lastSeq {
					t.Fatalf("sequential create %d got %s after sequence %d", k, path, lastSeq)
				}
				lastSeq = seq
				created++
			})
			send(jute.OpCreate, createBody(fmt.Sprintf("/pl/d-%d", k), nil, 0), zoo.CodeOK, func(rawReply) { created++ })
			send(jute.OpSetData, func(w *jute.Writer) { w.UString(fmt.Sprintf("/pl/d-%d", k)); w.Buffer([]byte("v")); w.Int(0) }, zoo.CodeOK, nil)
			if k%50 == 0 {
				send(jute.OpCreate, createBody("/pl", nil, 0), zoo.CodeNodeExists, nil)
				send(jute.OpDelete, func(w *jute.Writer) { w.UString("/pl/nope"); w.Int(-1) }, zoo.CodeNoNode, nil)
			}
			if k%25 == 0 {
				n := 2*k + 2 // the children created by the requests before this one
				send(jute.OpGetChildren, pathWatchBody("/pl", false), zoo.CodeOK, func(rep rawReply) {
					if got := len(rep.body.Strings()); got != n || created != n {
						t.Fatalf("getChildren after %d creates: %d children", created, got)
					}
				})
				send(jute.OpGetData, pathWatchBody(fmt.Sprintf("/pl/d-%d", k), false), zoo.CodeOK, func(rep rawReply) {
					if data := rep.body.Buffer(); string(data) != "v" {
						t.Fatalf("getData /pl/d-%d = %q, want the value set just before", k, data)
					}
				})
			}
		}
		c.write(buf.Bytes())
		var lastZxid int64
		for _, w := range want {
			rep := c.reply(w.xid)
			if rep.err != w.code {
				t.Fatalf("xid %d: code %d, want %d", w.xid, rep.err, w.code)
			}
			if rep.zxid < lastZxid {
				t.Fatalf("xid %d: reply zxid %d after %d", w.xid, rep.zxid, lastZxid)
			}
			lastZxid = rep.zxid
			if w.check != nil {
				w.check(rep)
			}
		}
	}
	t.Run("single", func(t *testing.T) {
		t.Parallel()
		_, addr := serve(t, openSingle(t), Config{})
		run(t, addr)
	})
	t.Run("follower", func(t *testing.T) {
		t.Parallel()
		c := newCluster(t, Config{})
		leader := c.WaitLeader()
		run(t, c.addrs[(leader+1)%3])
	})
}
