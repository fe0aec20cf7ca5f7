package node

import (
	"context"
	"errors"
	"sync"

	"github.com/levelparty/party/backend"
	"github.com/levelparty/party/internal/client"
	"github.com/levelparty/party/internal/engine"
)

// cursor walks a range on whoever leads, and survives leader changes: when
// the leader is lost, it carries on from the last key it returned, on the
// next leader, exactly: no key skipped or returned twice, in either
// direction. It then reads the new leader's current data (the view taken
// when it was opened died with the old leader), except a cursor of a
// snapshot, which fails as afterLoss says.
type cursor struct {
	n    *Node
	snap *snapshot // nil: the database
	rng  backend.Range

	mu       sync.Mutex // held by moves; guards the fields below against release
	src      source     // where entries come from; nil until needed again
	last     []byte     // the last key returned, where to resume
	backward bool       // the direction of the last seek
	released error      // why the cursor may no longer move
}

// source is a place entries come from: this handle's engine, or a stream
// from the leader.
type source interface {
	seek(ctx context.Context, mode backend.SeekMode, key []byte) (k, v []byte, ok bool, err error)
	next(ctx context.Context) (k, v []byte, ok bool, err error)
	release()
}

// NewCursor returns a cursor over r, with a view of the data taken now
// when there is a leader to ask.
func (n *Node) NewCursor(ctx context.Context, r backend.Range) (backend.Cursor, error) {
	return n.newCursor(ctx, nil, r)
}

// newCursor opens a cursor of the database (snap nil) or of snap. Its
// result is an interface, so that a failure is a nil Cursor rather than a
// nil *cursor inside one.
func (n *Node) newCursor(ctx context.Context, snap *snapshot, r backend.Range) (backend.Cursor, error) {
	cur, err := n.openCursor(ctx, snap, r)
	if err != nil {
		return nil, err
	}
	return cur, nil
}

func (n *Node) openCursor(ctx context.Context, snap *snapshot, r backend.Range) (*cursor, error) {
	if err := checkSize(r.Start, r.Limit, nil); err != nil {
		return nil, err
	}
	cur := &cursor{n: n, snap: snap, rng: backend.Range{Start: clone(r.Start), Limit: clone(r.Limit)}}
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil, backend.ErrClosed
	}
	n.cursors[cur] = struct{}{}
	n.mu.Unlock()
	if snap == nil && n.via.Load() == nil {
		return cur, nil // opened at the first move, once there is a leader
	}
	cur.mu.Lock()
	defer cur.mu.Unlock()
	if cur.released != nil {
		return nil, cur.released // Close released it meanwhile
	}
	if err := cur.open(ctx); err != nil && !errors.Is(err, client.ErrConnLost) {
		cur.releaseLocked(err)
		return nil, err
	}
	return cur, nil
}

func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte{}, b...)
}

// open finds a source for the cursor, waiting for a leader if needed;
// cur.mu is held.
func (cur *cursor) open(ctx context.Context) error {
	if cur.snap != nil {
		src, err := cur.snap.source(ctx, cur.rng)
		if err != nil {
			return err
		}
		cur.src = src
		return nil
	}
	r, err := cur.n.routeNow(ctx)
	if err != nil {
		return err
	}
	if r.lead != nil {
		cur.src = localSource{r.lead.eng.NewCursor(cur.rng)}
		return nil
	}
	st, err := r.conn.NewStream(ctx, 0, cur.rng)
	if err != nil {
		return err
	}
	cur.src = remoteSource{st}
	return nil
}

// Seek positions the cursor as mode says.
func (cur *cursor) Seek(ctx context.Context, mode backend.SeekMode, key []byte) ([]byte, []byte, bool, error) {
	if err := checkSize(key, nil, nil); err != nil {
		return nil, nil, false, err
	}
	cur.mu.Lock()
	defer cur.mu.Unlock()
	return cur.move(ctx, false, mode, key)
}

// Next moves one entry in the direction of the last Seek.
func (cur *cursor) Next(ctx context.Context) ([]byte, []byte, bool, error) {
	cur.mu.Lock()
	defer cur.mu.Unlock()
	return cur.move(ctx, true, 0, nil)
}

// move steps in the current direction (step) or seeks, and carries the
// move over to the next leader if this one is lost; cur.mu is held.
func (cur *cursor) move(ctx context.Context, step bool, mode backend.SeekMode, key []byte) (k, v []byte, ok bool, err error) {
	if cur.released != nil {
		return nil, nil, false, cur.released
	}
	backward := mode.Backward()
	if step {
		backward = cur.backward
	}
	for {
		if cur.src == nil {
			err := cur.open(ctx)
			if errors.Is(err, client.ErrConnLost) {
				// Lost the leader before the view was taken: as below.
				if err := cur.n.afterLoss(cur.snap != nil); err != nil {
					return nil, nil, false, err
				}
				continue
			}
			if err != nil {
				return nil, nil, false, err
			}
		}
		if step {
			k, v, ok, err = cur.src.next(ctx)
		} else {
			k, v, ok, err = cur.src.seek(ctx, mode, key)
		}
		if !errors.Is(err, client.ErrConnLost) {
			if err == nil {
				cur.backward = backward
				if ok {
					cur.last = k
				}
			}
			return k, v, ok, err
		}
		cur.src.release()
		cur.src = nil
		if err := cur.n.afterLoss(cur.snap != nil); err != nil {
			return nil, nil, false, err
		}
		if step {
			// Continue strictly after (or before) the last key returned;
			// entries received but not returned are gone with the stream.
			// cur.last stays valid: it came from the lost stream's batch,
			// which nothing reuses.
			step = false
			mode, key = backend.SeekAfter, cur.last
			if backward {
				mode = backend.SeekBefore
			}
		}
	}
}

// Release frees the cursor, here and on the leader.
func (cur *cursor) Release() { cur.release(backend.ErrClosed) }

// release frees the cursor; later moves fail with why.
func (cur *cursor) release(why error) {
	cur.mu.Lock()
	cur.releaseLocked(why)
	cur.mu.Unlock()
}

func (cur *cursor) releaseLocked(why error) {
	if cur.released == nil {
		cur.released = why
		if cur.src != nil {
			cur.src.release()
			cur.src = nil
		}
	}
	cur.n.mu.Lock()
	delete(cur.n.cursors, cur)
	cur.n.mu.Unlock()
}

// localSource reads this handle's engine.
type localSource struct{ cur *engine.Cursor }

func (s localSource) seek(_ context.Context, mode backend.SeekMode, key []byte) ([]byte, []byte, bool, error) {
	return s.result(s.cur.Seek(mode, key))
}

func (s localSource) next(context.Context) ([]byte, []byte, bool, error) {
	return s.result(s.cur.Step())
}

func (s localSource) result(ok bool) ([]byte, []byte, bool, error) {
	if !ok {
		return nil, nil, false, s.cur.Err()
	}
	return s.cur.Key(), s.cur.Value(), true, nil
}

func (s localSource) release() { s.cur.Release() }

// remoteSource streams from the leader.
type remoteSource struct{ st *client.Stream }

func (s remoteSource) seek(ctx context.Context, mode backend.SeekMode, key []byte) ([]byte, []byte, bool, error) {
	return s.st.Seek(ctx, mode, key)
}

func (s remoteSource) next(ctx context.Context) ([]byte, []byte, bool, error) {
	return s.st.Next(ctx)
}

func (s remoteSource) release() { s.st.Close() }
