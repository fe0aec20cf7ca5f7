package client

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/levelparty/party/internal/sock"
	"github.com/levelparty/party/internal/wire"
)

// Errors of the connection.
var (
	// ErrConnLost means the connection to the leader ended.
	ErrConnLost = errors.New("connection to the leader lost")
	// ErrLeaderClosing means the leader refused to join because it is
	// shutting down; elect again.
	ErrLeaderClosing = errors.New("leader is closing")
)

// RefusedError is a handshake refusal by the leader, such as a protocol
// version mismatch.
type RefusedError struct{ Msg string }

func (e *RefusedError) Error() string { return "leader refused to serve: " + e.Msg }

// handshakeTimeout bounds the handshake with a process that accepted.
const handshakeTimeout = 5 * time.Second

// Conn is a follower's connection to its leader.
type Conn struct {
	nc       *net.UnixConn
	out      *wire.Writer
	welcome  wire.Welcome
	maxFrame int
	log      *slog.Logger

	mu       sync.Mutex // guards the fields below
	pending  map[uint32]*Call
	streams  map[uint32]*Stream
	nextID   uint32
	nextIter uint32
	err      error // why the connection died; set once, then dead is closed

	dead       chan struct{}
	readerDone chan struct{}
}

// Dial connects to the leader serving dir and completes the handshake.
func Dial(ctx context.Context, dir string, flags uint8, maxFrame int, log *slog.Logger) (*Conn, error) {
	nc, err := sock.Dial(ctx, dir)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(handshakeTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	nc.SetDeadline(deadline)
	// Cancelling ctx ends the handshake at once, like its deadline.
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Now()) })
	defer stop()
	if _, err := nc.Write(wire.AppendHello(nil, wire.Hello{Version: wire.Version, Flags: flags})); err != nil {
		nc.Close()
		return nil, fmt.Errorf("sending the handshake: %w", err)
	}
	br := bufio.NewReaderSize(nc, 64<<10)
	w, err := wire.ReadWelcome(br)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("a process accepted on %s but did not complete the handshake (a stopped or hung leader?): %w", sock.Name, err)
	}
	switch w.Status {
	case wire.WelcomeOK:
	case wire.WelcomeClosing:
		nc.Close()
		return nil, ErrLeaderClosing
	default:
		nc.Close()
		return nil, &RefusedError{Msg: w.Msg}
	}
	if !stop() {
		nc.Close()
		return nil, ctx.Err()
	}
	nc.SetDeadline(time.Time{})
	if maxFrame <= 0 {
		maxFrame = wire.DefaultMaxFrame
	}
	c := &Conn{
		nc:         nc,
		out:        wire.NewWriter(nc),
		welcome:    w,
		maxFrame:   maxFrame,
		log:        log,
		pending:    make(map[uint32]*Call),
		streams:    make(map[uint32]*Stream),
		dead:       make(chan struct{}),
		readerDone: make(chan struct{}),
	}
	go c.read(wire.NewReader(br, maxFrame))
	return c, nil
}

// Welcome returns what the leader said about itself.
func (c *Conn) Welcome() wire.Welcome { return c.welcome }

// Dead is closed when the connection has ended.
func (c *Conn) Dead() <-chan struct{} { return c.dead }

// isDead reports whether the connection has ended, without locking.
func (c *Conn) isDead() bool {
	select {
	case <-c.dead:
		return true
	default:
		return false
	}
}

// Err returns why the connection ended, or nil while it lives.
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Close ends the connection and waits for its reader to stop.
func (c *Conn) Close() {
	c.die(net.ErrClosed)
	<-c.readerDone
}

func (c *Conn) die(err error) {
	c.mu.Lock()
	if c.err == nil {
		c.err = err
		close(c.dead)
	}
	c.mu.Unlock()
	c.nc.Close()
}

// Send registers call and writes its request. It fails with ErrConnLost,
// without registering, if the connection has ended. A call registered here
// is later either completed by a response or returned by TakePending.
func (c *Conn) Send(call *Call) error {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return ErrConnLost
	}
	c.nextID++
	call.Req.ID = c.nextID
	c.pending[call.Req.ID] = call
	req := call.Req // the call may be re-sent elsewhere, with a new ID, once c dies
	c.mu.Unlock()
	if err := c.out.Send(func(b []byte) []byte { return wire.AppendRequest(b, &req) }); err != nil {
		c.die(err)
	}
	return nil
}

// Forget drops an abandoned call so that its response, if any, is ignored.
func (c *Conn) Forget(call *Call) {
	c.mu.Lock()
	if c.pending[call.Req.ID] == call {
		delete(c.pending, call.Req.ID)
	}
	c.mu.Unlock()
}

// TakePending returns, once the connection is dead, the live calls it
// never answered, in issue order. Later calls return nothing.
func (c *Conn) TakePending() []*Call {
	<-c.dead
	<-c.readerDone
	c.mu.Lock()
	calls := make([]*Call, 0, len(c.pending))
	for _, call := range c.pending {
		if call.Live() {
			calls = append(calls, call)
		}
	}
	clear(c.pending)
	c.mu.Unlock()
	SortBySeq(calls)
	return calls
}

// SortBySeq sorts calls in issue order.
func SortBySeq(calls []*Call) {
	slices.SortFunc(calls, func(a, b *Call) int { return cmp.Compare(a.Seq, b.Seq) })
}

// SendOneWay writes a request that is not answered.
func (c *Conn) SendOneWay(req *wire.Request) error { return c.send(req) }

// send writes a frame that expects no response.
func (c *Conn) send(req *wire.Request) error {
	if err := c.out.Send(func(b []byte) []byte { return wire.AppendRequest(b, req) }); err != nil {
		c.die(err)
		return ErrConnLost
	}
	return nil
}

// read is the connection's only reader: it completes calls and feeds
// streams until the connection ends.
func (c *Conn) read(r *wire.Reader) {
	defer close(c.readerDone)
	for {
		t, id, body, err := r.Next(true)
		if err == nil {
			err = c.dispatch(t, id, body)
		}
		if err != nil {
			c.mu.Lock()
			closing := c.err != nil
			c.mu.Unlock()
			if !closing && !errors.Is(err, net.ErrClosed) && !errors.Is(err, io.EOF) {
				c.log.Warn("party: connection to leader failed", "reason", err)
			}
			c.die(fmt.Errorf("%w: %v", ErrConnLost, err))
			return
		}
	}
}

func (c *Conn) dispatch(t wire.Type, id uint32, body []byte) error {
	switch t {
	case wire.TResponse:
		code, payload, err := wire.DecodeResponse(body)
		if err != nil {
			return err
		}
		c.mu.Lock()
		call := c.pending[id]
		delete(c.pending, id)
		c.mu.Unlock()
		if call != nil {
			call.Complete(code, payload, c)
		}
	case wire.TIterBatch:
		b := &wire.IterBatch{}
		if err := wire.DecodeIterBatch(body, b); err != nil {
			return err
		}
		c.mu.Lock()
		s := c.streams[id]
		c.mu.Unlock()
		if s != nil {
			s.deliver(b)
		}
	default:
		return fmt.Errorf("unexpected %v from the leader", t)
	}
	return nil
}
