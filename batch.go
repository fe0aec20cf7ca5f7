package party

import "github.com/levelparty/party/backend"

// Batch is a sequence of puts and deletes that Write applies atomically.
// It copies keys and values as they are added. The zero value is an empty
// batch. A Batch is not safe for concurrent use.
type Batch struct {
	b backend.Batch
}

// Put adds a put of key to value.
func (b *Batch) Put(key, value []byte) { b.b.Put(key, value) }

// Delete adds a delete of key.
func (b *Batch) Delete(key []byte) { b.b.Delete(key) }

// Len returns the number of puts and deletes in the batch.
func (b *Batch) Len() int { return b.b.Len() }

// Reset empties the batch, keeping its memory for reuse.
func (b *Batch) Reset() { b.b.Reset() }
