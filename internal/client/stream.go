package client

import (
	"context"
	"errors"
	"sync"

	"github.com/levelparty/party/backend"
	"github.com/levelparty/party/internal/call"
	"github.com/levelparty/party/internal/wire"
)

// window is the most credit, in batches, a stream keeps granted. It bounds
// what the leader sends ahead of the reader (8 batches of at most about
// 128 KiB), and lets the leader step its cursor while the follower
// consumes.
//
// A seek grants one batch (16 entries); each time the reader has taken
// three quarters of a batch, the stream doubles its target, up to window, and grants
// what the target lacks. A short scan so makes the leader read little more
// than it returns, and a long one soon streams with the whole window.
const window = 8

// Stream is a follower iterator on the leader. Seek positions it and
// starts a new generation; Next returns the entries that follow in the
// seek's direction. Batches of older generations are dropped on arrival.
// A Stream is used by one goroutine at a time, but Close may be called
// from any goroutine.
type Stream struct {
	c  *Conn
	id uint32

	mu    sync.Mutex // guards gen, queue and free, shared with the reader
	gen   uint32
	queue []*wire.IterBatch
	free  []*wire.IterBatch // consumed batches, whose entries slices are reused
	wake  chan struct{}

	// Used by the consuming goroutine only.
	batch   *wire.IterBatch // the batch being consumed
	cur     [][2][]byte     // its entries not yet returned
	ended   bool            // the batch being consumed is the generation's last
	fail    error           // the failure that ended the generation
	first   bool            // generation 1, the leader's own first seek, is unused
	credit  int             // batches granted to this generation and not yet taken
	target  int             // the credit the stream grows toward, up to window
	grantAt int             // grant more when len(cur) falls to this; -1: never
}

// NewStream opens an iterator over rng on the leader, on snapshot snap
// (0: a view of the data taken now), and returns once the leader has taken
// the view. It fails with ErrConnLost if the connection dies first.
//
// The leader starts generation 1 itself, a first seek, and sends its first
// batch right after the answer: a Seek to the first entry uses it, and so
// costs no round trip of its own.
func (c *Conn) NewStream(ctx context.Context, snap uint32, rng backend.Range) (*Stream, error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return nil, ErrConnLost
	}
	c.nextIter++
	s := &Stream{c: c, id: c.nextIter, wake: make(chan struct{}, 1), gen: 1, first: true}
	c.streams[s.id] = s
	c.mu.Unlock()
	cl := call.New(call.IterOpen)
	cl.Iter, cl.Snap, cl.Range, cl.Bound = s.id, snap, rng, true
	if err := c.Do(ctx, cl); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// spare returns a batch to decode into: a consumed one when there is one.
func (s *Stream) spare() *wire.IterBatch {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := len(s.free); n > 0 {
		b := s.free[n-1]
		s.free = s.free[:n-1]
		return b
	}
	return &wire.IterBatch{}
}

func (s *Stream) deliver(b *wire.IterBatch) {
	s.mu.Lock()
	if b.Gen == s.gen {
		s.queue = append(s.queue, b)
	}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Seek positions the stream and returns its first entry. ok is false at
// the end of the range. key is read before Seek returns.
func (s *Stream) Seek(ctx context.Context, mode backend.SeekMode, key []byte) (k, v []byte, ok bool, err error) {
	s.cur, s.ended, s.fail, s.grantAt = nil, false, nil, -1
	s.credit, s.target = 1, 1
	if s.first && mode == backend.SeekFirst {
		// Generation 1 is this seek: the leader started it, with one
		// batch of credit, when it opened the iterator.
		s.first = false
		return s.Next(ctx)
	}
	s.first = false
	s.mu.Lock()
	s.gen++
	gen := s.gen
	s.queue = nil
	s.mu.Unlock()
	req := wire.Request{Type: wire.TIterSeek, ID: s.id, Gen: gen, Mode: mode, Credit: 1, Key: key}
	if err := s.c.out.Send(ctx, func(b []byte) []byte { return wire.AppendRequest(b, &req) }); err != nil {
		if ctx.Err() != nil {
			return nil, nil, false, err
		}
		s.c.die(err)
		return nil, nil, false, ErrConnLost
	}
	return s.Next(ctx)
}

// Next returns the next entry in the direction of the last seek.
func (s *Stream) Next(ctx context.Context) (k, v []byte, ok bool, err error) {
	for {
		select {
		case <-s.c.dead:
			// Entries received but not returned are dropped: the iterator
			// resumes after the last key it returned, on the next leader.
			return nil, nil, false, ErrConnLost
		default:
		}
		if len(s.cur) > 0 {
			e := s.cur[0]
			s.cur = s.cur[1:]
			if len(s.cur) == s.grantAt {
				s.grant()
			}
			return e[0], e[1], true, nil
		}
		if s.fail != nil {
			return nil, nil, false, s.fail
		}
		if s.ended {
			return nil, nil, false, nil
		}
		s.mu.Lock()
		var b *wire.IterBatch
		if len(s.queue) > 0 {
			b = s.queue[0]
			s.queue[0] = nil
			s.queue = s.queue[1:]
			// The batch consumed before is done with: the entry returned
			// last came from it, and the caller moves past it now. Its
			// keys and values alias its frame, which is not reused; only
			// its entries slice is.
			if s.batch != nil && len(s.free) < window {
				s.free = append(s.free, s.batch)
			}
			s.batch = b
		}
		s.mu.Unlock()
		if b != nil {
			if b.Code != wire.OK {
				s.fail = b.Code.Err([]byte(b.Msg))
				continue
			}
			s.cur, s.ended, s.grantAt = b.Entries, b.EOF, -1
			if !b.EOF {
				s.credit--
				s.grantAt = len(b.Entries) / 4
				if len(s.cur) == 0 {
					s.grant()
				}
			}
			continue
		}
		if err := s.c.await(ctx, s.wake, s.ready); err != nil && !errors.Is(err, ErrConnLost) {
			return nil, nil, false, err
		}
	}
}

// grant doubles the stream's target credit, up to window, and grants the
// leader what the target lacks: at once while the stream ramps up or runs
// dry, then half a window at a time.
// Only the consuming goroutine changes s.gen, so it reads it unlocked.
func (s *Stream) grant() {
	s.grantAt = -1
	s.target = min(2*s.target, window)
	if g := s.target - s.credit; g > 0 && (g >= (s.target+1)/2 || s.credit == 0) {
		s.c.post(&wire.Request{Type: wire.TIterCredit, ID: s.id, Gen: s.gen, Credit: uint32(g)})
		s.credit += g
	}
}

// ready reports whether a batch waits to be consumed.
func (s *Stream) ready() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue) > 0
}

// Close releases the iterator on the leader. It never blocks.
func (s *Stream) Close() {
	s.c.mu.Lock()
	_, open := s.c.streams[s.id]
	delete(s.c.streams, s.id)
	dead := s.c.err != nil
	s.c.mu.Unlock()
	if open && !dead {
		s.c.post(&wire.Request{Type: wire.TIterClose, ID: s.id})
	}
}
