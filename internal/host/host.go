// Package host is the leader's server: it accepts followers on the
// database's unix socket and runs their requests on the engine.
//
// Each connection has one goroutine that reads frames and serves them in
// order. Reads are answered at once; writes are gathered while more frames
// are already buffered and applied as one goleveldb batch before the reader
// would block, then acknowledged together. Responses are queued and written
// in one write per burst, in place when the socket takes them; what it
// does not take goes to the connection's writer goroutine, so serving
// waits only for room in the writer's buffer when a follower does not read.
// After each burst, the connection of a follower that asked for BusyPoll
// polls for its next request before it sleeps. DeleteRange, which may take
// long, runs on its own goroutine. Iterators stream batches only while the
// follower has credit. Errors become codes here, through wire.CodeOf.
package host

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/levelparty/party/backend"
	"github.com/levelparty/party/internal/engine"
	"github.com/levelparty/party/internal/sock"
	"github.com/levelparty/party/internal/wire"
)

// Config is what a host needs.
type Config struct {
	Engine    *engine.Engine
	Dir       string
	AllowRoot bool
	Logger    *slog.Logger
	LeaderID  [16]byte
	Since     time.Time
}

// sendBuffer is the socket send buffer of a follower's connection.
const sendBuffer = 1 << 20

// handshakeTimeout bounds how long a new connection may take to say hello.
const handshakeTimeout = 5 * time.Second

// Host serves followers until Close.
type Host struct {
	cfg Config
	ln  *net.UnixListener
	uid int

	mu      sync.Mutex // guards conns and closing
	conns   map[*conn]struct{}
	closing bool

	wg sync.WaitGroup // the accept loop and every connection
}

// Serve starts serving followers that connect to ln.
func Serve(ln *net.UnixListener, cfg Config) *Host {
	h := &Host{cfg: cfg, ln: ln, uid: os.Getuid(), conns: make(map[*conn]struct{})}
	h.wg.Add(1)
	go h.accept()
	return h
}

// Followers returns the number of connected followers.
func (h *Host) Followers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.conns)
}

// Close stops accepting, lets every connection finish the requests it has
// read, answer them and close, and returns when all are done. The engine
// can be closed afterwards.
func (h *Host) Close() {
	h.mu.Lock()
	h.closing = true
	for c := range h.conns {
		c.stop()
	}
	h.mu.Unlock()
	h.ln.Close()
	h.wg.Wait()
}

func (h *Host) accept() {
	defer h.wg.Done()
	for {
		nc, err := h.ln.AcceptUnix()
		if err != nil {
			h.mu.Lock()
			closing := h.closing
			h.mu.Unlock()
			if !closing && !errors.Is(err, net.ErrClosed) {
				h.cfg.Logger.Error("party: accept failed; no longer serving followers", "err", err)
			}
			return
		}
		// A larger send buffer lets iterator batches run ahead of a
		// reader that is busy for a moment, instead of waking the
		// connection's writer for every 200 KiB (the default). The kernel
		// caps it at net.core.wmem_max.
		nc.SetWriteBuffer(sendBuffer)
		c := newConn(h, nc)
		h.mu.Lock()
		h.wg.Add(1)
		if h.closing {
			h.mu.Unlock()
			go func() {
				defer h.wg.Done()
				c.refuse(wire.WelcomeClosing, "leader is closing")
			}()
			continue
		}
		h.conns[c] = struct{}{}
		h.mu.Unlock()
		go c.serve()
	}
}

func (h *Host) remove(c *conn) {
	h.mu.Lock()
	delete(h.conns, c)
	h.mu.Unlock()
	h.wg.Done()
}

// Status describes the leader, for itself and for its followers.
func (h *Host) Status() backend.Status {
	return backend.Status{
		IsLeader:  true,
		PID:       os.Getpid(),
		LeaderID:  h.cfg.LeaderID,
		Since:     h.cfg.Since,
		Followers: h.Followers(),
		DiskSize:  dirSize(h.cfg.Dir),
	}
}

func (h *Host) welcome(status uint8, msg string) wire.Welcome {
	return wire.Welcome{
		Version:  wire.Version,
		Status:   status,
		PID:      uint32(os.Getpid()),
		LeaderID: h.cfg.LeaderID,
		Since:    h.cfg.Since,
		Msg:      msg,
	}
}

func dirSize(dir string) int64 {
	var n int64
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if fi, err := os.Stat(filepath.Join(dir, e.Name())); err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
	}
	return n
}

// checkPeer refuses processes of other users, and root unless allowed.
func (h *Host) checkPeer(nc *net.UnixConn) (sock.Peer, error) {
	p, err := sock.PeerOf(nc)
	if err != nil {
		return p, err
	}
	if p.UID == h.uid || (p.UID == 0 && h.cfg.AllowRoot) {
		return p, nil
	}
	return p, errPeerRefused
}

var errPeerRefused = errors.New("peer belongs to another user")

// isClosedErr reports errors that only mean the connection ended.
func isClosedErr(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrDeadlineExceeded)
}
