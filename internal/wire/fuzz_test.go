package wire

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/levelparty/party/backend"
)

// Fuzz targets for everything that decodes bytes from a peer. Each checks
// that decoding never panics, that it fails with one of the package's
// errors, and that whatever decodes encodes to a message that decodes to
// the same value. Where the format is canonical (frames, hellos, welcomes,
// statuses) the re-encoding must be the very bytes that were read; where
// lengths are uvarints, which admit redundant encodings, the re-encoding
// must be a fixed point: encoding its decoding gives it back.
//
// Seed corpora live in testdata/fuzz/<FuzzName>/ and run with `go test`.
// Batch records are fuzzed by FuzzForEachRecord in package backend, which
// owns their format.

// FuzzReader feeds arbitrary bytes to Reader.Next until it fails.
func FuzzReader(f *testing.F) {
	var valid []byte
	for _, r := range sampleRequests() {
		valid = AppendRequest(valid, &r)
	}
	valid = AppendResponse(valid, 1, NotFound, nil)
	f.Add(valid)
	f.Add(frameOf(TGet, 1, nil))
	f.Add(frameOf(200, 1, []byte("x")))
	f.Add([]byte{0, 0, 0, 2, 1})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 1, 0, 0, 0, 1})
	f.Add(valid[:len(valid)-1])
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewReader(bufio.NewReaderSize(bytes.NewReader(data), 16))
		consumed := 0 // bytes of data returned as frames so far
		for n := 0; ; n++ {
			typ, id, body, err := r.Next(n%2 == 1)
			if err != nil {
				rest := data[consumed:]
				switch {
				case err == io.EOF:
					if len(rest) != 0 {
						t.Fatalf("io.EOF with %d bytes left", len(rest))
					}
				case err == io.ErrUnexpectedEOF:
					if len(rest) >= HeaderSize && int(binary.BigEndian.Uint32(rest))+4 <= len(rest) {
						t.Fatalf("unexpected EOF with a whole frame left: %x", rest)
					}
				case errors.Is(err, ErrFrameTooLarge), errors.Is(err, ErrFrameTooSmall), errors.Is(err, ErrUnknownType):
					if len(rest) < HeaderSize {
						t.Fatalf("%v from %d bytes, less than a header", err, len(rest))
					}
				default:
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if !typ.Known() {
				t.Fatalf("frame of unknown type %d returned", typ)
			}
			if FrameSize(len(body)) > MaxFrame {
				t.Fatalf("frame of %d bytes passed the limit of %d", FrameSize(len(body)), MaxFrame)
			}
			enc := frameOf(typ, id, body)
			if !bytes.HasPrefix(data[consumed:], enc) {
				t.Fatalf("frame %d re-encodes as %x, read %x", n, enc, data[consumed:min(len(data), consumed+len(enc))])
			}
			consumed += len(enc)
		}
	})
}

// isRequestType reports whether t is sent by followers.
func isRequestType(t Type) bool {
	return t >= TGet && t <= TStatus || t >= TTxBegin && t <= TTxResolve || t == TWatchOpen || t == TWatchClose ||
		t >= TCompact && t <= TProperty
}

// FuzzDecodeRequest decodes an arbitrary body as each request type.
func FuzzDecodeRequest(f *testing.F) {
	for _, r := range sampleRequests() {
		frame := AppendRequest(nil, &r)
		f.Add(uint8(r.Type), r.ID, frame[HeaderSize:])
	}
	f.Add(uint8(TIterSeek), uint32(1), []byte{0, 0, 0, 1, 9, 0, 0, 0, 1, 0})
	f.Add(uint8(TResponse), uint32(1), []byte{0})
	f.Add(uint8(TGet), uint32(1), []byte{0, 0, 0, 0, 0x80, 0x00}) // redundant uvarint
	f.Fuzz(func(t *testing.T, typ uint8, id uint32, body []byte) {
		var r Request
		err := DecodeRequest(Type(typ), id, body, &r)
		if !isRequestType(Type(typ)) {
			if !errors.Is(err, ErrUnknownType) {
				t.Fatalf("type %d decoded as a request: %v", typ, err)
			}
			return
		}
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		if r.Type != Type(typ) || r.ID != id {
			t.Fatalf("decoded type %v id %d", r.Type, r.ID)
		}
		if r.Type == TBatch {
			if _, err := backend.CountRecords(r.Records); err != nil {
				t.Fatalf("batch decoded with records that do not validate: %v", err)
			}
		}
		frame := AppendRequest(nil, &r)
		if len(frame)-HeaderSize > len(body) {
			t.Fatalf("re-encoding grew from %d to %d bytes", len(body), len(frame)-HeaderSize)
		}
		t2, id2, body2, err := readerOf(frame).Next(true)
		if err != nil {
			t.Fatalf("re-encoded frame unreadable: %v", err)
		}
		var r2 Request
		if err := DecodeRequest(t2, id2, body2, &r2); err != nil {
			t.Fatalf("re-encoded %v does not decode: %v", r.Type, err)
		}
		if d := requestDiff(&r, &r2); d != "" {
			t.Fatalf("round trip of %v: %s", r.Type, d)
		}
		if again := AppendRequest(nil, &r2); !bytes.Equal(again, frame) {
			t.Fatalf("encoding is not a fixed point:\n%x\n%x", frame, again)
		}
	})
}

// FuzzDecodeIterBatch decodes an arbitrary iter-batch body.
func FuzzDecodeIterBatch(f *testing.F) {
	for i, b := range sampleIterBatches() {
		frame, _ := iterBatchFrame(uint32(i), b)
		f.Add(frame[HeaderSize:])
	}
	f.Add([]byte{0, 0, 0, 1, 0, 2, 0})
	f.Fuzz(func(t *testing.T, body []byte) {
		var b IterBatch
		if err := DecodeIterBatch(body, &b); err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		if b.Code >= codeEnd {
			t.Fatalf("unknown code %d decoded", b.Code)
		}
		frame, _ := iterBatchFrame(7, b)
		if len(frame)-HeaderSize > len(body) {
			t.Fatalf("re-encoding grew from %d to %d bytes", len(body), len(frame)-HeaderSize)
		}
		_, _, body2, err := readerOf(frame).Next(true)
		if err != nil {
			t.Fatal(err)
		}
		var b2 IterBatch
		if err := DecodeIterBatch(body2, &b2); err != nil {
			t.Fatalf("re-encoded batch does not decode: %v", err)
		}
		if d := iterBatchDiff(&b, &b2); d != "" {
			t.Fatalf("round trip: %s", d)
		}
		if again, _ := iterBatchFrame(7, b2); !bytes.Equal(again, frame) {
			t.Fatalf("encoding is not a fixed point:\n%x\n%x", frame, again)
		}
	})
}

// FuzzReadHello reads an arbitrary hello: the format is canonical.
func FuzzReadHello(f *testing.F) {
	f.Add(AppendHello(nil, Hello{Version: Version}))
	f.Add(AppendHello(nil, Hello{Version: 2, Flags: HelloNoRetry, BusyPoll: 50 * time.Microsecond}))
	f.Add(AppendHello(nil, Hello{Version: 1, Flags: HelloNoRetry}))
	f.Add([]byte("LVLPART"))
	f.Add([]byte("GET / HTTP/1.1\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := ReadHello(bytes.NewReader(data))
		if err != nil {
			if len(data) >= HelloSize && [8]byte(data[:8]) != Magic && !errors.Is(err, ErrNotParty) {
				t.Fatalf("%d bytes: %v, want ErrNotParty", len(data), err)
			}
			if !errors.Is(err, ErrNotParty) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
				t.Fatalf("%d bytes: %v, want ErrNotParty or an EOF", len(data), err)
			}
			return
		}
		if h.BusyPoll < 0 || h.BusyPoll > maxBusyPoll {
			t.Fatalf("busy poll %v out of bounds", h.BusyPoll)
		}
		enc := AppendHello(nil, h)
		if !bytes.Equal(enc[:HelloSize], data[:HelloSize]) || hasBusyPoll(h.Version) != (len(enc) == HelloSize+4) {
			t.Fatalf("hello re-encodes as %x, read %x", enc, data[:min(len(data), len(enc))])
		}
	})
}

// FuzzReadWelcome reads an arbitrary welcome: the format is canonical.
func FuzzReadWelcome(f *testing.F) {
	f.Add(AppendWelcome(nil, Welcome{Version: Version, PID: 1, LeaderID: [16]byte{1}}))
	f.Add(AppendWelcome(nil, Welcome{Version: 9, Status: WelcomeVersion, Msg: "leader speaks protocol version 9"}))
	f.Add(AppendWelcome(nil, Welcome{Version: Version, Status: WelcomeRefused, Msg: string(bin)})[:welcomeFixed+2])
	f.Fuzz(func(t *testing.T, data []byte) {
		w, err := ReadWelcome(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, ErrNotParty) && !errors.Is(err, ErrMalformed) &&
				!errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		n := welcomeFixed + len(w.Msg)
		if enc := AppendWelcome(nil, w); !bytes.Equal(enc, data[:n]) {
			t.Fatalf("welcome re-encodes as %x, read %x", enc, data[:n])
		}
	})
}

// FuzzDecodeStatus decodes an arbitrary status body: canonical.
func FuzzDecodeStatus(f *testing.F) {
	f.Add(AppendStatus(nil, backend.Status{PID: 1, Followers: 2, DiskSize: 3}))
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := DecodeStatus(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if enc := AppendStatus(nil, s); !bytes.Equal(enc, data) {
			t.Fatalf("status re-encodes as %x, read %x", enc, data)
		}
	})
}
