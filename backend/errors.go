package backend

import "errors"

// Errors of operations. The root package exports each under the same name.
var (
	// ErrNotFound: Get found no such key.
	ErrNotFound = errors.New("party: not found")
	// ErrClosed: the handle is closed, or was closed while the operation
	// was pending.
	ErrClosed = errors.New("party: database closed")
	// ErrTooLarge: a key, value or batch too large to cross to the leader.
	ErrTooLarge = errors.New("party: entry exceeds the size limit")
	// ErrTxAborted: the transaction ended without applying anything.
	ErrTxAborted = errors.New("party: transaction aborted")
	// ErrCommitUnknown: a commit's context ended, or its handle was
	// closed, before it could learn whether the commit was applied.
	ErrCommitUnknown = errors.New("party: commit outcome unknown")
	// ErrHiddenKey: a write names a key under the prefix party keeps for
	// its own records.
	ErrHiddenKey = errors.New("party: key under the prefix party reserves")
	// ErrTxConflict: an optimistic transaction was not applied because
	// what it read changed before its commit (wrapped with ErrTxAborted).
	ErrTxConflict = errors.New("party: transaction conflict")
	// ErrNotSupported: the backend cannot do this operation.
	ErrNotSupported = errors.New("party: not supported by this backend")
)

// Errors of failover.
var (
	// ErrLeaderLost: the leader was lost while the operation was in flight,
	// and the handle does not retry.
	ErrLeaderLost = errors.New("party: leader lost")
	// ErrSnapshotLost: the leader holding the snapshot was lost.
	ErrSnapshotLost = errors.New("party: snapshot lost with its leader")
	// ErrWatchGap: changes may have been lost before the ones a watcher
	// returns next.
	ErrWatchGap = errors.New("party: watch gap: changes may have been missed")
	// ErrSnapshotReleased: the snapshot was released.
	ErrSnapshotReleased = errors.New("party: snapshot released")
)

// LeaderError is an error the storage engine reported for an operation. It
// is not a transport failure: the operation reached the engine and failed
// there, so it is never retried. When the engine is in this process, Err
// is the engine's own error and errors.Is and errors.As see it; when the
// leader is another process only its message crosses the socket.
type LeaderError struct {
	Msg string // the engine's message
	Err error  // the engine's error, when the leader is this process
}

func (e *LeaderError) Error() string { return "party: leader: " + e.Msg }

// Unwrap returns the engine's error, or nil when it stayed in the leader's
// process.
func (e *LeaderError) Unwrap() error { return e.Err }
