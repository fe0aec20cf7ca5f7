package party

import (
	"context"

	"github.com/levelparty/party/backend"
)

// Snapshot is a frozen view of the database. On a follower it lives on the
// leader; if that leader is lost, its operations fail with ErrSnapshotLost
// rather than silently read newer data. Release it when done; DB.Close
// releases it too.
type Snapshot struct {
	s backend.Snapshot
}

// GetSnapshot takes a snapshot of the database as it is now.
func (db *DB) GetSnapshot(ctx context.Context) (*Snapshot, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s, err := db.b.GetSnapshot(ctx)
	if err != nil {
		return nil, err
	}
	return &Snapshot{s: s}, nil
}

// Get returns a copy of the value of key in the snapshot, or ErrNotFound.
func (s *Snapshot) Get(ctx context.Context, key []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return s.s.Get(ctx, key)
}

// Has reports whether key is present in the snapshot.
func (s *Snapshot) Has(ctx context.Context, key []byte) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	return s.s.Has(ctx, key)
}

// NewIterator returns an iterator over r in the snapshot.
func (s *Snapshot) NewIterator(ctx context.Context, r *Range) *Iterator {
	return newIterator(ctx, s.s, r)
}

// Release frees the snapshot, here and on the leader. It may be called
// more than once.
func (s *Snapshot) Release() { s.s.Release() }
