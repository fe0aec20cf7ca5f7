package engine

import (
	"bytes"

	"github.com/levelparty/party/backend"
	"github.com/syndtr/goleveldb/leveldb/iterator"
)

// Cursor positions a goleveldb iterator by party's seek modes and steps it
// in the mode's direction. Resuming after a key is exact: SeekAfter and
// SeekBefore compare keys, they never compute neighbouring byte strings.
// It steps over hidden keys (see Hidden).
type Cursor struct {
	it       iterator.Iterator
	backward bool
}

func newCursor(r leveldbReader, rng backend.Range) *Cursor {
	return &Cursor{it: r.NewIterator(utilRange(rng), nil)}
}

// Seek positions the cursor as mode says and reports whether it is at an
// entry.
func (c *Cursor) Seek(mode backend.SeekMode, key []byte) bool {
	return c.skipHidden(c.seek(mode, key))
}

func (c *Cursor) seek(mode backend.SeekMode, key []byte) bool {
	it := c.it
	c.backward = mode.Backward()
	switch mode {
	case backend.SeekFirst:
		return it.First()
	case backend.SeekLast:
		return it.Last()
	case backend.SeekGE:
		return it.Seek(key)
	case backend.SeekAfter:
		if it.Seek(key) && bytes.Equal(it.Key(), key) {
			return it.Next()
		}
		return it.Valid()
	case backend.SeekBefore:
		if it.Seek(key) {
			return it.Prev()
		}
		if it.Error() != nil {
			return false
		}
		return it.Last()
	}
	return false
}

// Step moves one entry in the direction of the last Seek.
func (c *Cursor) Step() bool { return c.skipHidden(c.step()) }

func (c *Cursor) step() bool {
	if c.backward {
		return c.it.Prev()
	}
	return c.it.Next()
}

// skipHidden steps past hidden keys; ok says whether the cursor is at an
// entry.
func (c *Cursor) skipHidden(ok bool) bool {
	for ok && Hidden(c.it.Key()) {
		ok = c.step()
	}
	return ok
}

// Key returns the current key, valid until the next move.
func (c *Cursor) Key() []byte { return c.it.Key() }

// Value returns the current value, valid until the next move.
func (c *Cursor) Value() []byte { return c.it.Value() }

// Err returns why the cursor stopped early, if it did.
func (c *Cursor) Err() error { return wrap(c.it.Error()) }

// Release frees the iterator.
func (c *Cursor) Release() { c.it.Release() }
