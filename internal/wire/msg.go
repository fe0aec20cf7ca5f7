package wire

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/levelparty/party/backend"
)

// Flags of write requests.
const (
	FlagSync uint8 = 1 << iota // fsync before acknowledging
)

// Request is any follower-to-leader message, decoded. Which fields are
// meaningful depends on Type, as listed with the type constants.
type Request struct {
	Type    Type
	ID      uint32 // request id, or iterator id for iterator messages
	Flags   uint8
	Snap    uint32
	Key     []byte
	Value   []byte
	Records []byte // TBatch: records as validated by backend.ForEachRecord
	Range   backend.Range
	Gen     uint32
	Mode    backend.SeekMode
	Credit  uint32
	Iter    uint32 // TIterOpen: the iterator id the follower chose
	Holder  [16]byte
	Lease   uint32          // TTxCommit, TTxDiscard: the lease id the leader gave
	Seq     uint64          // TTxCommit, TTxResolve: the holder's commit number
	Done    []uint64        // TTxCommit: numbers of the holder's commits whose records may go
	Timeout time.Duration   // TTxBegin: how long the lease may stay open
	Watch   uint32          // TWatchOpen: the watch id the follower chose
	Ranges  []backend.Range // TSizeOf
}

// AppendRequest appends r as a whole frame to dst.
func AppendRequest(dst []byte, r *Request) []byte {
	start := len(dst)
	dst = AppendHeader(dst, r.Type, r.ID)
	switch r.Type {
	case TGet, THas:
		dst = binary.BigEndian.AppendUint32(dst, r.Snap)
		dst = appendBytes(dst, r.Key)
	case TPut:
		dst = append(dst, r.Flags)
		dst = appendBytes(dst, r.Key)
		dst = appendBytes(dst, r.Value)
	case TDelete:
		dst = append(dst, r.Flags)
		dst = appendBytes(dst, r.Key)
	case TBatch:
		dst = append(dst, r.Flags)
		dst = append(dst, r.Records...)
	case TDeleteRange:
		dst = append(dst, r.Flags)
		dst = appendRange(dst, r.Range)
	case TSnapshotRelease:
		dst = binary.BigEndian.AppendUint32(dst, r.Snap)
	case TIterOpen:
		dst = binary.BigEndian.AppendUint32(dst, r.Iter)
		dst = binary.BigEndian.AppendUint32(dst, r.Snap)
		dst = appendRange(dst, r.Range)
	case TIterSeek:
		dst = binary.BigEndian.AppendUint32(dst, r.Gen)
		dst = append(dst, byte(r.Mode))
		dst = binary.BigEndian.AppendUint32(dst, r.Credit)
		dst = appendBytes(dst, r.Key)
	case TIterCredit:
		dst = binary.BigEndian.AppendUint32(dst, r.Gen)
		dst = binary.BigEndian.AppendUint32(dst, r.Credit)
	case TTxBegin:
		dst = append(dst, r.Holder[:]...)
		ms := (r.Timeout + time.Millisecond - 1) / time.Millisecond // rounded up: never 0
		dst = binary.BigEndian.AppendUint32(dst, uint32(min(ms, 1<<32-1)))
	case TTxCommit:
		dst = binary.BigEndian.AppendUint32(dst, r.Lease)
		dst = append(dst, r.Flags)
		dst = binary.BigEndian.AppendUint64(dst, r.Seq)
		dst = binary.BigEndian.AppendUint16(dst, uint16(len(r.Done)))
		for _, d := range r.Done {
			dst = binary.BigEndian.AppendUint64(dst, d)
		}
		dst = append(dst, r.Records...)
	case TTxDiscard:
		dst = binary.BigEndian.AppendUint32(dst, r.Lease)
	case TTxResolve:
		dst = append(dst, r.Holder[:]...)
		dst = binary.BigEndian.AppendUint64(dst, r.Seq)
	case TWatchOpen:
		dst = binary.BigEndian.AppendUint32(dst, r.Watch)
		dst = appendRange(dst, r.Range)
	case TCompact:
		dst = appendRange(dst, r.Range)
	case TSizeOf:
		dst = binary.BigEndian.AppendUint16(dst, uint16(len(r.Ranges)))
		for _, rg := range r.Ranges {
			dst = appendRange(dst, rg)
		}
	case TProperty:
		dst = appendBytes(dst, r.Key)
	}
	FinishFrame(dst, start)
	return dst
}

// MaxSizeOfRanges bounds the ranges of one size-of request.
const MaxSizeOfRanges = 1024

// MaxTxDone bounds the finished commits one tx-commit names.
const MaxTxDone = 256

// RequestSize returns an upper bound of the frame size of a put, delete or
// batch request, so that callers can refuse what the leader would reject.
func RequestSize(key, value, records []byte) int {
	return HeaderSize + 1 + 2*binary.MaxVarintLen64 + len(key) + len(value) + len(records)
}

// DecodeRequest decodes the body of a request frame into r. Slices in r
// alias body.
func DecodeRequest(t Type, id uint32, body []byte, r *Request) error {
	*r = Request{Type: t, ID: id}
	d := decoder{b: body}
	switch t {
	case TGet, THas:
		r.Snap = d.u32()
		r.Key = d.bytes()
	case TPut:
		r.Flags = d.u8()
		r.Key = d.bytes()
		r.Value = d.bytes()
	case TDelete:
		r.Flags = d.u8()
		r.Key = d.bytes()
	case TBatch:
		r.Flags = d.u8()
		r.Records = d.rest()
		if d.err == nil {
			if err := backend.ForEachRecord(r.Records, func(bool, []byte, []byte) {}); err != nil {
				d.fail("%v", err)
			}
		}
	case TDeleteRange:
		r.Flags = d.u8()
		r.Range = d.rng()
	case TSnapshot, TIterClose, TStatus:
	case TSnapshotRelease:
		r.Snap = d.u32()
	case TIterOpen:
		r.Iter = d.u32()
		r.Snap = d.u32()
		r.Range = d.rng()
	case TIterSeek:
		r.Gen = d.u32()
		r.Mode = backend.SeekMode(d.u8())
		r.Credit = d.u32()
		r.Key = d.bytes()
		if d.err == nil && r.Mode >= backend.SeekModes {
			d.fail("seek mode %d", r.Mode)
		}
	case TIterCredit:
		r.Gen = d.u32()
		r.Credit = d.u32()
	case TTxBegin:
		r.Holder = d.holder()
		r.Timeout = time.Duration(d.u32()) * time.Millisecond
	case TTxCommit:
		r.Lease = d.u32()
		r.Flags = d.u8()
		r.Seq = d.u64()
		n := d.u16()
		if n > MaxTxDone {
			d.fail("%d finished commits, limit %d", n, MaxTxDone)
		}
		for range n {
			r.Done = append(r.Done, d.u64())
		}
		r.Records = d.rest()
		if d.err == nil {
			if err := backend.ForEachRecord(r.Records, func(bool, []byte, []byte) {}); err != nil {
				d.fail("%v", err)
			}
		}
	case TTxDiscard:
		r.Lease = d.u32()
	case TTxResolve:
		r.Holder = d.holder()
		r.Seq = d.u64()
	case TWatchOpen:
		r.Watch = d.u32()
		r.Range = d.rng()
	case TWatchClose:
	case TCompact:
		r.Range = d.rng()
	case TSizeOf:
		n := d.u16()
		if n > MaxSizeOfRanges {
			d.fail("%d ranges, limit %d", n, MaxSizeOfRanges)
		}
		for range n {
			if d.err != nil {
				break
			}
			r.Ranges = append(r.Ranges, d.rng())
		}
	case TProperty:
		r.Key = d.bytes()
	default:
		return fmt.Errorf("%w: %v is not a request", ErrUnknownType, t)
	}
	return d.done(t)
}

// Flags of TWatchEvent.
const (
	WatchGap uint8 = 1 << iota // changes were dropped before this event's, if any
)

// AppendWatchEvent appends a TWatchEvent frame for watch id: flags, then
// the changes as batch records.
func AppendWatchEvent(dst []byte, id uint32, flags uint8, changes []backend.Change) []byte {
	start := len(dst)
	dst = AppendHeader(dst, TWatchEvent, id)
	dst = append(dst, flags)
	for _, c := range changes {
		if c.Deleted {
			dst = append(dst, 0)
			dst = appendBytes(dst, c.Key)
		} else {
			dst = append(dst, 1)
			dst = appendBytes(dst, c.Key)
			dst = appendBytes(dst, c.Value)
		}
	}
	FinishFrame(dst, start)
	return dst
}

// WatchEventSize returns the size of the TWatchEvent frame of changes.
func WatchEventSize(changes []backend.Change) int {
	n := HeaderSize + 1
	for _, c := range changes {
		n += 1 + 2*binary.MaxVarintLen64 + len(c.Key) + len(c.Value)
	}
	return n
}

// DecodeWatchEvent decodes the body of a TWatchEvent frame. The changes'
// keys and values are copies.
func DecodeWatchEvent(body []byte) (flags uint8, changes []backend.Change, err error) {
	if len(body) < 1 {
		return 0, nil, fmt.Errorf("%w: watch-event: short body", ErrMalformed)
	}
	flags = body[0]
	if flags&^WatchGap != 0 {
		return 0, nil, fmt.Errorf("%w: watch-event flags %#x", ErrMalformed, flags)
	}
	err = backend.ForEachRecord(body[1:], func(put bool, k, v []byte) {
		c := backend.Change{Key: append([]byte{}, k...), Deleted: !put}
		if put {
			c.Value = append([]byte{}, v...)
		}
		changes = append(changes, c)
	})
	if err != nil {
		return 0, nil, fmt.Errorf("%w: watch-event: %v", ErrMalformed, err)
	}
	return flags, changes, nil
}

// AppendResponse appends a TResponse frame to dst.
func AppendResponse(dst []byte, id uint32, c Code, body []byte) []byte {
	start := len(dst)
	dst = AppendHeader(dst, TResponse, id)
	dst = append(dst, byte(c))
	dst = append(dst, body...)
	FinishFrame(dst, start)
	return dst
}

// DecodeResponse splits a TResponse body into its code and payload.
func DecodeResponse(body []byte) (Code, []byte, error) {
	if len(body) < 1 || Code(body[0]) >= codeEnd {
		return 0, nil, fmt.Errorf("%w: response code", ErrMalformed)
	}
	return Code(body[0]), body[1:], nil
}

// IterBatchHeaderSize bounds the bytes of a TIterBatch frame before its
// entries.
const IterBatchHeaderSize = HeaderSize + 4 + 1 + 1 + binary.MaxVarintLen64

// AppendIterBatchHeader starts a TIterBatch frame. Append entries with
// AppendEntry, then call FinishFrame with the returned start.
func AppendIterBatchHeader(dst []byte, iter, gen uint32, c Code, eof bool, msg string) ([]byte, int) {
	start := len(dst)
	dst = AppendHeader(dst, TIterBatch, iter)
	dst = binary.BigEndian.AppendUint32(dst, gen)
	dst = append(dst, byte(c))
	var e byte
	if eof {
		e = 1
	}
	dst = append(dst, e)
	dst = appendBytes(dst, []byte(msg))
	return dst, start
}

// AppendEntry appends one key/value entry of a TIterBatch.
func AppendEntry(dst, key, value []byte) []byte {
	return appendBytes(appendBytes(dst, key), value)
}

// EntrySize is the encoded size of an entry.
func EntrySize(key, value []byte) int {
	return uvarintLen(len(key)) + len(key) + uvarintLen(len(value)) + len(value)
}

// IterBatch is a decoded TIterBatch: a run of entries for one generation of
// an iterator, possibly its end or its failure.
type IterBatch struct {
	Gen     uint32
	Code    Code
	EOF     bool
	Msg     string
	Entries [][2][]byte // key, value; alias the frame body
}

// DecodeIterBatch decodes a TIterBatch body, validating every entry.
func DecodeIterBatch(body []byte, b *IterBatch) error {
	d := decoder{b: body}
	b.Gen = d.u32()
	b.Code = Code(d.u8())
	b.EOF = d.u8() != 0
	b.Msg = string(d.bytes())
	b.Entries = b.Entries[:0]
	for d.err == nil && len(d.b) > 0 {
		k := d.bytes()
		v := d.bytes()
		b.Entries = append(b.Entries, [2][]byte{k, v})
	}
	if d.err == nil && b.Code >= codeEnd {
		d.fail("code %d", b.Code)
	}
	return d.done(TIterBatch)
}

func appendBytes(dst, b []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(b)))
	return append(dst, b...)
}

// Range encoding: a presence byte (bit 0 start, bit 1 limit), then each bound
// that is present. Presence matters: a nil limit is unbounded, an empty one
// is not.
func appendRange(dst []byte, r backend.Range) []byte {
	var p byte
	if r.Start != nil {
		p |= 1
	}
	if r.Limit != nil {
		p |= 2
	}
	dst = append(dst, p)
	if r.Start != nil {
		dst = appendBytes(dst, r.Start)
	}
	if r.Limit != nil {
		dst = appendBytes(dst, r.Limit)
	}
	return dst
}

func uvarintLen(n int) int {
	l := 1
	for n >= 0x80 {
		n >>= 7
		l++
	}
	return l
}

// decoder reads fields from a body, remembering the first error.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
	}
	d.b = nil
}

func (d *decoder) u8() uint8 {
	if len(d.b) < 1 {
		d.fail("short body")
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) u32() uint32 {
	if len(d.b) < 4 {
		d.fail("short body")
		return 0
	}
	v := binary.BigEndian.Uint32(d.b)
	d.b = d.b[4:]
	return v
}

func (d *decoder) u16() uint16 {
	if len(d.b) < 2 {
		d.fail("short body")
		return 0
	}
	v := binary.BigEndian.Uint16(d.b)
	d.b = d.b[2:]
	return v
}

func (d *decoder) u64() uint64 {
	if len(d.b) < 8 {
		d.fail("short body")
		return 0
	}
	v := binary.BigEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}

func (d *decoder) holder() (h [16]byte) {
	if len(d.b) < len(h) {
		d.fail("short body")
		return h
	}
	copy(h[:], d.b)
	d.b = d.b[len(h):]
	return h
}

// bytes reads a length-prefixed byte string; the empty string decodes to a
// non-nil empty slice so that it stays distinct from an absent one.
func (d *decoder) bytes() []byte {
	n, k := binary.Uvarint(d.b)
	if k <= 0 || n > uint64(len(d.b)-k) {
		d.fail("bad length")
		return nil
	}
	v := d.b[k : k+int(n) : k+int(n)]
	d.b = d.b[k+int(n):]
	return v
}

func (d *decoder) rest() []byte {
	v := d.b
	d.b = nil
	return v
}

func (d *decoder) rng() backend.Range {
	p := d.u8()
	var r backend.Range
	if p&^3 != 0 {
		d.fail("range flags %#x", p)
	}
	if p&1 != 0 {
		r.Start = d.bytes()
	}
	if p&2 != 0 {
		r.Limit = d.bytes()
	}
	return r
}

func (d *decoder) done(t Type) error {
	if d.err == nil && len(d.b) > 0 {
		d.fail("%d trailing bytes", len(d.b))
	}
	if d.err != nil {
		return fmt.Errorf("%v: %w", t, d.err)
	}
	return nil
}
