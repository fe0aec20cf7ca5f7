package host

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"sync"

	"github.com/levelparty/party/backend"
	"github.com/levelparty/party/internal/engine"
	"github.com/levelparty/party/internal/wire"
)

// A connection and the transaction lease. While another participant holds
// the lease, the connection's writes wait, but its reads must not: the
// holder itself may be this follower, whose commit arrives behind them.
// So nothing here waits on the connection's own goroutine: writes that
// cannot apply are parked and applied in order by a goroutine, lease
// requests are queued for a goroutine that waits for each in turn, and a
// resolve waits on a goroutine of its own. They give up, unanswered, when
// the connection ends (c.ctx): the follower sends unanswered requests to
// the next leader, and none of them was applied.

// txState is a connection's share of the lease.
type txState struct {
	mu       sync.Mutex
	lease    *engine.Lease // held by this connection's follower, or nil
	leaseID  uint32        // its id: the id of the request that asked for it
	waiting  uint32        // the id of the request whose lease is being waited for
	dropped  bool          // the follower gave up on that request
	stopWait func()        // ends the wait for that request's lease
	ended    bool          // the connection ended: a lease granted now is released
	parked   []*parked     // writes waiting for the lease to end, in order
	applying bool          // a goroutine applies the parked writes
	begins   []beginReq    // lease requests waiting, in order
	granting bool          // a goroutine waits for the lease for them
}

// parked is a group of writes waiting for the lease to end.
type parked struct {
	group engine.Group
	acks  []uint32
	sync  bool
}

// beginReq is a lease request waiting for its turn.
type beginReq struct {
	id  uint32
	req wire.Request
}

// parking reports whether writes are parked: later ones must park behind
// them, to keep the connection's writes in order.
func (c *conn) parking() bool {
	c.tx.mu.Lock()
	defer c.tx.mu.Unlock()
	return c.tx.applying
}

// park moves the gathered writes to the parked queue.
func (c *conn) park() {
	p := &parked{group: c.group, acks: slices.Clone(c.groupAcks), sync: c.groupSync}
	c.group = engine.Group{}
	c.groupAcks = c.groupAcks[:0]
	c.groupSync = false
	c.tx.mu.Lock()
	c.tx.parked = append(c.tx.parked, p)
	start := !c.tx.applying
	c.tx.applying = true
	c.tx.mu.Unlock()
	if start {
		c.bg.Add(1)
		go c.applyParked()
	}
}

// applyParked applies the parked writes in order, each once the gate lets
// it, and acknowledges them.
func (c *conn) applyParked() {
	defer c.bg.Done()
	for {
		c.tx.mu.Lock()
		if len(c.tx.parked) == 0 {
			c.tx.applying = false
			c.tx.mu.Unlock()
			return
		}
		p := c.tx.parked[0]
		c.tx.parked = c.tx.parked[1:]
		c.tx.mu.Unlock()
		if err := c.eng.Enter(c.ctx); err != nil {
			continue // the connection ended: dropped, unanswered and unapplied
		}
		err := c.eng.Apply(&p.group, p.sync)
		c.eng.Leave()
		code, msg := wire.CodeOf(err)
		for _, id := range p.acks {
			c.out.Queue(func(b []byte) []byte { return wire.AppendResponse(b, id, code, msg) })
		}
		c.out.Flush()
	}
}

// beginTx queues a lease request.
func (c *conn) beginTx(id uint32, req *wire.Request) {
	c.tx.mu.Lock()
	c.tx.begins = append(c.tx.begins, beginReq{id: id, req: *req})
	start := !c.tx.granting
	c.tx.granting = true
	c.tx.mu.Unlock()
	if start {
		c.bg.Add(1)
		go c.grantLeases()
	}
}

// grantLeases waits for the lease for each queued request in turn and
// answers it with the lease's id.
func (c *conn) grantLeases() {
	defer c.bg.Done()
	for {
		c.tx.mu.Lock()
		if len(c.tx.begins) == 0 {
			c.tx.granting = false
			c.tx.mu.Unlock()
			return
		}
		b := c.tx.begins[0]
		c.tx.begins = c.tx.begins[1:]
		ctx, cancel := context.WithCancel(c.ctx)
		c.tx.waiting, c.tx.dropped, c.tx.stopWait = b.id, false, cancel
		c.tx.mu.Unlock()
		l, err := c.eng.Lock(ctx, b.req.Holder, b.req.Timeout)
		cancel()
		if ctx.Err() != nil && l == nil {
			continue // dropped, or the connection ended: unanswered
		}
		if c.ctx.Err() != nil {
			if l != nil {
				l.Release(fmt.Errorf("%w: the follower's connection closed", backend.ErrTxAborted))
			}
			continue
		}
		var body []byte
		if err == nil {
			c.tx.mu.Lock()
			if c.tx.ended || c.tx.dropped {
				c.tx.waiting = 0
				c.tx.mu.Unlock()
				l.Release(fmt.Errorf("%w: the follower gave up waiting", backend.ErrTxAborted))
				continue
			}
			if c.tx.lease != nil {
				// Only one lease is held at a time, and this
				// connection's is still open: it is from an earlier
				// transaction of this follower that it never ended.
				c.tx.lease.Release(fmt.Errorf("%w: a newer transaction replaced it", backend.ErrTxAborted))
			}
			c.tx.lease, c.tx.leaseID, c.tx.waiting = l, b.id, 0
			body = binary.BigEndian.AppendUint32(nil, b.id)
			c.tx.mu.Unlock()
		}
		code, msg := wire.CodeOf(err)
		if code != wire.OK {
			body = msg
		}
		c.out.Queue(func(dst []byte) []byte { return wire.AppendResponse(dst, b.id, code, body) })
		c.out.Flush()
	}
}

// takeLease returns the lease named id and forgets it, or nil.
func (c *conn) takeLease(id uint32) *engine.Lease {
	c.tx.mu.Lock()
	defer c.tx.mu.Unlock()
	if c.tx.lease == nil || c.tx.leaseID != id {
		return nil
	}
	l := c.tx.lease
	c.tx.lease = nil
	return l
}

// errNoLease answers a commit of a lease this connection does not hold.
var errNoLease = fmt.Errorf("%w: no such transaction on the leader (it ended)", backend.ErrTxAborted)

// commitTx applies a transaction's writes with its commit record.
func (c *conn) commitTx(req *wire.Request) error {
	l := c.takeLease(req.Lease)
	if l == nil {
		return errNoLease
	}
	return l.Commit(req.Records, req.Seq, req.Done, req.Flags&wire.FlagSync != 0)
}

// discardTx ends a lease without applying anything, or drops the request
// for it if it is not granted yet: a follower whose wait for the lease
// ended sends it, since the lease might be granted after it gave up.
func (c *conn) discardTx(id uint32) {
	c.tx.mu.Lock()
	if c.tx.waiting == id {
		c.tx.dropped = true
		c.tx.stopWait()
	}
	c.tx.begins = slices.DeleteFunc(c.tx.begins, func(b beginReq) bool { return b.id == id })
	c.tx.mu.Unlock()
	if l := c.takeLease(id); l != nil {
		l.Release(fmt.Errorf("%w: discarded", backend.ErrTxAborted))
	}
}

// resolveTx answers whether a holder's commit was applied, once no lease
// of that holder is held.
func (c *conn) resolveTx(id uint32, req *wire.Request) {
	holder, seq := engine.Holder(req.Holder), req.Seq
	c.bg.Add(1)
	go func() {
		defer c.bg.Done()
		applied, err := c.eng.Resolve(c.ctx, holder, seq)
		if c.ctx.Err() != nil {
			return
		}
		code, msg := wire.CodeOf(err)
		body := []byte{0}
		if applied {
			body[0] = 1
		}
		if code != wire.OK {
			body = msg
		}
		c.out.Queue(func(dst []byte) []byte { return wire.AppendResponse(dst, id, code, body) })
		c.out.Flush()
	}()
}

// endTx ends what the connection holds or waits for: the lease is
// released, and its waiting goroutines give up.
func (c *conn) endTx() {
	c.cancel()
	c.tx.mu.Lock()
	c.tx.ended = true
	l := c.tx.lease
	c.tx.lease = nil
	c.tx.mu.Unlock()
	if l != nil {
		l.Release(fmt.Errorf("%w: the follower's connection closed", backend.ErrTxAborted))
	}
}
