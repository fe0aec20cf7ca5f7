// Package lock takes the lock that makes one participant the leader of a
// database directory, in addition to the one goleveldb takes itself.
//
// goleveldb locks <dir>/LOCK with flock(2); C++ LevelDB (and so Node's
// level) locks the same file with fcntl(2) record locks. On Linux the two
// kinds never see each other, so on Linux this package also takes an
// open-file-description (OFD) lock, which conflicts with fcntl locks and, unlike
// them, is not dropped when another descriptor of the file is closed. Other
// platforms rely on goleveldb's lock alone.
package lock

import (
	"errors"
	"fmt"
)

// ErrHeld means another participant or another program holds the lock.
var ErrHeld = errors.New("database lock is held")

// HeldError is returned when the lock is held; it says by whom when the
// platform can tell.
type HeldError struct {
	Path string
	// PID is the process holding a classic fcntl lock (C++ LevelDB does so),
	// or 0 when unknown or when the holder uses an OFD lock, as party does.
	PID int
}

func (e *HeldError) Error() string {
	if e.PID > 0 {
		return fmt.Sprintf("%s is locked by process %d with a classic fcntl lock, as C++ LevelDB programs do; party never takes that kind", e.Path, e.PID)
	}
	return fmt.Sprintf("%s is locked by another participant or program", e.Path)
}

// Unwrap lets errors.Is(err, ErrHeld) match.
func (e *HeldError) Unwrap() error { return ErrHeld }
