package zkclient

import (
	"context"
	"fmt"

	"github.com/zooraft/zoo"
	"github.com/zooraft/zoo/internal/jute"
)

// Multi runs ops as one transaction (multi, 14): all or none, one zxid.
// The results are in op order. When the transaction fails, the error is the
// failing op's (with its path), and the results say, op by op, what
// ZooKeeper said: zoo.ErrRolledBack for the ops before it, its own error,
// zoo.ErrRuntimeInconsistency for the ops after it. Creates are sent as the
// Java client's Op.create sends them: create (1), createContainer (19) or
// createTTL (21); only the last two return a Stat. An empty Multi sends
// nothing.
func (c *Conn) Multi(ctx context.Context, ops ...zoo.Op) ([]zoo.OpResult, error) {
	if c == nil {
		return nil, pathErr("multi", "", errNilConn)
	}
	if len(ops) == 0 {
		return []zoo.OpResult{}, nil
	}
	paths := make([]string, len(ops))
	var subs []func(w *jute.Writer)
	for i, op := range ops {
		sub, path, err := c.multiOp(op)
		paths[i] = path
		if err != nil {
			return nil, pathErr("multi", path, err)
		}
		subs = append(subs, sub)
	}
	var results []zoo.OpResult
	req := newRequest(jute.OpMulti, func(w *jute.Writer) {
		for _, sub := range subs {
			sub(w)
		}
		w.MultiHeader(-1, true, -1)
	}, func(code zoo.Code, r *jute.Reader) error {
		if code != zoo.CodeOK {
			return zoo.ErrorForCode(code)
		}
		results = c.readMultiResults(r, len(ops))
		return nil
	})
	if err := c.do(ctx, req); err != nil {
		return nil, pathErr("multi", "", err)
	}
	for i, res := range results {
		if res.Err != nil && res.Err != zoo.ErrRolledBack {
			return results, pathErr("multi", paths[i], res.Err)
		}
	}
	return results, nil
}

// multiOp checks one op and returns its encoder and path.
func (c *Conn) multiOp(op zoo.Op) (func(w *jute.Writer), string, error) {
	withVersion := func(typ int32, path string, version int32) (func(w *jute.Writer), string, error) {
		if err := validatePath(path); err != nil {
			return nil, path, err
		}
		sp := c.serverPath(path)
		return func(w *jute.Writer) {
			w.MultiHeader(typ, false, -1)
			w.UString(sp)
			w.Int(version)
		}, path, nil
	}
	switch o := op.(type) {
	case zoo.CreateOp:
		typ, err := createType(o, false)
		if err != nil {
			return nil, o.Path, err
		}
		sp := c.serverPath(o.Path)
		return func(w *jute.Writer) {
			w.MultiHeader(typ, false, -1)
			writeCreate(w, typ, sp, o)
		}, o.Path, nil
	case zoo.DeleteOp:
		return withVersion(jute.OpDelete, o.Path, o.Version)
	case zoo.CheckOp:
		return withVersion(jute.OpCheck, o.Path, o.Version)
	case zoo.SetDataOp:
		if err := validatePath(o.Path); err != nil {
			return nil, o.Path, err
		}
		sp := c.serverPath(o.Path)
		return func(w *jute.Writer) {
			w.MultiHeader(jute.OpSetData, false, -1)
			w.UString(sp)
			w.Buffer(o.Data)
			w.Int(o.Version)
		}, o.Path, nil
	}
	return nil, "", fmt.Errorf("%w: unsupported op %T", zoo.ErrBadArguments, op)
}

// errorResult maps an ErrorResult code: 0 is an op rolled back with the
// failed transaction.
func errorResult(code int32) error {
	if code == 0 {
		return zoo.ErrRolledBack
	}
	return zoo.ErrorForCode(zoo.Code(code))
}

// readMultiResults decodes a MultiResponse of n results; anything else is
// a malformed reply (r.Err).
func (c *Conn) readMultiResults(r *jute.Reader, n int) []zoo.OpResult {
	results := make([]zoo.OpResult, 0, n)
	for r.Err == nil {
		typ, done, _ := r.Int(), r.Bool(), r.Int()
		if done || r.Err != nil {
			break
		}
		var res zoo.OpResult
		switch typ {
		case jute.OpCreate:
			res.Path = c.clientPath(r.UString())
		case jute.OpCreate2, jute.OpCreateContainer, jute.OpCreateTTL:
			res.Path = c.clientPath(r.UString())
			st := r.Stat()
			res.Stat = &st
		case jute.OpSetData:
			st := r.Stat()
			res.Stat = &st
		case jute.OpDelete, jute.OpCheck:
		case jute.OpError:
			res.Err = errorResult(r.Int())
		default:
			r.Fail()
		}
		results = append(results, res)
	}
	if len(results) != n {
		r.Fail()
	}
	return results
}

// MultiRead runs reads (zoo.GetDataOp, zoo.GetChildrenOp) in one request
// (multiRead, 22): each succeeds or fails on its own, none sets a watch.
// Servers before 3.6 do not know it. An empty MultiRead sends nothing.
func (c *Conn) MultiRead(ctx context.Context, ops ...zoo.ReadOp) ([]zoo.ReadResult, error) {
	if c == nil {
		return nil, pathErr("multiRead", "", errNilConn)
	}
	if len(ops) == 0 {
		return []zoo.ReadResult{}, nil
	}
	type sub struct {
		typ  int32
		path string
	}
	subs := make([]sub, len(ops))
	for i, op := range ops {
		var s sub
		switch o := op.(type) {
		case zoo.GetDataOp:
			s = sub{jute.OpGetData, o.Path}
		case zoo.GetChildrenOp:
			s = sub{jute.OpGetChildren, o.Path}
		default:
			return nil, pathErr("multiRead", "", fmt.Errorf("%w: unsupported op %T", zoo.ErrBadArguments, op))
		}
		if err := validatePath(s.path); err != nil {
			return nil, pathErr("multiRead", s.path, err)
		}
		s.path = c.serverPath(s.path)
		subs[i] = s
	}
	var results []zoo.ReadResult
	req := newRequest(jute.OpMultiRead, func(w *jute.Writer) {
		for _, s := range subs {
			w.MultiHeader(s.typ, false, -1)
			w.UString(s.path)
			w.Bool(false)
		}
		w.MultiHeader(-1, true, -1)
	}, func(code zoo.Code, r *jute.Reader) error {
		if code != zoo.CodeOK {
			return zoo.ErrorForCode(code)
		}
		results = make([]zoo.ReadResult, 0, len(ops))
		for r.Err == nil {
			typ, done, _ := r.Int(), r.Bool(), r.Int()
			if done || r.Err != nil {
				break
			}
			var res zoo.ReadResult
			switch typ {
			case jute.OpGetData:
				res.Data, res.Stat = r.Buffer(), r.Stat()
			case jute.OpGetChildren:
				if res.Children = r.Strings(); res.Children == nil {
					res.Children = []string{}
				}
			case jute.OpError:
				res.Err = zoo.ErrorForCode(zoo.Code(r.Int()))
			default:
				r.Fail()
			}
			results = append(results, res)
		}
		if len(results) != len(ops) {
			r.Fail()
		}
		return nil
	})
	if err := c.do(ctx, req); err != nil {
		return nil, pathErr("multiRead", "", err)
	}
	return results, nil
}
