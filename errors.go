package party

import (
	"errors"
	"fmt"

	"github.com/levelparty/party/internal/client"
	"github.com/levelparty/party/internal/wire"
)

// Errors returned by operations.
var (
	// ErrNotFound is returned by Get when the key is absent.
	ErrNotFound = errors.New("party: not found")
	// ErrClosed is returned by operations on a closed handle, and by
	// operations still pending when the handle was closed.
	ErrClosed = errors.New("party: database closed")
	// ErrTooLarge is returned for a key, value or batch that does not fit
	// in one protocol frame (64 MiB), so that no follower could exchange it.
	ErrTooLarge = errors.New("party: entry exceeds the size limit")
)

// Errors of failover.
var (
	// ErrLeaderLost is returned, with Options.NoRetry, by operations that
	// were in flight when the leader was lost. The handle stays usable.
	ErrLeaderLost = errors.New("party: leader lost")
	// ErrSnapshotLost is returned by operations on a follower's snapshot
	// after the leader that held it was lost: reading newer data instead
	// would break the snapshot's promise.
	ErrSnapshotLost = errors.New("party: snapshot lost with its leader")
	// ErrSnapshotReleased is returned by operations on a released snapshot.
	ErrSnapshotReleased = errors.New("party: snapshot released")
	// ErrIteratorReleased is returned by Iterator.Error after Release.
	ErrIteratorReleased = errors.New("party: iterator released")
)

// Errors of Open.
var (
	// ErrLockedByOther is wrapped by Open's error when the database lock
	// stays held and no leader answers on the socket: a program that is not
	// party holds the database.
	ErrLockedByOther = errors.New("party: database locked by a program that is not party")
)

// LeaderError is an error the leader's storage engine reported for an
// operation, carried over the socket when the leader is another handle. It
// is not a transport failure: the operation reached the leader and failed
// there, so it is never retried.
type LeaderError struct {
	Msg string
}

func (e *LeaderError) Error() string { return "party: leader: " + e.Msg }

// errOf maps a response code from the leader to the error a caller sees.
func errOf(code wire.Code, body []byte) error {
	switch code {
	case wire.OK:
		return nil
	case wire.NotFound:
		return ErrNotFound
	case wire.SnapshotUnknown:
		return ErrSnapshotLost
	case wire.TooLarge:
		return fmt.Errorf("%w: %s", ErrTooLarge, body)
	case wire.Closing:
		return ErrClosed
	default:
		return &LeaderError{Msg: string(body)}
	}
}

// isConnLost reports failures that mean the leader is gone, which retry
// policy decides about.
func isConnLost(err error) bool { return errors.Is(err, client.ErrConnLost) }
