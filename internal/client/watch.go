package client

import (
	"context"
	"errors"
	"sync"

	"github.com/levelparty/party/backend"
	"github.com/levelparty/party/internal/call"
	"github.com/levelparty/party/internal/wire"
)

// watchBuffer bounds the bytes of changes a watch holds on the follower
// before its reader takes them; past it they are dropped for a gap.
const watchBuffer = 4 << 20

// WatchStream is a follower's watch on the leader: the changes the leader
// sends for it, queued until Next takes them.
type WatchStream struct {
	c  *Conn
	id uint32

	mu     sync.Mutex
	events [][]backend.Change
	size   int
	gap    bool
	closed bool
	stop   context.CancelFunc // ends the Next under way, for Close
	wake   chan struct{}
}

// OpenWatch registers a watch of rng on the leader and returns once the
// leader has registered it. It fails with ErrConnLost if the connection
// dies first.
func (c *Conn) OpenWatch(ctx context.Context, rng backend.Range) (*WatchStream, error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return nil, ErrConnLost
	}
	c.nextWatch++
	s := &WatchStream{c: c, id: c.nextWatch, wake: make(chan struct{}, 1)}
	if c.watches == nil {
		c.watches = make(map[uint32]*WatchStream)
	}
	c.watches[s.id] = s
	c.mu.Unlock()
	cl := call.New(call.WatchOpen)
	cl.Iter, cl.Range, cl.Bound = s.id, rng, true
	if err := c.Do(ctx, cl); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func changesSize(ev []backend.Change) int {
	n := 0
	for _, c := range ev {
		n += len(c.Key) + len(c.Value) + 48
	}
	return n
}

// deliver queues an event the leader sent.
func (s *WatchStream) deliver(flags uint8, ev []backend.Change) {
	s.mu.Lock()
	if flags&wire.WatchGap != 0 {
		s.gap = true
	}
	if len(ev) > 0 {
		if size := changesSize(ev); s.size+size > watchBuffer {
			s.events, s.size, s.gap = nil, 0, true
		} else {
			s.events = append(s.events, ev)
			s.size += size
		}
	}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// take returns what Next returns next, if anything is there.
func (s *WatchStream) take() ([]backend.Change, error, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return nil, backend.ErrClosed, true
	case s.gap:
		s.gap = false
		return nil, backend.ErrWatchGap, true
	case len(s.events) > 0:
		ev := s.events[0]
		s.events[0] = nil
		s.events = s.events[1:]
		s.size -= changesSize(ev)
		return ev, nil, true
	}
	return nil, nil, false
}

func (s *WatchStream) ready() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed || s.gap || len(s.events) > 0
}

// Next returns the changes of the next write, or ErrWatchGap once after
// changes were dropped. Once the connection is dead and what arrived
// before has been taken, it returns ErrConnLost.
func (s *WatchStream) Next(ctx context.Context) ([]backend.Change, error) {
	// Close must end a Next that reads the connection for everyone, which
	// only its context interrupts.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.mu.Lock()
	s.stop = cancel
	s.mu.Unlock()
	for {
		if ev, err, ok := s.take(); ok {
			return ev, err
		}
		select {
		case <-s.c.dead:
			if ev, err, ok := s.take(); ok {
				return ev, err
			}
			return nil, ErrConnLost
		default:
		}
		if err := s.c.await(ctx, s.wake, s.ready); err != nil && !errors.Is(err, ErrConnLost) {
			if ev, err, ok := s.take(); ok {
				return ev, err // closed meanwhile, most likely
			}
			return nil, err
		}
	}
}

// Close ends the watch on the leader, and a Next under way. It never
// blocks.
func (s *WatchStream) Close() {
	s.mu.Lock()
	s.closed, s.events = true, nil
	stop := s.stop
	s.mu.Unlock()
	if stop != nil {
		stop()
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
	s.c.mu.Lock()
	_, open := s.c.watches[s.id]
	delete(s.c.watches, s.id)
	dead := s.c.err != nil
	s.c.mu.Unlock()
	if open && !dead {
		s.c.post(&wire.Request{Type: wire.TWatchClose, ID: s.id})
	}
}
