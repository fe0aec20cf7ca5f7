// Package sock places the leader's unix socket in a database directory:
// binding and dialing through a short path when the directory's path is too
// long for a socket address, removing a stale file, restricting the file to
// its owner, and reading a peer's credentials.
package sock

import (
	"errors"
	"net"
	"path/filepath"
)

// Name is the socket's file name inside the database directory.
const Name = "party.sock"

// ErrUnsupported means this platform lacks what party needs of sockets.
var ErrUnsupported = errors.New("party: unix sockets with peer credentials are not supported on this platform")

// Path returns the socket's path in dir.
func Path(dir string) string { return filepath.Join(dir, Name) }

// Peer is what the kernel says about the process at the other end.
type Peer struct {
	UID int
	PID int // 0 when the platform does not tell
}

func listenUnix(addr string) (*net.UnixListener, error) {
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: addr, Net: "unix"})
	if err != nil {
		return nil, err
	}
	// The file is removed by Remove while the lock is still held, never by
	// Close: after the lock is released it may belong to the next leader.
	l.SetUnlinkOnClose(false)
	return l, nil
}
