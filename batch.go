package party

import "github.com/levelparty/party/internal/wire"

// Batch is a sequence of puts and deletes that Write applies atomically.
// It copies keys and values as they are added. The zero value is an empty
// batch. A Batch is not safe for concurrent use.
type Batch struct {
	records []byte // in wire format, ready to send
	n       int
}

// Put adds a put of key to value.
func (b *Batch) Put(key, value []byte) {
	b.records = wire.AppendPutRecord(b.records, key, value)
	b.n++
}

// Delete adds a delete of key.
func (b *Batch) Delete(key []byte) {
	b.records = wire.AppendDeleteRecord(b.records, key)
	b.n++
}

// Len returns the number of puts and deletes in the batch.
func (b *Batch) Len() int { return b.n }

// Reset empties the batch, keeping its memory for reuse.
func (b *Batch) Reset() {
	b.records = b.records[:0]
	b.n = 0
}
