package partyetcd

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/levelparty/party/backend"
)

// maxWatchBuffer bounds the changes a watcher holds that Next has not
// returned. Past it, the watcher stops etcd's watch, and starts it again
// from the next revision once Next has taken half: a slow reader costs
// neither memory nor a gap, as etcd keeps the history.
const maxWatchBuffer = 4 << 20

// Watch implements backend.Backend with etcd's watch, from the revision
// after the current one: every write that starts after Watch returns has a
// later revision, so it is delivered. When etcd's watch ends (a member
// fails, the connection drops), the watcher starts a new one from the
// revision after the last it received: nothing is missed or repeated.
// Only when that revision was compacted does Next report ErrWatchGap.
func (s *store) Watch(ctx context.Context, r backend.Range) (backend.Watcher, error) {
	rev, err := s.revision(ctx)
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithCancel(context.Background())
	w := &watcher{s: s, sp: s.span(r), next: rev + 1, changed: make(chan struct{}), resume: make(chan struct{}, 1), cancel: cancel}
	if !w.sp.empty() { // etcd refuses to watch an empty range; nothing changes in it
		go w.pump(pctx)
	}
	return w, nil
}

type watcher struct {
	s      *store
	sp     span
	cancel context.CancelFunc // ends the pump
	resume chan struct{}      // wakes a paused pump

	mu      sync.Mutex
	next    int64         // the revision after the last received
	pending []watchEntry  // received, not yet returned by Next
	size    int           // bytes in pending
	paused  bool          // pending is full: etcd's watch is stopped
	closed  bool          // Close was called
	changed chan struct{} // closed and replaced when the fields change
}

// watchEntry is one write's changes, a gap, or why the watch ended.
type watchEntry struct {
	changes []backend.Change
	size    int
	gap     bool
	err     error // the watch ended: Next returns it from then on
}

// notify wakes Next calls; w.mu is held.
func (w *watcher) notify() {
	close(w.changed)
	w.changed = make(chan struct{})
}

// pump runs etcd's watch from w.next into pending, starting it again when
// it ends and stopping it while pending is full.
func (w *watcher) pump(ctx context.Context) {
	wait := 10 * time.Millisecond
	for {
		w.mu.Lock()
		from := w.next
		w.mu.Unlock()
		// WithRequireLeader ends the watch when its member loses the
		// cluster's leader, so that the next is made on one that has one.
		wctx, wcancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
		state := w.drain(w.s.cli.Watch(wctx, w.sp.start, clientv3.WithRange(w.sp.etcdEnd()), clientv3.WithRev(from)))
		wcancel()
		pause := time.After(wait)
		switch state {
		case drainFull:
			pause, wait = nil, 10*time.Millisecond
		case drainFailed:
			return
		default:
			wait = min(2*wait, 500*time.Millisecond)
		}
		select {
		case <-pause:
		case <-w.resume:
		case <-ctx.Done():
			return
		case <-w.s.done:
			return
		}
	}
}

// How drain ended.
const (
	drainEnded  = iota // etcd's watch ended: start another
	drainFull          // pending is full: wait until Next takes half
	drainFailed        // the watch was refused for good: Next reports why
)

// drain moves ch's changes into pending until ch ends, pending is full or
// etcd refuses the watch.
func (w *watcher) drain(ch clientv3.WatchChan) int {
	for resp := range ch {
		w.mu.Lock()
		switch err := resp.Err(); {
		case resp.CompactRevision != 0:
			// The revision to watch from is gone: a gap, then on from the
			// oldest kept.
			w.pending = append(w.pending, watchEntry{gap: true})
			w.next = resp.CompactRevision
			w.notify()
			w.mu.Unlock()
			return drainEnded
		case err != nil && !transient(err):
			w.pending = append(w.pending, watchEntry{err: fmt.Errorf("partyetcd: watch: %w", err)})
			w.notify()
			w.mu.Unlock()
			return drainFailed
		case resp.Canceled || err != nil:
			w.mu.Unlock()
			return drainEnded
		}
		w.add(resp)
		over := w.size > maxWatchBuffer
		w.paused = over
		w.mu.Unlock()
		if over {
			return drainFull
		}
	}
	return drainEnded
}

// add queues the events of resp, one entry per revision (one write), with
// party's own keys left out; w.mu is held.
func (w *watcher) add(resp clientv3.WatchResponse) {
	var rev int64
	added := false
	for _, ev := range resp.Events {
		kv := ev.Kv
		if kv.ModRevision < w.next {
			continue // received before a restart
		}
		key := kv.Key[len(w.s.prefix):]
		if backend.Hidden(key) {
			continue
		}
		if kv.ModRevision != rev {
			rev = kv.ModRevision
			w.pending = append(w.pending, watchEntry{})
		}
		c := backend.Change{Key: key, Value: kv.Value, Deleted: ev.Type == clientv3.EventTypeDelete}
		if c.Deleted {
			c.Value = nil
		} else if c.Value == nil {
			c.Value = []byte{}
		}
		e := &w.pending[len(w.pending)-1]
		e.changes = append(e.changes, c)
		e.size += len(c.Key) + len(c.Value) + 32
		w.size += len(c.Key) + len(c.Value) + 32
		added = true
	}
	if n := len(resp.Events); n > 0 {
		w.next = max(w.next, resp.Events[n-1].Kv.ModRevision+1)
	}
	if added {
		w.notify()
	}
}

// Next implements backend.Watcher.
func (w *watcher) Next(ctx context.Context) ([]backend.Change, error) {
	for {
		if err := w.s.check(); err != nil {
			return nil, err
		}
		w.mu.Lock()
		if w.closed {
			w.mu.Unlock()
			return nil, backend.ErrClosed
		}
		if len(w.pending) > 0 {
			e := w.pending[0]
			if e.err != nil { // it stays: every later call returns it
				w.mu.Unlock()
				return nil, e.err
			}
			w.pending = w.pending[1:]
			w.size -= e.size
			if w.paused && w.size <= maxWatchBuffer/2 {
				w.paused = false
				select {
				case w.resume <- struct{}{}:
				default:
				}
			}
			w.mu.Unlock()
			if e.gap {
				return nil, backend.ErrWatchGap
			}
			return e.changes, nil
		}
		changed := w.changed
		w.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-w.s.done:
			return nil, backend.ErrClosed
		}
	}
}

// buffered returns the bytes of changes the watcher holds (for tests).
func (w *watcher) buffered() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.size
}

// Close implements backend.Watcher.
func (w *watcher) Close() {
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		w.cancel()
		w.notify()
	}
	w.mu.Unlock()
}

// Status implements backend.Backend with what is true of a cluster: no
// handle leads; LeaderID holds the etcd leader's member id (8 bytes, big
// endian); Followers counts the other members; DiskSize is the answering
// member's database size.
func (s *store) Status(ctx context.Context) (backend.Status, error) {
	var st backend.Status
	err := s.do(ctx, func(ctx context.Context) error {
		var last error
		for _, ep := range s.cli.Endpoints() {
			resp, err := s.cli.Status(ctx, ep)
			if err != nil {
				last = err
				continue
			}
			members, err := s.cli.MemberList(ctx)
			if err != nil {
				return err
			}
			for i := range 8 {
				st.LeaderID[i] = byte(resp.Leader >> (56 - 8*i))
			}
			st.Followers = len(members.Members) - 1
			st.DiskSize = resp.DbSize
			return nil
		}
		if last == nil {
			last = errors.New("no endpoints")
		}
		return last
	})
	if err != nil {
		return backend.Status{}, fmt.Errorf("partyetcd: status: %w", err)
	}
	return st, nil
}
