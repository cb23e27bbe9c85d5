package zkwire

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/zooraft/zoo"
	"github.com/zooraft/zoo/internal/jute"
)

// stateSyncConnected is the one session state a server sends in events.
const stateSyncConnected int32 = 3

// maxTTL is the largest TTL ZooKeeper accepts (EphemeralType.maxValue), in ms.
const maxTTL = int64(1)<<40 - 1

// opNames are the lop= names of cons, as ZooKeeper's FinalRequestProcessor sets them.
var opNames = map[int32]string{
	jute.OpCreate: "CREA", jute.OpCreate2: "CREA", jute.OpCreateContainer: "CREA", jute.OpCreateTTL: "CREA",
	jute.OpDelete: "DELE", jute.OpExists: "EXIS", jute.OpGetData: "GETD", jute.OpSetData: "SETD", jute.OpGetACL: "GETA",
	jute.OpSetACL: "SETA", jute.OpGetChildren: "GETC", jute.OpGetChildren2: "GETC", jute.OpSync: "SYNC", jute.OpPing: "PING",
	jute.OpCheck: "CHEC", jute.OpMulti: "MULT", jute.OpMultiRead: "MLTR", jute.OpReconfig: "RECO", jute.OpCheckWatches: "CHKW",
	jute.OpRemoveWatches: "REMW", jute.OpAuth: "AUTH", jute.OpSetWatches: "SETW", jute.OpSetWatches2: "STW2",
	jute.OpGetEphemerals: "GETE", jute.OpGetAllChildrenNumber: "GETACN", jute.OpAddWatch: "ADDW", jute.OpWhoAmI: "HOMI",
	jute.OpCloseSession: "CLOS",
}

// refusedReadOnly are the opcodes a read-only session gets ZNOTREADONLY for,
// before its request is even decoded, as ZooKeeper's ReadOnlyRequestProcessor
// answers them (sync included: a read-only server has no leader to sync with).
var refusedReadOnly = map[int32]bool{
	jute.OpCreate: true, jute.OpCreate2: true, jute.OpCreateContainer: true, jute.OpCreateTTL: true,
	jute.OpDelete: true, jute.OpSetData: true, jute.OpSetACL: true, jute.OpMulti: true, jute.OpCheck: true,
	jute.OpSync: true, jute.OpReconfig: true,
}

// after says what happens to the connection once a reply is queued.
type after int

const (
	keepOpen   after = iota
	closeAfter       // write the reply, then close
	closeNow         // no reply: close at once (the client sees ConnectionLoss)
)

// handler decodes one request body from r and runs it. It returns the reply
// body (written after a ReplyHeader with err 0; nil for none) or an error
// that process maps to a code or to closing the connection.
type handler func(ctx context.Context, c *conn, s *zoo.ServerSession, r *jute.Reader) (func(*jute.Writer), error)

// handlers serve the opcodes of internal/jute. The server-internal ones
// (notification 0, deleteContainer 20, createSession -10) and sasl (102) are
// not served: they get ZUNIMPLEMENTED like any unknown opcode.
var handlers = map[int32]handler{
	jute.OpCreate: opCreateFn(jute.OpCreate), jute.OpCreate2: opCreateFn(jute.OpCreate2),
	jute.OpCreateContainer: opCreateFn(jute.OpCreateContainer), jute.OpCreateTTL: opCreateFn(jute.OpCreateTTL),
	jute.OpDelete: handleDelete, jute.OpExists: handleExists, jute.OpGetData: handleGetData,
	jute.OpSetData: handleSetData, jute.OpGetACL: handleGetACL, jute.OpSetACL: handleSetACL,
	jute.OpGetChildren: handleGetChildren(false), jute.OpGetChildren2: handleGetChildren(true),
	jute.OpSync: handleSync, jute.OpMulti: handleMulti, jute.OpMultiRead: handleMultiRead,
	jute.OpReconfig:     handleReconfig,
	jute.OpCheckWatches: handleCheckWatches, jute.OpRemoveWatches: handleRemoveWatches,
	jute.OpSetWatches: handleSetWatches(false), jute.OpSetWatches2: handleSetWatches(true),
	jute.OpGetEphemerals: handleGetEphemerals, jute.OpGetAllChildrenNumber: handleAllChildren,
	jute.OpAddWatch: handleAddWatch, jute.OpWhoAmI: handleWhoAmI,
}

// process handles one request frame and reports whether the connection
// should keep reading.
func (c *conn) process(frame []byte) bool {
	reply, then := c.serve(c.ctx, frame)
	return c.deliver(reply, then)
}

// deliver queues a reply and then does what the request asked for.
func (c *conn) deliver(reply []byte, then after) bool {
	if then == closeNow {
		c.close()
		return false
	}
	c.enqueue(reply)
	if then == closeAfter {
		c.finish()
		return false
	}
	return true
}

// serve runs one request and returns its reply frame (nil with closeNow).
func (c *conn) serve(ctx context.Context, frame []byte) ([]byte, after) {
	start := time.Now()
	r := jute.NewReader(frame)
	xid, op := r.Int(), r.Int()
	if r.Err != nil {
		return nil, closeNow // no request header: ZooKeeper drops the connection
	}
	srv := c.srv
	srv.received.Add(1)
	srv.outstanding.Add(1)
	defer srv.outstanding.Add(-1)
	s := c.session()

	var (
		code zoo.Code
		body func(*jute.Writer)
		then = keepOpen
	)
	switch op {
	case jute.OpPing:
		// Header only; the session stays alive while this connection holds it.
		xid = jute.XidPing
	case jute.OpAuth:
		code, then = c.auth(s, r)
	case jute.OpCloseSession:
		c.mu.Lock()
		c.ending = true
		c.mu.Unlock()
		if err := s.Close(ctx); err != nil {
			c.mu.Lock()
			c.ending = false // cleanup detaches it; it expires after its timeout
			c.mu.Unlock()
			c.srv.log.Info("zkwire: closeSession", "session", s.ID(), "err", err)
			then = closeNow
		} else {
			then = closeAfter
		}
	default:
		if s.ReadOnly() && refusedReadOnly[op] {
			code = zoo.CodeNotReadOnly
			break
		}
		h := handlers[op]
		if h == nil {
			// Unknown opcodes, standalone check (ZOOKEEPER-2623), sasl and the
			// server-internal ones: ZUNIMPLEMENTED, then close, as ZooKeeper's
			// UnimplementedRequestProcessor.
			code, then = zoo.CodeUnimplemented, closeAfter
			break
		}
		var err error
		body, err = h(ctx, c, s, r)
		code, then = c.outcome(s, err)
	}
	if then == closeNow {
		return nil, closeNow
	}
	zxid := srv.ens.LastZxid()
	w := jute.NewFrame(64)
	w.ReplyHeader(xid, zxid, code)
	if code == zoo.CodeOK && body != nil {
		body(w)
	}
	lat := time.Since(start)
	srv.lat.add(lat)
	c.mu.Lock()
	st := &c.st
	st.recved++
	st.lastOp, st.lastCxid, st.lastZxid, st.lastResp = opName(op), xid, zxid, time.Now()
	ms := lat.Milliseconds()
	if st.numLat == 0 || ms < st.minLat {
		st.minLat = ms
	}
	st.lastLat, st.maxLat, st.totLat, st.numLat = ms, max(st.maxLat, ms), st.totLat+ms, st.numLat+1
	c.mu.Unlock()
	return w.Frame(), then
}

func opName(op int32) string {
	if n, ok := opNames[op]; ok {
		return n
	}
	return "UNKN"
}

// outcome maps a request's error to the reply code and what happens next.
func (c *conn) outcome(s *zoo.ServerSession, err error) (zoo.Code, after) {
	switch {
	case err == nil:
		return zoo.CodeOK, keepOpen
	case errors.Is(err, jute.ErrMarshal):
		return zoo.CodeMarshallingError, keepOpen
	case errors.Is(err, zoo.ErrNotServing),
		errors.Is(err, zoo.ErrClosed),
		errors.Is(err, context.Canceled),
		errors.Is(err, context.DeadlineExceeded):
		// This replica cannot serve (or the handle or the server closed):
		// drop the connection so the client fails over and resumes elsewhere.
		return 0, closeNow
	}
	code := zoo.CodeOf(err)
	switch code {
	case zoo.CodeConnectionLoss, zoo.CodeOperationTimeout, zoo.CodeSessionMoved:
		// The outcome is unknown or the session moved: ZooKeeper never sends
		// these codes; the client learns by losing the connection.
		return 0, closeNow
	case zoo.CodeSessionExpired:
		if errors.Is(s.Err(), zoo.ErrSessionExpired) || s.Err() == nil {
			return code, closeAfter
		}
		return 0, closeNow
	}
	return code, keepOpen
}

// auth handles addauth. digest adds an identity; ip re-adds the connection's
// own address (ZooKeeper's IPAuthenticationProvider ignores the auth data, and
// letting a client name its own IP would defeat ip ACLs); x509 likewise
// re-adds the identity of the connection's verified client certificate, and
// fails without one. Anything else is ZAUTHFAILED and the connection closes.
func (c *conn) auth(s *zoo.ServerSession, r *jute.Reader) (zoo.Code, after) {
	_ = r.Int() // type, always 0
	scheme := r.UString()
	data := r.Buffer()
	if r.Err != nil {
		return zoo.CodeAuthFailed, closeAfter
	}
	var err error
	switch scheme {
	case "digest":
		err = s.AddAuth(c.ctx, "digest", data)
	case "ip":
		if c.ip == "" {
			err = zoo.ErrAuthFailed
		} else {
			err = s.AddAuth(c.ctx, "ip", []byte(c.ip))
		}
	case "x509":
		if c.cert == nil {
			err = fmt.Errorf("%w: no verified client certificate on this connection", zoo.ErrAuthFailed)
		} else {
			err = s.AddX509Auth(c.ctx, c.cert)
		}
	default:
		err = fmt.Errorf("%w: unsupported scheme %q", zoo.ErrAuthFailed, scheme)
	}
	if err == nil {
		return zoo.CodeOK, keepOpen
	}
	if code, then := c.outcome(s, err); then == closeNow {
		return code, then
	}
	c.srv.log.Info("zkwire: auth failed", "remote", c.remote, "scheme", scheme, "err", err)
	return zoo.CodeAuthFailed, closeAfter
}

// createOp validates a create request's mode against its opcode.
func (c *conn) createOp(op int32, path string, data []byte, acl []zoo.ACL, flags int32, ttl int64) (zoo.CreateOp, error) {
	mode := zoo.CreateMode(flags)
	isTTL := mode == zoo.ModePersistentWithTTL || mode == zoo.ModePersistentSequentialWithTTL
	switch {
	case op == jute.OpCreateTTL && !c.srv.cfg.ExtendedTypesEnabled:
		return zoo.CreateOp{}, zoo.ErrUnimplemented
	case flags < int32(zoo.ModePersistent) || flags > int32(zoo.ModePersistentSequentialWithTTL):
		return zoo.CreateOp{}, fmt.Errorf("%w: unknown create flags %d", zoo.ErrBadArguments, flags)
	case op == jute.OpCreateTTL && (!isTTL || ttl <= 0 || ttl > maxTTL):
		return zoo.CreateOp{}, fmt.Errorf("%w: createTTL needs a TTL mode and a TTL in [1, 2^40-1] ms", zoo.ErrBadArguments)
	case op != jute.OpCreateTTL && isTTL:
		return zoo.CreateOp{}, fmt.Errorf("%w: TTL modes need createTTL", zoo.ErrBadArguments)
	case op == jute.OpCreateContainer && mode != zoo.ModeContainer:
		return zoo.CreateOp{}, fmt.Errorf("%w: createContainer needs the container flag", zoo.ErrBadArguments)
	}
	cop := zoo.CreateOp{Path: path, Data: data, ACL: acl, Mode: mode}
	if op == jute.OpCreateTTL {
		cop.TTL = time.Duration(ttl) * time.Millisecond
	}
	return cop, nil
}

// readCreate decodes a CreateRequest (or CreateTTLRequest) and validates it:
// jute.ErrMarshal if it does not decode, else the validation error, if any.
func (c *conn) readCreate(op int32, r *jute.Reader) (zoo.CreateOp, error) {
	path, data, acl, flags := r.UString(), r.Buffer(), r.ACLs(), r.Int()
	var ttl int64
	if op == jute.OpCreateTTL {
		ttl = r.Long()
	}
	if r.Err != nil {
		return zoo.CreateOp{}, jute.ErrMarshal
	}
	return c.createOp(op, path, data, acl, flags, ttl)
}

func opCreateFn(op int32) handler {
	return func(ctx context.Context, c *conn, s *zoo.ServerSession, r *jute.Reader) (func(*jute.Writer), error) {
		cop, err := c.readCreate(op, r)
		if err != nil {
			return nil, err
		}
		p, st, err := s.CreateWithStat(ctx, cop)
		if err != nil {
			return nil, err
		}
		if op == jute.OpCreate {
			return func(w *jute.Writer) { w.UString(p) }, nil
		}
		return func(w *jute.Writer) { w.UString(p); w.Stat(st) }, nil
	}
}

func handleDelete(ctx context.Context, _ *conn, s *zoo.ServerSession, r *jute.Reader) (func(*jute.Writer), error) {
	path, version := r.UString(), r.Int()
	if r.Err != nil {
		return nil, jute.ErrMarshal
	}
	return nil, s.Delete(ctx, path, version)
}

func handleExists(ctx context.Context, c *conn, s *zoo.ServerSession, r *jute.Reader) (func(*jute.Writer), error) {
	path, watch := r.UString(), r.Bool()
	if r.Err != nil {
		return nil, jute.ErrMarshal
	}
	var ok bool
	var st zoo.Stat
	var err error
	if watch {
		// The watch is set even when the node is absent.
		undo := c.trackWatch(path, kindData)
		if ok, st, err = s.ExistsNotify(ctx, path); err != nil {
			undo()
		}
	} else {
		ok, st, err = s.Exists(ctx, path)
	}
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, zoo.ErrNoNode
	}
	return func(w *jute.Writer) { w.Stat(st) }, nil
}

func handleGetData(ctx context.Context, c *conn, s *zoo.ServerSession, r *jute.Reader) (func(*jute.Writer), error) {
	path, watch := r.UString(), r.Bool()
	if r.Err != nil {
		return nil, jute.ErrMarshal
	}
	var data []byte
	var st zoo.Stat
	var err error
	if watch {
		undo := c.trackWatch(path, kindData)
		if data, st, err = s.GetNotify(ctx, path); err != nil {
			undo()
		}
	} else {
		data, st, err = s.Get(ctx, path)
	}
	if err != nil {
		return nil, err
	}
	return func(w *jute.Writer) { w.Buffer(data); w.Stat(st) }, nil
}

func handleSetData(ctx context.Context, _ *conn, s *zoo.ServerSession, r *jute.Reader) (func(*jute.Writer), error) {
	path, data, version := r.UString(), r.Buffer(), r.Int()
	if r.Err != nil {
		return nil, jute.ErrMarshal
	}
	st, err := s.Set(ctx, path, data, version)
	if err != nil {
		return nil, err
	}
	return func(w *jute.Writer) { w.Stat(st) }, nil
}

func handleGetACL(ctx context.Context, _ *conn, s *zoo.ServerSession, r *jute.Reader) (func(*jute.Writer), error) {
	path := r.UString()
	if r.Err != nil {
		return nil, jute.ErrMarshal
	}
	acl, st, err := s.GetACL(ctx, path)
	if err != nil {
		return nil, err
	}
	return func(w *jute.Writer) { w.ACLs(acl); w.Stat(st) }, nil
}

func handleSetACL(ctx context.Context, _ *conn, s *zoo.ServerSession, r *jute.Reader) (func(*jute.Writer), error) {
	path, acl, version := r.UString(), r.ACLs(), r.Int()
	if r.Err != nil {
		return nil, jute.ErrMarshal
	}
	st, err := s.SetACL(ctx, path, acl, version)
	if err != nil {
		return nil, err
	}
	return func(w *jute.Writer) { w.Stat(st) }, nil
}

// handleGetChildren serves getChildren(8) (names) and getChildren2(12) (names and Stat).
func handleGetChildren(withStat bool) handler {
	return func(ctx context.Context, c *conn, s *zoo.ServerSession, r *jute.Reader) (func(*jute.Writer), error) {
		path, watch := r.UString(), r.Bool()
		if r.Err != nil {
			return nil, jute.ErrMarshal
		}
		var names []string
		var st zoo.Stat
		var err error
		if watch {
			undo := c.trackWatch(path, kindChild)
			if names, st, err = s.ChildrenNotify(ctx, path); err != nil {
				undo()
			}
		} else {
			names, st, err = s.Children(ctx, path)
		}
		if err != nil {
			return nil, err
		}
		return func(w *jute.Writer) {
			w.Strings(names)
			if withStat {
				w.Stat(st)
			}
		}, nil
	}
}

func handleSync(ctx context.Context, _ *conn, s *zoo.ServerSession, r *jute.Reader) (func(*jute.Writer), error) {
	path := r.UString()
	if r.Err != nil {
		return nil, jute.ErrMarshal
	}
	if err := s.Sync(ctx, path); err != nil {
		return nil, err
	}
	return func(w *jute.Writer) { w.UString(path) }, nil
}

// handleMulti serves multi(14): all-or-nothing, per-op results, header err 0.
func handleMulti(ctx context.Context, c *conn, s *zoo.ServerSession, r *jute.Reader) (func(*jute.Writer), error) {
	type sub struct {
		typ int32
		op  zoo.Op
	}
	var subs []sub
	failAt, failErr := -1, error(nil)
	for {
		typ, done, _ := r.Int(), r.Bool(), r.Int()
		if r.Err != nil {
			return nil, jute.ErrMarshal
		}
		if done {
			break
		}
		var op zoo.Op
		switch typ {
		case jute.OpCreate, jute.OpCreate2, jute.OpCreateContainer, jute.OpCreateTTL:
			cop, err := c.readCreate(typ, r)
			if errors.Is(err, jute.ErrMarshal) {
				return nil, err
			}
			if err != nil && failAt < 0 {
				failAt, failErr = len(subs), err
			}
			op = cop
		case jute.OpDelete:
			op = zoo.DeleteOp{Path: r.UString(), Version: r.Int()}
		case jute.OpSetData:
			op = zoo.SetDataOp{Path: r.UString(), Data: r.Buffer(), Version: r.Int()}
		case jute.OpCheck:
			op = zoo.CheckOp{Path: r.UString(), Version: r.Int()}
		default:
			// Reads (use multiRead) and anything else: ZooKeeper's
			// MultiOperationRecord refuses them with an IOException.
			return nil, jute.ErrMarshal
		}
		if r.Err != nil {
			return nil, jute.ErrMarshal
		}
		subs = append(subs, sub{typ, op})
	}
	var results []zoo.OpResult
	if failAt >= 0 {
		// A sub-op refused before reaching zoo fails the whole transaction
		// with ZooKeeper's result pattern.
		if err := s.Err(); err != nil {
			return nil, err
		}
		results = make([]zoo.OpResult, len(subs))
		for i := range results {
			switch {
			case i < failAt:
				results[i].Err = zoo.ErrRolledBack
			case i == failAt:
				results[i].Err = failErr
			default:
				results[i].Err = zoo.ErrRuntimeInconsistency
			}
		}
	} else {
		ops := make([]zoo.Op, len(subs))
		for i, sb := range subs {
			ops[i] = sb.op
		}
		var err error
		results, err = s.Multi(ctx, ops...)
		if err != nil && len(results) != len(subs) {
			return nil, err // not a per-op failure: session, quorum, ...
		}
		if len(results) != len(subs) {
			return nil, fmt.Errorf("%w: multi returned %d results for %d ops", zoo.ErrSystemError, len(results), len(subs))
		}
	}
	failed := false
	for _, res := range results {
		if res.Err != nil {
			failed = true
			if zoo.CodeOf(res.Err) == zoo.CodeSessionMoved {
				return nil, res.Err
			}
		}
	}
	return func(w *jute.Writer) {
		for i, sb := range subs {
			res := results[i]
			if failed {
				code := int32(zoo.CodeOf(res.Err)) // ErrRolledBack is 0, ErrRuntimeInconsistency -2
				w.MultiHeader(jute.OpError, false, code)
				w.Int(code)
				continue
			}
			var st zoo.Stat
			if res.Stat != nil {
				st = *res.Stat
			}
			switch sb.typ {
			case jute.OpCreate:
				// Answer create(1) with type 1: kazoo and go-zookeeper parse
				// only types 1, 2, 5, 13 and -1.
				w.MultiHeader(jute.OpCreate, false, 0)
				w.UString(res.Path)
			case jute.OpCreate2, jute.OpCreateContainer, jute.OpCreateTTL:
				w.MultiHeader(jute.OpCreate2, false, 0)
				w.UString(res.Path)
				w.Stat(st)
			case jute.OpDelete:
				w.MultiHeader(jute.OpDelete, false, 0)
			case jute.OpSetData:
				w.MultiHeader(jute.OpSetData, false, 0)
				w.Stat(st)
			case jute.OpCheck:
				w.MultiHeader(jute.OpCheck, false, 0)
			}
		}
		w.MultiHeader(-1, true, -1)
	}, nil
}

// handleMultiRead serves multiRead(22): independent reads, no watches.
func handleMultiRead(ctx context.Context, _ *conn, s *zoo.ServerSession, r *jute.Reader) (func(*jute.Writer), error) {
	var ops []zoo.ReadOp
	for {
		typ, done, _ := r.Int(), r.Bool(), r.Int()
		if r.Err != nil {
			return nil, jute.ErrMarshal
		}
		if done {
			break
		}
		path := r.UString()
		_ = r.Bool() // watch: multiRead sets none
		switch typ {
		case jute.OpGetData:
			ops = append(ops, zoo.GetDataOp{Path: path})
		case jute.OpGetChildren:
			ops = append(ops, zoo.GetChildrenOp{Path: path})
		default:
			return nil, jute.ErrMarshal
		}
		if r.Err != nil {
			return nil, jute.ErrMarshal
		}
	}
	results, err := s.MultiRead(ctx, ops...)
	if err != nil {
		return nil, err
	}
	return func(w *jute.Writer) {
		for i, op := range ops {
			res := results[i]
			if res.Err != nil {
				code := int32(zoo.CodeOf(res.Err))
				w.MultiHeader(jute.OpError, false, code)
				w.Int(code)
				continue
			}
			if _, ok := op.(zoo.GetChildrenOp); ok {
				w.MultiHeader(jute.OpGetChildren, false, 0)
				w.Strings(res.Children)
			} else {
				w.MultiHeader(jute.OpGetData, false, 0)
				w.Buffer(res.Data)
				w.Stat(res.Stat)
			}
		}
		w.MultiHeader(-1, true, -1)
	}, nil
}

// readWatcherType reads CheckWatchesRequest / RemoveWatchesRequest.
func readWatcherType(r *jute.Reader) (string, zoo.WatcherType, error) {
	path, typ := r.UString(), zoo.WatcherType(r.Int())
	if r.Err != nil {
		return "", 0, jute.ErrMarshal
	}
	if typ < zoo.WatcherChildren || typ > zoo.WatcherPersistentRecursive {
		return "", 0, fmt.Errorf("%w: unknown watcher type %d", zoo.ErrBadArguments, typ)
	}
	return path, typ, nil
}

func handleCheckWatches(_ context.Context, _ *conn, s *zoo.ServerSession, r *jute.Reader) (func(*jute.Writer), error) {
	path, typ, err := readWatcherType(r)
	if err != nil {
		return nil, err
	}
	if err := s.Err(); err != nil {
		return nil, err
	}
	if !s.HasWatches(path, typ) {
		return nil, zoo.ErrNoWatcher
	}
	return nil, nil
}

func handleRemoveWatches(ctx context.Context, c *conn, s *zoo.ServerSession, r *jute.Reader) (func(*jute.Writer), error) {
	path, typ, err := readWatcherType(r)
	if err != nil {
		return nil, err
	}
	if err := s.RemoveWatches(ctx, path, typ); err != nil {
		return nil, err
	}
	c.untrackWatch(path, typ)
	return nil, nil
}

func handleAddWatch(ctx context.Context, c *conn, s *zoo.ServerSession, r *jute.Reader) (func(*jute.Writer), error) {
	path, mode := r.UString(), zoo.WatchMode(r.Int())
	if r.Err != nil {
		return nil, jute.ErrMarshal
	}
	kind := kindPersistent
	if mode == zoo.WatchPersistentRecursive {
		kind = kindRecursive
	}
	undo := c.trackWatch(path, kind)
	if err := s.AddWatchNotify(ctx, path, mode); err != nil {
		undo()
		return nil, err
	}
	// The body is ErrorResponse{0}: Java clients need those 4 bytes.
	return func(w *jute.Writer) { w.Int(0) }, nil
}

// handleSetWatches serves setWatches(101) and setWatches2(105): re-arm the
// watches of a reconnecting client, with catch-up events for what it missed.
func handleSetWatches(v2 bool) handler {
	return func(ctx context.Context, c *conn, s *zoo.ServerSession, r *jute.Reader) (func(*jute.Writer), error) {
		ws := zoo.WatchSet{RelativeZxid: r.Long(), Data: r.Strings(), Exist: r.Strings(), Child: r.Strings()}
		if v2 {
			ws.Persistent, ws.Recursive = r.Strings(), r.Strings()
		}
		if r.Err != nil {
			return nil, jute.ErrMarshal
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		// Track first: catch-up events delivered during SetWatches untrack.
		var undo []func()
		for _, l := range []struct {
			paths []string
			kind  watchKinds
		}{{ws.Data, kindData}, {ws.Exist, kindData}, {ws.Child, kindChild},
			{ws.Persistent, kindPersistent}, {ws.Recursive, kindRecursive}} {
			for _, p := range l.paths {
				undo = append(undo, c.trackWatch(p, l.kind))
			}
		}
		if err := s.SetWatches(ctx, ws); err != nil {
			for _, u := range undo {
				u()
			}
			return nil, err
		}
		return nil, nil
	}
}

func handleGetEphemerals(ctx context.Context, _ *conn, s *zoo.ServerSession, r *jute.Reader) (func(*jute.Writer), error) {
	prefix := r.UString()
	if r.Err != nil {
		return nil, jute.ErrMarshal
	}
	if strings.TrimSpace(prefix) == "" {
		prefix = "/"
	}
	paths, err := s.GetEphemerals(ctx, prefix)
	if err != nil {
		return nil, err
	}
	return func(w *jute.Writer) { w.Strings(paths) }, nil
}

func handleAllChildren(ctx context.Context, _ *conn, s *zoo.ServerSession, r *jute.Reader) (func(*jute.Writer), error) {
	path := r.UString()
	if r.Err != nil {
		return nil, jute.ErrMarshal
	}
	n, err := s.AllChildrenNumber(ctx, path)
	if err != nil {
		return nil, err
	}
	return func(w *jute.Writer) { w.Int(int32(n)) }, nil
}

// handleWhoAmI returns the connection's identities as ClientInfo{scheme,
// user}; digest ids show their user name, as ZooKeeper's providers do.
func handleWhoAmI(_ context.Context, _ *conn, s *zoo.ServerSession, _ *jute.Reader) (func(*jute.Writer), error) {
	if err := s.Err(); err != nil {
		return nil, err
	}
	ids := s.AuthIDs()
	return func(w *jute.Writer) {
		w.Int(int32(len(ids)))
		for _, id := range ids {
			user := id.ID
			if id.Scheme == "digest" {
				user, _, _ = strings.Cut(user, ":")
			}
			w.UString(id.Scheme)
			w.UString(user)
		}
	}, nil
}
