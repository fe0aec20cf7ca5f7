package backend

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Batch is a sequence of puts and deletes applied atomically. It copies
// keys and values as they are added, into one buffer of records: a kind
// byte (0 delete, 1 put), the key as a uvarint length and its bytes, and
// for a put the value likewise. The socket carries these records as they
// are, so a batch is encoded once.
type Batch struct {
	records []byte
	n       int
}

// Record kinds.
const (
	recDelete = 0
	recPut    = 1
)

// Put adds a put of key to value.
func (b *Batch) Put(key, value []byte) {
	b.records = appendBytes(appendBytes(append(b.records, recPut), key), value)
	b.n++
}

// Delete adds a delete of key.
func (b *Batch) Delete(key []byte) {
	b.records = appendBytes(append(b.records, recDelete), key)
	b.n++
}

// Len returns the number of records.
func (b *Batch) Len() int { return b.n }

// Size returns the size of the records in bytes.
func (b *Batch) Size() int { return len(b.records) }

// Reset empties the batch, keeping its memory.
func (b *Batch) Reset() {
	b.records = b.records[:0]
	b.n = 0
}

// Records returns the encoded records, valid until the batch changes.
func (b *Batch) Records() []byte { return b.records }

// Clone returns a copy of b that shares no memory with it.
func (b *Batch) Clone() *Batch {
	return &Batch{records: append([]byte(nil), b.records...), n: b.n}
}

// ForEach calls fn for each record in order; key and value alias the
// batch.
func (b *Batch) ForEach(fn func(put bool, key, value []byte)) {
	ForEachRecord(b.records, fn)
}

// ErrMalformedRecords is wrapped by ForEachRecord's error.
var ErrMalformedRecords = errors.New("malformed batch records")

// ForEachRecord validates encoded records, as a Batch holds them, and then
// calls fn for each in order. Nothing is called if they are malformed.
func ForEachRecord(records []byte, fn func(put bool, key, value []byte)) error {
	for pass := 0; pass < 2; pass++ {
		rest := records
		for len(rest) > 0 {
			kind := rest[0]
			if kind != recPut && kind != recDelete {
				return fmt.Errorf("%w: record kind %d", ErrMalformedRecords, kind)
			}
			k, r, ok := cutBytes(rest[1:])
			var v []byte
			if ok && kind == recPut {
				v, r, ok = cutBytes(r)
			}
			if !ok {
				return fmt.Errorf("%w: bad length", ErrMalformedRecords)
			}
			if pass == 1 {
				fn(kind == recPut, k, v)
			}
			rest = r
		}
	}
	return nil
}

// CountRecords returns the number of valid records, or an error.
func CountRecords(records []byte) (int, error) {
	n := 0
	err := ForEachRecord(records, func(bool, []byte, []byte) { n++ })
	return n, err
}

func appendBytes(dst, b []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(b)))
	return append(dst, b...)
}

// cutBytes splits a length-prefixed string off b; the empty string is a
// non-nil empty slice.
func cutBytes(b []byte) (v, rest []byte, ok bool) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) {
		return nil, nil, false
	}
	end := k + int(n)
	return b[k:end:end], b[end:], true
}

// hiddenPrefix starts the keys party keeps for itself: the commit records
// of transactions. They sort after nearly every key (0xff 0xff first).
const hiddenPrefix = "\xff\xffparty\x00tx\x00"

// Hidden reports whether key lies under HiddenPrefix: party's reads never
// show such keys, and its writes refuse them.
func Hidden(key []byte) bool {
	return len(key) >= len(hiddenPrefix) && key[0] == 0xff && string(key[:len(hiddenPrefix)]) == hiddenPrefix
}

// HiddenPrefix returns the prefix of the keys party keeps for itself.
func HiddenPrefix() []byte { return []byte(hiddenPrefix) }
