// Package call holds a follower's unit of work: one operation on the
// leader, from the moment it is issued until it has an outcome. A call
// waits in its handle's queue while there is no leader, is registered on
// the connection to a leader while in flight, and goes back to the queue
// if that leader is lost; it is finished exactly once, by an outcome, a
// failure, or its caller giving up.
//
// The caller's slices (key, value, batch, range) are read by the caller's
// own goroutine when it sends the call. Any other goroutine that needs them
// later (to send the call again, or to run it on this process's engine
// after an election) first calls Own, which copies them unless the caller
// has given up; Abandon waits for a copy under way. So once a method of the
// public API returns, nothing reads its caller's slices again.
package call

import (
	"bytes"
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/levelparty/party/backend"
	"github.com/levelparty/party/internal/engine"
)

// Kind is what a call does.
type Kind uint8

// Kinds of calls.
const (
	Get         Kind = iota + 1 // Key; outcome Value
	Has                         // Key; outcome Found
	Put                         // Key, Value
	Delete                      // Key
	Write                       // Batch
	DeleteRange                 // Range
	Snapshot                    // outcome SnapID on Conn, or Local
	Status                      // outcome Status
	IterOpen                    // Iter, Range; bound
	TxBegin                     // Holder, Timeout; outcome LeaseID
	TxCommit                    // Lease, TxSeq, Batch; bound
	TxResolve                   // Holder, TxSeq; outcome Found: the commit was applied
	WatchOpen                   // Iter (the watch id), Range; bound
	Compact                     // Range
	SizeOf                      // Ranges; outcome Sizes
	Property                    // Key (the name); outcome Value
)

// IsWrite reports whether the call changes data.
func (k Kind) IsWrite() bool { return k >= Put && k <= DeleteRange }

// Call is one operation and, once finished, its outcome.
type Call struct {
	Kind   Kind
	Key    []byte
	Value  []byte // the value to put; for Get, the outcome
	Batch  *backend.Batch
	Range  backend.Range
	Ranges []backend.Range // SizeOf
	Sync   bool            // fsync writes before acknowledging
	Snap   uint32          // Get, Has, IterOpen: the leader's snapshot to read; 0 for none
	Iter   uint32          // IterOpen: the iterator's id on its connection

	Holder  [16]byte      // TxBegin, TxResolve: the participant asking
	Timeout time.Duration // TxBegin: how long the lease may stay open
	Lease   uint32        // TxCommit: the lease's id on its connection
	TxSeq   uint64        // TxCommit, TxResolve: the holder's commit number
	TxDone  []uint64      // TxCommit: the holder's commits whose records may go

	// Bound calls name state that lives on one connection (a snapshot, an
	// iterator): they are sent only there, and fail with ErrConnLost when
	// it dies instead of going to the next leader.
	Bound bool

	Seq uint64 // issue order: calls are sent, and sent again, in this order

	// ID is the request id on the connection the call was last sent on.
	ID atomic.Uint32

	mu    sync.Mutex // guards the fields below against Abandon and Own
	state state
	owned bool // Key, Value, Batch and Range are copies that belong to the call
	done  chan struct{}

	// Outcome, valid once Done is closed.
	Found   bool
	SnapID  uint32           // Snapshot on a connection: the id there
	LeaseID uint32           // TxBegin: the lease's id on the connection
	Local   *engine.Snapshot // Snapshot run on this process's engine
	Status  backend.Status
	Sizes   []int64 // SizeOf
	Err     error
	Conn    any // the connection that answered, when one did
}

type state uint8

const (
	live state = iota
	finished
	abandoned
)

// New returns a live call.
func New(k Kind) *Call {
	return &Call{Kind: k, done: make(chan struct{})}
}

// Done is closed when the call has finished.
func (c *Call) Done() <-chan struct{} { return c.done }

// Live reports whether the call still wants an outcome.
func (c *Call) Live() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state == live
}

// Finish records the outcome set by fill and finishes the call; it reports
// false, without calling fill, if the call had already finished.
func (c *Call) Finish(fill func(*Call)) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != live {
		return false
	}
	if fill != nil {
		fill(c)
	}
	c.state = finished
	close(c.done)
	return true
}

// Fail finishes the call with err; it reports false if the call had
// already finished.
func (c *Call) Fail(err error) bool {
	return c.Finish(func(c *Call) { c.Err = err })
}

// Abandon finishes the call without an outcome, for a caller that stopped
// waiting; it reports false if the call had finished first, in which case
// its outcome is there to be used. Once it returns, no goroutine reads the
// caller's slices.
func (c *Call) Abandon() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != live {
		return false
	}
	c.state = abandoned
	close(c.done)
	return true
}

// Own makes the call's key, value, batch and range copies that belong to
// the call, unless they are already, and reports whether the call is still
// live. A goroutine other than the caller's calls it before reading them;
// if it reports false, the call must be dropped unread.
func (c *Call) Own() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != live {
		return false
	}
	if !c.owned {
		c.owned = true
		c.Key = bytes.Clone(c.Key)
		if c.Kind != Get {
			c.Value = bytes.Clone(c.Value)
		}
		if c.Batch != nil {
			c.Batch = c.Batch.Clone()
		}
		c.Range = backend.Range{Start: bytes.Clone(c.Range.Start), Limit: bytes.Clone(c.Range.Limit)}
		rs := make([]backend.Range, len(c.Ranges))
		for i, r := range c.Ranges {
			rs[i] = backend.Range{Start: bytes.Clone(r.Start), Limit: bytes.Clone(r.Limit)}
		}
		c.Ranges = rs
	}
	return true
}

// Wait waits for the call to finish, or for ctx to end, in which case the
// call is abandoned and forget drops it from wherever it waits. It returns
// the call's error, or ctx's.
func (c *Call) Wait(ctx context.Context, forget func(*Call)) error {
	select {
	case <-c.done:
	case <-ctx.Done():
		if c.Abandon() {
			forget(c)
			return ctx.Err()
		}
	}
	return c.Err
}
