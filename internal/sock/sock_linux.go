package sock

import (
	"fmt"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// maxAddr is the longest socket path Linux accepts (sun_path less its NUL).
const maxAddr = 107

// withShortPath calls fn with a path to the socket that fits in a socket
// address. A long directory path is reached through /proc/self/fd/N, where
// N is a descriptor of the directory held for the duration of fn; the
// process's working directory is never changed.
func withShortPath(dir string, fn func(path string) error) error {
	p := filepath.Join(dir, Name)
	if len(p) <= maxAddr {
		return fn(p)
	}
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening %s to reach its socket: %w", dir, err)
	}
	defer unix.Close(fd)
	return fn(fmt.Sprintf("/proc/self/fd/%d/%s", fd, Name))
}

func peerOf(fd int) (Peer, error) {
	u, err := unix.GetsockoptUcred(fd, unix.SOL_SOCKET, unix.SO_PEERCRED)
	if err != nil {
		return Peer{}, fmt.Errorf("reading peer credentials: %w", err)
	}
	return Peer{UID: int(u.Uid), PID: int(u.Pid)}, nil
}
