// Package client is the follower's side of a connection to the leader: a
// pipelined client that any number of goroutines share. A call is
// registered under a request id before its frame is handed to the
// connection's writer; whoever reads the connection finishes calls by id;
// when the connection dies, the calls still unanswered are handed back in
// one piece (TakePending) so that their owner retries or fails them in one
// place. Iterator streams are multiplexed on the same connection with
// credit-based flow control.
//
// Reading: one goroutine at a time holds the read token. A goroutine that
// waits for an answer (Await, a stream's Next) and finds nobody reading
// reads the connection itself, dispatching every frame it meets, until its
// own answer is there: a sequential caller gets its answer with no hand-off
// between goroutines, which on a small machine costs as much as the round
// trip. When others still wait, it hands the token to the background
// reader, which reads for them until nobody waits. While nobody waits and
// nobody reads, a hang-up watch (Linux) notices the leader's death; where
// there is no such watch, the background reader reads at all times.
//
// Codes become errors here, through wire.Code.Err, and nowhere else on the
// follower's side.
package client

import (
	"bufio"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/levelparty/party/internal/call"
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
	nc      *net.UnixConn
	out     *wire.Writer
	welcome wire.Welcome
	log     *slog.Logger
	r       *wire.Reader  // used by the holder of the read token only
	polling *atomic.Bool  // a waiter reads: its reads may poll
	watch   *hangupWatch  // nil: the background reader reads at all times
	entries atomic.Uint64 // iterator entries received, for tests

	mu        sync.Mutex // guards the fields below
	pending   map[uint32]*call.Call
	streams   map[uint32]*Stream
	watches   map[uint32]*WatchStream
	nextWatch uint32
	nextID    uint32
	nextIter  uint32
	reader    holder // who holds the read token
	waiters   int    // goroutines in await, wanting frames
	hangup    bool   // the peer hung up: read until the end
	err       error  // why the connection died; set once, then dead is closed

	dead   chan struct{}
	quiet  chan struct{} // closed once dead and nobody reads any more
	bgWake chan struct{} // the background reader may have work; capacity 1
	bgDone chan struct{} // closed when the background reader has returned
}

// holder is who holds the read token.
type holder uint8

const (
	nobody     holder = iota
	waiter            // a goroutine in await
	background        // the background reader
)

// Dial connects to the leader serving dir and completes the handshake.
// With busyPoll above zero, a goroutine that waits for an answer polls the
// socket for up to that long before it sleeps, and asks the leader to do
// the same for the next request after each answer.
func Dial(ctx context.Context, dir string, flags uint8, busyPoll time.Duration, log *slog.Logger) (*Conn, error) {
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
	if _, err := nc.Write(wire.AppendHello(nil, wire.Hello{Version: wire.Version, Flags: flags, BusyPoll: busyPoll})); err != nil {
		nc.Close()
		return nil, fmt.Errorf("sending the handshake: %w", err)
	}
	// Only a goroutine that waits for its answer polls: the background
	// reader, and a connection nobody waits on, never spin.
	polling := new(atomic.Bool)
	br := bufio.NewReaderSize(wire.NewPollReader(nc, func() time.Duration {
		if polling.Load() {
			return busyPoll
		}
		return 0
	}), 64<<10)
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
	c := &Conn{
		nc:      nc,
		out:     wire.NewWriter(nc),
		welcome: w,
		log:     log,
		r:       wire.NewReader(br),
		polling: polling,
		pending: make(map[uint32]*call.Call),
		streams: make(map[uint32]*Stream),
		dead:    make(chan struct{}),
		quiet:   make(chan struct{}),
		bgWake:  make(chan struct{}, 1),
		bgDone:  make(chan struct{}),
	}
	c.watch = watchHangup(nc, func() {
		c.mu.Lock()
		c.hangup = true
		c.mu.Unlock()
		c.kick()
	})
	if c.watch == nil {
		c.reader = background // for good: see the package comment
	}
	go c.background()
	c.kick()
	return c, nil
}

// Welcome returns what the leader said about itself.
func (c *Conn) Welcome() wire.Welcome { return c.welcome }

// Dead is closed when the connection has ended.
func (c *Conn) Dead() <-chan struct{} { return c.dead }

// Err returns why the connection ended, or nil while it lives.
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Close ends the connection and waits for its goroutines to stop.
func (c *Conn) Close() {
	c.die(net.ErrClosed)
	<-c.quiet
	<-c.bgDone
	c.out.Wait()
}

func (c *Conn) die(err error) {
	c.mu.Lock()
	if c.err == nil {
		c.err = err
		close(c.dead)
		if c.reader == nobody {
			close(c.quiet)
		}
	}
	c.mu.Unlock()
	c.out.Close()
	c.nc.Close()
	if c.watch != nil {
		c.watch.stop()
	}
}

// Send registers cl and hands its request to the writer, for a caller that
// will not wait with Await: the background reader reads the answer. See
// Start for the rest.
func (c *Conn) Send(ctx context.Context, cl *call.Call) error {
	err := c.Start(ctx, cl)
	if err == nil {
		c.kick()
	}
	return err
}

// Start registers cl and hands its request to the writer, for a caller
// that then waits with Await. It fails with ErrConnLost, without
// registering cl, if the connection has ended; otherwise cl is later
// either finished (by a response, or by its caller) or handed back by
// TakePending. It waits for room in the writer's buffer until ctx ends,
// and then returns ctx's error with cl still registered, for the caller to
// abandon. The request is encoded before Start returns: cl's slices are
// not read afterwards.
func (c *Conn) Start(ctx context.Context, cl *call.Call) error {
	req := request(cl) // before cl is registered: others may Own it from then on
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return ErrConnLost
	}
	c.nextID++
	req.ID = c.nextID
	cl.ID.Store(req.ID)
	c.pending[req.ID] = cl
	c.mu.Unlock()
	err := c.out.Send(ctx, func(b []byte) []byte { return wire.AppendRequest(b, &req) })
	if err != nil && ctx.Err() == nil {
		// The writer failed: the connection is dead, and TakePending will
		// hand cl back.
		c.die(fmt.Errorf("%w: %v", ErrConnLost, err))
		return nil
	}
	return err
}

// Do sends cl on this connection and waits for its outcome, or abandons
// it when ctx ends. It is for bound calls, which go nowhere else.
func (c *Conn) Do(ctx context.Context, cl *call.Call) error {
	if err := c.Start(ctx, cl); err != nil {
		if cl.Abandon() {
			c.Forget(cl)
		}
		return err
	}
	c.Await(ctx, cl)
	return cl.Wait(ctx, c.Forget)
}

// Await waits until cl is finished, ctx ends or the connection dies,
// reading the connection itself while nobody else does. It reports
// nothing: the caller then waits on cl as usual (call.Wait), which also
// covers a call that the connection's death sends elsewhere.
func (c *Conn) Await(ctx context.Context, cl *call.Call) {
	done := cl.Done()
	c.await(ctx, done, func() bool {
		select {
		case <-done:
			return true
		default:
			return false
		}
	})
}

// request returns the wire request of a call.
func request(cl *call.Call) wire.Request {
	req := wire.Request{Key: cl.Key, Value: cl.Value, Range: cl.Range, Snap: cl.Snap, Iter: cl.Iter}
	if cl.Sync {
		req.Flags |= wire.FlagSync
	}
	switch cl.Kind {
	case call.Get:
		req.Type, req.Value = wire.TGet, nil
	case call.Has:
		req.Type = wire.THas
	case call.Put:
		req.Type = wire.TPut
	case call.Delete:
		req.Type = wire.TDelete
	case call.Write:
		req.Type, req.Records = wire.TBatch, cl.Batch.Records()
	case call.DeleteRange:
		req.Type = wire.TDeleteRange
	case call.Snapshot:
		req.Type = wire.TSnapshot
	case call.Status:
		req.Type = wire.TStatus
	case call.IterOpen:
		req.Type = wire.TIterOpen
	case call.TxBegin:
		req.Type, req.Holder, req.Timeout = wire.TTxBegin, cl.Holder, cl.Timeout
	case call.TxCommit:
		req.Type, req.Lease, req.Seq, req.Done, req.Records = wire.TTxCommit, cl.Lease, cl.TxSeq, cl.TxDone, cl.Batch.Records()
	case call.TxResolve:
		req.Type, req.Holder, req.Seq = wire.TTxResolve, cl.Holder, cl.TxSeq
	case call.WatchOpen:
		req.Type, req.Watch = wire.TWatchOpen, cl.Iter
	case call.Compact:
		req.Type = wire.TCompact
	case call.SizeOf:
		req.Type, req.Ranges = wire.TSizeOf, cl.Ranges
	case call.Property:
		req.Type = wire.TProperty
	}
	return req
}

// DiscardTx ends the lease id on the leader without applying anything. It
// never blocks.
func (c *Conn) DiscardTx(id uint32) {
	if c.Err() == nil {
		c.post(&wire.Request{Type: wire.TTxDiscard, Lease: id})
	}
}

// EntriesReceived returns how many iterator entries the leader has sent
// on this connection: what the tests of read-ahead count.
func (c *Conn) EntriesReceived() uint64 { return c.entries.Load() }

// Forget drops an abandoned call so that its response, if any, is ignored.
func (c *Conn) Forget(cl *call.Call) {
	c.mu.Lock()
	if id := cl.ID.Load(); c.pending[id] == cl {
		delete(c.pending, id)
	}
	c.mu.Unlock()
}

// TakePending returns, once the connection is dead and nobody reads it any
// more, the live calls it never answered, in issue order. Later calls
// return nothing.
func (c *Conn) TakePending() []*call.Call {
	<-c.dead
	<-c.quiet
	c.mu.Lock()
	calls := make([]*call.Call, 0, len(c.pending))
	for _, cl := range c.pending {
		if cl.Live() {
			calls = append(calls, cl)
		}
	}
	clear(c.pending)
	c.mu.Unlock()
	SortBySeq(calls)
	return calls
}

// SortBySeq sorts calls in issue order.
func SortBySeq(calls []*call.Call) {
	slices.SortFunc(calls, func(a, b *call.Call) int { return cmp.Compare(a.Seq, b.Seq) })
}

// ReleaseSnapshot tells the leader that snapshot id is no longer used. It
// never blocks.
func (c *Conn) ReleaseSnapshot(id uint32) {
	c.post(&wire.Request{Type: wire.TSnapshotRelease, Snap: id})
}

// post writes a small frame that expects no response without waiting for
// room in the writer's buffer.
func (c *Conn) post(req *wire.Request) {
	if err := c.out.Post(func(b []byte) []byte { return wire.AppendRequest(b, req) }); err != nil {
		c.die(fmt.Errorf("%w: %v", ErrConnLost, err))
	}
}

// kick tells the background reader that it may have work.
func (c *Conn) kick() {
	select {
	case c.bgWake <- struct{}{}:
	default:
	}
}

// await waits until ready reports true, ctx ends or the connection dies,
// and says which (nil, ctx's error or ErrConnLost). Someone else's
// dispatch signals wake when ready may have become true. While it waits
// and nobody reads the connection, it takes the read token and reads.
func (c *Conn) await(ctx context.Context, wake <-chan struct{}, ready func() bool) error {
	c.mu.Lock()
	c.waiters++
	for {
		if ready() {
			break
		}
		if c.err != nil {
			c.waiters--
			c.mu.Unlock()
			return ErrConnLost
		}
		if c.reader == nobody {
			c.reader = waiter
			c.mu.Unlock()
			c.polling.Store(true)
			err := c.readFor(ctx, ready)
			c.polling.Store(false)
			c.mu.Lock()
			c.waiters--
			c.release()
			c.mu.Unlock()
			return err
		}
		c.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			c.mu.Lock()
			c.waiters--
			c.mu.Unlock()
			return ctx.Err()
		case <-c.dead:
		}
		c.mu.Lock()
	}
	c.waiters--
	c.mu.Unlock()
	return nil
}

// wanted reports whether anyone wants frames: calls wait for answers,
// goroutines wait in await, or the peer hung up and the end must be read.
// c.mu is held.
func (c *Conn) wanted() bool {
	return len(c.pending) > 0 || c.waiters > 0 || c.hangup || c.watch == nil
}

// release gives up the read token: to the background reader if frames are
// still wanted, otherwise to nobody. c.mu is held.
func (c *Conn) release() {
	switch {
	case c.err != nil:
		c.reader = nobody
		select {
		case <-c.quiet:
		default:
			close(c.quiet)
		}
	case c.wanted():
		c.reader = background
		c.kick()
	default:
		c.reader = nobody
	}
}

// readFor reads and dispatches frames until ready reports true, ctx ends
// or the connection dies. The caller holds the read token. A deadline set
// when ctx ends interrupts a blocked read; the reader keeps a frame read
// in part, so the next holder goes on with it.
func (c *Conn) readFor(ctx context.Context, ready func() bool) error {
	if ctx.Done() != nil {
		fired := make(chan struct{})
		stop := context.AfterFunc(ctx, func() {
			c.nc.SetReadDeadline(time.Now())
			close(fired)
		})
		defer func() {
			if !stop() {
				<-fired
				c.nc.SetReadDeadline(time.Time{})
			}
		}()
	}
	for !ready() {
		if err := c.readOne(); err != nil {
			if ctx.Err() != nil && errors.Is(err, os.ErrDeadlineExceeded) {
				return ctx.Err()
			}
			return ErrConnLost
		}
	}
	return nil
}

// readOne reads and dispatches one frame; on any failure but a timeout the
// connection dies. The caller holds the read token.
func (c *Conn) readOne() error {
	t, id, body, err := c.r.Next(true)
	if err == nil {
		err = c.dispatch(t, id, body)
	}
	if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		c.mu.Lock()
		closing := c.err != nil
		c.mu.Unlock()
		if !closing && !errors.Is(err, net.ErrClosed) && !errors.Is(err, io.EOF) {
			c.log.Warn("party: connection to leader failed", "reason", err)
		}
		c.die(fmt.Errorf("%w: %v", ErrConnLost, err))
	}
	return err
}

// background is the background reader: it reads while it holds the read
// token and frames are wanted, then gives the token up.
func (c *Conn) background() {
	defer close(c.bgDone)
	for {
		select {
		case <-c.bgWake:
		case <-c.dead:
			c.mu.Lock()
			if c.reader == background {
				c.release()
			}
			c.mu.Unlock()
			return
		}
		c.mu.Lock()
		if c.reader == nobody && c.wanted() {
			c.reader = background
		}
		mine := c.reader == background
		c.mu.Unlock()
		for mine {
			err := c.readOne()
			c.mu.Lock()
			switch {
			case err != nil && c.err == nil:
				// A timeout meant for a waiter that held the token
				// before: clear the deadline and read on.
				c.nc.SetReadDeadline(time.Time{})
			case c.err != nil:
				c.release()
				mine = false
			case !c.wanted():
				c.reader = nobody
				mine = false
			}
			c.mu.Unlock()
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
		cl := c.pending[id]
		c.mu.Unlock()
		if cl == nil {
			return nil // abandoned by its caller
		}
		if err := check(cl, code, payload); err != nil {
			return err // cl stays pending: TakePending hands it back
		}
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
		c.finish(cl, code, payload)
	case wire.TWatchEvent:
		flags, ev, err := wire.DecodeWatchEvent(body)
		if err != nil {
			return err
		}
		c.mu.Lock()
		s := c.watches[id]
		c.mu.Unlock()
		if s != nil {
			s.deliver(flags, ev)
		}
	case wire.TIterBatch:
		c.mu.Lock()
		s := c.streams[id]
		c.mu.Unlock()
		var b *wire.IterBatch
		if s != nil {
			b = s.spare()
		} else {
			b = &wire.IterBatch{} // for a stream closed meanwhile: only checked
		}
		if err := wire.DecodeIterBatch(body, b); err != nil {
			return err
		}
		c.entries.Add(uint64(len(b.Entries)))
		if s != nil {
			s.deliver(b)
		}
	default:
		return fmt.Errorf("unexpected %v from the leader", t)
	}
	return nil
}

// check validates the payload of a successful response for a call of
// kind k.
func check(cl *call.Call, code wire.Code, payload []byte) error {
	if code != wire.OK {
		return nil
	}
	var want int
	switch cl.Kind {
	case call.Has, call.TxResolve:
		want = 1
	case call.Snapshot, call.TxBegin:
		want = 4
	case call.Status:
		_, err := wire.DecodeStatus(payload)
		return err
	case call.SizeOf:
		want = 8 * len(cl.Ranges)
	default:
		return nil
	}
	if len(payload) != want {
		return fmt.Errorf("%w: answer of %d bytes, want %d", wire.ErrMalformed, len(payload), want)
	}
	return nil
}

// finish gives cl the outcome of its response, checked by check.
func (c *Conn) finish(cl *call.Call, code wire.Code, payload []byte) {
	if code != wire.OK {
		cl.Fail(code.Err(payload))
		return
	}
	cl.Finish(func(cl *call.Call) {
		cl.Conn = c
		switch cl.Kind {
		case call.Get:
			cl.Value = payload
		case call.Has, call.TxResolve:
			cl.Found = payload[0] == 1
		case call.TxBegin:
			cl.LeaseID = binary.BigEndian.Uint32(payload)
		case call.Snapshot:
			cl.SnapID = binary.BigEndian.Uint32(payload)
		case call.Status:
			cl.Status, _ = wire.DecodeStatus(payload)
		case call.SizeOf:
			for i := 0; i+8 <= len(payload); i += 8 {
				cl.Sizes = append(cl.Sizes, int64(binary.BigEndian.Uint64(payload[i:])))
			}
		case call.Property:
			cl.Value = payload
		}
	})
}
