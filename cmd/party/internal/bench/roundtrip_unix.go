//go:build unix

package bench

import (
	"fmt"
	"io"
	"net"
	"os"
	"syscall"

	"github.com/levelparty/party/cmd/party/internal/child"
)

// socketPair returns the two ends of a connected unix stream socket, the
// kind a follower and its leader talk over.
func socketPair() (*os.File, *os.File, error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("bench: socketpair: %w", err)
	}
	syscall.CloseOnExec(fds[0])
	syscall.CloseOnExec(fds[1])
	return os.NewFile(uintptr(fds[0]), "roundtrip"), os.NewFile(uintptr(fds[1]), "roundtrip-echo"), nil
}

// echoChild answers every message of roundtripLen bytes on the socket it
// inherited as descriptor 3 with the same bytes, until the socket closes.
func echoChild(out *child.Lines) error {
	f := os.NewFile(3, "roundtrip-echo")
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return err
	}
	defer c.Close()
	out.Printf("ready %d", os.Getpid())
	buf := make([]byte, roundtripLen)
	for {
		if _, err := io.ReadFull(c, buf); err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
		if _, err := c.Write(buf); err != nil {
			return err
		}
	}
}
