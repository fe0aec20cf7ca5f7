package party

import (
	"context"
	"encoding/binary"
	"errors"
	"sync"

	"github.com/levelparty/party/internal/client"
	"github.com/levelparty/party/internal/engine"
	"github.com/levelparty/party/internal/wire"
	"github.com/syndtr/goleveldb/leveldb"
)

// Snapshot is a frozen view of the database. On a follower it lives on the
// leader; if that leader is lost, its operations fail with ErrSnapshotLost
// rather than silently read newer data. Release it when done.
type Snapshot struct {
	db *DB

	mu       sync.RWMutex // guards released and local against Release
	released bool
	local    *leveldb.Snapshot // when taken as leader
	conn     *client.Conn      // when taken as follower: the leader's connection
	id       uint32            // and the snapshot's id there
}

// GetSnapshot takes a snapshot of the database as it is now.
func (db *DB) GetSnapshot(ctx context.Context) (*Snapshot, error) {
	for {
		s := &Snapshot{db: db}
		if l := db.local.Load(); l != nil {
			ls, err := l.engine.GetSnapshot()
			if err != nil {
				return nil, mapEngineErr(err)
			}
			s.local = ls
		} else {
			call, err := db.snapshotCall(ctx)
			if errors.Is(err, errRunLocally) {
				continue // this handle became leader meanwhile
			}
			if err != nil {
				return nil, err
			}
			if err := errOf(call.Code, call.Body); err != nil {
				return nil, err
			}
			if len(call.Body) != 4 {
				return nil, errors.New("party: malformed snapshot id from the leader")
			}
			s.id = binary.BigEndian.Uint32(call.Body)
			s.conn = call.Conn
		}
		db.mu.Lock()
		closed := db.closed
		if !closed {
			db.snaps[s] = struct{}{}
		}
		db.mu.Unlock()
		if closed {
			s.Release()
			return nil, ErrClosed
		}
		return s, nil
	}
}

// snapshotCall asks the leader for a snapshot. If ctx ends first, the call
// is not abandoned: a snapshot the leader takes anyway is released as soon
// as its id arrives, instead of living on the leader until the connection
// ends.
func (db *DB) snapshotCall(ctx context.Context) (*client.Call, error) {
	call := client.NewCall(wire.Request{Type: wire.TSnapshot}, 0)
	db.dispatch(call)
	select {
	case <-call.Done():
		return call, call.Err
	case <-ctx.Done():
		go func() {
			<-call.Done()
			if call.Err == nil && call.Code == wire.OK && len(call.Body) == 4 && call.Conn != nil {
				call.Conn.SendOneWay(&wire.Request{Type: wire.TSnapshotRelease, Snap: binary.BigEndian.Uint32(call.Body)})
			}
		}()
		return nil, ctx.Err()
	}
}

// Get returns a copy of the value of key in the snapshot, or ErrNotFound.
func (s *Snapshot) Get(ctx context.Context, key []byte) ([]byte, error) {
	code, body, err := s.read(ctx, wire.Request{Type: wire.TGet, Key: key})
	if err != nil {
		return nil, err
	}
	if err := errOf(code, body); err != nil {
		return nil, err
	}
	return body, nil
}

// Has reports whether key is present in the snapshot.
func (s *Snapshot) Has(ctx context.Context, key []byte) (bool, error) {
	code, body, err := s.read(ctx, wire.Request{Type: wire.THas, Key: key})
	if err != nil {
		return false, err
	}
	if err := errOf(code, body); err != nil {
		return false, err
	}
	return len(body) == 1 && body[0] == 1, nil
}

// read runs a Get or Has on the snapshot, locally or on its leader.
func (s *Snapshot) read(ctx context.Context, req wire.Request) (wire.Code, []byte, error) {
	if err := ctx.Err(); err != nil {
		return 0, nil, err
	}
	if err := checkSize(req.Key, nil, nil); err != nil {
		return 0, nil, err
	}
	s.mu.RLock()
	if s.released {
		s.mu.RUnlock()
		return 0, nil, ErrSnapshotReleased
	}
	if s.local != nil {
		code, body := engine.Get(s.local, &req)
		s.mu.RUnlock()
		return code, body, nil
	}
	s.mu.RUnlock()
	req.Snap = s.id
	call := client.NewCall(req, 0)
	if s.conn.Send(call) != nil {
		return 0, nil, ErrSnapshotLost
	}
	if err := call.Wait(ctx, s.conn.Forget); err != nil {
		return 0, nil, err
	}
	return call.Code, call.Body, nil
}

// NewIterator returns an iterator over r in the snapshot.
func (s *Snapshot) NewIterator(ctx context.Context, r *Range) *Iterator {
	return s.db.newIterator(ctx, r, s)
}

// openSource gives it a source reading this snapshot.
func (s *Snapshot) openSource(it *Iterator) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.released {
		return ErrSnapshotReleased
	}
	if s.local != nil {
		it.src = &localSource{cur: engine.NewCursor(s.local, it.rng)}
		return nil
	}
	st, err := s.conn.NewStream(it.ctx, s.id, it.rng)
	if isConnLost(err) {
		return ErrSnapshotLost
	}
	if err != nil {
		return err
	}
	it.src = &remoteSource{st: st}
	return nil
}

// Release frees the snapshot, here and on the leader. It may be called
// more than once.
func (s *Snapshot) Release() {
	s.mu.Lock()
	first := !s.released
	s.released = true
	if first && s.local != nil {
		s.local.Release()
	}
	s.mu.Unlock()
	if first && s.conn != nil && s.conn.Err() == nil {
		s.conn.SendOneWay(&wire.Request{Type: wire.TSnapshotRelease, Snap: s.id})
	}
	s.db.mu.Lock()
	delete(s.db.snaps, s)
	s.db.mu.Unlock()
}
