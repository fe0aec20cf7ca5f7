// Package backend is the seam between party's public API and what runs its
// operations. The root package calls a Backend and nothing else; package
// node implements it for a database directory shared by processes
// (electing a leader, running calls on this process's engine when it leads
// and over the socket when it follows), and a backend in another module
// can implement it for another store.
//
// The interfaces are about data, not transport: a Backend never shows a
// socket, a frame or a response code, and it reports outcomes with the
// errors of this package, which the root package exports under the same
// names.
//
// Every method that takes byte slices reads them only until it returns:
// the caller may reuse them at once, whatever the outcome, even when the
// call was abandoned because its context ended.
package backend

import (
	"bytes"
	"context"
	"time"
)

// Range is a range of keys: Start inclusive, Limit exclusive; a nil bound
// is unbounded (an empty one is not).
type Range struct {
	Start, Limit []byte
}

// Contains reports whether key falls in r.
func (r Range) Contains(key []byte) bool {
	return (r.Start == nil || bytes.Compare(key, r.Start) >= 0) && (r.Limit == nil || bytes.Compare(key, r.Limit) < 0)
}

// SeekMode says where Cursor.Seek positions a cursor; the cursor then moves
// in the mode's direction.
type SeekMode uint8

// Seek modes. Forward modes move to ascending keys, backward ones to
// descending keys.
const (
	SeekFirst  SeekMode = iota // first key of the range, forward
	SeekLast                   // last key of the range, backward
	SeekGE                     // first key >= key, forward
	SeekAfter                  // first key > key, forward
	SeekBefore                 // last key < key, backward
	SeekModes                  // the number of modes
)

// Backward reports whether the mode moves to descending keys.
func (m SeekMode) Backward() bool { return m == SeekLast || m == SeekBefore }

// Reader reads the database as it is now, or as a snapshot saw it.
type Reader interface {
	// Get returns the value of key, which belongs to the caller, or
	// ErrNotFound.
	Get(ctx context.Context, key []byte) ([]byte, error)
	// Has reports whether key is present.
	Has(ctx context.Context, key []byte) (bool, error)
	// NewCursor returns a cursor over r. Its view of the data is taken
	// now if the backend can reach the data now, otherwise at its first
	// Seek. Its methods take their own contexts.
	NewCursor(ctx context.Context, r Range) (Cursor, error)
}

// Backend runs a handle's operations.
type Backend interface {
	Reader
	// Put sets key to value.
	Put(ctx context.Context, key, value []byte) error
	// Delete removes key; an absent key is not an error.
	Delete(ctx context.Context, key []byte) error
	// Write applies b atomically.
	Write(ctx context.Context, b *Batch) error
	// DeleteRange removes every key in r.
	DeleteRange(ctx context.Context, r Range) error
	// GetSnapshot returns a frozen view of the database.
	GetSnapshot(ctx context.Context) (Snapshot, error)
	// Status describes what serves the database.
	Status(ctx context.Context) (Status, error)
	// CompactRange compacts the keys in r on the leader (every key when
	// both bounds are nil), as goleveldb's CompactRange.
	CompactRange(ctx context.Context, r Range) error
	// SizeOf returns the approximate bytes on disk of each range, as
	// goleveldb's SizeOf.
	SizeOf(ctx context.Context, ranges []Range) ([]int64, error)
	// Property returns the leader engine's property name, as goleveldb's
	// GetProperty.
	Property(ctx context.Context, name string) (string, error)
	// Lock waits for the database's one transaction lease and returns it.
	// While it is held, no write of any other participant applies; it
	// ends at its Commit or Release, when its holder is lost, or after
	// timeout, with nothing applied.
	Lock(ctx context.Context, timeout time.Duration) (Lease, error)
	// Watch registers a watch of the changes in r: every write that
	// starts after it returns is delivered.
	Watch(ctx context.Context, r Range) (Watcher, error)
	// IsLeader reports whether this handle serves the database to others.
	IsLeader() bool
	// Elected is closed when this handle becomes the leader.
	Elected() <-chan struct{}
	// Close fails pending calls with ErrClosed and releases everything.
	Close() error
}

// Snapshot is a frozen view of the database.
type Snapshot interface {
	Reader
	// Release frees the snapshot; later calls fail with
	// ErrSnapshotReleased. It may be called more than once.
	Release()
}

// Change is one put or delete of a committed write.
type Change struct {
	Key, Value []byte
	Deleted    bool
}

// Watcher delivers the changes of committed writes, write by write, in
// the leader's commit order.
type Watcher interface {
	// Next returns the changes of the next write that fall in the
	// watcher's range, waiting for one. It returns ErrWatchGap once when
	// changes may have been lost (the watcher fell too far behind, or
	// the leader changed), then goes on with later writes.
	Next(ctx context.Context) ([]Change, error)
	// Close ends the watch; pending and later Next calls return
	// ErrClosed.
	Close()
}

// Lease is a transaction of this handle: the reads it makes and the
// commit of its writes. A backend gives it one of two meanings:
//
//   - pessimistic (the local backend): the database's one lease; while it
//     is held no write of any other participant applies, so its reads see
//     a still state, and Err tells whether that is still so;
//   - optimistic (etcd): nothing is held; its reads see one consistent
//     state, what they saw is recorded, and Commit applies the batch only
//     if none of it has changed since, failing with ErrTxConflict
//     otherwise.
type Lease interface {
	// Reader reads the database as the transaction sees it (without the
	// transaction's own writes, which the caller keeps).
	Reader
	// Err returns nil while the lease is held, and afterwards why it
	// ended: an error wrapping ErrTxAborted (and ErrLeaderLost when the
	// leader was lost, or ErrTxConflict when what it read has changed).
	Err() error
	// Commit applies b atomically, exactly once, and ends the lease. Nil
	// means applied; an error wrapping ErrTxAborted means not applied
	// (wrapping ErrTxConflict too when what the transaction read changed),
	// even when the leader was lost after the commit was sent (the next
	// leader is asked). Only when ctx ends, or the handle is closed,
	// before the outcome is known does it return an error wrapping
	// ErrCommitUnknown.
	Commit(ctx context.Context, b *Batch) error
	// Release ends the lease without applying anything. It may be called
	// more than once, and after Commit.
	Release()
}

// Cursor walks a range of keys. The key and value it returns are valid
// until its next move. A Cursor is used by one goroutine at a time, but
// Release may be called from any goroutine.
type Cursor interface {
	// Seek positions the cursor as mode says and returns the entry there;
	// ok is false past the end of the range in the mode's direction.
	Seek(ctx context.Context, mode SeekMode, key []byte) (k, v []byte, ok bool, err error)
	// Next returns the entry after the current one in the direction of
	// the last Seek.
	Next(ctx context.Context) (k, v []byte, ok bool, err error)
	// Release frees the cursor. It may be called more than once.
	Release()
}

// Status describes what serves a database.
type Status struct {
	IsLeader  bool      // the handle asked is the leader
	PID       int       // the leader's process id
	LeaderID  [16]byte  // random id of the leader's term, new at every election
	Since     time.Time // when the leader was elected
	Followers int       // handles connected to the leader
	DiskSize  int64     // bytes of the database's files on disk
}
