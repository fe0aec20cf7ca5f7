package host

import (
	"errors"
	"fmt"

	"github.com/levelparty/party/backend"
	"github.com/levelparty/party/internal/engine"
	"github.com/levelparty/party/internal/wire"
)

// A follower's watches. Each is a watch on the engine, whose bounded
// buffer takes the changes as writes commit, and a goroutine that sends
// them: it may wait for room in the connection's writer when the follower
// reads slowly, while writers never wait (the engine drops what does not
// fit and reports a gap, which travels as a flag of the next event).

// maxWatches bounds the watches one connection may hold.
const maxWatches = 1 << 10

var errTooManyWatches = fmt.Errorf("more than %d watches open on one connection", maxWatches)

// openWatch registers watch id and starts sending its changes; it returns
// the error to answer with.
func (c *conn) openWatch(req *wire.Request) error {
	c.tx.mu.Lock()
	defer c.tx.mu.Unlock()
	if c.watches == nil {
		c.watches = make(map[uint32]*engine.Watch)
	}
	if old, ok := c.watches[req.Watch]; ok {
		old.Close()
		delete(c.watches, req.Watch)
	}
	if len(c.watches) >= maxWatches {
		return errTooManyWatches
	}
	w, err := c.eng.Watch(req.Range, 0)
	if err != nil {
		return err
	}
	c.watches[req.Watch] = w
	c.bg.Add(1)
	go c.sendWatch(req.Watch, w)
	return nil
}

// sendWatch sends the changes of w as TWatchEvent frames until it is
// closed or the connection ends. It waits for one event, then queues
// those already there too (up to about sendBatchBytes), and writes them
// together: one write for a burst, not one per event.
func (c *conn) sendWatch(id uint32, w *engine.Watch) {
	defer c.bg.Done()
	var flags uint8
	for {
		ev, err := w.Next(c.ctx)
		for size := 0; ; {
			switch {
			case errors.Is(err, backend.ErrWatchGap):
				flags |= wire.WatchGap
				ev = nil // say it now: the next event may be long in coming
			case err != nil:
				c.out.Flush()
				return // closed, or the connection ended
			}
			es := wire.WatchEventSize(ev)
			if es > wire.MaxFrame {
				ev, flags = nil, flags|wire.WatchGap // one write too large for a frame
			}
			f := flags
			if err := c.out.QueueContext(c.ctx, func(b []byte) []byte { return wire.AppendWatchEvent(b, id, f, ev) }); err != nil {
				return
			}
			flags = 0
			size += es
			var ok bool
			if size >= sendBatchBytes {
				break
			}
			if ev, err, ok = w.TryNext(); !ok {
				break
			}
		}
		c.out.Flush()
	}
}

// sendBatchBytes bounds the events a watch queues before it writes.
const sendBatchBytes = 256 << 10

// closeWatch ends watch id.
func (c *conn) closeWatch(id uint32) {
	c.tx.mu.Lock()
	w := c.watches[id]
	delete(c.watches, id)
	c.tx.mu.Unlock()
	if w != nil {
		w.Close()
	}
}

// closeWatches ends every watch of the connection.
func (c *conn) closeWatches() {
	c.tx.mu.Lock()
	ws := c.watches
	c.watches = nil
	c.tx.mu.Unlock()
	for _, w := range ws {
		w.Close()
	}
}
