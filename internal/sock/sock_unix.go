//go:build linux || darwin

package sock

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
)

// Listen removes a stale socket file from dir and listens there, with the
// file readable and writable by its owner only. The caller must hold the
// database lock: only the lock holder may remove the file.
func Listen(dir string) (*net.UnixListener, error) {
	var l *net.UnixListener
	err := withShortPath(dir, func(path string) error {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("removing stale socket: %w", err)
		}
		var err error
		if l, err = listenUnix(path); err != nil {
			return err
		}
		if err := os.Chmod(path, 0o600); err != nil {
			l.Close()
			return fmt.Errorf("restricting socket to its owner: %w", err)
		}
		return nil
	})
	return l, err
}

// Remove deletes the socket file in dir, if any. Only the lock holder calls it.
func Remove(dir string) error {
	err := os.Remove(Path(dir)) // only binding and dialing have a path limit
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// Dial connects to the socket in dir.
func Dial(ctx context.Context, dir string) (*net.UnixConn, error) {
	var c net.Conn
	err := withShortPath(dir, func(path string) error {
		var d net.Dialer
		var err error
		c, err = d.DialContext(ctx, "unix", path)
		return err
	})
	if err != nil {
		return nil, err
	}
	return c.(*net.UnixConn), nil
}

// PeerOf returns the credentials of the process at the other end of c.
func PeerOf(c *net.UnixConn) (Peer, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return Peer{}, err
	}
	var p Peer
	var perr error
	if err := rc.Control(func(fd uintptr) { p, perr = peerOf(int(fd)) }); err != nil {
		return Peer{}, err
	}
	return p, perr
}

// Supported returns nil: this platform has what party needs.
func Supported() error { return nil }
