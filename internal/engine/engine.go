// Package engine runs party's requests on goleveldb. The leader uses it for
// its own operations and for those its followers send, so both paths share
// one meaning for every request.
package engine

import (
	"bytes"
	"errors"

	"github.com/levelparty/party/internal/wire"
	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/iterator"
	"github.com/syndtr/goleveldb/leveldb/opt"
	"github.com/syndtr/goleveldb/leveldb/util"
)

// Reader is what reads run against: the database or one of its snapshots.
type Reader interface {
	Get(key []byte, ro *opt.ReadOptions) ([]byte, error)
	Has(key []byte, ro *opt.ReadOptions) (bool, error)
	NewIterator(r *util.Range, ro *opt.ReadOptions) iterator.Iterator
}

var (
	_ Reader = (*leveldb.DB)(nil)
	_ Reader = (*leveldb.Snapshot)(nil)
)

// Code maps an engine error to a response code and, for unexpected errors,
// the message to carry.
func Code(err error) (wire.Code, []byte) {
	switch {
	case err == nil:
		return wire.OK, nil
	case errors.Is(err, leveldb.ErrNotFound):
		return wire.NotFound, nil
	case errors.Is(err, leveldb.ErrClosed):
		return wire.Closing, nil
	default:
		return wire.EngineError, []byte(err.Error())
	}
}

var (
	yes = []byte{1}
	no  = []byte{0}
)

// Get answers a TGet or THas request from r: the value, or for THas a
// one-byte boolean.
func Get(r Reader, req *wire.Request) (wire.Code, []byte) {
	if req.Type == wire.THas {
		ok, err := r.Has(req.Key, nil)
		if err != nil {
			return Code(err)
		}
		if ok {
			return wire.OK, yes
		}
		return wire.OK, no
	}
	v, err := r.Get(req.Key, nil)
	if err != nil {
		return Code(err)
	}
	return wire.OK, v
}

// AddWrite adds a TPut, TDelete or TBatch request to b. The request must
// have been decoded by wire.DecodeRequest, which validated its records.
func AddWrite(b *leveldb.Batch, req *wire.Request) {
	switch req.Type {
	case wire.TPut:
		b.Put(req.Key, req.Value)
	case wire.TDelete:
		b.Delete(req.Key)
	case wire.TBatch:
		wire.ForEachRecord(req.Records, func(put bool, k, v []byte) {
			if put {
				b.Put(k, v)
			} else {
				b.Delete(k)
			}
		})
	}
}

// deleteRangeChunk bounds the keys deleted by one write of DeleteRange.
const deleteRangeChunk = 1024

// DeleteRange deletes every key in r, in writes of at most
// deleteRangeChunk keys. It is not atomic: a failure part way leaves the
// keys before it deleted.
func DeleteRange(db *leveldb.DB, r wire.Range, wo *opt.WriteOptions) error {
	it := db.NewIterator(UtilRange(r), nil)
	defer it.Release()
	var b leveldb.Batch
	for it.Next() {
		b.Delete(it.Key())
		if b.Len() >= deleteRangeChunk {
			if err := db.Write(&b, wo); err != nil {
				return err
			}
			b.Reset()
		}
	}
	if err := it.Error(); err != nil {
		return err
	}
	if b.Len() > 0 {
		return db.Write(&b, wo)
	}
	return nil
}

// UtilRange converts a wire range to goleveldb's, nil when unbounded.
func UtilRange(r wire.Range) *util.Range {
	if r.Start == nil && r.Limit == nil {
		return nil
	}
	return &util.Range{Start: r.Start, Limit: r.Limit}
}

// Cursor positions a goleveldb iterator by party's seek modes and steps it
// in the mode's direction.
type Cursor struct {
	it       iterator.Iterator
	backward bool
}

// NewCursor returns a cursor over r's keys in rng. The iterator reads a
// consistent view taken now.
func NewCursor(r Reader, rng wire.Range) *Cursor {
	return &Cursor{it: r.NewIterator(UtilRange(rng), nil)}
}

// Seek positions the cursor as mode says and reports whether it is at an
// entry.
func (c *Cursor) Seek(mode wire.SeekMode, key []byte) bool {
	it := c.it
	c.backward = mode.Backward()
	switch mode {
	case wire.SeekFirst:
		return it.First()
	case wire.SeekLast:
		return it.Last()
	case wire.SeekGE:
		return it.Seek(key)
	case wire.SeekAfter:
		if it.Seek(key) && bytes.Equal(it.Key(), key) {
			return it.Next()
		}
		return it.Valid()
	case wire.SeekBefore:
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
func (c *Cursor) Step() bool {
	if c.backward {
		return c.it.Prev()
	}
	return c.it.Next()
}

// Key returns the current key, valid until the next move.
func (c *Cursor) Key() []byte { return c.it.Key() }

// Value returns the current value, valid until the next move.
func (c *Cursor) Value() []byte { return c.it.Value() }

// Error returns the iterator's error, if any.
func (c *Cursor) Error() error { return c.it.Error() }

// Release frees the iterator.
func (c *Cursor) Release() { c.it.Release() }
