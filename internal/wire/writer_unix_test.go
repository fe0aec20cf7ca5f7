//go:build unix

package wire

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"
)

// socketPair returns the two ends of a connected unix socket.
func socketPair(t *testing.T) (a, b *net.UnixConn) {
	t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	conns := make([]*net.UnixConn, 2)
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), filepath.Join("socketpair", string(rune('a'+i))))
		c, err := net.FileConn(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		conns[i] = c.(*net.UnixConn)
		t.Cleanup(func() { conns[i].Close() })
	}
	return conns[0], conns[1]
}

// TestWriterInPlace: on a socket, a sender writes in place. With the
// writer goroutine never woken, a frame sent on an idle connection is
// already in the socket when Send returns.
func TestWriterInPlace(t *testing.T) {
	a, b := socketPair(t)
	w := NewWriter(a)
	defer w.Close()
	if w.try == nil {
		t.Fatal("no in-place write on a *net.UnixConn")
	}
	for i := range 100 {
		if err := w.Send(context.Background(), func(buf []byte) []byte { return AppendResponse(buf, uint32(i), OK, []byte("x")) }); err != nil {
			t.Fatal(err)
		}
		// Nothing else writes: the frame is there now, or never.
		got := make([]byte, FrameSize(2))
		if n, err := readNow(b, got); err != nil || n != len(got) {
			t.Fatalf("frame %d not in the socket when Send returned: %d bytes, %v", i, n, err)
		}
	}
}

// readNow reads what c holds now, without waiting.
func readNow(c *net.UnixConn, b []byte) (int, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	var n int
	var rerr error
	if err := rc.Read(func(fd uintptr) bool {
		n, rerr = syscall.Read(int(fd), b)
		return true
	}); err != nil {
		return 0, err
	}
	return n, rerr
}

// TestWriterSocketFull sends frames of up to 300 KiB from many goroutines
// while the peer does not read at first, so that in-place writes are cut
// short and the rest goes to the writer goroutine. Every frame arrives
// whole, once, and in each goroutine's order.
func TestWriterSocketFull(t *testing.T) {
	a, b := socketPair(t)
	w := NewWriter(a)
	defer w.Close()
	const goroutines, frames = 8, 60
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range frames {
				body := make([]byte, 8+rand.N(300<<10))
				binary.BigEndian.PutUint32(body, uint32(g))
				binary.BigEndian.PutUint32(body[4:], uint32(i))
				for j := 8; j < len(body); j++ {
					body[j] = byte(g + i + j)
				}
				send := func(buf []byte) []byte { return AppendResponse(buf, uint32(g), OK, body) }
				var err error
				switch i % 3 {
				case 0:
					err = w.Send(context.Background(), send)
				case 1:
					err = w.Post(send)
				default:
					if err = w.Queue(send); err == nil {
						w.Flush()
					}
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	time.Sleep(50 * time.Millisecond) // the socket fills up meanwhile
	r := NewReader(bufio.NewReader(b))
	next := make([]int, goroutines)
	for n := 0; n < goroutines*frames; n++ {
		b.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, _, body, err := r.Next(false)
		if err != nil {
			t.Fatalf("frame %d: %v", n, err)
		}
		_, payload, err := DecodeResponse(body)
		if err != nil {
			t.Fatal(err)
		}
		g, i := int(binary.BigEndian.Uint32(payload)), int(binary.BigEndian.Uint32(payload[4:]))
		if g >= goroutines || i != next[g] {
			t.Fatalf("frame %d: goroutine %d frame %d, want frame %d", n, g, i, next[g])
		}
		next[g]++
		for j := 8; j < len(payload); j++ {
			if payload[j] != byte(g+i+j) {
				t.Fatalf("goroutine %d frame %d: byte %d corrupted", g, i, j)
			}
		}
	}
	wg.Wait()
	if err := w.Drain(); err != nil {
		t.Fatal(err)
	}
	b.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if n, err := b.Read(make([]byte, 1)); n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("after every frame: %d more bytes, %v", n, err)
	}
}

// TestWriterSocketStopped: a peer that never reads fills the socket; a
// Send with a deadline then returns at its deadline, and closing the
// connection ends the writer goroutine's blocked write.
func TestWriterSocketStopped(t *testing.T) {
	a, _ := socketPair(t)
	w := NewWriter(a)
	big := bytes.Repeat([]byte{'b'}, 4<<20)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	var err error
	for err == nil {
		err = w.Send(ctx, func(buf []byte) []byte { return AppendResponse(buf, 1, OK, big) })
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("send to a peer that never reads: %v, want DeadlineExceeded", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("send returned %v after its 200ms deadline", took)
	}
	w.Close()
	a.Close()
	done := make(chan struct{})
	go func() { w.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the writer goroutine still blocked after the connection closed")
	}
}

// TestReaderResumesAfterTimeout: a deadline that interrupts a read in the
// middle of a frame loses nothing; the next Next returns the whole frame.
func TestReaderResumesAfterTimeout(t *testing.T) {
	a, b := socketPair(t)
	body := bytes.Repeat([]byte("0123456789"), 20000)
	frame := AppendResponse(nil, 7, OK, body)
	r := NewReader(bufio.NewReaderSize(b, 4096))
	for _, cut := range []int{3, HeaderSize + 5, len(frame) / 2} {
		if _, err := a.Write(frame[:cut]); err != nil {
			t.Fatal(err)
		}
		b.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		if _, _, _, err := r.Next(true); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("cut at %d: %v, want a timeout", cut, err)
		}
		b.SetReadDeadline(time.Time{})
		if _, err := a.Write(frame[cut:]); err != nil {
			t.Fatal(err)
		}
		typ, id, got, err := r.Next(cut%2 == 0)
		if err != nil || typ != TResponse || id != 7 {
			t.Fatalf("cut at %d: %v %d %v", cut, typ, id, err)
		}
		if _, payload, _ := DecodeResponse(got); !bytes.Equal(payload, body) {
			t.Fatalf("cut at %d: body of %d bytes differs", cut, len(payload))
		}
	}
}

// TestPollReader: data that arrives while the reader polls is read; once
// the poll is over the read blocks until data comes; a deadline ends it;
// the end of the connection is io.EOF.
func TestPollReader(t *testing.T) {
	a, b := socketPair(t)
	var polls int
	p := NewPollReader(b, func() time.Duration { polls++; return 20 * time.Millisecond })
	go func() {
		time.Sleep(2 * time.Millisecond) // within the poll
		a.Write([]byte("one"))
		time.Sleep(60 * time.Millisecond) // after it
		a.Write([]byte("two"))
	}()
	buf := make([]byte, 8)
	for _, want := range []string{"one", "two"} {
		n, err := p.Read(buf)
		if err != nil || string(buf[:n]) != want {
			t.Fatalf("read %q, %v; want %q", buf[:n], err, want)
		}
	}
	if polls != 2 {
		t.Errorf("polled %d times, want 2", polls)
	}
	b.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
	if _, err := p.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past the deadline: %v", err)
	}
	b.SetReadDeadline(time.Time{})
	a.Close()
	if _, err := p.Read(buf); !errors.Is(err, io.EOF) {
		t.Fatalf("read at the end: %v, want io.EOF", err)
	}
}

// TestReaderAllocatesAsDataArrives: a header that claims a frame of
// almost MaxFrame bytes, followed by a few bytes and the end, costs the
// reader a small allocation, not the claimed size.
func TestReaderAllocatesAsDataArrives(t *testing.T) {
	frame := AppendHeader(nil, TResponse, 1)
	binary.BigEndian.PutUint32(frame, uint32(MaxFrame-4))
	frame = append(frame, make([]byte, 100)...)
	for _, own := range []bool{true, false} {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		r := NewReader(bufio.NewReader(bytes.NewReader(frame)))
		if _, _, _, err := r.Next(own); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("own %v: %v, want io.ErrUnexpectedEOF", own, err)
		}
		runtime.ReadMemStats(&after)
		if got := after.TotalAlloc - before.TotalAlloc; got > 4<<20 {
			t.Errorf("own %v: %d bytes allocated for a header and 100 bytes", own, got)
		}
	}
}
