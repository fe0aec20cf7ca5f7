package node

import (
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"path/filepath"
	"syscall"
	"time"

	"github.com/levelparty/party/internal/call"
	"github.com/levelparty/party/internal/engine"
	"github.com/levelparty/party/internal/host"
	"github.com/levelparty/party/internal/lock"
	"github.com/levelparty/party/internal/sock"
	"github.com/syndtr/goleveldb/leveldb/opt"
)

// leader is this handle's state as leader: the engine its calls run on,
// the host that serves the followers, and the lock that makes it leader.
type leader struct {
	dir  string
	eng  *engine.Engine
	host *host.Host
	lock *lock.File
}

// tryLead takes the lock and, if it gets it, opens the engine, serves the
// socket and runs the queued calls. It returns false with a lock.ErrHeld
// error when another participant or program holds the lock.
func (n *Node) tryLead(ctx context.Context) (bool, error) {
	path := filepath.Join(n.dir, "LOCK")
	lk, err := lock.TryLock(path)
	if err != nil {
		return false, err
	}
	o := opt.Options{}
	if n.cfg.LevelDB != nil {
		o = *n.cfg.LevelDB
	}
	o.ReadOnly = false
	eng, err := engine.Open(n.dir, &o)
	if err != nil {
		lk.Unlock()
		if errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EWOULDBLOCK) {
			// goleveldb's flock is held but party's lock was free: a Go
			// program using goleveldb directly has the database.
			return false, &lock.HeldError{Path: path}
		}
		return false, err
	}
	ln, err := sock.Listen(n.dir)
	if err != nil {
		eng.Close()
		lk.Unlock()
		return false, err
	}
	eng.TrimOldRecords()
	var id [16]byte
	crand.Read(id[:])
	l := &leader{dir: n.dir, eng: eng, lock: lk}
	l.host = host.Serve(ln, host.Config{
		Engine:    eng,
		Dir:       n.dir,
		AllowRoot: n.cfg.AllowRoot,
		Logger:    n.log,
		LeaderID:  id,
		Since:     time.Now(),
	})
	n.log.Info("party: elected leader", "dir", n.dir, "leader_id", fmt.Sprintf("%x", id))

	n.mu.Lock()
	close(n.elected)
	n.drainQueue(func(c *call.Call) bool { l.exec(ctx, c); return true })
	n.setVia(&route{lead: l})
	n.join()
	n.mu.Unlock()
	return true, nil
}

// exec runs c on the engine and finishes it: for calls that were queued
// while this handle had no leader, and for calls that met the election on
// their way.
func (l *leader) exec(ctx context.Context, c *call.Call) {
	var err error
	switch c.Kind {
	case call.Get:
		var v []byte
		v, err = l.eng.Get(c.Key)
		c.Finish(func(c *call.Call) { c.Value, c.Err = v, err })
		return
	case call.Has:
		var ok bool
		ok, err = l.eng.Has(c.Key)
		c.Finish(func(c *call.Call) { c.Found, c.Err = ok, err })
		return
	case call.Put:
		err = l.eng.Put(ctx, c.Key, c.Value, c.Sync)
	case call.Delete:
		err = l.eng.Delete(ctx, c.Key, c.Sync)
	case call.Write:
		err = l.eng.Write(ctx, c.Batch, c.Sync)
	case call.DeleteRange:
		err = l.eng.DeleteRange(ctx, c.Range, c.Sync)
	case call.Snapshot:
		s, err := l.eng.Snapshot()
		if !c.Finish(func(c *call.Call) { c.Local, c.Err = s, err }) && s != nil {
			s.Release() // its caller gave up
		}
		return
	case call.Status:
		c.Finish(func(c *call.Call) { c.Status = l.host.Status() })
		return
	case call.Compact:
		err = l.eng.CompactRange(c.Range)
	case call.SizeOf:
		sizes, err := l.eng.SizeOf(c.Ranges)
		c.Finish(func(c *call.Call) { c.Sizes, c.Err = sizes, err })
		return
	case call.Property:
		v, err := l.eng.Property(string(c.Key))
		c.Finish(func(c *call.Call) { c.Value, c.Err = []byte(v), err })
		return
	default:
		err = fmt.Errorf("party: a call of kind %d cannot run on the engine", c.Kind)
	}
	c.Finish(func(c *call.Call) { c.Err = err })
}

// close stops serving, finishing the requests followers have sent, then
// removes the socket and closes the engine while the lock is still held,
// and releases the lock last.
func (l *leader) close() error {
	l.host.Close()
	err := sock.Remove(l.dir)
	if cerr := l.eng.Close(); err == nil {
		err = cerr
	}
	if uerr := l.lock.Unlock(); err == nil {
		err = uerr
	}
	return err
}
