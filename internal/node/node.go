// Package node is one participant of a database directory that many
// processes share. It elects a leader among the participants, routes each
// call to it and carries calls over to the next leader when it is lost.
// It implements backend.Backend: above it there are data operations only.
//
// A call goes one of two ways, decided by where calls go now (via):
//
//   - this handle leads: the call runs on the caller's goroutine, on the
//     engine, and returns the engine's values and errors;
//   - this handle follows: the call is registered on the connection to the
//     leader (package client), which sends it; the caller waits for the
//     answer or for its context.
//
// While there is no leader, calls wait in the queue, and they are handed
// to the next leader in the order they were issued. When the leader is
// lost, lost decides in one place what becomes of the calls in flight.
package node

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/levelparty/party/backend"
	"github.com/levelparty/party/internal/call"
	"github.com/levelparty/party/internal/client"
	"github.com/levelparty/party/internal/engine"
	"github.com/levelparty/party/internal/sock"
	"github.com/levelparty/party/internal/wire"
	"github.com/syndtr/goleveldb/leveldb/opt"
)

// Config configures a participant. The root package fills it from its
// Options.
type Config struct {
	NoRetry     bool          // calls in flight when the leader is lost fail
	BusyPoll    time.Duration // poll the socket this long before sleeping; 0: never
	Sync        bool          // the leader fsyncs this handle's writes
	OpenTimeout time.Duration // how long Open waits to join; must be set
	LevelDB     *opt.Options  // options of the engine, when leading
	AllowRoot   bool          // serve root's processes too, when leading
	Logger      *slog.Logger  // must be set
	FollowOnly  bool          // never lead: tests use it to keep a handle following
}

// Node is a participant. Every method is safe for concurrent use.
type Node struct {
	dir string
	cfg Config
	log *slog.Logger

	holder engine.Holder // this handle's id in commit records, random
	txSeq  atomic.Uint64 // the number of this handle's last commit

	txMu    sync.Mutex
	txKnown []uint64 // commits that applied, whose records a later commit deletes

	// via is where calls go now. It is nil while there is no leader, and
	// while the calls queued meanwhile are handed to a new one: calls
	// queue then. Only the election goroutine changes it.
	via atomic.Pointer[route]

	mu       sync.Mutex    // guards the fields below
	queue    []*call.Call  // calls waiting for a leader, in any order; handed over by Seq
	seq      uint64        // last Seq given to a call
	changed  chan struct{} // closed and replaced whenever via changes
	closed   bool
	cursors  map[*cursor]struct{}   // open cursors, released by Close
	snaps    map[*snapshot]struct{} // open snapshots, released by Close
	watchers map[*watcher]struct{}  // open watchers, closed by Close
	joined   bool                   // Open has been told the outcome of the first election
	lastErr  error                  // why the last election attempt did not succeed
	step     string                 // what the election goroutine is doing, for Open's error

	elected   chan struct{} // closed when this handle becomes leader
	ready     chan error    // receives the outcome of the first election
	closing   chan struct{} // closed by Close
	done      chan struct{} // closed when the election goroutine exits
	closeDone chan struct{} // closed when Close has released everything
}

// route is where calls go: exactly one field is set.
type route struct {
	lead *leader      // this handle leads: calls run on its engine
	conn *client.Conn // this handle follows: calls go to the leader
}

var _ backend.Backend = (*Node)(nil)

// ErrLockedByOther is wrapped by Open's error when the database lock
// stays held and no leader answers on the socket.
var ErrLockedByOther = errors.New("party: database locked by a program that is not party")

// Open joins the participants of the database in dir, which must exist,
// and returns once this handle leads or follows, or fails after
// cfg.OpenTimeout.
func Open(dir string, cfg Config) (*Node, error) {
	if err := sock.Supported(); err != nil {
		return nil, err
	}
	n := &Node{
		dir:       dir,
		cfg:       cfg,
		log:       cfg.Logger,
		changed:   make(chan struct{}),
		cursors:   make(map[*cursor]struct{}),
		snaps:     make(map[*snapshot]struct{}),
		watchers:  make(map[*watcher]struct{}),
		elected:   make(chan struct{}),
		ready:     make(chan error, 1),
		closing:   make(chan struct{}),
		done:      make(chan struct{}),
		closeDone: make(chan struct{}),
	}
	crand.Read(n.holder[:])
	go n.run()
	timer := time.NewTimer(cfg.OpenTimeout)
	defer timer.Stop()
	select {
	case err := <-n.ready:
		if err != nil {
			n.Close()
			return nil, fmt.Errorf("party: open %s: %w", dir, err)
		}
		return n, nil
	case <-timer.C:
		n.mu.Lock()
		last, step := n.lastErr, n.step
		n.mu.Unlock()
		n.Close()
		return nil, openTimeoutError(dir, cfg.OpenTimeout, last, step)
	}
}

// IsLeader reports whether this handle leads. A handle leads from its
// election until it is closed.
func (n *Node) IsLeader() bool {
	select {
	case <-n.closing:
		return false
	default:
	}
	select {
	case <-n.elected:
		return true
	default:
		return false
	}
}

// Elected is closed when this handle becomes the leader.
func (n *Node) Elected() <-chan struct{} { return n.elected }

// leading returns this handle's engine when calls go straight to it.
func (n *Node) leading() *leader {
	if r := n.via.Load(); r != nil {
		return r.lead
	}
	return nil
}

// Get returns the value of key.
func (n *Node) Get(ctx context.Context, key []byte) ([]byte, error) {
	if err := checkSize(key, nil, nil); err != nil {
		return nil, err
	}
	if l := n.leading(); l != nil {
		return l.eng.Get(key)
	}
	c := call.New(call.Get)
	c.Key = key
	if err := n.do(ctx, c); err != nil {
		return nil, err
	}
	return c.Value, nil
}

// Has reports whether key is present.
func (n *Node) Has(ctx context.Context, key []byte) (bool, error) {
	if err := checkSize(key, nil, nil); err != nil {
		return false, err
	}
	if l := n.leading(); l != nil {
		return l.eng.Has(key)
	}
	c := call.New(call.Has)
	c.Key = key
	if err := n.do(ctx, c); err != nil {
		return false, err
	}
	return c.Found, nil
}

// Put sets key to value.
func (n *Node) Put(ctx context.Context, key, value []byte) error {
	if err := checkWrite(key, value, nil); err != nil {
		return err
	}
	if l := n.leading(); l != nil {
		return l.eng.Put(ctx, key, value, n.cfg.Sync)
	}
	c := n.write(call.Put)
	c.Key, c.Value = key, value
	return n.do(ctx, c)
}

// Delete removes key.
func (n *Node) Delete(ctx context.Context, key []byte) error {
	if err := checkWrite(key, nil, nil); err != nil {
		return err
	}
	if l := n.leading(); l != nil {
		return l.eng.Delete(ctx, key, n.cfg.Sync)
	}
	c := n.write(call.Delete)
	c.Key = key
	return n.do(ctx, c)
}

// Write applies b atomically.
func (n *Node) Write(ctx context.Context, b *backend.Batch) error {
	if err := checkWrite(nil, nil, b.Records()); err != nil {
		return err
	}
	if l := n.leading(); l != nil {
		return l.eng.Write(ctx, b, n.cfg.Sync)
	}
	c := n.write(call.Write)
	c.Batch = b
	return n.do(ctx, c)
}

// DeleteRange removes every key in r, in chunks: it is not atomic.
func (n *Node) DeleteRange(ctx context.Context, r backend.Range) error {
	if err := checkSize(r.Start, r.Limit, nil); err != nil {
		return err
	}
	if l := n.leading(); l != nil {
		return l.eng.DeleteRange(ctx, r, n.cfg.Sync)
	}
	c := n.write(call.DeleteRange)
	c.Range = r
	return n.do(ctx, c)
}

// Status asks the leader about itself.
func (n *Node) Status(ctx context.Context) (backend.Status, error) {
	if l := n.leading(); l != nil {
		return l.host.Status(), nil
	}
	c := call.New(call.Status)
	if err := n.do(ctx, c); err != nil {
		return backend.Status{}, err
	}
	return c.Status, nil
}

// CompactRange compacts the keys in r on the leader.
func (n *Node) CompactRange(ctx context.Context, r backend.Range) error {
	if err := checkSize(r.Start, r.Limit, nil); err != nil {
		return err
	}
	if l := n.leading(); l != nil {
		// goleveldb's compaction takes no context: the caller stops
		// waiting when ctx ends, and the compaction finishes by itself.
		r := backend.Range{Start: clone(r.Start), Limit: clone(r.Limit)}
		done := make(chan error, 1)
		go func() { done <- l.eng.CompactRange(r) }()
		select {
		case err := <-done:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	c := call.New(call.Compact)
	c.Range = r
	return n.do(ctx, c)
}

// SizeOf returns the approximate bytes on disk of each range, from the
// leader.
func (n *Node) SizeOf(ctx context.Context, ranges []backend.Range) ([]int64, error) {
	if len(ranges) > wire.MaxSizeOfRanges {
		return nil, fmt.Errorf("party: SizeOf of %d ranges: at most %d at once", len(ranges), wire.MaxSizeOfRanges)
	}
	size := 0
	for _, r := range ranges {
		size += len(r.Start) + len(r.Limit) + 2*binary.MaxVarintLen64 + 1
	}
	if size > wire.MaxFrame {
		return nil, fmt.Errorf("%w: ranges of %d bytes", backend.ErrTooLarge, size)
	}
	if l := n.leading(); l != nil {
		return l.eng.SizeOf(ranges)
	}
	c := call.New(call.SizeOf)
	c.Ranges = ranges
	if err := n.do(ctx, c); err != nil {
		return nil, err
	}
	return c.Sizes, nil
}

// Property returns a property of the leader's engine.
func (n *Node) Property(ctx context.Context, name string) (string, error) {
	if err := checkSize([]byte(name), nil, nil); err != nil {
		return "", err
	}
	if l := n.leading(); l != nil {
		return l.eng.Property(name)
	}
	c := call.New(call.Property)
	c.Key = []byte(name)
	if err := n.do(ctx, c); err != nil {
		return "", err
	}
	return string(c.Value), nil
}

// write returns a new write call with this handle's write options.
func (n *Node) write(k call.Kind) *call.Call {
	c := call.New(k)
	c.Sync = n.cfg.Sync
	return c
}

// checkSize refuses what could not cross the socket in one frame, even on
// the leader, so that every participant can read what any one wrote.
func checkSize(key, value, records []byte) error {
	if n := wire.RequestSize(key, value, records); n > wire.MaxFrame {
		return fmt.Errorf("%w: %d bytes, limit %d", backend.ErrTooLarge, n, wire.MaxFrame)
	}
	return nil
}

// checkWrite refuses a write that checkSize refuses, and one that names a
// key under the prefix party keeps for its commit records.
func checkWrite(key, value, records []byte) error {
	if err := checkSize(key, value, records); err != nil {
		return err
	}
	bad := backend.Hidden(key)
	if records != nil && !bad {
		backend.ForEachRecord(records, func(_ bool, k, _ []byte) { bad = bad || backend.Hidden(k) })
	}
	if bad {
		return fmt.Errorf("%w: keys starting with %q are party's own", backend.ErrHiddenKey, backend.HiddenPrefix())
	}
	return nil
}

// do runs c on the leader, whoever that is, and waits for its outcome or
// for ctx to end.
func (n *Node) do(ctx context.Context, c *call.Call) error {
	if conn := n.dispatch(ctx, c); conn != nil {
		conn.Await(ctx, c) // reads the answer in place when it can
	}
	return c.Wait(ctx, n.forget)
}

// dispatch hands c to where calls go now, or queues it until there is a
// leader. It runs on the caller's goroutine, so it may read c's slices. It
// returns the connection c was sent on, for the caller to Await.
func (n *Node) dispatch(ctx context.Context, c *call.Call) *client.Conn {
	for {
		n.mu.Lock()
		if n.closed {
			n.mu.Unlock()
			c.Fail(backend.ErrClosed)
			return nil
		}
		if c.Seq == 0 {
			n.seq++
			c.Seq = n.seq
		}
		r := n.via.Load()
		if r == nil {
			n.queue = append(n.queue, c)
			n.mu.Unlock()
			return nil
		}
		n.mu.Unlock()
		if r.lead != nil {
			r.lead.exec(ctx, c)
			return nil
		}
		err := r.conn.Start(ctx, c)
		if err == nil {
			return r.conn
		}
		if !errors.Is(err, client.ErrConnLost) {
			// ctx ended while the request waited for room in the
			// writer: it was never written, so it ends here.
			r.conn.Forget(c)
			c.Fail(err)
			return nil
		}
		// The connection died before c was registered, and the election
		// goroutine has not noticed yet: c was never sent, so it waits for
		// the next leader whatever the retry policy.
		n.mu.Lock()
		if n.via.Load() == r {
			n.enqueue(c)
			n.mu.Unlock()
			return nil
		}
		n.mu.Unlock()
	}
}

// enqueue makes calls wait for the next leader, or fails them if the
// handle is closed, since Close may already have swept the queue; n.mu is
// held.
func (n *Node) enqueue(calls ...*call.Call) {
	if n.closed {
		for _, c := range calls {
			c.Fail(backend.ErrClosed)
		}
		return
	}
	n.queue = append(n.queue, calls...)
}

// forget drops an abandoned call from wherever it waits.
func (n *Node) forget(c *call.Call) {
	n.mu.Lock()
	for i, q := range n.queue {
		if q == c {
			n.queue = append(n.queue[:i], n.queue[i+1:]...)
			break
		}
	}
	n.mu.Unlock()
	if r := n.via.Load(); r != nil && r.conn != nil {
		r.conn.Forget(c)
	}
}

// setVia changes where calls go and wakes those waiting for a route;
// n.mu is held.
func (n *Node) setVia(r *route) {
	n.via.Store(r)
	close(n.changed)
	n.changed = make(chan struct{})
}

// routeNow waits until calls have somewhere to go and returns it.
func (n *Node) routeNow(ctx context.Context) (*route, error) {
	for {
		n.mu.Lock()
		if n.closed {
			n.mu.Unlock()
			return nil, backend.ErrClosed
		}
		r := n.via.Load()
		if r != nil && (r.conn == nil || r.conn.Err() == nil) {
			n.mu.Unlock()
			return r, nil
		}
		// No leader, or a dead one the election goroutine is about to
		// notice: wait.
		ch := n.changed
		n.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-n.closing:
			return nil, backend.ErrClosed
		}
	}
}

// isClosed reports whether Close has begun.
func (n *Node) isClosed() bool {
	select {
	case <-n.closing:
		return true
	default:
		return false
	}
}

// Close leaves the party. Pending calls fail with ErrClosed; open cursors
// and snapshots are released. A leader first finishes and answers the
// follower requests it has started, then closes the engine and releases
// the lock, so that the followers elect a new leader at once. Close
// returns once every resource is released; later calls return nil.
func (n *Node) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		<-n.closeDone
		return nil
	}
	defer close(n.closeDone)
	n.closed = true
	close(n.closing)
	queue := n.queue
	n.queue = nil
	n.mu.Unlock()
	for _, c := range queue {
		c.Fail(backend.ErrClosed)
	}

	// The election goroutine ends the connection to the leader, if any,
	// which fails the calls in flight and ends every wait on it.
	<-n.done
	n.mu.Lock()
	queue = n.queue // put back by goroutines that raced with Close
	n.queue = nil
	cursors := make([]*cursor, 0, len(n.cursors))
	for c := range n.cursors {
		cursors = append(cursors, c)
	}
	snaps := make([]*snapshot, 0, len(n.snaps))
	for s := range n.snaps {
		snaps = append(snaps, s)
	}
	var watchers []*watcher
	for w := range n.watchers {
		watchers = append(watchers, w)
	}
	n.mu.Unlock()
	for _, w := range watchers {
		w.close()
	}
	for _, c := range queue {
		c.Fail(backend.ErrClosed)
	}
	for _, c := range cursors {
		c.release(backend.ErrClosed)
	}
	for _, s := range snaps {
		s.release(backend.ErrClosed)
	}
	if l := n.leading(); l != nil {
		return l.close()
	}
	return nil
}
