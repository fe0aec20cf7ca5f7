//go:build unix

package wire

import (
	"io"
	"syscall"
)

// tryWriter returns a write on w's descriptor that never blocks: it writes
// what the socket buffer takes now, possibly nothing. It returns nil if w
// has no descriptor.
func tryWriter(w io.Writer) func([]byte) (int, error) {
	sc, ok := w.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return func(b []byte) (int, error) {
		var n int
		var werr error
		err := rc.Write(func(fd uintptr) bool {
			for {
				n, werr = syscall.Write(int(fd), b)
				if werr != syscall.EINTR {
					return true // done, whatever happened: never wait here
				}
			}
		})
		switch {
		case err != nil:
			return 0, err // the connection is closed
		case werr == syscall.EAGAIN:
			return 0, nil
		case werr != nil:
			return 0, werr
		}
		return n, nil
	}
}
