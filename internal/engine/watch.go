package engine

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/levelparty/party/backend"
	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/opt"
)

// Watches. Every write the engine commits is published, when watches
// exist, to each of them, in the order goleveldb commits the writes: the
// writes that publish hold the hub's lock around their commit. With no
// watch, writes take no lock and copy nothing.
//
// Each watch queues the changes it has not delivered, up to a size; past
// it, it drops them all and reports a gap, so that a slow or stopped
// watcher never slows writers and the engine's memory stays bounded.

// DefaultWatchBuffer is how many bytes of undelivered changes one watch
// holds before it drops them and reports a gap.
const DefaultWatchBuffer = 4 << 20

// maxWatchTotal bounds the bytes of undelivered changes all watches of an
// engine hold together: past it, the watch that holds the most drops its
// changes and reports a gap, whatever the number of watches.
const maxWatchTotal = 64 << 20

// changeOverhead is what a change costs in a watch's buffer beyond its
// key and value.
const changeOverhead = 48

// hub is the engine's set of watches.
type hub struct {
	n       atomic.Int32 // watches registered
	mu      sync.Mutex   // held by publishing writes around their commit
	watches map[*Watch]struct{}
	closed  bool
	total   atomic.Int64 // bytes queued in all watches
}

// commit writes b and publishes its writes to the watches. ends are the
// record counts at which the writes gathered in b end (nil: b is one
// write).
func (e *Engine) commit(b *leveldb.Batch, wo *opt.WriteOptions, ends []int) error {
	if e.hub.n.Load() == 0 {
		return wrap(e.db.Write(b, wo))
	}
	e.hub.mu.Lock()
	defer e.hub.mu.Unlock()
	if err := e.db.Write(b, wo); err != nil {
		return wrap(err)
	}
	e.hub.publish(b, ends)
	return nil
}

// publish hands the writes of b to every watch; h.mu is held.
func (h *hub) publish(b *leveldb.Batch, ends []int) {
	if len(h.watches) == 0 {
		return
	}
	var r changeReplay
	r.ends = ends
	b.Replay(&r)
	r.cut()
	for w := range h.watches {
		for _, ev := range r.events {
			w.add(ev)
		}
	}
	for h.total.Load() > maxWatchTotal {
		var big *Watch
		bigSize := 0
		for w := range h.watches {
			w.mu.Lock()
			if w.size > bigSize {
				big, bigSize = w, w.size
			}
			w.mu.Unlock()
		}
		if big == nil {
			break
		}
		big.drop()
	}
}

// changeReplay turns a batch into events: the changes of each write, in
// order, without party's hidden keys. Keys and values are copies.
type changeReplay struct {
	ends   []int
	n      int // records replayed
	cur    []backend.Change
	events [][]backend.Change
}

func (r *changeReplay) Put(k, v []byte) {
	r.record(backend.Change{Key: append([]byte{}, k...), Value: append([]byte{}, v...)})
}

func (r *changeReplay) Delete(k []byte) {
	r.record(backend.Change{Key: append([]byte{}, k...), Deleted: true})
}

func (r *changeReplay) record(c backend.Change) {
	if !backend.Hidden(c.Key) {
		r.cur = append(r.cur, c)
	}
	r.n++
	if len(r.ends) > 0 && r.n == r.ends[0] {
		r.ends = r.ends[1:]
		r.cut()
	}
}

// cut ends the current write.
func (r *changeReplay) cut() {
	if len(r.cur) > 0 {
		r.events = append(r.events, r.cur)
	}
	r.cur = nil
}

// Watch is one watch of a range of keys on the engine.
type Watch struct {
	h     *hub
	rng   backend.Range
	limit int

	mu     sync.Mutex
	events [][]backend.Change // undelivered, in commit order
	size   int                // their bytes, as counted against limit
	gap    bool               // changes were dropped: say so before the next event
	closed bool
	wake   chan struct{} // capacity 1: an event, a gap or Close happened
}

// Watch registers a watch of r: every write committed after it returns is
// delivered, as far as it falls in r. limit bounds the bytes it holds
// undelivered (0: DefaultWatchBuffer).
func (e *Engine) Watch(r backend.Range, limit int) (*Watch, error) {
	if limit <= 0 {
		limit = DefaultWatchBuffer
	}
	w := &Watch{h: &e.hub, rng: backend.Range{Start: clone(r.Start), Limit: clone(r.Limit)}, limit: limit, wake: make(chan struct{}, 1)}
	h := &e.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, backend.ErrClosed
	}
	if h.watches == nil {
		h.watches = make(map[*Watch]struct{})
	}
	h.watches[w] = struct{}{}
	h.n.Add(1)
	return w, nil
}

func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte{}, b...)
}

// in reports whether key falls in the watch's range.
func (w *Watch) in(key []byte) bool { return w.rng.Contains(key) }

// add queues the changes of ev that fall in the range, as one event.
func (w *Watch) add(ev []backend.Change) {
	var mine []backend.Change
	size := 0
	for _, c := range ev {
		if w.in(c.Key) {
			mine = append(mine, c)
			size += len(c.Key) + len(c.Value) + changeOverhead
		}
	}
	if len(mine) == 0 {
		return
	}
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return
	}
	if w.size+size > w.limit {
		// Too far behind: drop everything, say so once.
		w.dropLocked()
	} else {
		w.events = append(w.events, mine)
		w.size += size
		w.h.total.Add(int64(size))
	}
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// drop drops the undelivered changes, for a gap.
func (w *Watch) drop() {
	w.mu.Lock()
	w.dropLocked()
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *Watch) dropLocked() {
	w.h.total.Add(-int64(w.size))
	w.events, w.size, w.gap = nil, 0, true
}

// TryNext is Next without the wait: ok is false when nothing is there.
func (w *Watch) TryNext() (ev []backend.Change, err error, ok bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.takeLocked()
}

// takeLocked returns what Next returns next, if anything; w.mu is held.
func (w *Watch) takeLocked() ([]backend.Change, error, bool) {
	switch {
	case w.closed:
		return nil, backend.ErrClosed, true
	case w.gap:
		w.gap = false
		return nil, backend.ErrWatchGap, true
	case len(w.events) > 0:
		ev := w.events[0]
		w.events[0] = nil
		w.events = w.events[1:]
		n := 0
		for _, c := range ev {
			n += len(c.Key) + len(c.Value) + changeOverhead
		}
		w.size -= n
		w.h.total.Add(-int64(n))
		return ev, nil, true
	}
	return nil, nil, false
}

// Next returns the changes of the next write, waiting for one; after
// changes were dropped it returns ErrWatchGap once first. The slices
// are shared with the other watches of the same engine: callers that hand
// them on copy them.
func (w *Watch) Next(ctx context.Context) ([]backend.Change, error) {
	for {
		w.mu.Lock()
		ev, err, ok := w.takeLocked()
		w.mu.Unlock()
		if ok {
			return ev, err
		}
		select {
		case <-w.wake:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Close unregisters the watch; its pending and later Next calls return
// ErrClosed.
func (w *Watch) Close() {
	h := w.h
	h.mu.Lock()
	if _, ok := h.watches[w]; ok {
		delete(h.watches, w)
		h.n.Add(-1)
	}
	h.mu.Unlock()
	w.close()
}

func (w *Watch) close() {
	w.mu.Lock()
	w.h.total.Add(-int64(w.size))
	w.closed, w.events, w.size = true, nil, 0
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// closeWatches ends every watch: the engine is closing.
func (e *Engine) closeWatches() {
	h := &e.hub
	h.mu.Lock()
	ws := h.watches
	h.watches, h.closed = nil, true
	h.n.Store(0)
	h.mu.Unlock()
	for w := range ws {
		w.close()
	}
}
