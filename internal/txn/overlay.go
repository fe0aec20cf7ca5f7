// Package txn holds what a transaction keeps on the participant that opens
// it: its own writes, which its reads must see before they are committed,
// and the cursor that merges them with the database's entries.
//
// The database side needs no copy: while the transaction lease is held no
// other write applies, so reading the database as it is now is reading the
// state the transaction started from.
package txn

import (
	"bytes"
	"sort"

	"github.com/levelparty/party/backend"
	"github.com/syndtr/goleveldb/leveldb/comparer"
	"github.com/syndtr/goleveldb/leveldb/memdb"
	"github.com/syndtr/goleveldb/leveldb/util"
)

// Overlay is a transaction's own writes, by key: the last put or delete of
// each key. It is not safe for concurrent use.
type Overlay struct {
	m *memdb.DB
}

// Values in the memdb start with one of these bytes.
const (
	tagDelete = 0
	tagPut    = 1
)

// NewOverlay returns an empty overlay.
func NewOverlay() *Overlay { return &Overlay{m: memdb.New(comparer.DefaultComparer, 0)} }

// Put records a put; it copies key and value.
func (o *Overlay) Put(key, value []byte) {
	v := make([]byte, 1+len(value))
	v[0] = tagPut
	copy(v[1:], value)
	o.m.Put(key, v)
}

// Delete records a delete; it copies key.
func (o *Overlay) Delete(key []byte) { o.m.Put(key, []byte{tagDelete}) }

// Get returns what the overlay says of key: found false when it has no
// write of key, deleted true when its last write was a delete. The value
// is the caller's.
func (o *Overlay) Get(key []byte) (value []byte, deleted, found bool) {
	v, err := o.m.Get(key)
	if err != nil {
		return nil, false, false
	}
	if v[0] == tagDelete {
		return nil, true, true
	}
	return bytes.Clone(v[1:]), false, true
}

// entry is one write of a view.
type entry struct {
	key, value []byte
	deleted    bool
}

// view returns the overlay's writes in r, in key order, as they are now:
// later writes do not change it, as goleveldb's transaction iterators see
// the transaction as it was when they were opened.
func (o *Overlay) view(r backend.Range) []entry {
	var rng *util.Range
	if r.Start != nil || r.Limit != nil {
		rng = &util.Range{Start: r.Start, Limit: r.Limit}
	}
	it := o.m.NewIterator(rng)
	defer it.Release()
	var es []entry
	for it.Next() {
		v := it.Value()
		es = append(es, entry{key: bytes.Clone(it.Key()), value: bytes.Clone(v[1:]), deleted: v[0] == tagDelete})
	}
	return es
}

// seekView returns the index in es where mode and key position a cursor:
// -1 or len(es) when there is no entry there.
func seekView(es []entry, mode backend.SeekMode, key []byte) int {
	ge := func() int {
		return sort.Search(len(es), func(i int) bool { return bytes.Compare(es[i].key, key) >= 0 })
	}
	switch mode {
	case backend.SeekFirst:
		return 0
	case backend.SeekLast:
		return len(es) - 1
	case backend.SeekGE:
		return ge()
	case backend.SeekAfter:
		return sort.Search(len(es), func(i int) bool { return bytes.Compare(es[i].key, key) > 0 })
	case backend.SeekBefore:
		return ge() - 1
	}
	return len(es)
}
