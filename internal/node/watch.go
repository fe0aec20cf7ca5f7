package node

import (
	"context"
	"errors"
	"sync"

	"github.com/levelparty/party/backend"
	"github.com/levelparty/party/internal/client"
	"github.com/levelparty/party/internal/engine"
)

// watcher is a watch that survives leader changes: when its leader is
// lost, it reports one gap (the lost leader may have committed writes it
// never sent) and registers again on the next leader.
type watcher struct {
	n   *Node
	rng backend.Range

	moving sync.Mutex // serializes Next calls, and guards gapDue
	gapDue bool       // the leader was lost: report a gap once registered again

	mu     sync.Mutex // guards the fields below; never held while waiting
	src    watchSource
	closed bool
}

// watchSource is where a watcher's changes come from: this handle's
// engine, or the leader over the connection. Close makes a Next under
// way return.
type watchSource interface {
	Next(ctx context.Context) ([]backend.Change, error)
	Close()
}

// Watch registers a watch of r on the leader and returns once it is.
func (n *Node) Watch(ctx context.Context, r backend.Range) (backend.Watcher, error) {
	if err := checkSize(r.Start, r.Limit, nil); err != nil {
		return nil, err
	}
	w := &watcher{n: n, rng: backend.Range{Start: clone(r.Start), Limit: clone(r.Limit)}}
	for {
		src, err := w.open(ctx)
		if err == nil {
			w.src = src
			break
		}
		if !errors.Is(err, client.ErrConnLost) {
			return nil, err
		}
		// Lost the leader before the watch was registered: the next
		// one registers it, and nothing was missed yet.
	}
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		w.src.Close()
		return nil, backend.ErrClosed
	}
	n.watchers[w] = struct{}{}
	n.mu.Unlock()
	return w, nil
}

// open registers a watch where calls go now.
func (w *watcher) open(ctx context.Context) (watchSource, error) {
	r, err := w.n.routeNow(ctx)
	if err != nil {
		return nil, err
	}
	if r.lead != nil {
		ew, err := r.lead.eng.Watch(w.rng, 0)
		if err != nil {
			return nil, err
		}
		return localWatch{ew}, nil
	}
	s, err := r.conn.OpenWatch(ctx, w.rng)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// source returns the current source, or why there is none to use.
func (w *watcher) source() (watchSource, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil, backend.ErrClosed
	}
	return w.src, nil
}

// Next returns the changes of the next write in the range. After a
// leader is lost it registers the watch again before it reports the gap,
// so that a caller who reads the state on the gap misses nothing after.
func (w *watcher) Next(ctx context.Context) ([]backend.Change, error) {
	w.moving.Lock()
	defer w.moving.Unlock()
	for {
		src, err := w.source()
		if err != nil {
			return nil, err
		}
		if src == nil {
			src, err = w.open(ctx)
			if errors.Is(err, client.ErrConnLost) {
				continue
			}
			if err != nil {
				return nil, err
			}
			w.mu.Lock()
			if w.closed {
				w.mu.Unlock()
				src.Close()
				return nil, backend.ErrClosed
			}
			w.src = src
			w.mu.Unlock()
		}
		if w.gapDue {
			w.gapDue = false
			return nil, backend.ErrWatchGap
		}
		ev, err := src.Next(ctx)
		if !errors.Is(err, client.ErrConnLost) {
			if err != nil {
				if _, cerr := w.source(); cerr != nil {
					return nil, cerr // closed meanwhile
				}
			}
			return ev, err
		}
		src.Close()
		w.mu.Lock()
		if w.src == src {
			w.src = nil
		}
		w.mu.Unlock()
		if w.n.isClosed() {
			return nil, backend.ErrClosed
		}
		w.gapDue = true // once registered on the next leader
	}
}

// Close ends the watch. A Next under way returns ErrClosed.
func (w *watcher) Close() {
	w.n.mu.Lock()
	delete(w.n.watchers, w)
	w.n.mu.Unlock()
	w.close()
}

func (w *watcher) close() {
	w.mu.Lock()
	src := w.src
	w.src, w.closed = nil, true
	w.mu.Unlock()
	if src != nil {
		src.Close()
	}
}

// localWatch is a watch on this handle's engine: its changes are shared
// with the engine's other watches, so each event is copied for the caller.
type localWatch struct{ w *engine.Watch }

func (l localWatch) Next(ctx context.Context) ([]backend.Change, error) {
	ev, err := l.w.Next(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]backend.Change, len(ev))
	for i, c := range ev {
		out[i] = backend.Change{Key: clone(c.Key), Value: clone(c.Value), Deleted: c.Deleted}
	}
	return out, nil
}

func (l localWatch) Close() { l.w.Close() }
