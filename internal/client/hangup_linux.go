package client

import (
	"encoding/binary"
	"net"
	"sync"

	"golang.org/x/sys/unix"
)

// hangupWatch tells when the peer of a connection hangs up, without reading
// the connection and without waking for the data it carries: an epoll set
// of its own that watches the socket for EPOLLRDHUP only. It lets an idle
// follower notice at once that its leader died although no goroutine is
// reading, so that the goroutines waiting for answers can read in place.
type hangupWatch struct {
	epfd, evfd int
	done       chan struct{}
	stopOnce   sync.Once
}

// watchHangup calls onHangup once when the peer of nc hangs up, until stop.
// It returns nil if the watch cannot be set up; the caller then keeps a
// reader on the connection at all times instead.
func watchHangup(nc *net.UnixConn, onHangup func()) *hangupWatch {
	rc, err := nc.SyscallConn()
	if err != nil {
		return nil
	}
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil
	}
	evfd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil
	}
	w := &hangupWatch{epfd: epfd, evfd: evfd, done: make(chan struct{})}
	var ctlErr error
	err = rc.Control(func(fd uintptr) {
		ctlErr = unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, int(fd), &unix.EpollEvent{Events: unix.EPOLLRDHUP, Fd: int32(fd)})
	})
	if err == nil {
		err = ctlErr
	}
	if err == nil {
		err = unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, evfd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(evfd)})
	}
	if err != nil {
		unix.Close(evfd)
		unix.Close(epfd)
		return nil
	}
	go w.run(onHangup)
	return w
}

func (w *hangupWatch) run(onHangup func()) {
	defer close(w.done)
	events := make([]unix.EpollEvent, 2)
	for {
		n, err := unix.EpollWait(w.epfd, events, -1)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			onHangup() // cannot watch: let a reader find out
			return
		}
		for _, ev := range events[:n] {
			if int(ev.Fd) == w.evfd {
				return // stopped
			}
		}
		if n > 0 {
			onHangup()
			return
		}
	}
}

// stop ends the watch and waits for its goroutine.
func (w *hangupWatch) stop() {
	w.stopOnce.Do(func() {
		var one [8]byte
		binary.NativeEndian.PutUint64(one[:], 1)
		unix.Write(w.evfd, one[:])
		<-w.done
		unix.Close(w.evfd)
		unix.Close(w.epfd)
	})
}
