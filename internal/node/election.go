package node

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/levelparty/party/backend"
	"github.com/levelparty/party/internal/call"
	"github.com/levelparty/party/internal/client"
	"github.com/levelparty/party/internal/lock"
	"github.com/levelparty/party/internal/sock"
	"github.com/levelparty/party/internal/wire"
)

// Election delays: while the lock is held by a participant that is not
// serving yet, wait a short, growing, jittered delay before trying again.
const (
	minElectionDelay = time.Millisecond
	maxElectionDelay = 25 * time.Millisecond
)

// run is the handle's election goroutine: it finds a role, and finds one
// again whenever the leader is lost, until Close or until it leads.
func (n *Node) run() {
	defer close(n.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-n.closing:
			cancel()
		case <-ctx.Done():
		}
	}()

	var flags uint8
	if n.cfg.NoRetry {
		flags |= wire.HelloNoRetry
	}
	delay := minElectionDelay
	warned := time.Now()
	for ctx.Err() == nil {
		n.setStep("waiting for an answer on " + sock.Name)
		c, dialErr := client.Dial(ctx, n.dir, flags, n.cfg.BusyPoll, n.log)
		if dialErr == nil {
			// Close ends the connection even while this goroutine is
			// handing it the queued calls.
			stop := context.AfterFunc(ctx, c.Close)
			n.follow(ctx, c)
			<-c.Dead()
			stop()
			n.lost(c)
			delay = minElectionDelay
			warned = time.Now()
			continue
		}
		var led bool
		var err error
		if !n.cfg.FollowOnly {
			n.setStep("opening the database to lead")
			led, err = n.tryLead(ctx)
		}
		if led {
			return
		}
		if err != nil && !errors.Is(err, lock.ErrHeld) {
			// Not a contest for the lock: the database cannot be opened.
			if n.fail(err) {
				return
			}
		}
		n.noteFailure(dialErr, err)
		if time.Since(warned) > n.cfg.OpenTimeout {
			n.mu.Lock()
			last := n.lastErr
			n.mu.Unlock()
			n.log.Warn("party: still no leader; operations stay pending", "dir", n.dir, "reason", last)
			warned = time.Now()
		}
		select {
		case <-time.After(jitter(delay)):
		case <-ctx.Done():
		}
		delay = min(2*delay, maxElectionDelay)
	}
}

func (n *Node) setStep(s string) {
	n.mu.Lock()
	n.step = s
	n.mu.Unlock()
}

func jitter(d time.Duration) time.Duration {
	return d/2 + rand.N(d)
}

// fail reports a fatal error to Open if the handle has not joined yet, in
// which case the election stops. A handle that has joined keeps trying:
// another participant may still lead.
func (n *Node) fail(err error) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.joined {
		n.log.Error("party: cannot lead", "dir", n.dir, "err", err)
		return false
	}
	n.joined = true
	n.ready <- err
	return true
}

// noteFailure remembers why the last attempt failed, for Open's error.
func (n *Node) noteFailure(dialErr, leadErr error) {
	var refused *client.RefusedError
	err := leadErr
	if errors.As(dialErr, &refused) {
		err = dialErr
	}
	if err == nil {
		err = dialErr
	}
	n.mu.Lock()
	n.lastErr = err
	n.mu.Unlock()
}

// join tells Open the first role; n.mu is held.
func (n *Node) join() {
	if !n.joined {
		n.joined = true
		n.ready <- nil
	}
}

// follow makes c the leader: calls queued meanwhile are sent first, in the
// order they were issued, then new calls go straight to c.
func (n *Node) follow(ctx context.Context, c *client.Conn) {
	w := c.Welcome()
	n.log.Info("party: following", "dir", n.dir, "leader_pid", w.PID, "leader_id", fmt.Sprintf("%x", w.LeaderID))
	n.mu.Lock()
	// If c dies meanwhile, the rest of the queue waits for the next leader.
	n.drainQueue(func(cl *call.Call) bool { return !errors.Is(c.Send(ctx, cl), client.ErrConnLost) })
	n.setVia(&route{conn: c})
	n.join()
	n.mu.Unlock()
}

// drainQueue hands the queued calls to send in issue order, until the
// queue stays empty, so that calls issued meanwhile also go after the
// older ones. Each call is owned first (its caller's slices copied), since
// its caller may return at any moment; calls abandoned already are
// dropped. If send returns false, it stops and the rest stay queued. n.mu
// is held on entry and on return, but not while send runs.
func (n *Node) drainQueue(send func(*call.Call) bool) {
	for len(n.queue) > 0 && !n.closed {
		q := n.queue
		n.queue = nil
		n.mu.Unlock()
		client.SortBySeq(q)
		for i, c := range q {
			if c.Own() && !send(c) {
				n.mu.Lock()
				n.enqueue(q[i:]...)
				return
			}
		}
		n.mu.Lock()
	}
}

// lost handles the end of the connection to the leader, in one place: the
// calls it never answered wait for the next leader, or fail as afterLoss
// says. Bound calls fail with client.ErrConnLost: their owner (a cursor, a
// snapshot) asks afterLoss in turn.
func (n *Node) lost(c *client.Conn) {
	n.mu.Lock()
	n.setVia(nil)
	n.mu.Unlock()
	calls := c.TakePending()
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.closed {
		n.log.Info("party: leader lost", "dir", n.dir, "reason", c.Err(), "in_flight", len(calls))
	}
	for _, cl := range calls {
		if cl.Bound {
			cl.Fail(client.ErrConnLost)
		} else if err := n.afterLoss(false); err != nil {
			cl.Fail(err)
		} else {
			n.enqueue(cl)
		}
	}
}

// afterLoss says what losing the leader means for an operation that was in
// flight: nil to carry it over to the next leader, or the error it fails
// with. onSnapshot says the operation read a snapshot, which died with the
// leader.
func (n *Node) afterLoss(onSnapshot bool) error {
	switch {
	case n.isClosed():
		return backend.ErrClosed
	case onSnapshot:
		return backend.ErrSnapshotLost
	case n.cfg.NoRetry:
		return backend.ErrLeaderLost
	}
	return nil
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
