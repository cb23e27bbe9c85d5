package recipe

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/zooraft/zoo"
)

// The node operations every recipe is built from, each made safe to repeat
// after an unknown outcome: creating a node and its parents, deleting a node
// that may already be gone, creating a sequential node that can be found
// again by a token in its name, and waiting for a node to go.

// ensurePath makes sure path and all its ancestors exist, creating the missing
// ones as empty persistent nodes (ErrNodeExists from a concurrent creator is
// fine). Transient errors (zoo.ErrConnectionLoss, zoo.ErrNotServing) are
// retried until ctx or the session ends; creating a node twice is harmless, so
// an unknown outcome needs no special care. Other errors (zoo.ErrNoAuth,
// zoo.ErrNoChildrenForEphemerals, ...) are returned.
func ensurePath(ctx context.Context, s *zoo.Session, path string) error {
	if path == "/" || path == "" {
		return nil
	}
	ok, _, err := s.Exists(ctx, path)
	if err == nil && ok {
		return nil // the common case: no write
	}
	return createNode(ctx, s, path, nil)
}

// createNode creates a persistent node at path holding data, and its missing
// ancestors (empty). A node already at path is fine and left as it is.
// Transient errors are retried until ctx or the session ends.
func createNode(ctx context.Context, s *zoo.Session, path string, data []byte) error {
	return retry(ctx, s, func() error {
		_, err := s.Create(ctx, path, data, zoo.ModePersistent, nil)
		switch {
		case err == nil, errors.Is(err, zoo.ErrNodeExists):
			return nil
		case !errors.Is(err, zoo.ErrNoNode):
			return err
		}
		if parent := parentPath(path); parent != "/" {
			if err := createNode(ctx, s, parent, nil); err != nil {
				return err
			}
		}
		return errRetryNow // the parent is there now (unless it vanished again)
	})
}

// deleteNode deletes path (any version), retrying transient errors; a node
// already gone is fine. Other errors, the session's end among them (which
// took an ephemeral node with it), are returned.
func deleteNode(ctx context.Context, s *zoo.Session, path string) error {
	return retry(ctx, s, func() error {
		err := s.Delete(ctx, path, -1)
		if errors.Is(err, zoo.ErrNoNode) {
			return nil
		}
		return err
	})
}

// listChildren lists dir's children, with a child watch if watch, retrying
// transient errors.
func listChildren(ctx context.Context, s *zoo.Session, dir string, watch bool) ([]string, <-chan zoo.Event, error) {
	var names []string
	var ch <-chan zoo.Event
	err := retry(ctx, s, func() error {
		var err error
		if watch {
			names, _, ch, err = s.ChildrenW(ctx, dir)
		} else {
			names, _, err = s.Children(ctx, dir)
		}
		return err
	})
	return names, ch, err
}

// multiRead reads ops in one consistent view, retrying transient errors.
func multiRead(ctx context.Context, s *zoo.Session, ops ...zoo.ReadOp) ([]zoo.ReadResult, error) {
	var res []zoo.ReadResult
	err := retry(ctx, s, func() error {
		var err error
		res, err = s.MultiRead(ctx, ops...)
		return err
	})
	return res, err
}

// dataOps returns the reads of the data of the nodes at paths.
func dataOps(paths ...string) []zoo.ReadOp {
	ops := make([]zoo.ReadOp, len(paths))
	for i, p := range paths {
		ops[i] = zoo.GetDataOp{Path: p}
	}
	return ops
}

// createTokened creates the sequential node dir/prefix<sequence>, where prefix
// carries a token unique to the call (newToken), creating dir if it is
// missing. Transient errors are retried. After a create whose outcome is
// unknown (zoo.ErrConnectionLoss) it looks, after a Sync, for a child of dir
// carrying prefix, and returns it if there is one. If there is none, once
// says what to do: false creates again, so that a create still in flight may
// leave a second node carrying the token (the caller treats every such node
// as its own); true gives up with an error wrapping zoo.ErrConnectionLoss:
// the node may or may not have been created. With once the end of ctx while
// a create is in flight is reported the same way (wrapping ctx's error too).
// unsure reports that some create's outcome was unknown: without once, a
// second node carrying the token may then still appear, a little later.
func createTokened(ctx context.Context, s *zoo.Session, dir, prefix string, data []byte, mode zoo.CreateMode, once bool) (path string, unsure bool, err error) {
	unknown := func(cause error) error {
		if errors.Is(cause, zoo.ErrConnectionLoss) {
			return cause
		}
		return fmt.Errorf("%w: %w", zoo.ErrConnectionLoss, cause)
	}
	for attempt := 0; ; attempt++ {
		p, err := s.Create(ctx, dir+"/"+prefix, data, mode, nil)
		switch {
		case err == nil:
			return p, unsure, nil
		case errors.Is(err, zoo.ErrNoNode):
			if err := ensurePath(ctx, s, dir); err != nil {
				return "", unsure, err
			}
			continue
		case ctxEnded(err):
			unsure = true // cut short, perhaps in flight
			if once {
				return "", true, unknown(err)
			}
			return "", true, err
		case !transient(err):
			return "", unsure, err
		case errors.Is(err, zoo.ErrConnectionLoss):
			unsure = true
			found, ferr := findChild(ctx, s, dir, prefix)
			switch {
			case found != "":
				return found, true, nil
			case once:
				return "", true, unknown(firstErr(ferr, err))
			case ferr != nil:
				return "", true, ferr
			}
		}
		// Nothing was written (or, without once, nothing was found): again.
		if berr := backoff(ctx, s, attempt); berr != nil {
			if once && errors.Is(err, zoo.ErrConnectionLoss) {
				return "", true, unknown(berr)
			}
			return "", unsure, fmt.Errorf("%w (while retrying after: %v)", berr, err)
		}
	}
}

// firstErr returns the first of errs that is not nil.
func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// findChild returns the path of a child of dir whose name starts with
// prefix ("" if none), as the ensemble has them (after a Sync).
func findChild(ctx context.Context, s *zoo.Session, dir, prefix string) (string, error) {
	var found string
	err := retry(ctx, s, func() error {
		if err := s.Sync(ctx, dir); err != nil {
			return err
		}
		names, _, err := s.Children(ctx, dir)
		if err != nil {
			return err
		}
		for _, n := range names {
			if strings.HasPrefix(n, prefix) {
				found = dir + "/" + n
				return nil
			}
		}
		return nil
	})
	return found, err
}

// waitDeleted blocks until the node at path does not exist, and returns nil
// then (at once if it does not exist now). It returns ctx's error when ctx
// ends first, and the session's error (zoo.ErrSessionExpired or
// zoo.ErrClosed) when the session ends first. Transient errors are retried.
//
// It watches with GetW, not ExistsW: a data watch is only set when the node
// exists, so a node that is already gone leaves no watch behind (an exists
// watch on an absent sequential name would stay forever). When ctx ends it
// removes the session's data watches on path, since zoo cannot remove one
// watch alone; every watcher in this package re-arms when its watch is
// removed (it sees zoo.EventNotWatching with a nil Err).
func waitDeleted(ctx context.Context, s *zoo.Session, path string) error {
	for {
		var ch <-chan zoo.Event
		err := retry(ctx, s, func() error {
			var err error
			_, _, ch, err = s.GetW(ctx, path)
			return err
		})
		switch {
		case errors.Is(err, zoo.ErrNoNode):
			return nil
		case err != nil:
			return err
		}
		select {
		case ev := <-ch:
			switch {
			case ev.Type == zoo.EventNodeDeleted:
				return nil
			case ev.Type == zoo.EventNotWatching && s.Err() != nil:
				return s.Err()
			}
			// Data changed, or the watch was removed: look again.
		case <-ctx.Done():
			_ = s.RemoveWatches(context.WithoutCancel(ctx), path, zoo.WatcherData)
			return ctx.Err()
		case <-s.Done():
			return sessionErr(s)
		}
	}
}
