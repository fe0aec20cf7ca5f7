// Package client is the follower's side of a connection to the leader: a
// pipelined client that any number of goroutines share. Calls are
// registered under a request id before they are written; the one reader
// goroutine completes them by id; when the connection dies, the calls still
// unanswered are handed back in one piece (TakePending) so that the owner
// retries or fails them in one place. Iterator streams are multiplexed on
// the same connection with credit-based flow control.
package client

import (
	"context"
	"sync/atomic"

	"github.com/levelparty/party/internal/wire"
)

// Call is one request and, once done, its outcome. A call is finished
// exactly once: by a response, by a failure, or by its caller abandoning it.
type Call struct {
	Req wire.Request
	Seq uint64 // issue order; retries are sent again in this order
	// Bound calls belong to their connection (they name state that lives
	// there, such as an iterator or a snapshot): when it dies they fail
	// instead of being sent to the next leader.
	Bound bool

	state atomic.Int32 // 0 live, 1 finished
	done  chan struct{}

	// Outcome, valid once Done is closed.
	Code wire.Code
	Body []byte
	Err  error
	Conn *Conn // the connection that answered
}

// NewCall returns a live call for req.
func NewCall(req wire.Request, seq uint64) *Call {
	return &Call{Req: req, Seq: seq, done: make(chan struct{})}
}

// Done is closed when the call has finished.
func (c *Call) Done() <-chan struct{} { return c.done }

// Live reports whether the call still wants an outcome.
func (c *Call) Live() bool { return c.state.Load() == 0 }

// Complete finishes the call with a response; it reports false if the call
// had already finished.
func (c *Call) Complete(code wire.Code, body []byte, conn *Conn) bool {
	if !c.state.CompareAndSwap(0, 1) {
		return false
	}
	c.Code, c.Body, c.Conn = code, body, conn
	close(c.done)
	return true
}

// Fail finishes the call with err; it reports false if the call had
// already finished.
func (c *Call) Fail(err error) bool {
	if !c.state.CompareAndSwap(0, 1) {
		return false
	}
	c.Err = err
	close(c.done)
	return true
}

// Wait waits for the call to finish, or for ctx to end, in which case the
// call is abandoned and forget drops it from wherever it waits. It returns
// the call's transport error or ctx's error.
func (c *Call) Wait(ctx context.Context, forget func(*Call)) error {
	select {
	case <-c.done:
	case <-ctx.Done():
		if c.Abandon() {
			forget(c)
			return ctx.Err()
		}
		<-c.done
	}
	return c.Err
}

// Abandon finishes the call without an outcome, for a caller that stopped
// waiting; it reports false if the call had already finished, in which case
// the outcome is there to be used.
func (c *Call) Abandon() bool { return c.state.CompareAndSwap(0, 1) }
