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

// Opcodes (ZooDefs.OpCode). The server-internal ones (notification 0,
// deleteContainer 20, createSession -10) and sasl (102) are not served: they
// get ZUNIMPLEMENTED like any unknown opcode.
const (
	opCreate               int32 = 1
	opDelete               int32 = 2
	opExists               int32 = 3
	opGetData              int32 = 4
	opSetData              int32 = 5
	opGetACL               int32 = 6
	opSetACL               int32 = 7
	opGetChildren          int32 = 8
	opSync                 int32 = 9
	opPing                 int32 = 11
	opGetChildren2         int32 = 12
	opCheck                int32 = 13
	opMulti                int32 = 14
	opCreate2              int32 = 15
	opReconfig             int32 = 16
	opCheckWatches         int32 = 17
	opRemoveWatches        int32 = 18
	opCreateContainer      int32 = 19
	opCreateTTL            int32 = 21
	opMultiRead            int32 = 22
	opAuth                 int32 = 100
	opSetWatches           int32 = 101
	opGetEphemerals        int32 = 103
	opGetAllChildrenNumber int32 = 104
	opSetWatches2          int32 = 105
	opAddWatch             int32 = 106
	opWhoAmI               int32 = 107
	opCloseSession         int32 = -11
	opError                int32 = -1
)

// Special xids and the one state a server sends.
const (
	xidNotification    int32 = -1
	xidPing            int32 = -2
	stateSyncConnected int32 = 3
)

// maxTTL is the largest TTL ZooKeeper accepts (EphemeralType.maxValue), in ms.
const maxTTL = int64(1)<<40 - 1

// opNames are the lop= names of cons, as ZooKeeper's FinalRequestProcessor sets them.
var opNames = map[int32]string{
	opCreate: "CREA", opCreate2: "CREA", opCreateContainer: "CREA", opCreateTTL: "CREA",
	opDelete: "DELE", opExists: "EXIS", opGetData: "GETD", opSetData: "SETD", opGetACL: "GETA",
	opSetACL: "SETA", opGetChildren: "GETC", opGetChildren2: "GETC", opSync: "SYNC", opPing: "PING",
	opCheck: "CHEC", opMulti: "MULT", opMultiRead: "MLTR", opReconfig: "RECO", opCheckWatches: "CHKW",
	opRemoveWatches: "REMW", opAuth: "AUTH", opSetWatches: "SETW", opSetWatches2: "STW2",
	opGetEphemerals: "GETE", opGetAllChildrenNumber: "GETACN", opAddWatch: "ADDW", opWhoAmI: "HOMI",
	opCloseSession: "CLOS",
}

// refusedReadOnly are the opcodes a read-only session gets ZNOTREADONLY for,
// before its request is even decoded, as ZooKeeper's ReadOnlyRequestProcessor
// answers them (sync included: a read-only server has no leader to sync with).
var refusedReadOnly = map[int32]bool{
	opCreate: true, opCreate2: true, opCreateContainer: true, opCreateTTL: true,
	opDelete: true, opSetData: true, opSetACL: true, opMulti: true, opCheck: true,
	opSync: true, opReconfig: true,
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
type handler func(ctx context.Context, c *conn, s *zoo.Session, r *jute.Reader) (func(*jute.Writer), error)

var handlers = map[int32]handler{
	opCreate: opCreateFn(opCreate), opCreate2: opCreateFn(opCreate2),
	opCreateContainer: opCreateFn(opCreateContainer), opCreateTTL: opCreateFn(opCreateTTL),
	opDelete: handleDelete, opExists: handleExists, opGetData: handleGetData,
	opSetData: handleSetData, opGetACL: handleGetACL, opSetACL: handleSetACL,
	opGetChildren: handleGetChildren(false), opGetChildren2: handleGetChildren(true),
	opSync: handleSync, opMulti: handleMulti, opMultiRead: handleMultiRead,
	opReconfig:     handleReconfig,
	opCheckWatches: handleCheckWatches, opRemoveWatches: handleRemoveWatches,
	opSetWatches: handleSetWatches(false), opSetWatches2: handleSetWatches(true),
	opGetEphemerals: handleGetEphemerals, opGetAllChildrenNumber: handleAllChildren,
	opAddWatch: handleAddWatch, opWhoAmI: handleWhoAmI,
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
	case opPing:
		// Header only; the session stays alive while this connection holds it.
		xid = xidPing
	case opAuth:
		code, then = c.auth(s, r)
	case opCloseSession:
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
func (c *conn) outcome(s *zoo.Session, err error) (zoo.Code, after) {
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
// letting a client name its own IP would defeat ip ACLs). Anything else is
// ZAUTHFAILED and the connection closes.
func (c *conn) auth(s *zoo.Session, r *jute.Reader) (zoo.Code, after) {
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
	case op == opCreateTTL && !c.srv.cfg.ExtendedTypesEnabled:
		return zoo.CreateOp{}, zoo.ErrUnimplemented
	case flags < int32(zoo.ModePersistent) || flags > int32(zoo.ModePersistentSequentialWithTTL):
		return zoo.CreateOp{}, fmt.Errorf("%w: unknown create flags %d", zoo.ErrBadArguments, flags)
	case op == opCreateTTL && (!isTTL || ttl <= 0 || ttl > maxTTL):
		return zoo.CreateOp{}, fmt.Errorf("%w: createTTL needs a TTL mode and a TTL in [1, 2^40-1] ms", zoo.ErrBadArguments)
	case op != opCreateTTL && isTTL:
		return zoo.CreateOp{}, fmt.Errorf("%w: TTL modes need createTTL", zoo.ErrBadArguments)
	case op == opCreateContainer && mode != zoo.ModeContainer:
		return zoo.CreateOp{}, fmt.Errorf("%w: createContainer needs the container flag", zoo.ErrBadArguments)
	}
	cop := zoo.CreateOp{Path: path, Data: data, ACL: acl, Mode: mode}
	if op == opCreateTTL {
		cop.TTL = time.Duration(ttl) * time.Millisecond
	}
	return cop, nil
}

// readCreate decodes a CreateRequest (or CreateTTLRequest) and validates it:
// jute.ErrMarshal if it does not decode, else the validation error, if any.
func (c *conn) readCreate(op int32, r *jute.Reader) (zoo.CreateOp, error) {
	path, data, acl, flags := r.UString(), r.Buffer(), r.ACLs(), r.Int()
	var ttl int64
	if op == opCreateTTL {
		ttl = r.Long()
	}
	if r.Err != nil {
		return zoo.CreateOp{}, jute.ErrMarshal
	}
	return c.createOp(op, path, data, acl, flags, ttl)
}

func opCreateFn(op int32) handler {
	return func(ctx context.Context, c *conn, s *zoo.Session, r *jute.Reader) (func(*jute.Writer), error) {
		cop, err := c.readCreate(op, r)
		if err != nil {
			return nil, err
		}
		p, st, err := s.CreateWithStat(ctx, cop)
		if err != nil {
			return nil, err
		}
		if op == opCreate {
			return func(w *jute.Writer) { w.UString(p) }, nil
		}
		return func(w *jute.Writer) { w.UString(p); w.Stat(st) }, nil
	}
}

func handleDelete(ctx context.Context, _ *conn, s *zoo.Session, r *jute.Reader) (func(*jute.Writer), error) {
	path, version := r.UString(), r.Int()
	if r.Err != nil {
		return nil, jute.ErrMarshal
	}
	return nil, s.Delete(ctx, path, version)
}

func handleExists(ctx context.Context, c *conn, s *zoo.Session, r *jute.Reader) (func(*jute.Writer), error) {
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
		if ok, st, err = s.ExistsWatched(ctx, path); err != nil {
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

func handleGetData(ctx context.Context, c *conn, s *zoo.Session, r *jute.Reader) (func(*jute.Writer), error) {
	path, watch := r.UString(), r.Bool()
	if r.Err != nil {
		return nil, jute.ErrMarshal
	}
	var data []byte
	var st zoo.Stat
	var err error
	if watch {
		undo := c.trackWatch(path, kindData)
		if data, st, err = s.GetWatched(ctx, path); err != nil {
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

func handleSetData(ctx context.Context, _ *conn, s *zoo.Session, r *jute.Reader) (func(*jute.Writer), error) {
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

func handleGetACL(ctx context.Context, _ *conn, s *zoo.Session, r *jute.Reader) (func(*jute.Writer), error) {
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

func handleSetACL(ctx context.Context, _ *conn, s *zoo.Session, r *jute.Reader) (func(*jute.Writer), error) {
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
	return func(ctx context.Context, c *conn, s *zoo.Session, r *jute.Reader) (func(*jute.Writer), error) {
		path, watch := r.UString(), r.Bool()
		if r.Err != nil {
			return nil, jute.ErrMarshal
		}
		var names []string
		var st zoo.Stat
		var err error
		if watch {
			undo := c.trackWatch(path, kindChild)
			if names, st, err = s.ChildrenWatched(ctx, path); err != nil {
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

func handleSync(ctx context.Context, _ *conn, s *zoo.Session, r *jute.Reader) (func(*jute.Writer), error) {
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
func handleMulti(ctx context.Context, c *conn, s *zoo.Session, r *jute.Reader) (func(*jute.Writer), error) {
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
		case opCreate, opCreate2, opCreateContainer, opCreateTTL:
			cop, err := c.readCreate(typ, r)
			if errors.Is(err, jute.ErrMarshal) {
				return nil, err
			}
			if err != nil && failAt < 0 {
				failAt, failErr = len(subs), err
			}
			op = cop
		case opDelete:
			op = zoo.DeleteOp{Path: r.UString(), Version: r.Int()}
		case opSetData:
			op = zoo.SetDataOp{Path: r.UString(), Data: r.Buffer(), Version: r.Int()}
		case opCheck:
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
				w.MultiHeader(opError, false, code)
				w.Int(code)
				continue
			}
			var st zoo.Stat
			if res.Stat != nil {
				st = *res.Stat
			}
			switch sb.typ {
			case opCreate:
				// Answer create(1) with type 1: kazoo and go-zookeeper parse
				// only types 1, 2, 5, 13 and -1.
				w.MultiHeader(opCreate, false, 0)
				w.UString(res.Path)
			case opCreate2, opCreateContainer, opCreateTTL:
				w.MultiHeader(opCreate2, false, 0)
				w.UString(res.Path)
				w.Stat(st)
			case opDelete:
				w.MultiHeader(opDelete, false, 0)
			case opSetData:
				w.MultiHeader(opSetData, false, 0)
				w.Stat(st)
			case opCheck:
				w.MultiHeader(opCheck, false, 0)
			}
		}
		w.MultiHeader(-1, true, -1)
	}, nil
}

// handleMultiRead serves multiRead(22): independent reads, no watches.
func handleMultiRead(ctx context.Context, _ *conn, s *zoo.Session, r *jute.Reader) (func(*jute.Writer), error) {
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
		case opGetData:
			ops = append(ops, zoo.GetDataOp{Path: path})
		case opGetChildren:
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
				w.MultiHeader(opError, false, code)
				w.Int(code)
				continue
			}
			if _, ok := op.(zoo.GetChildrenOp); ok {
				w.MultiHeader(opGetChildren, false, 0)
				w.Strings(res.Children)
			} else {
				w.MultiHeader(opGetData, false, 0)
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

func handleCheckWatches(_ context.Context, _ *conn, s *zoo.Session, r *jute.Reader) (func(*jute.Writer), error) {
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

func handleRemoveWatches(ctx context.Context, c *conn, s *zoo.Session, r *jute.Reader) (func(*jute.Writer), error) {
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

func handleAddWatch(ctx context.Context, c *conn, s *zoo.Session, r *jute.Reader) (func(*jute.Writer), error) {
	path, mode := r.UString(), zoo.WatchMode(r.Int())
	if r.Err != nil {
		return nil, jute.ErrMarshal
	}
	kind := kindPersistent
	if mode == zoo.WatchPersistentRecursive {
		kind = kindRecursive
	}
	undo := c.trackWatch(path, kind)
	if err := s.AddSessionWatch(ctx, path, mode); err != nil {
		undo()
		return nil, err
	}
	// The body is ErrorResponse{0}: Java clients need those 4 bytes.
	return func(w *jute.Writer) { w.Int(0) }, nil
}

// handleSetWatches serves setWatches(101) and setWatches2(105): re-arm the
// watches of a reconnecting client, with catch-up events for what it missed.
func handleSetWatches(v2 bool) handler {
	return func(ctx context.Context, c *conn, s *zoo.Session, r *jute.Reader) (func(*jute.Writer), error) {
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

func handleGetEphemerals(ctx context.Context, _ *conn, s *zoo.Session, r *jute.Reader) (func(*jute.Writer), error) {
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

func handleAllChildren(ctx context.Context, _ *conn, s *zoo.Session, r *jute.Reader) (func(*jute.Writer), error) {
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
func handleWhoAmI(_ context.Context, _ *conn, s *zoo.Session, _ *jute.Reader) (func(*jute.Writer), error) {
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
