package wire

import (
	"io"
	"sync"
)

// Writer coalesces frames from many goroutines into few writes. Frames are
// appended to a shared buffer; the goroutine that finds no write under way
// becomes the writer and writes until the buffer is empty, so frames queued
// meanwhile by others leave in the same write. Nobody waits for a dedicated
// writer goroutine to wake up, and an idle connection costs no goroutine.
type Writer struct {
	w io.Writer

	mu      sync.Mutex // guards the fields below
	idle    sync.Cond  // signalled when a writer stops writing
	buf     []byte     // frames waiting to be written
	spare   []byte     // the previous write's buffer, reused
	writing bool       // a goroutine is writing
	err     error      // the first write error; every later call returns it
}

// NewWriter returns a Writer on w. A write error is kept and returned by
// every later call; the owner should then close the connection.
func NewWriter(w io.Writer) *Writer {
	wr := &Writer{w: w}
	wr.idle.L = &wr.mu
	return wr
}

// maxRounds bounds how many writes one caller performs for others before
// handing the rest to a new goroutine, so a caller is never held hostage by
// a steady stream of frames from other goroutines.
const maxRounds = 8

// Queue appends frames built by fn without writing them. Call Flush later.
func (w *Writer) Queue(fn func([]byte) []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	w.buf = fn(w.buf)
	return nil
}

// Send appends frames built by fn and makes sure they are written: by this
// goroutine if no write is under way, otherwise by the goroutine writing.
func (w *Writer) Send(fn func([]byte) []byte) error {
	w.mu.Lock()
	if w.err != nil {
		w.mu.Unlock()
		return w.err
	}
	w.buf = fn(w.buf)
	return w.flushLocked()
}

// Flush writes whatever is queued, unless another goroutine is writing,
// which will then write it.
func (w *Writer) Flush() error {
	w.mu.Lock()
	return w.flushLocked()
}

// flushLocked is called with w.mu held and releases it.
func (w *Writer) flushLocked() error {
	if w.writing || w.err != nil || len(w.buf) == 0 {
		err := w.err
		w.mu.Unlock()
		return err
	}
	w.writing = true
	for round := 0; len(w.buf) > 0; round++ {
		if round == maxRounds {
			w.writing = false
			w.idle.Broadcast()
			w.mu.Unlock()
			go w.Flush()
			return nil
		}
		out := w.buf
		w.buf = w.spare[:0]
		w.mu.Unlock()
		_, err := w.w.Write(out)
		w.mu.Lock()
		if cap(out) <= 1<<20 {
			w.spare = out[:0]
		} else {
			w.spare = nil
		}
		if err != nil {
			w.err = err
			w.buf = nil
			break
		}
	}
	w.writing = false
	w.idle.Broadcast()
	err := w.err
	w.mu.Unlock()
	return err
}

// Drain writes whatever is queued and returns once nothing is queued or
// being written, or the connection has failed: the connection may then be
// closed without losing a frame.
func (w *Writer) Drain() error {
	w.mu.Lock()
	for {
		for w.writing && w.err == nil {
			w.idle.Wait()
		}
		if w.err != nil || len(w.buf) == 0 {
			err := w.err
			w.mu.Unlock()
			return err
		}
		w.flushLocked() // unlocks
		w.mu.Lock()
	}
}

// Err returns the first write error, if any.
func (w *Writer) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}
