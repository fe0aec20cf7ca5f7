package wire

import (
	"context"
	"errors"
	"io"
	"sync"
)

// Writer writes a connection for many goroutines. They hand it frames by
// appending them to a shared buffer, which is written whole, so frames
// that arrive while a write is under way leave together in the next one.
//
// No sender ever waits on a write system call. When no write is under way,
// the sender writes the buffer in place, without blocking: on an idle
// connection a frame leaves at once, with no hand-off to another
// goroutine. What the socket does not take at once goes to the Writer's
// own goroutine, which waits until the peer reads; meanwhile senders only
// append, and the buffer is bounded, so a peer that stops reading stops
// those who write to it, and a sender with a context stops waiting when the
// context ends.
type Writer struct {
	w   io.Writer                 // blocking writes, by the writer goroutine
	try func([]byte) (int, error) // a write that never blocks; nil if w has none

	mu      sync.Mutex    // guards the fields below
	buf     []byte        // frames waiting to be written
	spare   []byte        // the previous write's buffer, reused
	writing bool          // a write is under way: others only append
	err     error         // why writing stopped; later calls return it
	changed chan struct{} // closed when the buffer is taken, a write ends or writing stops; nil until someone waits

	wake chan struct{} // there may be frames for the writer goroutine; capacity 1
	done chan struct{} // closed when the writer goroutine has returned
}

// BufferLimit is how many bytes of frames may wait to be written before
// senders wait for room. A single frame may take the buffer past it.
const BufferLimit = 1 << 20

// maxSpare bounds the buffer kept for reuse between writes.
const maxSpare = 4 << 20

// maxRounds bounds how many writes one sender performs in place for frames
// that others appended meanwhile, before it leaves the rest to the writer
// goroutine.
const maxRounds = 8

// ErrWriterClosed is returned by calls after Close.
var ErrWriterClosed = errors.New("connection writer closed")

// NewWriter starts the writer goroutine of w. When w is a connection that
// exposes its descriptor (syscall.Conn, as *net.UnixConn does), senders
// write in place without blocking; otherwise every write is the writer
// goroutine's. The owner calls Close when done with the connection, and
// closes the connection itself, which ends a write that is blocked.
func NewWriter(w io.Writer) *Writer {
	wr := &Writer{w: w, try: tryWriter(w), wake: make(chan struct{}, 1), done: make(chan struct{})}
	go wr.run()
	return wr
}

// Send appends the frames fn builds once the buffer has room, and writes
// them in place if no write is under way and the socket takes them at
// once; it never waits on the write itself. fn runs on the caller's
// goroutine, so the caller's slices are read before Send returns. Send
// fails with ctx's error if ctx ends while it waits for room, and with the
// write error once writing has failed; either way fn has not run.
func (w *Writer) Send(ctx context.Context, fn func([]byte) []byte) error {
	w.mu.Lock()
	if err := w.appendLocked(ctx.Done(), ctx.Err, fn); err != nil {
		w.mu.Unlock()
		return err
	}
	w.flushLocked()
	return nil
}

// Queue appends frames like Send, without writing them: a burst of frames
// leaves together at the next Flush. It waits for room without a context,
// until the peer reads or writing fails.
func (w *Writer) Queue(fn func([]byte) []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.appendLocked(nil, nil, fn)
}

// QueueContext is Queue with a context: it fails with ctx's error if ctx
// ends while it waits for room.
func (w *Writer) QueueContext(ctx context.Context, fn func([]byte) []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.appendLocked(ctx.Done(), ctx.Err, fn)
}

// Flush writes what Queue appended, as Send does.
func (w *Writer) Flush() {
	w.mu.Lock()
	w.flushLocked()
}

// Post appends frames without waiting for room, and writes them as Send
// does: for the small control frames that must never block their sender
// (an iterator's credit or release).
func (w *Writer) Post(fn func([]byte) []byte) error {
	w.mu.Lock()
	if err := w.err; err != nil {
		w.mu.Unlock()
		return err
	}
	w.buf = fn(w.buf)
	w.flushLocked()
	return nil
}

// appendLocked waits for room and appends; w.mu is held.
func (w *Writer) appendLocked(done <-chan struct{}, cause func() error, fn func([]byte) []byte) error {
	for w.err == nil && len(w.buf) >= BufferLimit {
		w.kick()
		if !w.waitLocked(done) {
			return cause()
		}
	}
	if w.err != nil {
		return w.err
	}
	w.buf = fn(w.buf)
	return nil
}

// flushLocked writes the buffer in place, without blocking, unless a write
// is under way; what the socket does not take goes to the writer
// goroutine. It is called with w.mu held and releases it.
func (w *Writer) flushLocked() {
	for round := 0; w.try != nil && round < maxRounds && !w.writing && w.err == nil && len(w.buf) > 0; round++ {
		out := w.buf
		w.buf = w.spare[:0]
		w.writing = true
		w.signalLocked() // the buffer has room again
		w.mu.Unlock()
		n, err := w.try(out)
		w.mu.Lock()
		w.writing = false
		w.signalLocked()
		if err != nil {
			w.failLocked(err)
			break
		}
		if n < len(out) {
			// The socket is full: the rest goes first, by the writer
			// goroutine, which waits until the peer reads.
			rest := make([]byte, 0, len(out)-n+len(w.buf))
			w.buf = append(append(rest, out[n:]...), w.buf...)
			w.keepSpare(out)
			break
		}
		w.keepSpare(out)
	}
	if !w.writing && w.err == nil && len(w.buf) > 0 {
		w.kick()
	}
	w.mu.Unlock()
}

// keepSpare keeps a written buffer for reuse, unless it is outsized.
func (w *Writer) keepSpare(b []byte) {
	if cap(b) <= maxSpare {
		w.spare = b[:0]
	} else {
		w.spare = nil
	}
}

// failLocked records the first write error and drops what waits.
func (w *Writer) failLocked(err error) {
	if w.err == nil {
		w.err = err
		w.buf = nil
	}
	w.signalLocked()
}

// Drain waits until every frame appended so far is written, or writing has
// stopped, and returns why it stopped if it did: with a nil error, the
// connection may be closed without losing a frame.
func (w *Writer) Drain() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for w.err == nil && (len(w.buf) > 0 || w.writing) {
		w.kick()
		w.waitLocked(nil)
	}
	return w.err
}

// Close stops the writer goroutine once its write under way, if any, has
// ended; frames not yet written are dropped. Later calls fail with
// ErrWriterClosed.
func (w *Writer) Close() {
	w.mu.Lock()
	w.failLocked(ErrWriterClosed)
	w.mu.Unlock()
	w.kick()
}

// Wait waits for the writer goroutine to return: after Close, once a write
// under way has ended, which closing the connection makes happen.
func (w *Writer) Wait() { <-w.done }

// Err returns why writing stopped, or nil.
func (w *Writer) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

func (w *Writer) kick() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// waitLocked waits for the next change of state, with w.mu held on entry
// and on return, and reports false if done was closed first.
func (w *Writer) waitLocked(done <-chan struct{}) bool {
	if w.changed == nil {
		w.changed = make(chan struct{})
	}
	ch := w.changed
	w.mu.Unlock()
	defer w.mu.Lock()
	select {
	case <-ch:
		return true
	case <-done:
		return false
	}
}

// signalLocked wakes the goroutines waiting for a change; w.mu is held.
func (w *Writer) signalLocked() {
	if w.changed != nil {
		close(w.changed)
		w.changed = nil
	}
}

// run is the writer goroutine: it writes, blocking, what senders could
// not write in place.
func (w *Writer) run() {
	defer close(w.done)
	for range w.wake {
		w.mu.Lock()
		for !w.writing && w.err == nil && len(w.buf) > 0 {
			out := w.buf
			w.buf = w.spare[:0]
			w.writing = true
			w.signalLocked() // the buffer has room again
			w.mu.Unlock()
			_, err := w.w.Write(out)
			w.mu.Lock()
			w.writing = false
			w.keepSpare(out)
			if err != nil {
				w.failLocked(err)
			}
			w.signalLocked()
		}
		stop := w.err != nil
		w.mu.Unlock()
		if stop {
			return
		}
	}
}
