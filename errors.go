package party

import (
	"errors"

	"github.com/levelparty/party/backend"
	"github.com/levelparty/party/internal/node"
	"github.com/levelparty/party/internal/sublevel"
)

// Errors returned by operations.
var (
	// ErrNotFound is returned by Get when the key is absent.
	ErrNotFound = backend.ErrNotFound
	// ErrClosed is returned by operations on a closed handle, and by
	// operations still pending when the handle was closed.
	ErrClosed = backend.ErrClosed
	// ErrTooLarge is returned for a key, value or batch that does not fit
	// in one protocol frame (64 MiB), so that no follower could exchange it.
	ErrTooLarge = backend.ErrTooLarge
	// ErrHiddenKey is returned for a write of a key under the prefix party
	// keeps for its commit records ("\xff\xffparty\x00tx\x00"): party's
	// reads never show such keys.
	ErrHiddenKey = backend.ErrHiddenKey
)

// Errors of transactions.
var (
	// ErrTxAborted is wrapped by the errors of a transaction that ended
	// with nothing applied: discarded, timed out, its holder or leader
	// lost, or refused at Commit. Its calls after Commit or Discard
	// return it too.
	ErrTxAborted = backend.ErrTxAborted
	// ErrCommitUnknown is wrapped by Commit's error when its context
	// ended, or its handle was closed, after the commit was sent and
	// before it could learn whether it was applied. It is the one case in
	// which an error from Commit does not mean "not applied".
	ErrCommitUnknown = backend.ErrCommitUnknown
	// ErrTxConflict is wrapped, with ErrTxAborted, by the error of a
	// transaction on an optimistic backend (etcd) that was not applied
	// because what it read changed before its commit. Update runs its
	// function again.
	ErrTxConflict = backend.ErrTxConflict
)

// ErrNotSupported is wrapped by the error of an operation the backend
// cannot do (CompactRange, SizeOf and Property on etcd).
var ErrNotSupported = backend.ErrNotSupported

// Errors of failover.
var (
	// ErrLeaderLost is returned, with Options.NoRetry, by operations that
	// were in flight when the leader was lost. The handle stays usable.
	ErrLeaderLost = backend.ErrLeaderLost
	// ErrSnapshotLost is returned by operations on a follower's snapshot
	// after the leader that held it was lost: reading newer data instead
	// would break the snapshot's promise.
	ErrSnapshotLost = backend.ErrSnapshotLost
	// ErrWatchGap is returned once by Watcher.Next when changes may have
	// been lost before the ones it returns next: after a leader change, or
	// when the watcher fell too far behind. Read the state again.
	ErrWatchGap = backend.ErrWatchGap
	// ErrSnapshotReleased is returned by operations on a released snapshot.
	ErrSnapshotReleased = backend.ErrSnapshotReleased
	// ErrIteratorReleased is returned by Iterator.Error after Release.
	ErrIteratorReleased = errors.New("party: iterator released")
)

// ErrSublevelName is wrapped by the errors of a sublevel view whose name
// abstract-level refuses (see DB.Sublevel).
var ErrSublevelName = sublevel.ErrName

// Errors of Open.
var (
	// ErrLockedByOther is wrapped by Open's error when the database lock
	// stays held and no leader answers on the socket: a program that is not
	// party holds the database.
	ErrLockedByOther = node.ErrLockedByOther
)

// LeaderError is an error the leader's storage engine reported for an
// operation. It is not a transport failure: the operation reached the
// leader and failed there, so it is never retried. Msg is the engine's
// message. When this handle is the leader, Unwrap returns goleveldb's own
// error, so errors.Is and errors.As see it (a corruption, for instance);
// when the leader is another process, only the message crossed the socket
// and Unwrap returns nil.
type LeaderError = backend.LeaderError
