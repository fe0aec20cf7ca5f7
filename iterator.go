package party

import (
	"bytes"
	"context"
	"sync"

	"github.com/levelparty/party/backend"
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
	ctx context.Context
	cur backend.Cursor

	mu    sync.Mutex // guards the fields below against a concurrent Release
	pos   position
	key   []byte
	value []byte
	err   error
}

// NewIterator returns an iterator over r (every key if r is nil). It
// never fails: a problem shows in Error after the first move. ctx bounds
// every move of the iterator.
func (db *DB) NewIterator(ctx context.Context, r *Range) *Iterator {
	return newIterator(ctx, db.b, r)
}

// newIterator opens a cursor of rd over r; like goleveldb, it takes its
// view of the data now.
func newIterator(ctx context.Context, rd backend.Reader, r *Range) *Iterator {
	it := &Iterator{ctx: ctx}
	if err := ctx.Err(); err != nil {
		it.err = err
		return it
	}
	it.cur, it.err = rd.NewCursor(ctx, r.backend())
	return it
}

// First moves to the first entry of the range.
func (it *Iterator) First() bool { return it.seekMove(backend.SeekFirst, nil) }

// Last moves to the last entry of the range.
func (it *Iterator) Last() bool { return it.seekMove(backend.SeekLast, nil) }

// Seek moves to the first entry whose key is >= key.
func (it *Iterator) Seek(key []byte) bool { return it.seekMove(backend.SeekGE, key) }

func (it *Iterator) seekMove(mode backend.SeekMode, key []byte) bool {
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
		return it.move(false, backend.SeekFirst, nil)
	case posBackward:
		// A copy: the key may alias the buffer the seek overwrites.
		return it.move(false, backend.SeekAfter, bytes.Clone(it.key))
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
		return it.move(false, backend.SeekLast, nil)
	case posForward:
		return it.move(false, backend.SeekBefore, bytes.Clone(it.key))
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

// move seeks, or steps in the current direction (step); it.mu is held.
func (it *Iterator) move(step bool, mode backend.SeekMode, key []byte) bool {
	backward := mode.Backward()
	var k, v []byte
	var ok bool
	var err error
	if step {
		backward = it.pos == posBackward
		k, v, ok, err = it.cur.Next(it.ctx)
	} else {
		k, v, ok, err = it.cur.Seek(it.ctx, mode, key)
	}
	switch {
	case err != nil:
		it.err = err
		it.key, it.value = nil, nil
		return false
	case !ok:
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
	defer it.mu.Unlock()
	if it.pos != posReleased {
		it.pos = posReleased
		it.key, it.value = nil, nil
		if it.cur != nil {
			it.cur.Release()
		}
	}
}
