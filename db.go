package party

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/levelparty/party/internal/client"
	"github.com/levelparty/party/internal/sock"
	"github.com/levelparty/party/internal/wire"
)

// role is what a handle currently is.
type role int

const (
	roleNone     role = iota // electing; calls wait in the queue
	roleFlushing             // just joined; queued calls are being sent in order
	roleFollower             // conn is the leader
	roleLeader               // lead is this handle's engine
)

// DB is a handle on a database directory shared by many processes. Every
// method is safe for concurrent use.
type DB struct {
	dir  string
	opts Options
	log  *slog.Logger

	// followOnly keeps the handle from ever leading; tests use it to keep
	// an iterator on a follower across leader changes.
	followOnly bool

	// local is set once this handle has become leader and its queued calls
	// have run: operations then go straight to the engine.
	local atomic.Pointer[leader]
	// isLeader is set as soon as this handle leads, before queued calls run.
	isLeader atomic.Bool

	mu      sync.Mutex // guards the fields below
	role    role
	conn    *client.Conn   // the leader, when following
	lead    *leader        // this handle's engine, once leader
	queue   []*client.Call // calls waiting for a role, in any order; sent by Seq
	seq     uint64         // last Seq given to a call
	changed chan struct{}  // closed and replaced at every change of role
	closed  bool
	iters   map[*Iterator]struct{} // open iterators, released by Close
	snaps   map[*Snapshot]struct{} // open snapshots, released by Close
	joined  bool
	lastErr error  // why the last election attempt did not succeed
	step    string // what the election goroutine is doing, for Open's error

	elected   chan struct{} // closed when this handle becomes leader
	ready     chan error    // receives the outcome of the first election
	closing   chan struct{} // closed by Close
	done      chan struct{} // closed when the election goroutine exits
	closeDone chan struct{} // closed when Close has released everything
}

// Open joins the participants of the database in dir, creating the
// directory and the database if missing, and returns once this handle is
// leader or follower, or fails after Options.OpenTimeout. It never fails
// because another process has the database open.
func Open(dir string, o *Options) (*DB, error) {
	return open(dir, o, false)
}

func open(dir string, o *Options, followOnly bool) (*DB, error) {
	if dir == "" {
		return nil, errors.New("party: open: empty directory path")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("party: open %s: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("party: open: %w", err)
	}
	db := &DB{
		dir:        abs,
		followOnly: followOnly,
		changed:    make(chan struct{}),
		iters:      make(map[*Iterator]struct{}),
		snaps:      make(map[*Snapshot]struct{}),
		elected:    make(chan struct{}),
		ready:      make(chan error, 1),
		closing:    make(chan struct{}),
		done:       make(chan struct{}),
		closeDone:  make(chan struct{}),
	}
	if o != nil {
		db.opts = *o
	}
	db.log = db.opts.Logger
	if db.log == nil {
		db.log = slog.New(slog.DiscardHandler)
	}
	if err := sock.Supported(); err != nil {
		return nil, err
	}
	go db.run()
	timeout := db.opts.openTimeout()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case err := <-db.ready:
		if err != nil {
			db.Close()
			return nil, fmt.Errorf("party: open %s: %w", dir, err)
		}
		return db, nil
	case <-timer.C:
		db.mu.Lock()
		last, step := db.lastErr, db.step
		db.mu.Unlock()
		db.Close()
		return nil, openTimeoutError(dir, timeout, last, step)
	}
}

// Dir returns the absolute path of the database directory.
func (db *DB) Dir() string { return db.dir }

// IsLeader reports whether this handle is the leader, serving the others.
func (db *DB) IsLeader() bool { return db.isLeader.Load() }

// Elected returns a channel that is closed when this handle becomes the
// leader. A handle stays leader until it is closed.
func (db *DB) Elected() <-chan struct{} { return db.elected }

// Get returns a copy of the value of key, or ErrNotFound.
func (db *DB) Get(ctx context.Context, key []byte) ([]byte, error) {
	if err := checkSize(key, nil, nil); err != nil {
		return nil, err
	}
	code, body, err := db.do(ctx, wire.Request{Type: wire.TGet, Key: key})
	if err != nil {
		return nil, err
	}
	if err := errOf(code, body); err != nil {
		return nil, err
	}
	return body, nil
}

// Has reports whether key is present.
func (db *DB) Has(ctx context.Context, key []byte) (bool, error) {
	if err := checkSize(key, nil, nil); err != nil {
		return false, err
	}
	code, body, err := db.do(ctx, wire.Request{Type: wire.THas, Key: key})
	if err != nil {
		return false, err
	}
	if err := errOf(code, body); err != nil {
		return false, err
	}
	return len(body) == 1 && body[0] == 1, nil
}

// Put sets key to value. The arguments may be reused once Put returns.
func (db *DB) Put(ctx context.Context, key, value []byte) error {
	if err := checkSize(key, value, nil); err != nil {
		return err
	}
	return db.write(ctx, wire.Request{Type: wire.TPut, Key: key, Value: value})
}

// Delete removes key; deleting an absent key is not an error.
func (db *DB) Delete(ctx context.Context, key []byte) error {
	if err := checkSize(key, nil, nil); err != nil {
		return err
	}
	return db.write(ctx, wire.Request{Type: wire.TDelete, Key: key})
}

// Write applies the batch atomically. The batch may be reused once Write
// returns.
func (db *DB) Write(ctx context.Context, b *Batch) error {
	if b == nil || b.n == 0 {
		return ctx.Err()
	}
	if err := checkSize(nil, nil, b.records); err != nil {
		return err
	}
	return db.write(ctx, wire.Request{Type: wire.TBatch, Records: b.records})
}

// DeleteRange removes every key in r (every key if r is nil). It is not
// atomic: it deletes in batches of about a thousand keys, and an error or
// a retry after failover may leave a prefix of the range deleted.
func (db *DB) DeleteRange(ctx context.Context, r *Range) error {
	rg := r.wire()
	if err := checkSize(rg.Start, rg.Limit, nil); err != nil {
		return err
	}
	return db.write(ctx, wire.Request{Type: wire.TDeleteRange, Range: rg})
}

func (db *DB) write(ctx context.Context, req wire.Request) error {
	if db.opts.Sync {
		req.Flags |= wire.FlagSync
	}
	code, body, err := db.do(ctx, req)
	if err != nil {
		return err
	}
	return errOf(code, body)
}

// checkSize refuses what could not cross the socket in one frame.
func checkSize(key, value, records []byte) error {
	if n := wire.RequestSize(key, value, records); n > wire.DefaultMaxFrame {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, n, wire.DefaultMaxFrame)
	}
	return nil
}

// do runs req on the leader, whoever that is, and waits for its outcome.
func (db *DB) do(ctx context.Context, req wire.Request) (wire.Code, []byte, error) {
	if err := ctx.Err(); err != nil {
		return 0, nil, err
	}
	if l := db.local.Load(); l != nil {
		code, body := l.exec(&req)
		return code, body, nil
	}
	call, err := db.call(ctx, req)
	if err != nil {
		return 0, nil, err
	}
	return call.Code, call.Body, nil
}

// call dispatches req as a call and waits for it to finish or for ctx to
// end.
func (db *DB) call(ctx context.Context, req wire.Request) (*client.Call, error) {
	call := client.NewCall(req, 0)
	db.dispatch(call)
	return call, call.Wait(ctx, db.forget)
}

// dispatch hands call to the current leader, or queues it until there is
// one.
func (db *DB) dispatch(call *client.Call) {
	for {
		db.mu.Lock()
		if db.closed {
			db.mu.Unlock()
			call.Fail(ErrClosed)
			return
		}
		if call.Seq == 0 {
			db.seq++
			call.Seq = db.seq
		}
		switch db.role {
		case roleLeader:
			l := db.lead
			db.mu.Unlock()
			l.run(call)
			return
		case roleFollower:
			c := db.conn
			db.mu.Unlock()
			if c.Send(call) == nil {
				return
			}
			// The connection died and the election goroutine has not yet
			// noticed: the call was never sent, so it waits for the next
			// leader whatever the retry policy.
			db.mu.Lock()
			if db.conn == c {
				db.enqueue(call)
				db.mu.Unlock()
				return
			}
			db.mu.Unlock()
		default:
			db.enqueue(call)
			db.mu.Unlock()
			return
		}
	}
}

// enqueue makes call wait for the next leader, or fails it if the handle
// is closed, since Close may already have swept the queue; db.mu is held.
func (db *DB) enqueue(calls ...*client.Call) {
	if db.closed {
		for _, call := range calls {
			call.Fail(ErrClosed)
		}
		return
	}
	db.queue = append(db.queue, calls...)
}

// forget drops an abandoned call from wherever it waits.
func (db *DB) forget(call *client.Call) {
	db.mu.Lock()
	c := db.conn
	for i, q := range db.queue {
		if q == call {
			db.queue = append(db.queue[:i], db.queue[i+1:]...)
			break
		}
	}
	db.mu.Unlock()
	if c != nil {
		c.Forget(call)
	}
}

// backend waits until this handle has a role and returns the leader's
// engine or the connection to it.
func (db *DB) backend(ctx context.Context) (*leader, *client.Conn, error) {
	for {
		db.mu.Lock()
		if db.closed {
			db.mu.Unlock()
			return nil, nil, ErrClosed
		}
		switch db.role {
		case roleLeader:
			l := db.lead
			db.mu.Unlock()
			return l, nil, nil
		case roleFollower:
			c := db.conn
			if c.Err() == nil {
				db.mu.Unlock()
				return nil, c, nil
			}
			// Dead, and the election goroutine is about to notice: wait.
		}
		ch := db.changed
		db.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case <-db.closing:
			return nil, nil, ErrClosed
		}
	}
}

// setRole changes the role and wakes those waiting for one. db.mu is held.
func (db *DB) setRole(r role) {
	db.role = r
	close(db.changed)
	db.changed = make(chan struct{})
}

// Close leaves the party. Pending operations fail with ErrClosed; open
// iterators and snapshots are released. A leader first finishes and
// answers the follower requests it has started, then closes the database
// and releases the lock, so that the followers elect a new leader at once.
// Close returns once every resource is released; later calls return nil.
func (db *DB) Close() error {
	db.mu.Lock()
	if db.closed {
		db.mu.Unlock()
		<-db.closeDone
		return nil
	}
	defer close(db.closeDone)
	db.closed = true
	close(db.closing)
	queue := db.queue
	db.queue = nil
	iters := make([]*Iterator, 0, len(db.iters))
	for it := range db.iters {
		iters = append(iters, it)
	}
	snaps := make([]*Snapshot, 0, len(db.snaps))
	for s := range db.snaps {
		snaps = append(snaps, s)
	}
	db.mu.Unlock()

	for _, call := range queue {
		call.Fail(ErrClosed)
	}
	<-db.done
	db.mu.Lock()
	queue = db.queue // put back by goroutines that raced with Close
	db.queue = nil
	db.mu.Unlock()
	for _, call := range queue {
		call.Fail(ErrClosed)
	}
	for _, it := range iters {
		it.Release()
	}
	for _, s := range snaps {
		s.Release()
	}
	db.mu.Lock()
	l := db.lead
	db.mu.Unlock()
	db.local.Store(nil)
	db.isLeader.Store(false)
	if l != nil {
		return l.close()
	}
	return nil
}
