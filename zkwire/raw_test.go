package zkwire

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/zooraft/zoo"
	"github.com/zooraft/zoo/internal/jute"
)

// Tests that speak the protocol by hand: what go-zookeeper cannot send, and
// byte-level details clients depend on.

func TestHandshake(t *testing.T) {
	t.Parallel()
	ens := openSingle(t)
	_, addr := serve(t, ens, Config{})

	t.Run("readOnly byte answered in kind", func(t *testing.T) {
		for _, ro := range []bool{false, true} {
			c := dialRaw(t, addr)
			req := connectFrame(0, 10000, 0, make([]byte, 16), ro)
			if want := map[bool]int{false: 44, true: 45}[ro]; len(req)-4 != want {
				t.Fatalf("test bug: ConnectRequest is %d bytes", len(req)-4)
			}
			c.write(req)
			frame, err := c.readFrame()
			if err != nil {
				t.Fatal(err)
			}
			if want := map[bool]int{false: 36, true: 37}[ro]; len(frame) != want {
				t.Fatalf("readOnly=%v: ConnectResponse is %d bytes, want %d", ro, len(frame), want)
			}
			r := jute.NewReader(frame)
			if pv, to, sid := r.Int(), r.Int(), r.Long(); pv != 0 || to <= 0 || sid == 0 {
				t.Fatalf("ConnectResponse: protocol %d timeout %d sid %x", pv, to, sid)
			}
		}
	})

	t.Run("input before the handshake completes is buffered", func(t *testing.T) {
		c := dialRaw(t, addr)
		var b bytes.Buffer
		b.Write(connectFrame(0, 10000, 0, make([]byte, 16), false))
		b.Write(requestFrame(1, jute.OpCreate, createBody("/pipelined", []byte("p"), 0)))
		b.Write(requestFrame(2, jute.OpGetData, pathWatchBody("/pipelined", false)))
		b.Write(requestFrame(-2, jute.OpPing, nil))
		c.write(b.Bytes())
		if frame, err := c.readFrame(); err != nil || len(frame) != 36 {
			t.Fatalf("ConnectResponse: %d bytes, %v", len(frame), err)
		}
		if rep := c.reply(1); rep.err != 0 || rep.body.UString() != "/pipelined" {
			t.Fatalf("create: %+v", rep)
		}
		rep := c.reply(2)
		if data := rep.body.Buffer(); rep.err != 0 || string(data) != "p" {
			t.Fatalf("getData: %+v %q", rep, data)
		}
		if rep := c.reply(-2); rep.err != 0 || rep.zxid != ens.LastZxid() || len(rep.body.B) != 0 {
			t.Fatalf("ping reply: %+v", rep)
		}
	})

	t.Run("resume with id and password; wrong password is expired", func(t *testing.T) {
		c := dialRaw(t, addr)
		sid, pw := c.handshake()
		c.call(jute.OpCreate, createBody("/mine", nil, int32(zoo.ModeEphemeral)))
		c.nc.Close()

		c2 := dialRaw(t, addr)
		c2.write(connectFrame(ens.LastZxid(), 10000, sid, pw, false))
		frame, err := c2.readFrame()
		if err != nil || len(frame) != 36 {
			t.Fatalf("resume: %d bytes, %v", len(frame), err)
		}
		r := jute.NewReader(frame)
		_, _ = r.Int(), r.Int()
		if got := r.Long(); got != sid {
			t.Fatalf("resumed session %x, want %x", got, sid)
		}
		if rep := c2.call(jute.OpGetEphemerals, pathBody("/")); rep.err != 0 || fmt.Sprint(rep.body.Strings()) != "[/mine]" {
			t.Fatalf("getEphemerals after resume: %+v", rep)
		}

		bad := dialRaw(t, addr)
		bad.write(connectFrame(0, 10000, sid, make([]byte, 16), true))
		frame, err = bad.readFrame()
		if err != nil || len(frame) != 37 {
			t.Fatalf("expired answer: %d bytes, %v", len(frame), err)
		}
		want := make([]byte, 37)
		binary.BigEndian.PutUint32(want[16:], 16) // passwd length; all else zero
		if !bytes.Equal(frame, want) {
			t.Fatalf("expired answer %x, want %x", frame, want)
		}
		bad.expectClosed()
	})

	t.Run("client ahead of the replica is refused without reply", func(t *testing.T) {
		c := dialRaw(t, addr)
		c.write(connectFrame(ens.LastZxid()+1000, 10000, 0, make([]byte, 16), false))
		c.expectClosed()
	})

	t.Run("a silent client is dropped after its session timeout", func(t *testing.T) {
		c := dialRaw(t, addr)
		c.write(connectFrame(0, 1, 0, make([]byte, 16), false)) // negotiated up to the minimum
		frame, err := c.readFrame()
		if err != nil {
			t.Fatal(err)
		}
		r := jute.NewReader(frame)
		_ = r.Int()
		timeout := time.Duration(r.Int()) * time.Millisecond
		start := time.Now()
		c.expectClosed() // readFrame waits up to 10s
		if waited := time.Since(start); waited < timeout/2 {
			t.Fatalf("dropped after %v with a %v session timeout", waited, timeout)
		}
	})

	t.Run("malformed ConnectRequest closes", func(t *testing.T) {
		c := dialRaw(t, addr)
		c.write([]byte{0, 0, 0, 3, 1, 2, 3})
		c.expectClosed()
	})
}

func TestFraming(t *testing.T) {
	t.Parallel()
	ens := openSingle(t)
	_, addr := serve(t, ens, Config{MaxFrameSize: 4096})
	for _, tc := range []struct {
		name  string
		frame []byte
	}{
		{"length above MaxFrameSize", []byte{0, 0, 0x10, 1}},
		{"negative length", []byte{0xff, 0xff, 0xff, 0xfe}},
		{"frame shorter than a request header", []byte{0, 0, 0, 4, 0, 0, 0, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRaw(t, addr)
			c.handshake()
			c.write(tc.frame)
			c.expectClosed()
		})
	}
	t.Run("malformed body is ZMARSHALLINGERROR and the connection stays", func(t *testing.T) {
		c := dialRaw(t, addr)
		c.handshake()
		// A getData whose path claims more bytes than the frame holds.
		rep := c.call(jute.OpGetData, func(w *jute.Writer) { w.Int(1 << 30); w.B = append(w.B, "/x"...) })
		if rep.err != zoo.CodeMarshallingError {
			t.Fatalf("err %d, want ZMARSHALLINGERROR", rep.err)
		}
		// A vector whose count cannot fit: no huge allocation, just an error.
		rep = c.call(jute.OpSetWatches, func(w *jute.Writer) { w.Long(0); w.Int(1 << 30) })
		if rep.err != zoo.CodeMarshallingError {
			t.Fatalf("err %d, want ZMARSHALLINGERROR", rep.err)
		}
		if rep := c.call(jute.OpExists, pathWatchBody("/", false)); rep.err != 0 {
			t.Fatalf("exists after a marshalling error: %d", rep.err)
		}
	})
	t.Run("four-letter word only on a fresh connection", func(t *testing.T) {
		c := dialRaw(t, addr)
		c.handshake()
		c.write([]byte("ruok"))
		c.expectClosed() // "ruok" as a length is far above MaxFrameSize
	})
}

func TestUnimplemented(t *testing.T) {
	t.Parallel()
	ens := openSingle(t)
	_, addr := serve(t, ens, Config{})
	for _, tc := range []struct {
		name string
		op   int32
		body func(w *jute.Writer)
	}{
		{"unknown opcode", 999, nil},
		{"standalone check", jute.OpCheck, func(w *jute.Writer) { w.UString("/"); w.Int(-1) }},
		{"sasl", 102, func(w *jute.Writer) { w.Buffer([]byte("tok")) }},
		{"createSession", -10, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRaw(t, addr)
			c.handshake()
			if rep := c.call(tc.op, tc.body); rep.err != zoo.CodeUnimplemented {
				t.Fatalf("err %d, want ZUNIMPLEMENTED", rep.err)
			}
			c.expectClosed()
		})
	}
	t.Run("reconfig is disabled", func(t *testing.T) {
		c := dialRaw(t, addr)
		c.handshake()
		rep := c.call(jute.OpReconfig, func(w *jute.Writer) { w.UString(""); w.UString(""); w.UString(""); w.Long(-1) })
		if rep.err != zoo.CodeReconfigDisabled {
			t.Fatalf("err %d, want ZRECONFIGDISABLED", rep.err)
		}
		if rep := c.ping(); rep.err != 0 {
			t.Fatal("connection unusable after reconfig")
		}
	})
}

func TestCreateModes(t *testing.T) {
	t.Parallel()
	ens := openSingle(t)
	_, plain := serve(t, ens, Config{})
	_, ext := serve(t, ens, Config{ExtendedTypesEnabled: true})
	ttlBody := func(path string, flags int32, ttl int64) func(w *jute.Writer) {
		return func(w *jute.Writer) { createBody(path, nil, flags)(w); w.Long(ttl) }
	}
	c := dialRaw(t, plain)
	c.handshake()
	if rep := c.call(jute.OpCreateTTL, ttlBody("/ttl", int32(zoo.ModePersistentWithTTL), 1000)); rep.err != zoo.CodeUnimplemented {
		t.Fatalf("createTTL without extended types: %d", rep.err)
	}
	if rep := c.call(jute.OpCreate, createBody("/ttl", nil, int32(zoo.ModePersistentWithTTL))); rep.err != zoo.CodeBadArguments {
		t.Fatalf("TTL mode through create: %d", rep.err)
	}
	if rep := c.call(jute.OpCreate, createBody("/bad", nil, 7)); rep.err != zoo.CodeBadArguments {
		t.Fatalf("unknown flags: %d", rep.err)
	}
	if rep := c.call(jute.OpCreate, func(w *jute.Writer) { w.UString("/noacl"); w.Buffer(nil); w.Int(-1); w.Int(0) }); rep.err != zoo.CodeInvalidACL {
		t.Fatalf("null ACL: %d", rep.err)
	}
	// create2 answers with the Stat; null data stays null.
	rep := c.call(jute.OpCreate2, createBody("/c2", nil, 0))
	if p := rep.body.UString(); rep.err != 0 || p != "/c2" {
		t.Fatalf("create2: %+v %q", rep, p)
	}
	if st := readStat(rep.body); st.Czxid != rep.zxid || st.DataLength != 0 || rep.body.Err != nil {
		t.Fatalf("create2 stat %+v at zxid %d", st, rep.zxid)
	}
	rep = c.call(jute.OpGetData, pathWatchBody("/c2", false))
	if n := rep.body.Int(); n != -1 {
		t.Fatalf("null data read back with length %d", n)
	}
	rep = c.call(jute.OpCreateContainer, createBody("/box", nil, int32(zoo.ModeContainer)))
	if rep.err != 0 || rep.body.UString() != "/box" {
		t.Fatalf("createContainer: %+v", rep)
	}
	if rep := c.call(jute.OpCreateContainer, createBody("/box2", nil, 0)); rep.err != zoo.CodeBadArguments {
		t.Fatalf("createContainer without the container flag: %d", rep.err)
	}

	e := dialRaw(t, ext)
	e.handshake()
	rep = e.call(jute.OpCreateTTL, ttlBody("/ttl", int32(zoo.ModePersistentWithTTL), 60000))
	if rep.err != 0 || rep.body.UString() != "/ttl" {
		t.Fatalf("createTTL: %+v", rep)
	}
	if st := readStat(rep.body); st.EphemeralOwner != 0 {
		t.Fatalf("TTL node shows owner %x", st.EphemeralOwner)
	}
	for _, ttl := range []int64{0, -5, 1 << 40} {
		if rep := e.call(jute.OpCreateTTL, ttlBody("/ttl2", int32(zoo.ModePersistentWithTTL), ttl)); rep.err != zoo.CodeBadArguments {
			t.Fatalf("TTL %d: %d", ttl, rep.err)
		}
	}
	if rep := e.call(jute.OpCreateTTL, ttlBody("/ttl2", 0, 1000)); rep.err != zoo.CodeBadArguments {
		t.Fatalf("createTTL with a non-TTL mode: %d", rep.err)
	}
}

// multiBody encodes multi sub-ops, each a type and its body.
func multiBody(ops ...any) func(w *jute.Writer) {
	return func(w *jute.Writer) {
		for i := 0; i < len(ops); i += 2 {
			w.MultiHeader(ops[i].(int32), false, -1)
			ops[i+1].(func(*jute.Writer))(w)
		}
		w.MultiHeader(-1, true, -1)
	}
}

type multiResult struct {
	typ, err int32
	path     string
	stat     zoo.Stat
	data     []byte
	children []string
}

func readMulti(t *testing.T, r *jute.Reader) []multiResult {
	t.Helper()
	var out []multiResult
	for {
		typ, done, err := r.Int(), r.Bool(), r.Int()
		if r.Err != nil {
			t.Fatal("truncated multi response")
		}
		if done {
			if typ != -1 || err != -1 {
				t.Fatalf("done header {%d, true, %d}", typ, err)
			}
			if len(r.B) != 0 {
				t.Fatalf("%d bytes after the done header", len(r.B))
			}
			return out
		}
		m := multiResult{typ: typ, err: err}
		switch typ {
		case jute.OpError:
			if code := r.Int(); code != err {
				t.Fatalf("ErrorResponse %d under header err %d", code, err)
			}
		case jute.OpCreate:
			m.path = r.UString()
		case jute.OpCreate2:
			m.path, m.stat = r.UString(), readStat(r)
		case jute.OpSetData:
			m.stat = readStat(r)
		case jute.OpGetData:
			m.data, m.stat = r.Buffer(), readStat(r)
		case jute.OpGetChildren:
			m.children = r.Strings()
		case jute.OpDelete, jute.OpCheck:
		default:
			t.Fatalf("unexpected result type %d", typ)
		}
		out = append(out, m)
	}
}

func TestMultiWire(t *testing.T) {
	t.Parallel()
	ens := openSingle(t)
	_, addr := serve(t, ens, Config{})
	c := dialRaw(t, addr)
	c.handshake()

	t.Run("result types echo the sub-ops", func(t *testing.T) {
		rep := c.call(jute.OpMulti, multiBody(
			jute.OpCreate, createBody("/t1", nil, 0),
			jute.OpCreate2, createBody("/t2", []byte("d"), 0),
			jute.OpCreateContainer, createBody("/t3", nil, int32(zoo.ModeContainer)),
			jute.OpSetData, func(w *jute.Writer) { w.UString("/t2"); w.Buffer([]byte("e")); w.Int(0) },
			jute.OpCheck, func(w *jute.Writer) { w.UString("/t2"); w.Int(1) },
			jute.OpDelete, func(w *jute.Writer) { w.UString("/t1"); w.Int(-1) },
		))
		if rep.err != 0 {
			t.Fatalf("multi header err %d", rep.err)
		}
		res := readMulti(t, rep.body)
		var types []int32
		for _, m := range res {
			types = append(types, m.typ)
		}
		if fmt.Sprint(types) != "[1 15 15 5 13 2]" {
			t.Fatalf("result types %v", types)
		}
		if res[0].path != "/t1" || res[1].path != "/t2" || res[1].stat.Czxid != rep.zxid || res[3].stat.Version != 1 {
			t.Fatalf("results %+v", res)
		}
	})

	t.Run("failure: 0 before, the code, -2 after; header err 0", func(t *testing.T) {
		rep := c.call(jute.OpMulti, multiBody(
			jute.OpCreate, createBody("/f1", nil, 0),
			jute.OpDelete, func(w *jute.Writer) { w.UString("/absent"); w.Int(-1) },
			jute.OpCreate2, createBody("/f2", nil, 0),
		))
		if rep.err != 0 {
			t.Fatalf("multi header err %d", rep.err)
		}
		res := readMulti(t, rep.body)
		var got []string
		for _, m := range res {
			got = append(got, fmt.Sprintf("%d/%d", m.typ, m.err))
		}
		if fmt.Sprint(got) != "[-1/0 -1/-101 -1/-2]" {
			t.Fatalf("results %v", got)
		}
		if rep := c.call(jute.OpExists, pathWatchBody("/f1", false)); rep.err != zoo.CodeNoNode {
			t.Fatal("failed multi was applied")
		}
	})

	t.Run("a sub-op refused by the server fails the multi", func(t *testing.T) {
		rep := c.call(jute.OpMulti, multiBody(
			jute.OpCreate, createBody("/g1", nil, 0),
			jute.OpCreateTTL, func(w *jute.Writer) { createBody("/g2", nil, int32(zoo.ModePersistentWithTTL))(w); w.Long(100) },
		))
		res := readMulti(t, rep.body)
		if rep.err != 0 || len(res) != 2 || res[0].err != 0 || res[1].err != int32(zoo.CodeUnimplemented) {
			t.Fatalf("results %+v", res)
		}
	})

	t.Run("empty multi is just the done header", func(t *testing.T) {
		rep := c.call(jute.OpMulti, multiBody())
		if rep.err != 0 || len(readMulti(t, rep.body)) != 0 {
			t.Fatalf("empty multi: %+v", rep)
		}
	})

	t.Run("reads in multi are a marshalling error", func(t *testing.T) {
		rep := c.call(jute.OpMulti, multiBody(jute.OpGetData, pathWatchBody("/", false)))
		if rep.err != zoo.CodeMarshallingError {
			t.Fatalf("err %d", rep.err)
		}
	})

	t.Run("multiRead", func(t *testing.T) {
		rep := c.call(jute.OpMultiRead, multiBody(
			jute.OpGetData, pathWatchBody("/t2", false),
			jute.OpGetChildren, pathWatchBody("/absent", false),
			jute.OpGetChildren, pathWatchBody("/", false),
		))
		res := readMulti(t, rep.body)
		if rep.err != 0 || len(res) != 3 {
			t.Fatalf("multiRead: %+v", res)
		}
		if res[0].typ != jute.OpGetData || string(res[0].data) != "e" || res[1].typ != jute.OpError ||
			res[1].err != int32(zoo.CodeNoNode) || res[2].typ != jute.OpGetChildren || !strings.Contains(fmt.Sprint(res[2].children), "zookeeper") {
			t.Fatalf("multiRead results %+v", res)
		}
		if rep := c.call(jute.OpMultiRead, multiBody(jute.OpDelete, func(w *jute.Writer) { w.UString("/t2"); w.Int(-1) })); rep.err != zoo.CodeMarshallingError {
			t.Fatalf("write in multiRead: %d", rep.err)
		}
	})
}

func TestWatchesWire(t *testing.T) {
	t.Parallel()
	ens := openSingle(t)
	_, addr := serve(t, ens, Config{})
	c := dialRaw(t, addr)
	c.handshake()
	w := dialRaw(t, addr)
	w.handshake()

	t.Run("a write's notification precedes its reply", func(t *testing.T) {
		c.call(jute.OpCreate, createBody("/n", nil, 0))
		c.call(jute.OpGetData, pathWatchBody("/n", true))
		c.xid++
		c.write(requestFrame(c.xid, jute.OpSetData, func(w *jute.Writer) { w.UString("/n"); w.Buffer([]byte("x")); w.Int(-1) }))
		frame, err := c.readFrame()
		if err != nil {
			t.Fatal(err)
		}
		r := jute.NewReader(frame)
		if xid, zxid, _ := r.Int(), r.Long(), r.Int(); xid != jute.XidNotification || zxid <= 0 {
			t.Fatalf("first frame after setData has xid %d zxid %d, want the notification", xid, zxid)
		}
		if typ, state, path := r.Int(), r.Int(), r.UString(); typ != int32(zoo.EventNodeDataChanged) || state != 3 || path != "/n" {
			t.Fatalf("notification %d %d %q", typ, state, path)
		}
		if rep := c.reply(c.xid); rep.err != 0 {
			t.Fatalf("setData: %d", rep.err)
		}
	})

	t.Run("check and remove watches", func(t *testing.T) {
		typed := func(path string, typ zoo.WatcherType) func(w *jute.Writer) {
			return func(w *jute.Writer) { w.UString(path); w.Int(int32(typ)) }
		}
		if rep := c.call(jute.OpCheckWatches, typed("/n", zoo.WatcherData)); rep.err != zoo.CodeNoWatcher {
			t.Fatalf("checkWatches without a watch: %d", rep.err)
		}
		c.call(jute.OpExists, pathWatchBody("/n", true))
		if rep := c.call(jute.OpCheckWatches, typed("/n", zoo.WatcherData)); rep.err != 0 {
			t.Fatalf("checkWatches with a watch: %d", rep.err)
		}
		if rep := c.call(jute.OpCheckWatches, typed("/n", 9)); rep.err != zoo.CodeBadArguments {
			t.Fatalf("checkWatches with a bad type: %d", rep.err)
		}
		if rep := c.call(jute.OpRemoveWatches, typed("/n", zoo.WatcherAny)); rep.err != 0 {
			t.Fatalf("removeWatches: %d", rep.err)
		}
		if rep := c.call(jute.OpRemoveWatches, typed("/n", zoo.WatcherAny)); rep.err != zoo.CodeNoWatcher {
			t.Fatalf("removeWatches twice: %d", rep.err)
		}
		// The removed watch does not fire.
		w.call(jute.OpSetData, func(w *jute.Writer) { w.UString("/n"); w.Buffer(nil); w.Int(-1) })
		c.ping()
		if len(c.events) != 0 {
			t.Fatalf("removed watch fired: %+v", c.events)
		}
	})

	t.Run("exists watch on an absent node", func(t *testing.T) {
		if rep := c.call(jute.OpExists, pathWatchBody("/later", true)); rep.err != zoo.CodeNoNode {
			t.Fatalf("exists: %d", rep.err)
		}
		w.call(jute.OpCreate, createBody("/later", nil, 0))
		if ev := c.nextEvent(); ev.typ != int32(zoo.EventNodeCreated) || ev.path != "/later" {
			t.Fatalf("event %+v", ev)
		}
	})

	t.Run("addWatch", func(t *testing.T) {
		rep := c.call(jute.OpAddWatch, func(w *jute.Writer) { w.UString("/tree"); w.Int(int32(zoo.WatchPersistentRecursive)) })
		if rep.err != 0 || len(rep.body.B) != 4 || rep.body.Int() != 0 {
			t.Fatalf("addWatch reply: err %d body %x", rep.err, rep.body.B)
		}
		w.call(jute.OpCreate, createBody("/tree", nil, 0))
		w.call(jute.OpCreate, createBody("/tree/a", nil, 0))
		w.call(jute.OpSetData, func(w *jute.Writer) { w.UString("/tree/a"); w.Buffer([]byte("1")); w.Int(-1) })
		var got []string
		for range 3 {
			ev := c.nextEvent()
			got = append(got, fmt.Sprintf("%d %s", ev.typ, ev.path))
		}
		if fmt.Sprint(got) != "[1 /tree 1 /tree/a 3 /tree/a]" {
			t.Fatalf("recursive events %v", got)
		}
	})

	t.Run("setWatches2 catches up", func(t *testing.T) {
		rep := c.call(jute.OpCreate2, createBody("/sw", nil, 0))
		before := rep.zxid
		w.call(jute.OpSetData, func(w *jute.Writer) { w.UString("/sw"); w.Buffer([]byte("x")); w.Int(-1) })
		w.call(jute.OpCreate, createBody("/sw/kid", nil, 0))
		fresh := dialRaw(t, addr)
		fresh.handshake()
		rep = fresh.call(jute.OpSetWatches2, func(w *jute.Writer) {
			w.Long(before)
			w.Strings([]string{"/sw", "/gone"}) // data: changed, absent
			w.Strings([]string{"/sw/kid", "/nothing"})
			w.Strings([]string{"/sw"})
			w.Strings([]string{"/p"})
			w.Strings(nil)
		})
		if rep.err != 0 {
			t.Fatalf("setWatches2: %d", rep.err)
		}
		// Catch-up events arrive before the reply.
		var got []string
		for _, ev := range fresh.events {
			got = append(got, fmt.Sprintf("%d %s", ev.typ, ev.path))
		}
		all := fmt.Sprint(got)
		for _, want := range []string{"3 /sw", "2 /gone", "1 /sw/kid", "4 /sw"} {
			if !strings.Contains(all, want) {
				t.Fatalf("catch-up events %v lack %q", got, want)
			}
		}
		if len(got) != 4 {
			t.Fatalf("catch-up events %v", got)
		}
		// The re-armed exist watch and the persistent one fire later.
		fresh.events = nil
		w.call(jute.OpCreate, createBody("/nothing", nil, 0))
		if ev := fresh.nextEvent(); ev.typ != int32(zoo.EventNodeCreated) || ev.path != "/nothing" {
			t.Fatalf("re-armed exist watch: %+v", ev)
		}
		w.call(jute.OpCreate, createBody("/p", nil, 0))
		if ev := fresh.nextEvent(); ev.typ != int32(zoo.EventNodeCreated) || ev.path != "/p" {
			t.Fatalf("re-armed persistent watch: %+v", ev)
		}
	})
}

func TestSessionOpsWire(t *testing.T) {
	t.Parallel()
	ens := openSingle(t)
	_, addr := serve(t, ens, Config{})

	c := dialRaw(t, addr)
	c.handshake()
	whoami := func() string {
		rep := c.call(jute.OpWhoAmI, nil)
		if rep.err != 0 {
			t.Fatalf("whoAmI: %d", rep.err)
		}
		n := rep.body.Int()
		var ids []string
		for range n {
			ids = append(ids, rep.body.UString()+":"+rep.body.UString())
		}
		return fmt.Sprint(ids)
	}
	if got := whoami(); got != "[ip:127.0.0.1]" {
		t.Fatalf("whoAmI = %s", got)
	}
	authBody := func(scheme, auth string) func(w *jute.Writer) {
		return func(w *jute.Writer) { w.Int(0); w.UString(scheme); w.Buffer([]byte(auth)) }
	}
	// Auth with the special xid -4 is answered with xid -4.
	c.write(requestFrame(-4, jute.OpAuth, authBody("digest", "bob:pw")))
	if rep := c.reply(-4); rep.err != 0 {
		t.Fatalf("auth: %d", rep.err)
	}
	if got := whoami(); got != "[ip:127.0.0.1 digest:bob]" {
		t.Fatalf("whoAmI after auth = %s", got)
	}

	c.call(jute.OpCreate, createBody("/e", nil, 0))
	for _, p := range []string{"/e/1", "/e/2", "/eb"} {
		c.call(jute.OpCreate, createBody(p, nil, int32(zoo.ModeEphemeral)))
	}
	if rep := c.call(jute.OpGetEphemerals, pathBody("/e")); fmt.Sprint(rep.body.Strings()) != "[/e/1 /e/2 /eb]" {
		t.Fatalf("getEphemerals /e: %+v", rep)
	}
	if rep := c.call(jute.OpGetAllChildrenNumber, pathBody("/e")); rep.err != 0 || rep.body.Int() != 2 {
		t.Fatalf("getAllChildrenNumber: %+v", rep)
	}
	if rep := c.call(jute.OpSync, pathBody("/e")); rep.err != 0 || rep.body.UString() != "/e" {
		t.Fatalf("sync: %+v", rep)
	}

	t.Run("connection limit per address", func(t *testing.T) {
		_, limited := serve(t, ens, Config{MaxClientCnxns: 2})
		d := dialRaw(t, limited)
		d.handshake()
		e := dialRaw(t, limited)
		e.handshake()
		over := dialRaw(t, limited) // the third from 127.0.0.1
		over.write(connectFrame(0, 10000, 0, make([]byte, 16), false))
		over.expectClosed()
	})

	t.Run("failed auth closes", func(t *testing.T) {
		d := dialRaw(t, addr)
		d.handshake()
		if rep := d.call(jute.OpAuth, authBody("kerberos", "x")); rep.err != zoo.CodeAuthFailed {
			t.Fatalf("auth with an unknown scheme: %d", rep.err)
		}
		d.expectClosed()
	})

	t.Run("closeSession deletes the ephemerals and closes", func(t *testing.T) {
		if rep := c.call(jute.OpCloseSession, nil); rep.err != 0 {
			t.Fatalf("closeSession: %d", rep.err)
		}
		c.expectClosed()
		d := dialRaw(t, addr)
		d.handshake()
		if rep := d.call(jute.OpExists, pathWatchBody("/e/1", false)); rep.err != zoo.CodeNoNode {
			t.Fatalf("ephemeral after closeSession: %d", rep.err)
		}
	})
}
