package party

import (
	"context"

	"github.com/levelparty/party/backend"
)

// Change is one put or delete of a committed write, as a Watcher delivers
// it. Key and Value belong to the caller.
type Change = backend.Change

// Watcher delivers every change committed in its range, by any
// participant, as it happens: write by write, in the leader's commit
// order, the same order for every watcher.
//
// A watcher never misses a change silently: when changes may have been
// lost, Next returns ErrWatchGap once, then goes on with later changes.
// That happens after a leader change (the old leader may have committed
// writes this watcher never received) and when the watcher falls further
// behind than a bounded buffer on the leader (4 MiB of changes per
// watcher, 64 MiB for all watchers together, whatever their number): a
// slow or stopped watcher never slows writers, and the leader's memory
// stays bounded. The pattern that never misses
// anything: register the watch, then read the state, then apply changes
// on top; on ErrWatchGap, read the state again.
//
// A Watcher is used by one goroutine at a time, but Close may be called
// from any goroutine.
type Watcher struct {
	w backend.Watcher
}

// Watch registers a watch of the changes in r (every key if r is nil) and
// returns once the leader has registered it: every write that starts after
// Watch returns is delivered.
func (db *DB) Watch(ctx context.Context, r *Range) (*Watcher, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	w, err := db.b.Watch(ctx, r.backend())
	if err != nil {
		return nil, err
	}
	return &Watcher{w: w}, nil
}

// Next returns the changes of the next committed write that fall in the
// watcher's range, waiting for one until ctx ends: a Put or Delete gives
// one Change, a Write its entries together, a DeleteRange the keys it
// deleted (in batches of about a thousand), a transaction its writes
// together. It returns ErrWatchGap once when changes may have been lost,
// and ErrClosed once Close was called.
func (w *Watcher) Next(ctx context.Context) ([]Change, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return w.w.Next(ctx)
}

// Close ends the watch; pending and later Next calls return ErrClosed.
// DB.Close closes it too.
func (w *Watcher) Close() error {
	w.w.Close()
	return nil
}
