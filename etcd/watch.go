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

// Watch implements backend.Backend with etcd's watch, from the revision
// after the current one: every write that starts after Watch returns has a
// later revision, so it is delivered. When etcd's watch ends (a member
// fails, the connection drops), the watcher starts a new one from the
// revision after the last it delivered: nothing is missed or repeated.
// Only when that revision was compacted does Next report ErrWatchGap.
func (s *store) Watch(ctx context.Context, r backend.Range) (backend.Watcher, error) {
	rev, err := s.revision(ctx)
	if err != nil {
		return nil, err
	}
	sp := s.span(r)
	w := &watcher{s: s, sp: sp, next: rev + 1, closed: make(chan struct{})}
	w.start()
	return w, nil
}

type watcher struct {
	s  *store
	sp span

	mu      sync.Mutex // held by Next
	next    int64      // the revision to watch from
	ch      clientv3.WatchChan
	cancel  context.CancelFunc
	pending [][]backend.Change // writes received, not yet returned
	gap     bool               // report ErrWatchGap before pending

	closeOnce sync.Once
	closed    chan struct{}
}

// start starts etcd's watch from w.next. WithRequireLeader ends it when
// its member loses the cluster's leader, so that a new one is started
// on a member that has one.
func (w *watcher) start() {
	ctx, cancel := context.WithCancel(clientv3.WithRequireLeader(context.Background()))
	w.cancel = cancel
	w.ch = w.s.cli.Watch(ctx, w.sp.start, clientv3.WithRange(w.sp.etcdEnd()), clientv3.WithRev(w.next))
}

// Next implements backend.Watcher.
func (w *watcher) Next(ctx context.Context) ([]backend.Change, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	wait := 10 * time.Millisecond
	for {
		select {
		case <-w.closed:
			return nil, backend.ErrClosed
		default:
		}
		if w.gap {
			w.gap = false
			return nil, backend.ErrWatchGap
		}
		if len(w.pending) > 0 {
			cs := w.pending[0]
			w.pending = w.pending[1:]
			return cs, nil
		}
		var resp clientv3.WatchResponse
		var ok bool
		select {
		case resp, ok = <-w.ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-w.closed:
			return nil, backend.ErrClosed
		}
		if err := w.s.check(); err != nil {
			return nil, err
		}
		switch {
		case ok && resp.CompactRevision != 0:
			// The revision to watch from is gone: report the gap, go on
			// from the oldest kept.
			w.gap = true
			w.next = resp.CompactRevision
			w.restart()
			continue
		case !ok || resp.Canceled || resp.Err() != nil:
			// etcd's watch ended: start a new one where it stopped, after a
			// pause so a cluster without a leader is not spun on.
			w.restart()
			select {
			case <-time.After(wait):
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-w.closed:
				return nil, backend.ErrClosed
			}
			wait = min(2*wait, 500*time.Millisecond)
			continue
		}
		wait = 10 * time.Millisecond
		w.add(resp)
	}
}

func (w *watcher) restart() {
	w.cancel()
	w.start()
}

// add queues the events of resp, one group per revision (one write), with
// party's own keys left out.
func (w *watcher) add(resp clientv3.WatchResponse) {
	var rev int64
	for _, ev := range resp.Events {
		kv := ev.Kv
		if kv.ModRevision < w.next {
			continue // delivered before a restart
		}
		key := kv.Key[len(w.s.prefix):]
		if backend.Hidden(key) {
			continue
		}
		if kv.ModRevision != rev {
			rev = kv.ModRevision
			w.pending = append(w.pending, nil)
		}
		c := backend.Change{Key: key, Value: kv.Value, Deleted: ev.Type == clientv3.EventTypeDelete}
		if c.Deleted {
			c.Value = nil
		} else if c.Value == nil {
			c.Value = []byte{}
		}
		last := len(w.pending) - 1
		w.pending[last] = append(w.pending[last], c)
	}
	if n := len(resp.Events); n > 0 {
		w.next = max(w.next, resp.Events[n-1].Kv.ModRevision+1)
	}
}

// Close implements backend.Watcher.
func (w *watcher) Close() {
	w.closeOnce.Do(func() {
		close(w.closed)
		w.mu.Lock()
		w.cancel()
		w.mu.Unlock()
	})
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
