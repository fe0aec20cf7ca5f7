package lock

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// File is a held lock on a LOCK file.
type File struct{ f *os.File }

// TryLock takes the OFD write lock on path without waiting, creating the
// file if needed. It returns a *HeldError when someone else holds it.
func TryLock(path string) (*File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0}
	err = unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLK, &lk)
	if err == nil {
		return &File{f: f}, nil
	}
	defer f.Close()
	if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EACCES) {
		held := &HeldError{Path: path}
		q := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0}
		if unix.FcntlFlock(f.Fd(), unix.F_OFD_GETLK, &q) == nil && q.Type != unix.F_UNLCK && q.Pid > 0 {
			held.PID = int(q.Pid)
		}
		return nil, held
	}
	if errors.Is(err, unix.EINVAL) {
		return nil, fmt.Errorf("open-file-description locks are not supported here: %w", err)
	}
	return nil, fmt.Errorf("locking %s: %w", path, err)
}

// Unlock releases the lock.
func (l *File) Unlock() error { return l.f.Close() }
