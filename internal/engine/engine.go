// Package engine is the one executor of party's operations on goleveldb.
// The leader runs its own calls on it directly, and the host runs its
// followers' requests on it, so an operation means the same thing
// whichever way it came. It speaks Go values and the errors of package
// backend; wire codes exist only at the socket's edge.
package engine

import (
	"bytes"
	"context"
	"errors"
	"sync/atomic"

	"github.com/levelparty/party/backend"
	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/iterator"
	"github.com/syndtr/goleveldb/leveldb/opt"
	"github.com/syndtr/goleveldb/leveldb/util"
)

// Engine is an open goleveldb database.
type Engine struct {
	db      *leveldb.DB
	hub     hub           // the watches
	gate    gate          // plain writes against the transaction lease
	commits atomic.Uint64 // transactions committed, to trim records now and then
}

// Open opens or creates the database in dir. Its error is goleveldb's,
// unwrapped, so that the caller can tell a held lock from other failures.
func Open(dir string, o *opt.Options) (*Engine, error) {
	db, err := leveldb.OpenFile(dir, o)
	if err != nil {
		return nil, err
	}
	e := &Engine{db: db}
	e.gate.init()
	return e, nil
}

// Close ends the lease held, if any, and closes the database.
func (e *Engine) Close() error {
	e.closeGate()
	e.closeWatches()
	return e.db.Close()
}

// Reader is what reads run on: the engine or one of its snapshots.
type Reader interface {
	Get(key []byte) ([]byte, error)
	Has(key []byte) (bool, error)
	NewCursor(r backend.Range) *Cursor
}

var (
	_ Reader = (*Engine)(nil)
	_ Reader = (*Snapshot)(nil)
)

// Get returns the value of key, which belongs to the caller, or
// backend.ErrNotFound. Like every read, it never shows a hidden key.
func (e *Engine) Get(key []byte) ([]byte, error) { return get(e.db, key) }

// Has reports whether key is present.
func (e *Engine) Has(key []byte) (bool, error) { return has(e.db, key) }

// NewCursor returns a cursor over r with a view of the data taken now.
func (e *Engine) NewCursor(r backend.Range) *Cursor { return newCursor(e.db, r) }

// Put sets key to value; sync makes it fsync first. Like every write, it
// waits while another participant holds the transaction lease, or until
// ctx ends.
func (e *Engine) Put(ctx context.Context, key, value []byte, sync bool) error {
	if err := e.enter(ctx); err != nil {
		return err
	}
	defer e.Leave()
	if e.hub.n.Load() > 0 {
		var b leveldb.Batch
		b.Put(key, value)
		return e.commit(&b, writeOptions(sync), nil)
	}
	return wrap(e.db.Put(key, value, writeOptions(sync)))
}

// Delete removes key.
func (e *Engine) Delete(ctx context.Context, key []byte, sync bool) error {
	if err := e.enter(ctx); err != nil {
		return err
	}
	defer e.Leave()
	if e.hub.n.Load() > 0 {
		var b leveldb.Batch
		b.Delete(key)
		return e.commit(&b, writeOptions(sync), nil)
	}
	return wrap(e.db.Delete(key, writeOptions(sync)))
}

// Write applies b atomically.
func (e *Engine) Write(ctx context.Context, b *backend.Batch, sync bool) error {
	var g Group
	g.AddBatch(b.Records())
	if err := e.enter(ctx); err != nil {
		return err
	}
	defer e.Leave()
	return e.Apply(&g, sync)
}

// deleteRangeChunk bounds the keys deleted by one write of DeleteRange.
const deleteRangeChunk = 1024

// DeleteRange deletes every key in r, in writes of at most
// deleteRangeChunk keys, and stops between two writes when ctx ends. It is
// not atomic: a failure part way leaves the keys before it deleted. Each
// write waits while another participant holds the transaction lease.
func (e *Engine) DeleteRange(ctx context.Context, r backend.Range, sync bool) error {
	c := e.NewCursor(r)
	defer c.Release()
	wo := writeOptions(sync)
	var b leveldb.Batch
	write := func() error {
		if err := e.enter(ctx); err != nil {
			return err
		}
		defer e.Leave()
		return e.commit(&b, wo, nil)
	}
	for ok := c.Seek(backend.SeekFirst, nil); ok; ok = c.Step() {
		b.Delete(c.Key())
		if b.Len() >= deleteRangeChunk {
			if err := write(); err != nil {
				return err
			}
			b.Reset()
			if err := ctx.Err(); err != nil {
				return err
			}
		}
	}
	if err := c.Err(); err != nil {
		return err
	}
	if b.Len() > 0 {
		return write()
	}
	return nil
}

// Group gathers writes to apply as one atomic goleveldb batch: the host
// gathers the writes that arrive together from a follower.
type Group struct {
	b    leveldb.Batch
	ends []int // the record count at the end of each write, for watches
}

// AddPut adds a put.
func (g *Group) AddPut(key, value []byte) {
	g.b.Put(key, value)
	g.ends = append(g.ends, g.b.Len())
}

// AddDelete adds a delete.
func (g *Group) AddDelete(key []byte) {
	g.b.Delete(key)
	g.ends = append(g.ends, g.b.Len())
}

// AddBatch adds encoded batch records, which must be valid (see
// backend.ForEachRecord).
func (g *Group) AddBatch(records []byte) {
	backend.ForEachRecord(records, func(put bool, k, v []byte) {
		if put {
			g.b.Put(k, v)
		} else {
			g.b.Delete(k)
		}
	})
	g.ends = append(g.ends, g.b.Len())
}

// Size returns the bytes gathered so far.
func (g *Group) Size() int { return len(g.b.Dump()) }

// Apply writes what g gathered as one atomic batch and empties g. The
// caller has been let in by Enter or TryEnter.
func (e *Engine) Apply(g *Group, sync bool) error {
	err := e.commit(&g.b, writeOptions(sync), g.ends)
	g.b.Reset()
	g.ends = g.ends[:0]
	return err
}

// CompactRange compacts the keys in r (every key when both bounds are
// nil).
func (e *Engine) CompactRange(r backend.Range) error {
	r = ordered(r)
	return wrap(e.db.CompactRange(util.Range{Start: r.Start, Limit: r.Limit}))
}

// SizeOf returns the approximate bytes on disk of each range.
func (e *Engine) SizeOf(ranges []backend.Range) ([]int64, error) {
	// goleveldb reads a nil Limit as the empty key; an unbounded range
	// ends just past the last key.
	var end []byte
	rs := make([]util.Range, len(ranges))
	for i, r := range ranges {
		r = ordered(r)
		rs[i] = util.Range{Start: r.Start, Limit: r.Limit}
		if r.Limit == nil {
			if end == nil {
				it := e.db.NewIterator(nil, nil)
				if it.Last() {
					end = append(append([]byte{}, it.Key()...), 0)
				} else {
					end = []byte{}
				}
				it.Release()
			}
			rs[i].Limit = end
		}
	}
	sizes, err := e.db.SizeOf(rs)
	if err != nil {
		return nil, wrap(err)
	}
	return []int64(sizes), nil
}

// Property returns goleveldb's property name.
func (e *Engine) Property(name string) (string, error) {
	v, err := e.db.GetProperty(name)
	return v, wrap(err)
}

// Snapshot is a frozen view of the engine.
type Snapshot struct {
	s *leveldb.Snapshot
}

// Snapshot takes a snapshot of the data as it is now.
func (e *Engine) Snapshot() (*Snapshot, error) {
	s, err := e.db.GetSnapshot()
	if err != nil {
		return nil, wrap(err)
	}
	return &Snapshot{s: s}, nil
}

// Get returns the value of key in the snapshot, or backend.ErrNotFound.
func (s *Snapshot) Get(key []byte) ([]byte, error) { return get(s.s, key) }

// Has reports whether key is present in the snapshot.
func (s *Snapshot) Has(key []byte) (bool, error) { return has(s.s, key) }

// NewCursor returns a cursor over r in the snapshot.
func (s *Snapshot) NewCursor(r backend.Range) *Cursor { return newCursor(s.s, r) }

// Release frees the snapshot.
func (s *Snapshot) Release() { s.s.Release() }

// leveldbReader is what goleveldb's database and snapshots share.
type leveldbReader interface {
	Get(key []byte, ro *opt.ReadOptions) ([]byte, error)
	Has(key []byte, ro *opt.ReadOptions) (bool, error)
	NewIterator(r *util.Range, ro *opt.ReadOptions) iterator.Iterator
}

func get(r leveldbReader, key []byte) ([]byte, error) {
	if Hidden(key) {
		return nil, backend.ErrNotFound
	}
	v, err := r.Get(key, nil)
	if err != nil {
		return nil, wrap(err)
	}
	return v, nil
}

func has(r leveldbReader, key []byte) (bool, error) {
	if Hidden(key) {
		return false, nil
	}
	ok, err := r.Has(key, nil)
	return ok, wrap(err)
}

var syncWrite = &opt.WriteOptions{Sync: true}

func writeOptions(sync bool) *opt.WriteOptions {
	if sync {
		return syncWrite
	}
	return nil
}

// wrap turns goleveldb's errors into backend's: a missing key and a closed
// database are the sentinels callers test for; anything else is the
// engine's failure, kept whole inside a LeaderError.
func wrap(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, leveldb.ErrNotFound):
		return backend.ErrNotFound
	case errors.Is(err, leveldb.ErrClosed), errors.Is(err, leveldb.ErrSnapshotReleased), errors.Is(err, leveldb.ErrIterReleased):
		return backend.ErrClosed
	default:
		return &backend.LeaderError{Msg: err.Error(), Err: err}
	}
}

// utilRange converts a range to goleveldb's, nil when unbounded.
func utilRange(r backend.Range) *util.Range {
	if r.Start == nil && r.Limit == nil {
		return nil
	}
	r = ordered(r)
	return &util.Range{Start: r.Start, Limit: r.Limit}
}

// ordered returns r, or, when its Start is after its Limit, the empty
// range at Start: goleveldb's iterators panic on a range whose Start is
// after its Limit when a table below level 0 lies between them
// (tFiles.newIndexIterator), and any participant may send one.
func ordered(r backend.Range) backend.Range {
	if r.Start != nil && r.Limit != nil && bytes.Compare(r.Start, r.Limit) > 0 {
		r.Limit = r.Start
	}
	return r
}
