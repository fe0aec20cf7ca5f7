package party

import (
	"context"
	"errors"
	"sync"

	"github.com/levelparty/party/internal/client"
	"github.com/levelparty/party/internal/engine"
	"github.com/levelparty/party/internal/wire"
)

// position is where an iterator stands, as in goleveldb.
type position int

const (
	posReleased position = iota - 1
	posStart             // before the first entry (start of iteration)
	posEnd               // after the last entry
	posForward           // at an entry, reached moving forward
	posBackward          // at an entry, reached moving backward
)

// Iterator is a cursor over a range of keys, with the semantics of
// goleveldb's iterator: First, Last, Seek, Next and Prev return whether the
// iterator is at an entry; Key and Value return it, valid until the next
// move; Error says why iteration stopped early; Release is required.
//
// On a follower, entries arrive in batches from the leader, which sends
// ahead only as far as the iterator's credit allows. If the leader is lost,
// the iterator continues on the next leader from the last key it returned,
// exactly: no key is skipped or returned twice, in either direction. It
// then reads the new leader's current data (the view taken when the
// iterator was created died with the old leader), except an iterator of a
// Snapshot, which fails with ErrSnapshotLost instead.
//
// An Iterator is not safe for concurrent use, but Release and DB.Close may
// be called from any goroutine.
type Iterator struct {
	db   *DB
	ctx  context.Context
	rng  wire.Range
	snap *Snapshot // nil: a view taken when the iterator opens

	mu    sync.Mutex // guards the fields below against a concurrent Release
	src   source     // where entries come from; nil until needed again
	pos   position
	key   []byte
	value []byte
	err   error
}

// source is a place entries come from: this handle's engine, or a stream
// from the leader.
type source interface {
	seek(ctx context.Context, mode wire.SeekMode, key []byte) (k, v []byte, ok bool, err error)
	next(ctx context.Context) (k, v []byte, ok bool, err error)
	release()
}

// NewIterator returns an iterator over r (every key if r is nil). It
// never fails: a problem shows in Error after the first move. ctx bounds
// every move of the iterator.
func (db *DB) NewIterator(ctx context.Context, r *Range) *Iterator {
	return db.newIterator(ctx, r, nil)
}

func (db *DB) newIterator(ctx context.Context, r *Range, snap *Snapshot) *Iterator {
	rg := r.wire()
	it := &Iterator{db: db, ctx: ctx, snap: snap, rng: wire.Range{Start: clone(rg.Start), Limit: clone(rg.Limit)}}
	db.mu.Lock()
	if db.closed {
		db.mu.Unlock()
		it.err = ErrClosed
		return it
	}
	if err := checkSize(rg.Start, rg.Limit, nil); err != nil {
		db.mu.Unlock()
		it.err = err
		return it
	}
	db.iters[it] = struct{}{}
	// Take the view now, as goleveldb does, when there is a leader to ask.
	haveRole := db.role == roleLeader || db.role == roleFollower
	db.mu.Unlock()
	if haveRole || snap != nil {
		// Under it.mu: a concurrent Close may release the iterator now.
		it.mu.Lock()
		if it.pos != posReleased {
			if err := it.open(); err != nil && !isConnLost(err) {
				it.err = err
			}
		}
		it.mu.Unlock()
	}
	return it
}

func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte{}, b...)
}

// open finds a source for the iterator, waiting for a leader if needed.
func (it *Iterator) open() error {
	if s := it.snap; s != nil {
		return s.openSource(it)
	}
	l, c, err := it.db.backend(it.ctx)
	if err != nil {
		return err
	}
	if l != nil {
		it.src = &localSource{cur: engine.NewCursor(l.engine, it.rng)}
		return nil
	}
	st, err := c.NewStream(it.ctx, 0, it.rng)
	if err != nil {
		return err
	}
	it.src = &remoteSource{st: st}
	return nil
}

// First moves to the first entry of the range.
func (it *Iterator) First() bool { return it.seekMove(wire.SeekFirst, nil) }

// Last moves to the last entry of the range.
func (it *Iterator) Last() bool { return it.seekMove(wire.SeekLast, nil) }

// Seek moves to the first entry whose key is >= key.
func (it *Iterator) Seek(key []byte) bool {
	if err := checkSize(key, nil, nil); err != nil {
		it.mu.Lock()
		defer it.mu.Unlock()
		if it.usable() {
			it.fail(err)
		}
		return false
	}
	return it.seekMove(wire.SeekGE, clone(key))
}

func (it *Iterator) seekMove(mode wire.SeekMode, key []byte) bool {
	it.mu.Lock()
	defer it.mu.Unlock()
	if !it.usable() {
		return false
	}
	return it.move(false, mode, key)
}

// Next moves to the next entry. On a new iterator it moves to the first.
func (it *Iterator) Next() bool {
	it.mu.Lock()
	defer it.mu.Unlock()
	if !it.usable() {
		return false
	}
	switch it.pos {
	case posEnd:
		return false
	case posStart:
		return it.move(false, wire.SeekFirst, nil)
	case posBackward:
		return it.move(false, wire.SeekAfter, clone(it.key))
	}
	return it.move(true, 0, nil)
}

// Prev moves to the previous entry. After the end it moves to the last.
func (it *Iterator) Prev() bool {
	it.mu.Lock()
	defer it.mu.Unlock()
	if !it.usable() {
		return false
	}
	switch it.pos {
	case posStart:
		return false
	case posEnd:
		return it.move(false, wire.SeekLast, nil)
	case posForward:
		return it.move(false, wire.SeekBefore, clone(it.key))
	}
	return it.move(true, 0, nil)
}

// usable reports whether a move may proceed; it.mu is held.
func (it *Iterator) usable() bool {
	if it.err != nil {
		return false
	}
	if it.pos == posReleased {
		it.err = ErrIteratorReleased
		return false
	}
	return true
}

// move steps in the current direction (step) or seeks, and carries the
// move over to the next leader if this one is lost; it.mu is held.
func (it *Iterator) move(step bool, mode wire.SeekMode, key []byte) bool {
	backward := mode.Backward()
	if step {
		backward = it.pos == posBackward
	}
	for {
		if it.src == nil {
			if err := it.open(); err != nil && !isConnLost(err) {
				return it.fail(err)
			} else if err != nil {
				// Lost the leader before the view was taken: same as below.
				if it.snap != nil {
					return it.fail(ErrSnapshotLost)
				}
				if it.db.opts.NoRetry {
					return it.fail(ErrLeaderLost)
				}
				continue
			}
		}
		var k, v []byte
		var ok bool
		var err error
		if step {
			k, v, ok, err = it.src.next(it.ctx)
		} else {
			k, v, ok, err = it.src.seek(it.ctx, mode, key)
		}
		if err == nil {
			if !ok {
				it.key, it.value = nil, nil
				it.pos = posEnd
				if backward {
					it.pos = posStart
				}
				return false
			}
			it.key, it.value = k, v
			it.pos = posForward
			if backward {
				it.pos = posBackward
			}
			return true
		}
		if !isConnLost(err) {
			return it.fail(err)
		}
		it.src.release()
		it.src = nil
		switch {
		case it.snap != nil:
			return it.fail(ErrSnapshotLost)
		case it.db.opts.NoRetry:
			return it.fail(ErrLeaderLost)
		}
		if step {
			// Continue strictly after (or before) the last key returned;
			// entries received but not returned are gone with the stream.
			step = false
			mode, key = wire.SeekAfter, it.key
			if backward {
				mode = wire.SeekBefore
			}
		}
	}
}

// fail records err and reports false; it.mu is held.
func (it *Iterator) fail(err error) bool {
	var f *client.Failure
	if errors.As(err, &f) {
		err = errOf(f.Code, []byte(f.Msg))
	}
	it.err = err
	it.key, it.value = nil, nil
	return false
}

// Valid reports whether the iterator is at an entry.
func (it *Iterator) Valid() bool {
	it.mu.Lock()
	defer it.mu.Unlock()
	return it.err == nil && it.pos > posEnd
}

// Key returns the current key, or nil. It is valid until the next move.
func (it *Iterator) Key() []byte {
	it.mu.Lock()
	defer it.mu.Unlock()
	if it.err != nil || it.pos <= posEnd {
		return nil
	}
	return it.key
}

// Value returns the current value, or nil. It is valid until the next
// move.
func (it *Iterator) Value() []byte {
	it.mu.Lock()
	defer it.mu.Unlock()
	if it.err != nil || it.pos <= posEnd {
		return nil
	}
	return it.value
}

// Error returns the error that stopped iteration, if any.
func (it *Iterator) Error() error {
	it.mu.Lock()
	defer it.mu.Unlock()
	return it.err
}

// Release frees the iterator's resources, here and on the leader. It may
// be called more than once.
func (it *Iterator) Release() {
	it.mu.Lock()
	if it.pos != posReleased {
		it.pos = posReleased
		it.key, it.value = nil, nil
		if it.src != nil {
			it.src.release()
			it.src = nil
		}
	}
	it.mu.Unlock()
	it.db.mu.Lock()
	delete(it.db.iters, it)
	it.db.mu.Unlock()
}

// localSource reads this handle's own engine.
type localSource struct{ cur *engine.Cursor }

func (s *localSource) seek(_ context.Context, mode wire.SeekMode, key []byte) ([]byte, []byte, bool, error) {
	return s.result(s.cur.Seek(mode, key))
}

func (s *localSource) next(context.Context) ([]byte, []byte, bool, error) {
	return s.result(s.cur.Step())
}

func (s *localSource) result(ok bool) ([]byte, []byte, bool, error) {
	if !ok {
		if err := s.cur.Error(); err != nil {
			return nil, nil, false, mapEngineErr(err)
		}
		return nil, nil, false, nil
	}
	return s.cur.Key(), s.cur.Value(), true, nil
}

func (s *localSource) release() { s.cur.Release() }

func mapEngineErr(err error) error {
	code, msg := engine.Code(err)
	return errOf(code, msg)
}

// remoteSource streams from the leader.
type remoteSource struct{ st *client.Stream }

func (s *remoteSource) seek(ctx context.Context, mode wire.SeekMode, key []byte) ([]byte, []byte, bool, error) {
	return s.st.Seek(ctx, mode, key)
}

func (s *remoteSource) next(ctx context.Context) ([]byte, []byte, bool, error) {
	return s.st.Next(ctx)
}

func (s *remoteSource) release() { s.st.Close() }
