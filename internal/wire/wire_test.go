package wire

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/levelparty/party/backend"
)

// frameOf builds a raw frame of any type, valid or not.
func frameOf(t Type, id uint32, body []byte) []byte {
	b := AppendHeader(nil, t, id)
	b = append(b, body...)
	FinishFrame(b, 0)
	return b
}

// readerOf returns a Reader over data.
func readerOf(data []byte) *Reader {
	return NewReader(bufio.NewReader(bytes.NewReader(data)))
}

// bin is a byte string with the bytes that break naive encodings.
var bin = []byte{0x00, 0xff, 0x80, 0x7f, 0x00, '\n'}

// sampleBatch returns the records of a batch with every kind of record,
// and the offsets at which a record ends, so that truncation tests know
// which prefixes are still valid.
func sampleBatch() (records []byte, ends []int) {
	var b backend.Batch
	b.Put([]byte("k1"), []byte("v1"))
	ends = append(ends, b.Size())
	b.Delete(bin)
	ends = append(ends, b.Size())
	b.Put(nil, nil)
	ends = append(ends, b.Size())
	b.Put(bytes.Repeat([]byte{'x'}, 300), bin)
	ends = append(ends, b.Size())
	return b.Records(), ends
}

// sampleRequests returns one or more requests of every request type, with
// the field values each type carries.
func sampleRequests() []Request {
	records, _ := sampleBatch()
	long := bytes.Repeat([]byte("0123456789"), 200) // a length needing a 2-byte uvarint
	return []Request{
		{Type: TGet, ID: 1, Snap: 0, Key: []byte("key")},
		{Type: TGet, ID: 0xffffffff, Snap: 7, Key: []byte{}},
		{Type: THas, ID: 2, Snap: 0xfffffffe, Key: bin},
		{Type: TPut, ID: 3, Flags: FlagSync, Key: []byte("k"), Value: []byte("v")},
		{Type: TPut, ID: 4, Key: []byte{}, Value: []byte{}},
		{Type: TPut, ID: 5, Key: long, Value: long},
		{Type: TDelete, ID: 6, Key: bin},
		{Type: TDelete, ID: 7, Flags: FlagSync, Key: []byte{}},
		{Type: TBatch, ID: 8, Flags: FlagSync, Records: records},
		{Type: TBatch, ID: 9, Records: []byte{}},
		{Type: TDeleteRange, ID: 10, Range: backend.Range{}},
		{Type: TDeleteRange, ID: 11, Range: backend.Range{Start: []byte("a")}},
		{Type: TDeleteRange, ID: 12, Range: backend.Range{Limit: []byte("z")}},
		{Type: TDeleteRange, ID: 13, Flags: FlagSync, Range: backend.Range{Start: []byte{}, Limit: []byte{}}},
		{Type: TSnapshot, ID: 14},
		{Type: TSnapshotRelease, ID: 15, Snap: 3},
		{Type: TIterOpen, ID: 16, Iter: 18, Snap: 0, Range: backend.Range{Start: bin, Limit: []byte{0xff, 0xff}}},
		{Type: TIterOpen, ID: 17, Iter: 0xffffffff, Snap: 9, Range: backend.Range{}},
		{Type: TIterSeek, ID: 18, Gen: 1, Mode: backend.SeekFirst, Credit: 4},
		{Type: TIterSeek, ID: 18, Gen: 2, Mode: backend.SeekLast, Credit: 4, Key: []byte{}},
		{Type: TIterSeek, ID: 18, Gen: 3, Mode: backend.SeekGE, Credit: 1, Key: []byte("m")},
		{Type: TIterSeek, ID: 18, Gen: 4, Mode: backend.SeekAfter, Credit: 0xffffffff, Key: bin},
		{Type: TIterSeek, ID: 18, Gen: 0xffffffff, Mode: backend.SeekBefore, Credit: 0, Key: long},
		{Type: TIterCredit, ID: 18, Gen: 4, Credit: 2},
		{Type: TIterClose, ID: 18},
		{Type: TStatus, ID: 19},
		{Type: TTxBegin, ID: 20, Holder: [16]byte{1, 2, 0xff}, Timeout: 5 * time.Second},
		{Type: TTxCommit, ID: 21, Lease: 20, Flags: FlagSync, Seq: 7, Records: records},
		{Type: TTxCommit, ID: 22, Lease: 0xffffffff, Seq: 1 << 63, Done: []uint64{1, 2, 1 << 40}, Records: []byte{}},
		{Type: TTxDiscard, ID: 23, Lease: 20},
		{Type: TTxResolve, ID: 24, Holder: [16]byte{0xff}, Seq: 7},
		{Type: TWatchOpen, ID: 25, Watch: 3, Range: backend.Range{Start: bin, Limit: []byte{0xff}}},
		{Type: TWatchOpen, ID: 26, Watch: 0xffffffff},
		{Type: TWatchClose, ID: 3},
		{Type: TCompact, ID: 27, Range: backend.Range{Start: []byte("a")}},
		{Type: TSizeOf, ID: 28, Ranges: []backend.Range{{}, {Start: bin, Limit: []byte{0xff}}, {Limit: []byte{}}}},
		{Type: TSizeOf, ID: 29},
		{Type: TProperty, ID: 30, Key: []byte("leveldb.stats")},
	}
}

// requestTypes are the types a follower sends.
var requestTypes = []Type{TGet, THas, TPut, TDelete, TBatch, TDeleteRange, TSnapshot,
	TSnapshotRelease, TIterOpen, TIterSeek, TIterCredit, TIterClose, TStatus,
	TTxBegin, TTxCommit, TTxDiscard, TTxResolve, TWatchOpen, TWatchClose, TCompact, TSizeOf, TProperty}

// sameBytes compares byte strings, nil and empty being equal.
func sameBytes(a, b []byte) bool { return bytes.Equal(a, b) }

// sameBound compares range bounds, where nil (absent) and empty differ.
func sameBound(a, b []byte) bool { return (a == nil) == (b == nil) && bytes.Equal(a, b) }

// requestDiff describes how two requests differ, or returns "".
func requestDiff(want, got *Request) string {
	var d []string
	if want.Type != got.Type {
		d = append(d, fmt.Sprintf("type %v != %v", got.Type, want.Type))
	}
	if want.ID != got.ID {
		d = append(d, fmt.Sprintf("id %d != %d", got.ID, want.ID))
	}
	if want.Flags != got.Flags {
		d = append(d, fmt.Sprintf("flags %d != %d", got.Flags, want.Flags))
	}
	if want.Snap != got.Snap {
		d = append(d, fmt.Sprintf("snap %d != %d", got.Snap, want.Snap))
	}
	if !sameBytes(want.Key, got.Key) {
		d = append(d, fmt.Sprintf("key %q != %q", got.Key, want.Key))
	}
	if !sameBytes(want.Value, got.Value) {
		d = append(d, fmt.Sprintf("value %q != %q", got.Value, want.Value))
	}
	if !sameBytes(want.Records, got.Records) {
		d = append(d, fmt.Sprintf("records %q != %q", got.Records, want.Records))
	}
	if !sameBound(want.Range.Start, got.Range.Start) {
		d = append(d, fmt.Sprintf("range start %#v != %#v", got.Range.Start, want.Range.Start))
	}
	if !sameBound(want.Range.Limit, got.Range.Limit) {
		d = append(d, fmt.Sprintf("range limit %#v != %#v", got.Range.Limit, want.Range.Limit))
	}
	if want.Gen != got.Gen {
		d = append(d, fmt.Sprintf("gen %d != %d", got.Gen, want.Gen))
	}
	if want.Mode != got.Mode {
		d = append(d, fmt.Sprintf("mode %d != %d", got.Mode, want.Mode))
	}
	if want.Credit != got.Credit {
		d = append(d, fmt.Sprintf("credit %d != %d", got.Credit, want.Credit))
	}
	if want.Iter != got.Iter {
		d = append(d, fmt.Sprintf("iter %d != %d", got.Iter, want.Iter))
	}
	if len(want.Ranges) != len(got.Ranges) {
		d = append(d, fmt.Sprintf("%d ranges != %d", len(got.Ranges), len(want.Ranges)))
	} else {
		for i := range want.Ranges {
			if !sameBound(want.Ranges[i].Start, got.Ranges[i].Start) || !sameBound(want.Ranges[i].Limit, got.Ranges[i].Limit) {
				d = append(d, fmt.Sprintf("range %d %v != %v", i, got.Ranges[i], want.Ranges[i]))
			}
		}
	}
	if want.Watch != got.Watch {
		d = append(d, fmt.Sprintf("watch %d != %d", got.Watch, want.Watch))
	}
	if want.Holder != got.Holder || want.Lease != got.Lease || want.Seq != got.Seq || want.Timeout != got.Timeout {
		d = append(d, fmt.Sprintf("tx fields %x %d %d %v != %x %d %d %v", got.Holder, got.Lease, got.Seq, got.Timeout,
			want.Holder, want.Lease, want.Seq, want.Timeout))
	}
	if !slices.Equal(want.Done, got.Done) {
		d = append(d, fmt.Sprintf("done %v != %v", got.Done, want.Done))
	}
	return strings.Join(d, "; ")
}

// TestProtocolNumbers pins the numbers spec.md gives to types, codes, seek
// modes, statuses and flags: renumbering any of them breaks compatibility.
func TestProtocolNumbers(t *testing.T) {
	if Version != 3 || HeaderSize != 9 || MaxFrame != 64<<20 || HelloSize != 11 {
		t.Errorf("version %d header %d max %d hello %d", Version, HeaderSize, MaxFrame, HelloSize)
	}
	if string(Magic[:]) != "LVLPARTY" {
		t.Errorf("magic %q", Magic)
	}
	types := []Type{TGet, THas, TPut, TDelete, TBatch, TDeleteRange, TSnapshot, TSnapshotRelease,
		TIterOpen, TIterSeek, TIterCredit, TIterClose, TStatus, TResponse, TIterBatch,
		TTxBegin, TTxCommit, TTxDiscard, TTxResolve, TWatchOpen, TWatchClose, TWatchEvent,
		TCompact, TSizeOf, TProperty}
	for i, typ := range types {
		if int(typ) != i+1 {
			t.Errorf("%v is %d, spec says %d", typ, typ, i+1)
		}
		if !typ.Known() {
			t.Errorf("%v not known", typ)
		}
	}
	for _, typ := range []Type{0, typeEnd, 200, 255} {
		if typ.Known() {
			t.Errorf("type %d known", typ)
		}
		if typ.String() == "" {
			t.Errorf("type %d has no name", typ)
		}
	}
	codes := []Code{OK, NotFound, Closing, SnapshotUnknown, TooLarge, BadRequest, EngineError, TxAborted}
	for i, c := range codes {
		if int(c) != i {
			t.Errorf("code %d, spec says %d", c, i)
		}
	}
	modes := []backend.SeekMode{backend.SeekFirst, backend.SeekLast, backend.SeekGE, backend.SeekAfter, backend.SeekBefore}
	if int(backend.SeekModes) != len(modes) {
		t.Errorf("%d seek modes, spec says %d", backend.SeekModes, len(modes))
	}
	for i, m := range modes {
		if int(m) != i {
			t.Errorf("mode %d, spec says %d", m, i)
		}
		if m.Backward() != (m == backend.SeekLast || m == backend.SeekBefore) {
			t.Errorf("mode %d backward %v", m, m.Backward())
		}
	}
	if WelcomeOK != 0 || WelcomeVersion != 1 || WelcomeClosing != 2 || WelcomeRefused != 3 {
		t.Error("welcome statuses renumbered")
	}
	if FlagSync != 1 || HelloNoRetry != 1 {
		t.Error("flags renumbered")
	}
}

// TestRequestRoundTrip encodes every request type, reads the frames back
// from one stream, and decodes them to equal requests.
func TestRequestRoundTrip(t *testing.T) {
	reqs := sampleRequests()
	var stream []byte
	for i := range reqs {
		before := len(stream)
		stream = AppendRequest(stream, &reqs[i])
		size := len(stream) - before
		if got := int(binary.BigEndian.Uint32(stream[before:])) + 4; got != size {
			t.Errorf("%v: length field says %d bytes, frame has %d", reqs[i].Type, got, size)
		}
		switch reqs[i].Type {
		case TPut, TDelete, TBatch:
			if bound := RequestSize(reqs[i].Key, reqs[i].Value, reqs[i].Records); size > bound {
				t.Errorf("%v: frame of %d bytes exceeds RequestSize %d", reqs[i].Type, size, bound)
			}
		}
	}
	seen := map[Type]bool{}
	for _, own := range []bool{false, true} {
		r := readerOf(stream)
		for i := range reqs {
			typ, id, body, err := r.Next(own)
			if err != nil {
				t.Fatalf("frame %d (%v): %v", i, reqs[i].Type, err)
			}
			var got Request
			if err := DecodeRequest(typ, id, body, &got); err != nil {
				t.Fatalf("decode %v: %v", reqs[i].Type, err)
			}
			if d := requestDiff(&reqs[i], &got); d != "" {
				t.Errorf("%v round trip: %s", reqs[i].Type, d)
			}
			// The empty string stays distinct from an absent one.
			if typ == TGet || typ == TPut || typ == TIterSeek {
				if got.Key == nil {
					t.Errorf("%v: key decoded as nil", typ)
				}
			}
			seen[typ] = true
		}
		if _, _, _, err := r.Next(own); err != io.EOF {
			t.Fatalf("after the last frame: %v, want io.EOF", err)
		}
	}
	for _, typ := range requestTypes {
		if !seen[typ] {
			t.Errorf("no sample of %v", typ)
		}
	}
}

// TestDecodeRequestRejects checks that a response or iter-batch type, an
// unknown type, a bad seek mode, bad range flags and bad records do not
// decode as requests.
func TestDecodeRequestRejects(t *testing.T) {
	var r Request
	for _, typ := range []Type{0, TResponse, TIterBatch, typeEnd, 255} {
		if err := DecodeRequest(typ, 1, nil, &r); !errors.Is(err, ErrUnknownType) {
			t.Errorf("type %d: %v, want ErrUnknownType", typ, err)
		}
	}
	cases := []struct {
		name string
		typ  Type
		body []byte
	}{
		{"seek mode 5", TIterSeek, []byte{0, 0, 0, 1, 5, 0, 0, 0, 1, 0}},
		{"seek mode 255", TIterSeek, []byte{0, 0, 0, 1, 255, 0, 0, 0, 1, 0}},
		{"range flags 4", TDeleteRange, []byte{0, 4}},
		{"range flags 0xff", TIterOpen, []byte{0, 0, 0, 1, 0, 0, 0, 0, 0xff, 0, 0}},
		{"iter-open without a range", TIterOpen, []byte{0, 0, 0, 1, 0, 0, 0, 0}},
		{"record kind 2", TBatch, []byte{0, 2, 1, 'k'}},
		{"put record without value", TBatch, []byte{0, 1, 1, 'k'}},
		{"overlong key length", TGet, []byte{0, 0, 0, 0, 5, 'k'}},
		{"varint overflow", TGet, append([]byte{0, 0, 0, 0}, bytes.Repeat([]byte{0xff}, 11)...)},
		{"huge key length", TPut, append([]byte{0}, binary.AppendUvarint(nil, 1<<63)...)},
		{"trailing byte on snapshot", TSnapshot, []byte{0}},
		{"trailing byte on status", TStatus, []byte{0}},
		{"trailing byte on iter-close", TIterClose, []byte{1, 2, 3}},
		{"short snapshot-release", TSnapshotRelease, []byte{0, 0, 1}},
		{"empty put", TPut, nil},
		{"tx-commit naming too many commits", TTxCommit, append(make([]byte, 13), 0xff, 0xff)},
		{"tx-commit with a bad record", TTxCommit, append(make([]byte, 15), 2, 1, 'k')},
		{"short tx-begin holder", TTxBegin, make([]byte, 10)},
		{"tx-resolve without seq", TTxResolve, make([]byte, 16)},
	}
	for _, c := range cases {
		err := DecodeRequest(c.typ, 1, c.body, &r)
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", c.name, err)
		}
	}
}

// TestRequestTruncations decodes every proper prefix of every sample body,
// and every body with a byte added: each is an error, never a panic,
// except a batch cut exactly between two records, which is itself a valid
// batch.
func TestRequestTruncations(t *testing.T) {
	_, ends := sampleBatch()
	for _, req := range sampleRequests() {
		frame := AppendRequest(nil, &req)
		body := frame[HeaderSize:]
		valid := map[int]bool{}
		if req.Type == TBatch && len(req.Records) > 0 {
			valid[1] = true // flags and no records
			for _, e := range ends {
				valid[1+e] = true
			}
		}
		if req.Type == TTxCommit && len(req.Records) > 0 {
			head := 4 + 1 + 8 + 2 + 8*len(req.Done) // lease, flags, seq, done
			valid[head] = true
			for _, e := range ends {
				valid[head+e] = true
			}
		}
		for i := 0; i < len(body); i++ {
			var r Request
			err := DecodeRequest(req.Type, req.ID, body[:i:i], &r)
			if valid[i] {
				if err != nil {
					t.Errorf("%v cut at a record boundary %d: %v", req.Type, i, err)
				}
				continue
			}
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("%v body cut to %d of %d bytes: %v, want ErrMalformed", req.Type, i, len(body), err)
			}
		}
		for _, extra := range []byte{0, 1, 0xff} {
			var r Request
			long := append(append([]byte{}, body...), extra)
			if err := DecodeRequest(req.Type, req.ID, long, &r); !errors.Is(err, ErrMalformed) {
				t.Errorf("%v body with trailing %#x: %v, want ErrMalformed", req.Type, extra, err)
			}
		}
		// Every cut of the frame itself is an incomplete frame.
		for i := 0; i < len(frame); i++ {
			_, _, _, err := readerOf(frame[:i]).Next(false)
			want := io.ErrUnexpectedEOF
			if i == 0 {
				want = io.EOF
			}
			if err != want {
				t.Errorf("%v frame cut to %d of %d bytes: %v, want %v", req.Type, i, len(frame), err, want)
			}
		}
	}
}

// TestResponseRoundTrip checks every code with and without a payload, and
// that an unknown code or an empty body is malformed.
func TestResponseRoundTrip(t *testing.T) {
	payloads := [][]byte{nil, {}, bin, bytes.Repeat([]byte{7}, 70000)}
	var stream []byte
	type sent struct {
		id   uint32
		code Code
		body []byte
	}
	var want []sent
	for c := OK; c < codeEnd; c++ {
		for i, p := range payloads {
			id := uint32(c)<<8 | uint32(i)
			stream = AppendResponse(stream, id, c, p)
			want = append(want, sent{id, c, p})
		}
	}
	r := readerOf(stream)
	for _, w := range want {
		typ, id, body, err := r.Next(true)
		if err != nil {
			t.Fatal(err)
		}
		code, payload, err := DecodeResponse(body)
		if err != nil || typ != TResponse || id != w.id || code != w.code || !bytes.Equal(payload, w.body) {
			t.Fatalf("response %d: type %v id %d code %d payload %d bytes err %v; want code %d, %d bytes",
				w.id, typ, id, code, len(payload), err, w.code, len(w.body))
		}
	}
	for _, body := range [][]byte{nil, {}, {byte(codeEnd)}, {0xff, 1, 2}} {
		if _, _, err := DecodeResponse(body); !errors.Is(err, ErrMalformed) {
			t.Errorf("response body %x: %v, want ErrMalformed", body, err)
		}
	}
}

// iterBatchFrame encodes an iter-batch as the host does, returning the
// frame and the body offsets at which an entry ends.
func iterBatchFrame(iter uint32, b IterBatch) ([]byte, []int) {
	dst, start := AppendIterBatchHeader(nil, iter, b.Gen, b.Code, b.EOF, b.Msg)
	ends := []int{len(dst) - start - HeaderSize}
	for _, e := range b.Entries {
		dst = AppendEntry(dst, e[0], e[1])
		ends = append(ends, len(dst)-start-HeaderSize)
	}
	FinishFrame(dst, start)
	return dst, ends
}

func iterBatchDiff(want, got *IterBatch) string {
	if want.Gen != got.Gen || want.Code != got.Code || want.EOF != got.EOF || want.Msg != got.Msg {
		return fmt.Sprintf("header gen %d code %d eof %v msg %q, want gen %d code %d eof %v msg %q",
			got.Gen, got.Code, got.EOF, got.Msg, want.Gen, want.Code, want.EOF, want.Msg)
	}
	if len(want.Entries) != len(got.Entries) {
		return fmt.Sprintf("%d entries, want %d", len(got.Entries), len(want.Entries))
	}
	for i := range want.Entries {
		if !bytes.Equal(want.Entries[i][0], got.Entries[i][0]) || !bytes.Equal(want.Entries[i][1], got.Entries[i][1]) {
			return fmt.Sprintf("entry %d: %q=%q, want %q=%q", i, got.Entries[i][0], got.Entries[i][1], want.Entries[i][0], want.Entries[i][1])
		}
	}
	return ""
}

func sampleIterBatches() []IterBatch {
	return []IterBatch{
		{Gen: 1},
		{Gen: 2, EOF: true},
		{Gen: 3, Code: TooLarge, EOF: true, Msg: "entry of 70000000 bytes exceeds the frame limit"},
		{Gen: 0xffffffff, Code: EngineError, EOF: true, Msg: string(bin)},
		{Gen: 5, Entries: [][2][]byte{{[]byte("a"), []byte("1")}, {[]byte{}, []byte{}}, {bin, bytes.Repeat([]byte("v"), 200)}}},
		{Gen: 6, EOF: true, Entries: [][2][]byte{{[]byte{0xff, 0xff}, nil}}},
	}
}

// TestIterBatchRoundTrip checks iterator batches, EntrySize and the header
// bound, and that every cut of a batch that is not between two entries is
// malformed.
func TestIterBatchRoundTrip(t *testing.T) {
	for i, want := range sampleIterBatches() {
		frame, ends := iterBatchFrame(uint32(i+1), want)
		if hdr := ends[0] + HeaderSize; hdr > IterBatchHeaderSize+len(want.Msg) {
			t.Errorf("batch %d: header of %d bytes exceeds IterBatchHeaderSize+msg %d", i, hdr, IterBatchHeaderSize+len(want.Msg))
		}
		for j, e := range want.Entries {
			if n := ends[j+1] - ends[j]; n != EntrySize(e[0], e[1]) {
				t.Errorf("batch %d entry %d: %d bytes, EntrySize says %d", i, j, n, EntrySize(e[0], e[1]))
			}
		}
		typ, id, body, err := readerOf(frame).Next(false)
		if err != nil || typ != TIterBatch || id != uint32(i+1) {
			t.Fatalf("batch %d: type %v id %d err %v", i, typ, id, err)
		}
		var got IterBatch
		if err := DecodeIterBatch(body, &got); err != nil {
			t.Fatalf("batch %d: %v", i, err)
		}
		if d := iterBatchDiff(&want, &got); d != "" {
			t.Errorf("batch %d: %s", i, d)
		}
		valid := map[int]bool{}
		for _, e := range ends {
			valid[e] = true
		}
		for n := 0; n < len(body); n++ {
			var b IterBatch
			err := DecodeIterBatch(body[:n:n], &b)
			if valid[n] {
				if err != nil {
					t.Errorf("batch %d cut between entries at %d: %v", i, n, err)
				}
			} else if !errors.Is(err, ErrMalformed) {
				t.Errorf("batch %d cut to %d of %d bytes: %v, want ErrMalformed", i, n, len(body), err)
			}
		}
		var b IterBatch
		if err := DecodeIterBatch(append(append([]byte{}, body...), 0), &b); !errors.Is(err, ErrMalformed) {
			t.Errorf("batch %d with a trailing byte: %v, want ErrMalformed", i, err)
		}
	}
	var b IterBatch
	if err := DecodeIterBatch([]byte{0, 0, 0, 1, byte(codeEnd), 1, 0}, &b); !errors.Is(err, ErrMalformed) {
		t.Errorf("unknown code: %v, want ErrMalformed", err)
	}
}

// TestHandshake round-trips hellos and welcomes and checks their refusals:
// bad magic, truncation, an oversized welcome message.
func TestHandshake(t *testing.T) {
	hellos := []Hello{{Version: Version}, {Version: 2, Flags: HelloNoRetry, BusyPoll: 50 * time.Microsecond},
		{Version: 2, BusyPoll: time.Millisecond}, {Version: 1, Flags: HelloNoRetry}, {Version: 0xffff, Flags: HelloNoRetry}, {Version: 0, Flags: 0xff}}
	for _, h := range hellos {
		b := AppendHello(nil, h)
		if want := map[bool]int{true: HelloSize + 4, false: HelloSize}[hasBusyPoll(h.Version)]; len(b) != want {
			t.Errorf("hello %+v of %d bytes, want %d", h, len(b), want)
		}
		got, err := ReadHello(bytes.NewReader(b))
		if err != nil || got != h {
			t.Errorf("hello %+v: got %+v, %v", h, got, err)
		}
		for i := 0; i < len(b); i++ {
			if _, err := ReadHello(bytes.NewReader(b[:i])); err == nil {
				t.Errorf("hello cut to %d bytes decoded", i)
			}
		}
	}
	if h, err := ReadHello(bytes.NewReader(AppendHello(nil, Hello{Version: 2, BusyPoll: time.Hour}))); err != nil || h.BusyPoll != time.Millisecond {
		t.Errorf("a busy poll of an hour: %v, %v; want the cap of 1ms", h.BusyPoll, err)
	}
	bad := AppendHello(nil, Hello{Version: Version})
	bad[0] = 'X'
	if _, err := ReadHello(bytes.NewReader(bad)); !errors.Is(err, ErrNotParty) {
		t.Errorf("bad magic: %v, want ErrNotParty", err)
	}
	if _, err := ReadHello(strings.NewReader("GET / HTTP/1.1\r\n\r\n")); !errors.Is(err, ErrNotParty) {
		t.Errorf("http request: %v, want ErrNotParty", err)
	}

	since := time.Unix(1700000000, 123456789)
	welcomes := []Welcome{
		{Version: Version, Status: WelcomeOK, PID: 1234, LeaderID: [16]byte{1, 2, 3, 15: 0xff}, Since: since},
		{Version: 7, Status: WelcomeVersion, PID: 0xffffffff, Since: since, Msg: "leader speaks protocol version 7"},
		{Version: Version, Status: WelcomeRefused, Since: time.Unix(0, 0), Msg: string(bin)},
		{Version: Version, Status: WelcomeClosing, Since: since, Msg: strings.Repeat("m", 1024)},
	}
	for _, w := range welcomes {
		b := AppendWelcome(nil, w)
		got, err := ReadWelcome(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("welcome %+v: %v", w, err)
		}
		if got.Version != w.Version || got.Status != w.Status || got.PID != w.PID || got.LeaderID != w.LeaderID ||
			!got.Since.Equal(w.Since) || got.Msg != w.Msg {
			t.Errorf("welcome round trip: got %+v, want %+v", got, w)
		}
		for i := 0; i < len(b); i++ {
			if _, err := ReadWelcome(bytes.NewReader(b[:i])); err == nil {
				t.Errorf("welcome cut to %d of %d bytes decoded", i, len(b))
			}
		}
	}
	// A longer message is cut to 1024 bytes on the way out...
	b := AppendWelcome(nil, Welcome{Version: Version, Status: WelcomeRefused, Msg: strings.Repeat("m", 5000)})
	if got, err := ReadWelcome(bytes.NewReader(b)); err != nil || len(got.Msg) != 1024 {
		t.Errorf("long message: %d bytes, %v", len(got.Msg), err)
	}
	// ...and refused on the way in.
	b = AppendWelcome(nil, Welcome{Version: Version})
	binary.BigEndian.PutUint16(b[welcomeFixed-2:], 1025)
	b = append(b, make([]byte, 1025)...)
	if _, err := ReadWelcome(bytes.NewReader(b)); !errors.Is(err, ErrMalformed) {
		t.Errorf("1025-byte message: %v, want ErrMalformed", err)
	}
	b = AppendWelcome(nil, Welcome{Version: Version})
	b[7] = 'x'
	if _, err := ReadWelcome(bytes.NewReader(b)); !errors.Is(err, ErrNotParty) {
		t.Errorf("welcome with bad magic: %v, want ErrNotParty", err)
	}
}

// TestStatusRoundTrip checks the status body and its size check, and that
// IsLeader does not cross the socket.
func TestStatusRoundTrip(t *testing.T) {
	s := backend.Status{IsLeader: true, PID: 42, LeaderID: [16]byte{9, 15: 1}, Since: time.Unix(1700000000, 5),
		Followers: 3, DiskSize: 1 << 40}
	b := AppendStatus(nil, s)
	if len(b) != 4+16+8+4+8 {
		t.Errorf("status body of %d bytes, spec says %d", len(b), 4+16+8+4+8)
	}
	got, err := DecodeStatus(b)
	if err != nil || got.PID != s.PID || got.LeaderID != s.LeaderID || !got.Since.Equal(s.Since) ||
		got.Followers != s.Followers || got.DiskSize != s.DiskSize {
		t.Fatalf("status: got %+v, %v; want %+v", got, err, s)
	}
	if got.IsLeader {
		t.Error("IsLeader crossed the socket")
	}
	if b2 := AppendStatus(nil, backend.Status{PID: s.PID, LeaderID: s.LeaderID, Since: s.Since,
		Followers: s.Followers, DiskSize: s.DiskSize}); !bytes.Equal(b2, b) {
		t.Errorf("IsLeader changed the body: %x, without it %x", b, b2)
	}
	for i := 0; i < len(b); i++ {
		if _, err := DecodeStatus(b[:i]); !errors.Is(err, ErrMalformed) {
			t.Errorf("status cut to %d: %v", i, err)
		}
	}
	if _, err := DecodeStatus(append(b, 0)); !errors.Is(err, ErrMalformed) {
		t.Errorf("status with a trailing byte: %v", err)
	}
}

// zeros reads as an endless run of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// TestReaderRejects checks the frame checks: size limit (the limit itself
// is allowed), frames shorter than a header, unknown types, and that none
// of them needs the body to arrive first.
func TestReaderRejects(t *testing.T) {
	// A frame of exactly MaxFrame bytes is read, and its borrowed body
	// buffer is not kept afterwards. The body streams from zeros so that
	// the test holds one copy of it.
	hdr := AppendHeader(nil, TPut, 1)
	binary.BigEndian.PutUint32(hdr, MaxFrame-4)
	r := NewReader(bufio.NewReader(io.MultiReader(bytes.NewReader(hdr), io.LimitReader(zeros{}, MaxFrame-HeaderSize))))
	if typ, id, body, err := r.Next(false); err != nil || typ != TPut || id != 1 || len(body) != MaxFrame-HeaderSize {
		t.Errorf("frame of exactly MaxFrame: %v %d, %d bytes, %v", typ, id, len(body), err)
	}
	if r.buf != nil {
		t.Errorf("reader kept a body buffer of %d bytes", cap(r.buf))
	}
	if _, _, _, err := r.Next(false); err != io.EOF {
		t.Errorf("after the frame of MaxFrame: %v, want io.EOF", err)
	}
	// Only a header claiming a huge body, from one byte over the limit:
	// refused before reading the body.
	for _, n := range []uint32{MaxFrame - 3, MaxFrame, 1 << 31, 0xffffffff} {
		hdr := binary.BigEndian.AppendUint32(nil, n)
		hdr = append(hdr, byte(TPut), 0, 0, 0, 1)
		if _, _, _, err := readerOf(hdr).Next(false); !errors.Is(err, ErrFrameTooLarge) {
			t.Errorf("length %d: %v, want ErrFrameTooLarge", n, err)
		}
	}
	for n := uint32(0); n < minFrameLen; n++ {
		hdr := binary.BigEndian.AppendUint32(nil, n)
		hdr = append(hdr, byte(TGet), 0, 0, 0, 1, 0, 0, 0, 0)
		if _, _, _, err := readerOf(hdr).Next(false); !errors.Is(err, ErrFrameTooSmall) {
			t.Errorf("length %d: %v, want ErrFrameTooSmall", n, err)
		}
	}
	for _, typ := range []Type{0, typeEnd, 100, 255} {
		_, _, _, err := readerOf(frameOf(typ, 1, []byte("x"))).Next(false)
		if !errors.Is(err, ErrUnknownType) {
			t.Errorf("type %d: %v, want ErrUnknownType", typ, err)
		}
	}
	// The smallest valid frame: a header and no body.
	if typ, id, body, err := readerOf(frameOf(TStatus, 9, nil)).Next(true); err != nil || typ != TStatus || id != 9 || len(body) != 0 {
		t.Errorf("empty frame: %v %d %x %v", typ, id, body, err)
	}
}

// TestReaderBuffers checks that an owned body is not overwritten by later
// reads, and FrameBuffered.
func TestReaderBuffers(t *testing.T) {
	var stream []byte
	stream = AppendResponse(stream, 1, OK, []byte("first"))
	stream = AppendResponse(stream, 2, OK, []byte("again"))
	stream = AppendResponse(stream, 3, OK, []byte("third"))
	stream = AppendResponse(stream, 4, OK, []byte("forth"))
	r := readerOf(stream)
	_, _, owned, _ := r.Next(true)
	r.Next(false)
	r.Next(false)
	_, _, owned2, _ := r.Next(true)
	if string(owned[1:]) != "first" || string(owned2[1:]) != "forth" {
		t.Errorf("owned bodies changed to %q, %q", owned, owned2)
	}

	pr, pw := io.Pipe()
	br := bufio.NewReader(pr)
	rd := NewReader(br)
	if rd.FrameBuffered() {
		t.Error("FrameBuffered on an empty reader")
	}
	frame := AppendResponse(nil, 5, NotFound, nil)
	go func() {
		pw.Write(frame[:6])
		pw.Write(frame[6:])
		pw.Close()
	}()
	if _, _, _, err := rd.Next(false); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := rd.Next(false); err != io.EOF {
		t.Fatalf("at the end: %v", err)
	}
	br2 := bufio.NewReader(bytes.NewReader(append(append([]byte{}, frame...), frame[:4]...)))
	rd2 := NewReader(br2)
	br2.Peek(1) // fill the buffer
	if !rd2.FrameBuffered() {
		t.Error("FrameBuffered false with a whole frame buffered")
	}
	rd2.Next(false)
	if rd2.FrameBuffered() {
		t.Error("FrameBuffered true with only a partial header")
	}
}

// TestCodes checks that CodeOf and Code.Err carry each outcome across the
// socket: the code and message CodeOf gives, sent in a response and read
// back, become an error the caller can recognise.
func TestCodes(t *testing.T) {
	isErr := func(target error) func(error) bool {
		return func(err error) bool { return errors.Is(err, target) }
	}
	leaderMsg := func(msg string) func(error) bool {
		return func(err error) bool {
			var le *backend.LeaderError
			return errors.As(err, &le) && le.Msg == msg && le.Err == nil
		}
	}
	engine := &backend.LeaderError{Msg: "disk on fire", Err: errors.New("eio")}
	cases := []struct {
		name string
		err  error
		code Code
		msg  string
		back func(error) bool // accepts the error the follower sees
	}{
		{"success", nil, OK, "", func(err error) bool { return err == nil }},
		{"not found", backend.ErrNotFound, NotFound, "", isErr(backend.ErrNotFound)},
		{"wrapped not found", fmt.Errorf("get: %w", backend.ErrNotFound), NotFound, "", isErr(backend.ErrNotFound)},
		{"closed", backend.ErrClosed, Closing, "", isErr(backend.ErrClosed)},
		{"snapshot lost", backend.ErrSnapshotLost, SnapshotUnknown, "", isErr(backend.ErrSnapshotLost)},
		{"leader error", engine, EngineError, "disk on fire", leaderMsg("disk on fire")},
		{"wrapped leader error", fmt.Errorf("put: %w", engine), EngineError, "disk on fire", leaderMsg("disk on fire")},
		{"plain error", errors.New("disk full"), EngineError, "disk full", leaderMsg("disk full")},
	}
	for _, c := range cases {
		code, msg := CodeOf(c.err)
		if code != c.code || string(msg) != c.msg {
			t.Errorf("%s: CodeOf gives code %d msg %q, want %d %q", c.name, code, msg, c.code, c.msg)
			continue
		}
		_, _, body, err := readerOf(AppendResponse(nil, 1, code, msg)).Next(true)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		code2, msg2, err := DecodeResponse(body)
		if err != nil || code2 != code || !bytes.Equal(msg2, msg) {
			t.Fatalf("%s: response decodes as code %d msg %q, %v", c.name, code2, msg2, err)
		}
		if got := code2.Err(msg2); !c.back(got) {
			t.Errorf("%s: the follower sees %#v", c.name, got)
		}
	}

	// Codes the leader sends without an error of its own.
	tooLarge := TooLarge.Err([]byte("value of 70000000 bytes exceeds the frame limit"))
	if !errors.Is(tooLarge, backend.ErrTooLarge) || !strings.Contains(tooLarge.Error(), "70000000 bytes") {
		t.Errorf("TooLarge: %v, want backend.ErrTooLarge with the leader's reason", tooLarge)
	}
	if err := BadRequest.Err([]byte("no such iterator")); !leaderMsg("no such iterator")(err) {
		t.Errorf("BadRequest: %#v, want a LeaderError with the leader's reason", err)
	}
	if err := EngineError.Err(nil); !leaderMsg("")(err) {
		t.Errorf("EngineError without a message: %#v", err)
	}
}

// countWriter records writes and can hold the first one until released.
type countWriter struct {
	mu     sync.Mutex
	writes int
	data   []byte
	hold   chan struct{} // if set, the first write waits for it to close
	held   chan struct{} // closed when the first write is waiting
	err    error         // if set, every write fails with it
}

// holdingWriter returns a countWriter that holds its first write.
func holdingWriter() *countWriter {
	return &countWriter{hold: make(chan struct{}), held: make(chan struct{})}
}

func (w *countWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.writes++
	first := w.writes == 1
	w.mu.Unlock()
	if first && w.hold != nil {
		close(w.held)
		<-w.hold
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return 0, w.err
	}
	w.data = append(w.data, p...)
	return len(p), nil
}

func (w *countWriter) stats() (int, []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.writes, append([]byte{}, w.data...)
}

// bound is how long the writer tests wait for something that should
// happen at once before they call it a hang.
const bound = 10 * time.Second

// within runs fn and fails the test if it does not return within bound.
func within(t *testing.T, what string, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	select {
	case <-done:
	case <-time.After(bound):
		t.Fatalf("%s did not return within %v", what, bound)
	}
}

// waitClosed fails the test unless ch is closed within bound.
func waitClosed(t *testing.T, what string, ch <-chan struct{}) {
	t.Helper()
	within(t, what, func() { <-ch })
}

// waitWrites waits until cw has seen n writes.
func waitWrites(t *testing.T, cw *countWriter, n int) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for {
		got, _ := cw.stats()
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d writes after %v, want %d", got, bound, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// stop closes w and waits for its goroutine to return.
func stop(t *testing.T, w *Writer) {
	t.Helper()
	w.Close()
	within(t, "Wait after Close", w.Wait)
}

// resp returns a function that appends a response frame.
func resp(id uint32, payload []byte) func([]byte) []byte {
	return func(b []byte) []byte { return AppendResponse(b, id, OK, payload) }
}

// TestWriterCoalesces holds the first write while 50 goroutines send: they
// return without waiting, and their frames leave together once the write
// ends, each once and intact.
func TestWriterCoalesces(t *testing.T) {
	ctx := context.Background()
	cw := holdingWriter()
	w := NewWriter(cw)
	if err := w.Send(ctx, resp(0, []byte("first"))); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, "the first write", cw.held)
	var wg sync.WaitGroup
	for i := 1; i <= 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := w.Send(ctx, resp(uint32(i), []byte(fmt.Sprint(i)))); err != nil {
				t.Error(err)
			}
		}()
	}
	within(t, "Send during a held write", wg.Wait) // every Send returns while the first write is held
	close(cw.hold)
	within(t, "Drain", func() {
		if err := w.Drain(); err != nil {
			t.Error(err)
		}
	})
	writes, data := cw.stats()
	if writes < 2 || writes > 3 {
		t.Errorf("%d writes for 51 frames, want the first and at most 2 more", writes)
	}
	r := readerOf(data)
	seen := map[uint32]bool{}
	for i := 0; i <= 50; i++ {
		_, id, body, err := r.Next(false)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		code, payload, err := DecodeResponse(body)
		want := fmt.Sprint(id)
		if id == 0 {
			want = "first"
		}
		if err != nil || code != OK || string(payload) != want {
			t.Errorf("frame %d: code %d payload %q %v, want %q", id, code, payload, err, want)
		}
		if seen[id] {
			t.Errorf("frame %d written twice", id)
		}
		seen[id] = true
	}
	if _, _, _, err := r.Next(false); err != io.EOF {
		t.Errorf("after 51 frames: %v, want io.EOF", err)
	}
	if len(seen) != 51 {
		t.Errorf("%d distinct frames, want 51", len(seen))
	}
	stop(t, w)
}

// TestWriterQueueFlush checks that Queue writes nothing until Flush, which
// writes everything queued in one write, and that an empty Flush writes
// nothing.
func TestWriterQueueFlush(t *testing.T) {
	cw := &countWriter{}
	w := NewWriter(cw)
	for i := 0; i < 10; i++ {
		if err := w.Queue(resp(uint32(i), nil)); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(20 * time.Millisecond) // give a wrongly woken writer a chance to write
	if n, _ := cw.stats(); n != 0 {
		t.Fatalf("Queue wrote %d times", n)
	}
	w.Flush()
	waitWrites(t, cw, 1)
	within(t, "Drain", func() {
		if err := w.Drain(); err != nil {
			t.Error(err)
		}
	})
	if n, data := cw.stats(); n != 1 || len(data) != 10*FrameSize(1) {
		t.Errorf("Flush: %d writes of %d bytes, want 1 of %d", n, len(data), 10*FrameSize(1))
	}
	w.Flush()
	within(t, "Drain", func() { w.Drain() })
	time.Sleep(20 * time.Millisecond)
	if n, _ := cw.stats(); n != 1 {
		t.Errorf("an empty Flush wrote")
	}
	stop(t, w)
}

// TestWriterError checks that a write error sticks: Send, Queue and Post
// fail with it without running their functions, and Close does not hide
// it.
func TestWriterError(t *testing.T) {
	ctx := context.Background()
	boom := errors.New("boom")
	cw := &countWriter{err: boom}
	w := NewWriter(cw)
	// Send does not wait for the write, so it cannot see its error.
	if err := w.Send(ctx, resp(1, nil)); err != nil {
		t.Fatalf("Send before the write: %v", err)
	}
	within(t, "Drain", func() {
		if err := w.Drain(); err != boom {
			t.Errorf("Drain: %v, want %v", err, boom)
		}
	})
	called := false
	fn := func(b []byte) []byte {
		called = true
		return AppendResponse(b, 2, OK, nil)
	}
	if err := w.Send(ctx, fn); err != boom {
		t.Errorf("Send after the error: %v", err)
	}
	if err := w.Queue(fn); err != boom {
		t.Errorf("Queue after the error: %v", err)
	}
	if err := w.Post(fn); err != boom {
		t.Errorf("Post after the error: %v", err)
	}
	if called {
		t.Error("a frame was built after the error")
	}
	w.Flush()
	if err := w.Err(); err != boom {
		t.Errorf("Err: %v", err)
	}
	stop(t, w)
	if err := w.Err(); err != boom {
		t.Errorf("Err after Close: %v", err)
	}
	if err := w.Send(ctx, fn); err != boom {
		t.Errorf("Send after Close: %v", err)
	}
	if n, _ := cw.stats(); n != 1 {
		t.Errorf("%d writes after an error, want 1", n)
	}
}

// TestWriterBufferLimit blocks the connection's write: once BufferLimit
// bytes wait, Send waits for room until its context ends, Queue until
// Close, and Post never waits. Wait returns once the blocked write ends.
func TestWriterBufferLimit(t *testing.T) {
	ctx := context.Background()
	cw := holdingWriter()
	released := false
	defer func() {
		if !released {
			close(cw.hold)
		}
	}()
	w := NewWriter(cw)
	if err := w.Send(ctx, resp(0, []byte("first"))); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, "the first write", cw.held)
	// One frame may take the buffer past the limit.
	within(t, "Send on an empty buffer", func() {
		if err := w.Send(ctx, resp(1, make([]byte, BufferLimit))); err != nil {
			t.Error(err)
		}
	})

	called := false
	fn := func(b []byte) []byte {
		called = true
		return AppendResponse(b, 2, OK, nil)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	within(t, "Send with a deadline on a full buffer", func() {
		if err := w.Send(short, fn); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Send on a full buffer: %v, want context.DeadlineExceeded", err)
		}
	})
	gone, cancel2 := context.WithCancel(ctx)
	cancel2()
	within(t, "Send with a canceled context on a full buffer", func() {
		if err := w.Send(gone, fn); !errors.Is(err, context.Canceled) {
			t.Errorf("Send on a full buffer: %v, want context.Canceled", err)
		}
	})
	if called {
		t.Error("Send built its frame without room")
	}
	within(t, "Post on a full buffer", func() {
		if err := w.Post(resp(3, nil)); err != nil {
			t.Errorf("Post on a full buffer: %v", err)
		}
	})

	// Senders without a deadline wait until Close.
	waiting := make(chan error, 2)
	go func() { waiting <- w.Send(ctx, fn) }()
	go func() { waiting <- w.Queue(fn) }()
	time.Sleep(20 * time.Millisecond)
	select {
	case err := <-waiting:
		t.Fatalf("a sender returned %v on a full buffer", err)
	default:
	}
	w.Close()
	for i := 0; i < 2; i++ {
		select {
		case err := <-waiting:
			if err != ErrWriterClosed {
				t.Errorf("waiting sender after Close: %v, want ErrWriterClosed", err)
			}
		case <-time.After(bound):
			t.Fatal("a waiting sender did not return after Close")
		}
	}
	if called {
		t.Error("a frame was built after Close")
	}
	if err := w.Send(ctx, fn); err != ErrWriterClosed {
		t.Errorf("Send after Close: %v", err)
	}
	if err := w.Queue(fn); err != ErrWriterClosed {
		t.Errorf("Queue after Close: %v", err)
	}
	if err := w.Post(fn); err != ErrWriterClosed {
		t.Errorf("Post after Close: %v", err)
	}
	w.Close() // again: harmless

	waited := make(chan struct{})
	go func() {
		w.Wait()
		close(waited)
	}()
	time.Sleep(20 * time.Millisecond)
	select {
	case <-waited:
		t.Fatal("Wait returned while a write was blocked")
	default:
	}
	close(cw.hold)
	released = true
	waitClosed(t, "Wait once the blocked write ended", waited)
	if n, data := cw.stats(); n != 1 || len(data) != FrameSize(1+len("first")) {
		t.Errorf("%d writes of %d bytes, want only the first frame: Close drops what waits", n, len(data))
	}
}

// TestWriterDrain checks that Drain returns only once every frame appended
// before it, sent or queued, is written.
func TestWriterDrain(t *testing.T) {
	ctx := context.Background()
	cw := holdingWriter()
	w := NewWriter(cw)
	var want []byte
	send := func(id uint32, queue bool) {
		t.Helper()
		var err error
		if queue {
			err = w.Queue(resp(id, []byte(fmt.Sprint(id))))
		} else {
			err = w.Send(ctx, resp(id, []byte(fmt.Sprint(id))))
		}
		if err != nil {
			t.Fatal(err)
		}
		want = AppendResponse(want, id, OK, []byte(fmt.Sprint(id)))
	}
	send(1, false)
	waitClosed(t, "the first write", cw.held)
	send(2, false)
	send(3, true)
	drained := make(chan error, 1)
	go func() { drained <- w.Drain() }()
	time.Sleep(20 * time.Millisecond)
	select {
	case err := <-drained:
		t.Fatalf("Drain returned %v while a write was held", err)
	default:
	}
	close(cw.hold)
	select {
	case err := <-drained:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(bound):
		t.Fatal("Drain did not return once the write was released")
	}
	if _, data := cw.stats(); !bytes.Equal(data, want) {
		t.Fatalf("Drain returned with %d of %d bytes written", len(data), len(want))
	}

	// Queued frames are written by Drain without a Flush.
	send(4, true)
	within(t, "Drain of a queued frame", func() {
		if err := w.Drain(); err != nil {
			t.Error(err)
		}
	})
	if _, data := cw.stats(); !bytes.Equal(data, want) {
		t.Fatalf("Drain returned with %d of %d bytes written", len(data), len(want))
	}
	within(t, "Drain of nothing", func() {
		if err := w.Drain(); err != nil {
			t.Error(err)
		}
	})
	stop(t, w)
}

// TestWriterConcurrent has many goroutines send frames of varied sizes,
// some with Send, some queued and flushed, some posted, over a synchronous
// pipe, while one reader checks that every frame arrives intact and each
// goroutine's frames in order. Some frames are large enough for senders to
// wait for room in the buffer.
func TestWriterConcurrent(t *testing.T) {
	const senders, frames = 12, 150
	if testing.Short() {
		t.Skip("short")
	}
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	w := NewWriter(a)
	payload := func(g, i int) []byte {
		n := (g*7919 + i*104729) % 3000
		if i%37 == 0 {
			n += BufferLimit / 8
		}
		p := make([]byte, n)
		for j := range p {
			p[j] = byte(g ^ i ^ j)
		}
		return p
	}
	done := make(chan error, 1)
	go func() {
		r := NewReader(bufio.NewReader(b))
		next := make([]int, senders)
		for n := 0; n < senders*frames; n++ {
			typ, id, body, err := r.Next(n%2 == 0)
			if err != nil {
				done <- fmt.Errorf("frame %d: %v", n, err)
				return
			}
			g, i := int(id>>16), int(id&0xffff)
			if typ != TResponse || g >= senders || i != next[g] {
				done <- fmt.Errorf("frame %d: type %v from sender %d seq %d, want seq %d", n, typ, g, i, next[g])
				return
			}
			next[g]++
			code, p, err := DecodeResponse(body)
			if err != nil || code != OK || !bytes.Equal(p, payload(g, i)) {
				done <- fmt.Errorf("sender %d frame %d corrupted (code %d, %d bytes, %v)", g, i, code, len(p), err)
				return
			}
		}
		done <- nil
	}()
	ctx := context.Background()
	var wg sync.WaitGroup
	for g := 0; g < senders; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < frames; i++ {
				id := uint32(g)<<16 | uint32(i)
				p := payload(g, i)
				fn := func(b []byte) []byte { return AppendResponse(b, id, OK, p) }
				var err error
				switch g % 3 {
				case 0:
					err = w.Queue(fn)
					if i%5 == 4 {
						w.Flush()
					}
				case 1:
					err = w.Send(ctx, fn)
				case 2:
					err = w.Post(fn)
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
			w.Flush()
		}()
	}
	within(t, "the senders", wg.Wait)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("reader did not receive every frame: frames were lost or a flush never happened")
	}
	within(t, "Drain", func() {
		if err := w.Drain(); err != nil {
			t.Error(err)
		}
	})
	stop(t, w)
}

// TestWatchEvent round-trips watch events, gap flag included, and refuses
// malformed ones.
func TestWatchEvent(t *testing.T) {
	changes := []backend.Change{{Key: []byte("a"), Value: []byte("1")}, {Key: []byte{}, Deleted: true}, {Key: []byte{0, 0xff}, Value: []byte{}}}
	for _, flags := range []uint8{0, WatchGap} {
		for _, ev := range [][]backend.Change{nil, changes} {
			frame := AppendWatchEvent(nil, 9, flags, ev)
			if len(frame) > WatchEventSize(ev) {
				t.Errorf("frame of %d bytes, WatchEventSize says %d", len(frame), WatchEventSize(ev))
			}
			r := NewReader(bufio.NewReader(bytes.NewReader(frame)))
			typ, id, body, err := r.Next(false)
			if err != nil || typ != TWatchEvent || id != 9 {
				t.Fatalf("frame: %v %d %v", typ, id, err)
			}
			f, got, err := DecodeWatchEvent(body)
			if err != nil || f != flags || len(got) != len(ev) {
				t.Fatalf("decoded %d %v %v, want %d %v", f, got, err, flags, ev)
			}
			for i := range got {
				if !bytes.Equal(got[i].Key, ev[i].Key) || !bytes.Equal(got[i].Value, ev[i].Value) || got[i].Deleted != ev[i].Deleted {
					t.Errorf("change %d: %+v, want %+v", i, got[i], ev[i])
				}
			}
		}
	}
	for _, body := range [][]byte{nil, {2}, {0, 2, 1, 'k'}, {0, 1, 1, 'k'}} {
		if _, _, err := DecodeWatchEvent(body); !errors.Is(err, ErrMalformed) {
			t.Errorf("watch-event body %v: %v, want ErrMalformed", body, err)
		}
	}
}
