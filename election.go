package party

import (
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"syscall"
	"time"

	"github.com/levelparty/party/internal/client"
	"github.com/levelparty/party/internal/engine"
	"github.com/levelparty/party/internal/host"
	"github.com/levelparty/party/internal/lock"
	"github.com/levelparty/party/internal/sock"
	"github.com/levelparty/party/internal/wire"
	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/opt"
)

// Election delays: while the lock is held by a participant that is not
// serving yet, wait a short, growing, jittered delay before trying again.
const (
	minElectionDelay = time.Millisecond
	maxElectionDelay = 25 * time.Millisecond
)

// run is the handle's election goroutine: it finds a role, and finds one
// again whenever the leader is lost, until Close or until it leads.
func (db *DB) run() {
	defer close(db.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-db.closing:
			cancel()
		case <-ctx.Done():
		}
	}()

	var flags uint8
	if db.opts.NoRetry {
		flags |= wire.HelloNoRetry
	}
	delay := minElectionDelay
	warned := time.Now()
	for ctx.Err() == nil {
		db.setStep("waiting for an answer on " + sock.Name)
		c, dialErr := client.Dial(ctx, db.dir, flags, 0, db.log)
		if dialErr == nil {
			// Close must end the connection even while this goroutine is
			// blocked writing to a leader that stopped reading.
			stop := context.AfterFunc(ctx, c.Close)
			db.follow(c)
			<-c.Dead()
			stop()
			db.lost(c)
			delay = minElectionDelay
			warned = time.Now()
			continue
		}
		var led bool
		var err error
		if !db.followOnly {
			db.setStep("opening the database to lead")
			led, err = db.tryLead()
		}
		if led {
			return
		}
		if err != nil && !errors.Is(err, lock.ErrHeld) {
			// Not a contest for the lock: the database cannot be opened.
			if db.fail(err) {
				return
			}
		}
		db.noteFailure(dialErr, err)
		if time.Since(warned) > db.opts.openTimeout() {
			db.mu.Lock()
			last := db.lastErr
			db.mu.Unlock()
			db.log.Warn("party: still no leader; operations stay pending", "dir", db.dir, "reason", last)
			warned = time.Now()
		}
		select {
		case <-time.After(jitter(delay)):
		case <-ctx.Done():
		}
		delay = min(2*delay, maxElectionDelay)
	}
}

func (db *DB) setStep(s string) {
	db.mu.Lock()
	db.step = s
	db.mu.Unlock()
}

func jitter(d time.Duration) time.Duration {
	return d/2 + rand.N(d)
}

// fail reports a fatal error to Open if the handle has not joined yet, in
// which case the election stops. A handle that has joined keeps trying:
// another participant may still lead.
func (db *DB) fail(err error) bool {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.joined {
		db.log.Error("party: cannot lead", "dir", db.dir, "err", err)
		return false
	}
	db.joined = true
	db.ready <- err
	return true
}

// noteFailure remembers why the last attempt failed, for Open's error.
func (db *DB) noteFailure(dialErr, leadErr error) {
	var refused *client.RefusedError
	err := leadErr
	if errors.As(dialErr, &refused) {
		err = dialErr
	}
	if err == nil {
		err = dialErr
	}
	db.mu.Lock()
	db.lastErr = err
	db.mu.Unlock()
}

// join marks the first role; db.mu is held.
func (db *DB) join() {
	if !db.joined {
		db.joined = true
		db.ready <- nil
	}
}

// follow makes c the leader: calls queued meanwhile are sent first, in
// the order they were issued, then new calls go straight to c.
func (db *DB) follow(c *client.Conn) {
	w := c.Welcome()
	db.log.Info("party: following", "dir", db.dir, "leader_pid", w.PID, "leader_id", fmt.Sprintf("%x", w.LeaderID))
	db.mu.Lock()
	db.setRole(roleFlushing)
	// If c dies meanwhile, the rest of the queue waits for the next leader.
	db.drainQueue(func(call *client.Call) bool { return c.Send(call) == nil })
	db.conn = c
	db.setRole(roleFollower)
	db.join()
	db.mu.Unlock()
}

// drainQueue hands the queued calls to send in issue order, until the
// queue stays empty, so that calls issued meanwhile also go after the older
// ones. If send returns false, it stops and the rest stay queued. db.mu is
// held on entry and on return, but not while send runs.
func (db *DB) drainQueue(send func(*client.Call) bool) {
	for len(db.queue) > 0 && !db.closed {
		q := db.queue
		db.queue = nil
		db.mu.Unlock()
		client.SortBySeq(q)
		for i, call := range q {
			if call.Live() && !send(call) {
				db.mu.Lock()
				db.enqueue(q[i:]...)
				return
			}
		}
		db.mu.Lock()
	}
}

// lost handles the end of the connection to the leader, in one place: the
// calls it never answered wait for the next leader, or fail with
// ErrLeaderLost under NoRetry, or with ErrClosed when closing. Calls on a
// snapshot fail with ErrSnapshotLost: the snapshot died with its leader.
func (db *DB) lost(c *client.Conn) {
	db.mu.Lock()
	db.conn = nil
	db.setRole(roleNone)
	db.mu.Unlock()
	calls := c.TakePending()
	db.mu.Lock()
	defer db.mu.Unlock()
	if !db.closed {
		db.log.Info("party: leader lost", "dir", db.dir, "reason", c.Err(), "in_flight", len(calls))
	}
	for _, call := range calls {
		switch {
		case db.closed:
			call.Fail(ErrClosed)
		case call.Req.Snap != 0:
			call.Fail(ErrSnapshotLost)
		case call.Bound:
			call.Fail(client.ErrConnLost)
		case db.opts.NoRetry:
			call.Fail(ErrLeaderLost)
		default:
			db.enqueue(call)
		}
	}
}

// leader is this handle's state as leader.
type leader struct {
	db     *DB
	engine *leveldb.DB
	host   *host.Host
	lock   *lock.File
	id     [16]byte
	since  time.Time
	wo     *opt.WriteOptions
}

// tryLead takes the lock and, if it gets it, opens the engine, serves the
// socket and runs the queued calls. It returns false with a lock.ErrHeld
// error when another participant or program holds the lock.
func (db *DB) tryLead() (bool, error) {
	lk, err := lock.TryLock(filepath.Join(db.dir, "LOCK"))
	if err != nil {
		return false, err
	}
	o := opt.Options{}
	if db.opts.LevelDB != nil {
		o = *db.opts.LevelDB
	}
	o.ReadOnly = false
	eng, err := leveldb.OpenFile(db.dir, &o)
	if err != nil {
		lk.Unlock()
		if errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EWOULDBLOCK) {
			// goleveldb's flock is held but party's lock was free: a Go
			// program using goleveldb directly has the database.
			return false, &lock.HeldError{Path: filepath.Join(db.dir, "LOCK")}
		}
		return false, err
	}
	ln, err := sock.Listen(db.dir)
	if err != nil {
		eng.Close()
		lk.Unlock()
		return false, err
	}
	l := &leader{db: db, engine: eng, lock: lk, since: time.Now(), wo: &opt.WriteOptions{}}
	crand.Read(l.id[:])
	l.host = host.Serve(ln, host.Config{
		DB:        eng,
		Dir:       db.dir,
		AllowRoot: db.opts.AllowRoot,
		Logger:    db.log,
		LeaderID:  l.id,
		Since:     l.since,
	})
	db.log.Info("party: elected leader", "dir", db.dir, "leader_id", fmt.Sprintf("%x", l.id))

	db.mu.Lock()
	db.lead = l
	db.setRole(roleFlushing)
	db.isLeader.Store(true)
	close(db.elected)
	db.drainQueue(func(call *client.Call) bool { l.run(call); return true })
	db.setRole(roleLeader)
	db.local.Store(l)
	db.join()
	db.mu.Unlock()
	return true, nil
}

// errRunLocally tells GetSnapshot that its call reached this handle's own
// engine, where a snapshot is taken directly.
var errRunLocally = errors.New("run locally")

// run executes a call on the engine.
func (l *leader) run(call *client.Call) {
	if call.Req.Type == wire.TSnapshot || call.Req.Type == wire.TStatus {
		call.Fail(errRunLocally)
		return
	}
	code, body := l.exec(&call.Req)
	call.Complete(code, body, nil)
}

// exec executes a request on the engine, as the host does for followers.
func (l *leader) exec(req *wire.Request) (wire.Code, []byte) {
	wo := l.wo
	if req.Flags&wire.FlagSync != 0 {
		wo = syncWrite
	}
	var err error
	switch req.Type {
	case wire.TGet, wire.THas:
		return engine.Get(l.engine, req)
	case wire.TPut:
		err = l.engine.Put(req.Key, req.Value, wo)
	case wire.TDelete:
		err = l.engine.Delete(req.Key, wo)
	case wire.TBatch:
		var b leveldb.Batch
		engine.AddWrite(&b, req)
		err = l.engine.Write(&b, wo)
	case wire.TDeleteRange:
		err = engine.DeleteRange(l.engine, req.Range, wo)
	default:
		return wire.BadRequest, []byte("not a call: " + req.Type.String())
	}
	return engine.Code(err)
}

var syncWrite = &opt.WriteOptions{Sync: true}

// close stops serving, finishing the requests followers have sent, then
// removes the socket and closes the engine while the lock is still held,
// and releases the lock last.
func (l *leader) close() error {
	l.host.Close()
	err := sock.Remove(l.db.dir)
	if cerr := l.engine.Close(); err == nil {
		err = cerr
	}
	if uerr := l.lock.Unlock(); err == nil {
		err = uerr
	}
	return err
}

// openTimeoutError explains why Open could not join in time.
func openTimeoutError(dir string, timeout time.Duration, last error, step string) error {
	var held *lock.HeldError
	if errors.As(last, &held) {
		return fmt.Errorf("party: open %s: no leader answered on %s within %v while the lock stays held: %w (%v)",
			dir, sock.Name, timeout, ErrLockedByOther, held)
	}
	if last == nil {
		last = fmt.Errorf("still %s", step)
	}
	return fmt.Errorf("party: open %s: could not join within %v: %w", dir, timeout, last)
}
