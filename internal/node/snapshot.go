package node

import (
	"context"
	"errors"
	"sync"

	"github.com/levelparty/party/backend"
	"github.com/levelparty/party/internal/call"
	"github.com/levelparty/party/internal/client"
	"github.com/levelparty/party/internal/engine"
)

// snapshot is a frozen view of the database: on this handle's engine when
// it was taken as leader, otherwise on the leader, which keeps it for this
// connection only. Once that leader is lost, its reads fail with
// ErrSnapshotLost rather than read newer data.
type snapshot struct {
	n     *Node
	local *engine.Snapshot // taken as leader
	conn  *client.Conn     // taken as follower: the leader's connection
	id    uint32           // and the snapshot's id there

	mu       sync.RWMutex // guards released against reads of local
	released error        // why the snapshot is no longer usable
}

// GetSnapshot takes a snapshot of the database as it is now.
func (n *Node) GetSnapshot(ctx context.Context) (backend.Snapshot, error) {
	if l := n.leading(); l != nil {
		es, err := l.eng.Snapshot()
		if err != nil {
			return nil, err
		}
		return n.addSnapshot(&snapshot{n: n, local: es})
	}
	c := call.New(call.Snapshot)
	if conn := n.dispatch(ctx, c); conn != nil {
		conn.Await(ctx, c)
	}
	select {
	case <-c.Done():
	case <-ctx.Done():
		// Not abandoned: a snapshot taken anyway is released as soon as it
		// arrives, instead of living on the leader until the connection
		// ends.
		go func() {
			<-c.Done()
			if s := snapshotOf(n, c); s != nil {
				s.release(backend.ErrSnapshotReleased)
			}
		}()
		return nil, ctx.Err()
	}
	if c.Err != nil {
		return nil, c.Err
	}
	return n.addSnapshot(snapshotOf(n, c))
}

// snapshotOf returns the snapshot a finished Snapshot call took, or nil.
func snapshotOf(n *Node, c *call.Call) *snapshot {
	switch {
	case c.Err != nil:
		return nil
	case c.Local != nil:
		return &snapshot{n: n, local: c.Local}
	default:
		return &snapshot{n: n, conn: c.Conn.(*client.Conn), id: c.SnapID}
	}
}

// addSnapshot registers s so that Close releases it.
func (n *Node) addSnapshot(s *snapshot) (backend.Snapshot, error) {
	n.mu.Lock()
	closed := n.closed
	if !closed {
		n.snaps[s] = struct{}{}
	}
	n.mu.Unlock()
	if closed {
		s.release(backend.ErrClosed)
		return nil, backend.ErrClosed
	}
	return s, nil
}

// Get returns the value of key in the snapshot.
func (s *snapshot) Get(ctx context.Context, key []byte) ([]byte, error) {
	if err := checkSize(key, nil, nil); err != nil {
		return nil, err
	}
	if v, done, err := s.readLocal(func(es *engine.Snapshot) ([]byte, error) { return es.Get(key) }); done {
		return v, err
	}
	c := call.New(call.Get)
	c.Key = key
	if err := s.do(ctx, c); err != nil {
		return nil, err
	}
	return c.Value, nil
}

// Has reports whether key is present in the snapshot.
func (s *snapshot) Has(ctx context.Context, key []byte) (bool, error) {
	if err := checkSize(key, nil, nil); err != nil {
		return false, err
	}
	var found bool
	if _, done, err := s.readLocal(func(es *engine.Snapshot) ([]byte, error) {
		ok, err := es.Has(key)
		found = ok
		return nil, err
	}); done {
		return found, err
	}
	c := call.New(call.Has)
	c.Key = key
	if err := s.do(ctx, c); err != nil {
		return false, err
	}
	return c.Found, nil
}

// readLocal runs read on the local snapshot; done is false if the
// snapshot lives on the leader instead.
func (s *snapshot) readLocal(read func(*engine.Snapshot) ([]byte, error)) (v []byte, done bool, err error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.released != nil {
		return nil, true, s.released
	}
	if s.local == nil {
		return nil, false, nil
	}
	v, err = read(s.local)
	return v, true, err
}

// do runs a read of the snapshot on its leader.
func (s *snapshot) do(ctx context.Context, c *call.Call) error {
	c.Snap, c.Bound = s.id, true
	err := s.conn.Do(ctx, c)
	if errors.Is(err, client.ErrConnLost) {
		return s.n.afterLoss(true)
	}
	return err
}

// NewCursor returns a cursor over r in the snapshot.
func (s *snapshot) NewCursor(ctx context.Context, r backend.Range) (backend.Cursor, error) {
	return s.n.newCursor(ctx, s, r)
}

// source opens a source over rng in the snapshot.
func (s *snapshot) source(ctx context.Context, rng backend.Range) (source, error) {
	s.mu.RLock()
	released, local := s.released, s.local
	var lc *engine.Cursor
	if released == nil && local != nil {
		lc = local.NewCursor(rng)
	}
	s.mu.RUnlock()
	switch {
	case released != nil:
		return nil, released
	case lc != nil:
		return localSource{lc}, nil
	}
	st, err := s.conn.NewStream(ctx, s.id, rng)
	if err != nil {
		return nil, err
	}
	return remoteSource{st}, nil
}

// Release frees the snapshot, here and on the leader.
func (s *snapshot) Release() { s.release(backend.ErrSnapshotReleased) }

// release frees the snapshot; later reads fail with why.
func (s *snapshot) release(why error) {
	s.mu.Lock()
	first := s.released == nil
	if first {
		s.released = why
		if s.local != nil {
			s.local.Release()
		}
	}
	s.mu.Unlock()
	if first && s.conn != nil {
		s.conn.ReleaseSnapshot(s.id)
	}
	s.n.mu.Lock()
	delete(s.n.snaps, s)
	s.n.mu.Unlock()
}
