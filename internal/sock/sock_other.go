//go:build !linux && !darwin

package sock

import (
	"context"
	"net"
)

// Listen is not supported on this platform.
func Listen(dir string) (*net.UnixListener, error) { return nil, ErrUnsupported }

// Remove is not supported on this platform.
func Remove(dir string) error { return ErrUnsupported }

// Dial is not supported on this platform.
func Dial(ctx context.Context, dir string) (*net.UnixConn, error) { return nil, ErrUnsupported }

// PeerOf is not supported on this platform.
func PeerOf(c *net.UnixConn) (Peer, error) { return Peer{}, ErrUnsupported }

// Supported returns ErrUnsupported: this platform lacks unix sockets with
// peer credentials.
func Supported() error { return ErrUnsupported }
