package sock

import (
	"fmt"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// maxAddr is the longest socket path macOS accepts (sun_path less its NUL).
const maxAddr = 103

// withShortPath calls fn with the socket's path. macOS has no /proc to
// shorten a long path through, so a path over the limit is a clear error.
func withShortPath(dir string, fn func(path string) error) error {
	p := filepath.Join(dir, Name)
	if len(p) > maxAddr {
		return fmt.Errorf("socket path %s is %d bytes, over this platform's limit of %d; use a shorter directory path", p, len(p), maxAddr)
	}
	return fn(p)
}

func peerOf(fd int) (Peer, error) {
	x, err := unix.GetsockoptXucred(fd, unix.SOL_LOCAL, unix.LOCAL_PEERCRED)
	if err != nil {
		return Peer{}, fmt.Errorf("reading peer credentials: %w", err)
	}
	return Peer{UID: int(x.Uid)}, nil
}
