//go:build unix

package wire

import (
	"io"
	"runtime"
	"syscall"
	"time"
)

// PollReader reads a socket for a bufio.Reader. While poll reports a
// duration above zero, a read that finds nothing to read polls the socket
// with non-blocking reads for up to that long before it blocks in Go's
// network poller: an answer that comes within the poll is read with no
// sleep and no wake-up, at the cost of a core spinning meanwhile. Deadlines
// set on the socket end the blocking read, and so a poll within its bound.
type PollReader struct {
	r    io.Reader
	try  func([]byte) (int, error, bool)
	poll func() time.Duration
}

// NewPollReader returns a reader of c that polls as poll says each time it
// would block. It reads plainly when c exposes no descriptor.
func NewPollReader(c io.Reader, poll func() time.Duration) *PollReader {
	return &PollReader{r: c, try: tryReader(c), poll: poll}
}

// Read reads into b, polling first as the poll function says.
func (p *PollReader) Read(b []byte) (int, error) {
	if p.try != nil {
		if d := p.poll(); d > 0 {
			deadline := time.Now().Add(d)
			for i := 1; ; i++ {
				if n, err, ok := p.try(b); ok {
					return n, err
				}
				if i%32 == 0 {
					if time.Now().After(deadline) {
						break
					}
					runtime.Gosched() // let others run on this core meanwhile
				}
			}
		}
	}
	return p.r.Read(b)
}

// tryReader returns a read of r's descriptor that never blocks: ok is false
// when there is nothing to read now.
func tryReader(r io.Reader) func([]byte) (int, error, bool) {
	sc, ok := r.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return func(b []byte) (int, error, bool) {
		var n int
		var rerr error
		if err := rc.Read(func(fd uintptr) bool {
			for {
				n, rerr = syscall.Read(int(fd), b)
				if rerr != syscall.EINTR {
					return true // never wait here
				}
			}
		}); err != nil {
			return 0, err, true // closed, or past its deadline
		}
		switch {
		case rerr == syscall.EAGAIN:
			return 0, nil, false
		case rerr != nil:
			return 0, rerr, true
		case n == 0:
			return 0, io.EOF, true
		}
		return n, nil, true
	}
}
