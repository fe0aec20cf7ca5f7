package wire

import (
	"context"
	"errors"
	"io"
	"sync"
)

// Writer is the one goroutine that writes a connection. Other goroutines
// hand it frames by appending them to a shared buffer; it writes whatever
// has accumulated in one write, so frames that arrive while a write is
// under way leave together in the next one. No one else ever waits on the
// write system call: a sender waits only for room in the buffer, which is
// bounded so that a peer that stops reading stops those who write to it,
// and a sender with a context stops waiting when the context ends.
type Writer struct {
	w io.Writer

	mu      sync.Mutex    // guards the fields below
	buf     []byte        // frames waiting for the writer goroutine
	spare   []byte        // the previous write's buffer, reused
	writing bool          // the writer goroutine is in a write
	err     error         // why writing stopped; later calls return it
	changed chan struct{} // closed when the buffer is taken, a write ends or writing stops; nil until someone waits

	wake chan struct{} // there may be frames to write; capacity 1
	done chan struct{} // closed when the writer goroutine has returned
}

// BufferLimit is how many bytes of frames may wait for the writer before
// senders wait for room. A single frame may take the buffer past it.
const BufferLimit = 1 << 20

// maxSpare bounds the buffer kept for reuse between writes.
const maxSpare = 4 << 20

// ErrWriterClosed is returned by calls after Close.
var ErrWriterClosed = errors.New("connection writer closed")

// NewWriter starts the writer goroutine of w. The owner calls Close when
// done with the connection, and closes the connection itself, which ends a
// write that is blocked.
func NewWriter(w io.Writer) *Writer {
	wr := &Writer{w: w, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go wr.run()
	return wr
}

// Send appends the frames fn builds once the buffer has room, and returns
// without waiting for them to be written. fn runs on the caller's
// goroutine, so the caller's slices are read before Send returns. Send
// fails with ctx's error if ctx ends while it waits for room, and with the
// write error once writing has failed; either way fn has not run.
func (w *Writer) Send(ctx context.Context, fn func([]byte) []byte) error {
	if err := w.appendFrames(ctx.Done(), ctx.Err, fn); err != nil {
		return err
	}
	w.kick()
	return nil
}

// Queue appends frames like Send, without waking the writer: a burst of
// frames leaves together at the next Flush. It waits for room without a
// context, until the peer reads or writing fails.
func (w *Writer) Queue(fn func([]byte) []byte) error {
	return w.appendFrames(nil, nil, fn)
}

// Flush makes the writer write what Queue appended.
func (w *Writer) Flush() { w.kick() }

// Post appends frames without waiting for room, for the small control
// frames that must never block their sender (an iterator's credit or
// release).
func (w *Writer) Post(fn func([]byte) []byte) error {
	w.mu.Lock()
	if err := w.err; err != nil {
		w.mu.Unlock()
		return err
	}
	w.buf = fn(w.buf)
	w.mu.Unlock()
	w.kick()
	return nil
}

func (w *Writer) appendFrames(done <-chan struct{}, cause func() error, fn func([]byte) []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
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
	if w.err == nil {
		w.err = ErrWriterClosed
		w.buf = nil
		w.signalLocked()
	}
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

func (w *Writer) run() {
	defer close(w.done)
	for range w.wake {
		w.mu.Lock()
		for len(w.buf) > 0 && w.err == nil {
			out := w.buf
			w.buf = w.spare[:0]
			w.writing = true
			w.signalLocked() // the buffer has room again
			w.mu.Unlock()
			_, err := w.w.Write(out)
			w.mu.Lock()
			w.writing = false
			if cap(out) <= maxSpare {
				w.spare = out[:0]
			} else {
				w.spare = nil
			}
			if err != nil && w.err == nil {
				w.err = err
				w.buf = nil
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
