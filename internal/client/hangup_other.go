//go:build !linux

package client

import "net"

// hangupWatch is not available here: a reader stays on every connection.
type hangupWatch struct{}

func watchHangup(*net.UnixConn, func()) *hangupWatch { return nil }

func (*hangupWatch) stop() {}
