// Package wire is party's protocol between a follower and its leader: the
// handshake, the frame header, and the encoding of every message. spec.md
// beside this file describes the same format in prose; keep them in step.
package wire

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
)

// Version is the protocol version this package speaks. Peers with another
// version refuse each other in the handshake. Version 2 added the
// busy-poll time to the hello; version 3 has the leader start an
// iterator's first generation (a first seek) as soon as it is open.
const Version = 3

// HeaderSize is the size of a frame header: a big-endian uint32 length of
// everything after it, a one-byte type and a big-endian uint32 id.
const HeaderSize = 9

// MaxFrame is the largest frame, length field included, that either side
// sends or accepts.
const MaxFrame = 64 << 20

// minFrameLen is the smallest valid value of the length field: type and id.
const minFrameLen = HeaderSize - 4

// Type is a frame's message type.
type Type uint8

// Message types. Requests flow from follower to leader, TResponse and
// TIterBatch from leader to follower. The id field of a request frame is a
// request id chosen by the follower, echoed by its TResponse; for the
// iterator frames that are not answered (seek, credit, close, batch) it is
// the iterator id chosen by the follower.
const (
	_                Type = iota
	TGet                  // snap u32, key
	THas                  // snap u32, key
	TPut                  // flags u8, key, value
	TDelete               // flags u8, key
	TBatch                // flags u8, records
	TDeleteRange          // flags u8, range
	TSnapshot             // empty; answered with snapshot id u32
	TSnapshotRelease      // snap u32; not answered
	TIterOpen             // iter u32, snap u32, range; answered once the view is taken
	TIterSeek             // gen u32, mode u8, credit u32, key
	TIterCredit           // gen u32, credit u32; not answered
	TIterClose            // empty; not answered
	TStatus               // empty; answered with a Status
	TResponse             // code u8, body
	TIterBatch            // gen u32, code u8, eof u8, message, entries
	TTxBegin              // holder [16], timeout ms u32; answered with lease id u32 once held
	TTxCommit             // lease u32, flags u8, seq u64, done count u16, done u64..., records; answered
	TTxDiscard            // lease u32; not answered
	TTxResolve            // holder [16], seq u64; answered with 1 if that commit was applied
	TWatchOpen            // watch u32, range; answered once the watch is registered
	TWatchClose           // empty (id: the watch); not answered
	TWatchEvent           // flags u8, records (id: the watch); leader to follower
	TCompact              // range; answered once compacted
	TSizeOf               // count u16, ranges; answered with count × u64
	TProperty             // name string; answered with the value

	typeEnd // first unknown type
)

var typeNames = [...]string{"invalid", "get", "has", "put", "delete", "batch", "delete-range",
	"snapshot", "snapshot-release", "iter-open", "iter-seek", "iter-credit", "iter-close",
	"status", "response", "iter-batch", "tx-begin", "tx-commit", "tx-discard", "tx-resolve",
	"watch-open", "watch-close", "watch-event", "compact", "size-of", "property"}

func (t Type) String() string {
	if t < typeEnd {
		return typeNames[t]
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// Known reports whether t is a message type of this protocol version.
func (t Type) Known() bool { return t > 0 && t < typeEnd }

// Frame errors. A connection that produces one of them is closed.
var (
	ErrFrameTooLarge = errors.New("frame exceeds the size limit")
	ErrFrameTooSmall = errors.New("frame shorter than its header")
	ErrUnknownType   = errors.New("unknown message type")
	ErrMalformed     = errors.New("malformed message")
)

// AppendHeader appends a frame header with a zero length to dst. Append the
// body, then call FinishFrame with the header's offset.
func AppendHeader(dst []byte, t Type, id uint32) []byte {
	return append(dst, 0, 0, 0, 0, byte(t), byte(id>>24), byte(id>>16), byte(id>>8), byte(id))
}

// FinishFrame fills in the length of the frame that starts at dst[start:].
func FinishFrame(dst []byte, start int) {
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
}

// FrameSize returns the size on the wire of a frame whose body has n bytes.
func FrameSize(n int) int { return HeaderSize + n }

// Sizes of frame bodies: a body up to maxKeptBody is read into a buffer
// kept for the next frame (when borrowed); a body is allocated whole up
// to firstChunk bytes (every frame but large values), and beyond that as
// it arrives, doubling.
const (
	maxKeptBody = 1 << 20
	firstChunk  = 1 << 20
)

// Reader reads frames from a buffered connection. A read that fails with
// a timeout (a deadline set to interrupt it) may be retried: the frame
// read so far is kept, and the next call to Next goes on with it.
type Reader struct {
	br  *bufio.Reader
	buf []byte // reused body buffer when frames are borrowed

	// A frame whose header is read but whose body is not yet complete.
	partType Type
	partID   uint32
	part     []byte // its body so far
	partSize int    // its full size
	partOwn  bool
	partial  bool
}

// NewReader returns a Reader that rejects frames larger than MaxFrame.
func NewReader(br *bufio.Reader) *Reader {
	return &Reader{br: br}
}

// Next reads one frame. When own is true the body is freshly allocated and
// belongs to the caller; otherwise it is valid only until the next call.
// It returns io.EOF only on a clean end between frames. After an error
// other than a timeout, the Reader must not be used again.
func (r *Reader) Next(own bool) (t Type, id uint32, body []byte, err error) {
	if !r.partial {
		hdr, err := r.br.Peek(HeaderSize)
		if err != nil {
			if err == io.EOF && len(hdr) > 0 {
				err = io.ErrUnexpectedEOF
			}
			return 0, 0, nil, err
		}
		n64 := uint64(binary.BigEndian.Uint32(hdr))
		if n64 < minFrameLen {
			return 0, 0, nil, ErrFrameTooSmall
		}
		if n64+4 > MaxFrame {
			return 0, 0, nil, fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, n64+4, MaxFrame)
		}
		t := Type(hdr[4])
		id := binary.BigEndian.Uint32(hdr[5:])
		if !t.Known() {
			return t, id, nil, fmt.Errorf("%w %d", ErrUnknownType, uint8(t))
		}
		r.br.Discard(HeaderSize)
		size := int(n64) - minFrameLen
		// A large body is allocated as it arrives, not at its claimed
		// size, so that a header alone cannot make this side allocate
		// MaxFrame bytes.
		var body []byte
		if own || size > maxKeptBody {
			body = make([]byte, 0, min(size, firstChunk))
		} else {
			if cap(r.buf) < size {
				r.buf = make([]byte, size)
			}
			body = r.buf[:0]
		}
		r.partType, r.partID, r.part, r.partSize, r.partOwn, r.partial = t, id, body, size, own, true
	}
	for len(r.part) < r.partSize {
		if len(r.part) == cap(r.part) {
			r.part = slices.Grow(r.part, min(r.partSize, 2*cap(r.part))-len(r.part))
		}
		n, err := r.br.Read(r.part[len(r.part):min(cap(r.part), r.partSize)])
		r.part = r.part[:len(r.part)+n]
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return 0, 0, nil, err
		}
	}
	t, id, body = r.partType, r.partID, r.part
	if own && !r.partOwn {
		body = append([]byte(nil), body...) // begun borrowed, after a timeout
	}
	r.part, r.partial = nil, false
	if !own && cap(r.buf) > maxKeptBody {
		r.buf = nil // do not keep a huge buffer for the connection's life
	}
	return t, id, body, nil
}

// FrameBuffered reports whether a whole frame is already buffered, so that
// the next call to Next will not block on the connection.
func (r *Reader) FrameBuffered() bool {
	n := r.br.Buffered()
	if n < 4 {
		return false
	}
	hdr, _ := r.br.Peek(4)
	return uint64(n) >= uint64(binary.BigEndian.Uint32(hdr))+4
}
