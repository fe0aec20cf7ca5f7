//go:build linux

package party

// Robustness: bad input from a peer gets a clear error and a closed
// connection, never a panic, a hang or lost data; the socket survives stale
// files, long paths and other users; a database held by a program that is
// not party, or a directory that cannot be used, is a clear error from Open.
//
// Every test here talks to a real leader over its real socket. Waits are
// bounded only to turn a hang into a clear failure, never to assert speed.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/levelparty/party/internal/wire"
	"github.com/syndtr/goleveldb/leveldb"
	lerrors "github.com/syndtr/goleveldb/leveldb/errors"
	"github.com/syndtr/goleveldb/leveldb/opt"
	"golang.org/x/sys/unix"
)

// rbWait bounds every wait in these tests; reaching it means a hang.
const rbWait = 10 * time.Second

// rbLog is a goroutine-safe buffer behind a slog handler, so that a test
// can assert what the leader logged.
type rbLog struct {
	cfSafeBuffer
}

// Len returns how much has been logged so far.
func (l *rbLog) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Len()
}

// Since returns what was logged after offset from.
func (l *rbLog) Since(from int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()[from:]
}

// Logger returns a logger writing to l.
func (l *rbLog) Logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// WaitFor waits until everything in subs has been logged after offset
// from, and fails the test if that does not happen within rbWait.
func (l *rbLog) WaitFor(t testing.TB, from int, subs ...string) {
	t.Helper()
	deadline := time.Now().Add(rbWait)
	for {
		got := l.Since(from)
		missing := ""
		for _, s := range subs {
			if !strings.Contains(got, s) {
				missing = s
				break
			}
		}
		if missing == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the leader did not log %q; it logged:\n%s", missing, got)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// rbCtx returns a context that ends with the test or after rbWait.
func rbCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), rbWait)
	t.Cleanup(cancel)
	return ctx
}

// rbOpen opens a handle on dir and closes it when the test ends.
func rbOpen(t testing.TB, dir string, o *Options) *DB {
	t.Helper()
	db, err := Open(dir, o)
	if err != nil {
		t.Fatalf("open %s: %v", dir, err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// rbPair opens a leader that logs to the returned buffer and a follower.
func rbPair(t testing.TB, dir string) (leader, follower *DB, log *rbLog) {
	t.Helper()
	log = &rbLog{}
	leader = rbOpen(t, dir, &Options{Logger: log.Logger()})
	follower = rbOpen(t, dir, nil)
	if !leader.IsLeader() || follower.IsLeader() {
		t.Fatalf("setup: leader %v, follower %v", leader.IsLeader(), follower.IsLeader())
	}
	return leader, follower, log
}

// rbKeeper is a well-behaved follower that writes a key after every step
// of a test and checks that every key it wrote is still there. With its
// leader known, it also checks that the leader has dropped every other
// connection.
type rbKeeper struct {
	db       *DB
	leader   *DB // nil: not in this process
	leaderID string
	keys     []string
}

func rbNewKeeper(t testing.TB, leader, db *DB) *rbKeeper {
	t.Helper()
	st, err := db.Status(rbCtx(t))
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	return &rbKeeper{db: db, leader: leader, leaderID: st.LeaderID}
}

// Check puts a new key and reads back every key put so far, through the
// same leader as at the start.
func (k *rbKeeper) Check(t testing.TB, step string) {
	t.Helper()
	ctx := rbCtx(t)
	key := fmt.Sprintf("rb-keeper-%03d", len(k.keys))
	if err := k.db.Put(ctx, []byte(key), []byte("after "+step)); err != nil {
		t.Fatalf("after %s: follower put: %v", step, err)
	}
	k.keys = append(k.keys, key)
	for _, key := range k.keys {
		if _, err := k.db.Get(ctx, []byte(key)); err != nil {
			t.Fatalf("after %s: follower get %s: %v", step, key, err)
		}
	}
	st, err := k.db.Status(ctx)
	if err != nil {
		t.Fatalf("after %s: status: %v", step, err)
	}
	if st.IsLeader || st.LeaderID != k.leaderID {
		t.Fatalf("after %s: the follower changed leader (leader now %s, was %s; is leader %v)", step, st.LeaderID, k.leaderID, st.IsLeader)
	}
	if k.leader == nil {
		return
	}
	if !k.leader.IsLeader() {
		t.Fatalf("after %s: the leader is no longer leader", step)
	}
	for deadline := time.Now().Add(rbWait); ; time.Sleep(time.Millisecond) {
		st, err := k.leader.Status(ctx)
		if err != nil {
			t.Fatalf("after %s: leader status: %v", step, err)
		}
		if st.Followers == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: the leader still counts %d followers, want 1: a connection was not dropped", step, st.Followers)
		}
	}
}

// rbDial connects to the socket of dir as a raw peer.
func rbDial(t testing.TB, dir string) *net.UnixConn {
	t.Helper()
	c, err := net.DialTimeout("unix", filepath.Join(dir, "party.sock"), rbWait)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.UnixConn)
}

// rbReadToClose reads from c until the leader closes it and returns what
// was read. A read that times out means the leader kept the connection
// open: the test fails.
func rbReadToClose(t testing.TB, c net.Conn) []byte {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(rbWait))
	data, err := io.ReadAll(c)
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("the leader did not close the connection within %v (read %d bytes)", rbWait, len(data))
		}
		// A reset is a close too: the leader closed with our bytes unread.
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("reading until close: %v", err)
		}
	}
	return data
}

// rbHello is a valid hello of this protocol version.
func rbHello() []byte { return wire.AppendHello(nil, wire.Hello{Version: wire.Version}) }

// rbFrame builds a raw frame, valid or not.
func rbFrame(t wire.Type, id uint32, body []byte) []byte {
	b := wire.AppendHeader(nil, t, id)
	b = append(b, body...)
	wire.FinishFrame(b, 0)
	return b
}

// rbSplitWelcome parses the welcome at the start of data and returns it
// with the bytes after it.
func rbSplitWelcome(t testing.TB, data []byte) (wire.Welcome, []byte) {
	t.Helper()
	r := bytes.NewReader(data)
	w, err := wire.ReadWelcome(r)
	if err != nil {
		t.Fatalf("reading the welcome from %q: %v", data, err)
	}
	rest, _ := io.ReadAll(r)
	return w, rest
}

// TestRobustBadInput sends a live leader everything a broken or hostile
// peer might: for each, the leader closes that connection, logs why, and
// its well-behaved follower carries on with its data intact.
func TestRobustBadInput(t *testing.T) {
	dir := t.TempDir()
	leader, follower, log := rbPair(t, dir)
	keeper := rbNewKeeper(t, leader, follower)
	keeper.Check(t, "setup")

	put := wire.AppendRequest(nil, &wire.Request{Type: wire.TPut, ID: 1, Key: []byte("k"), Value: []byte("v")})
	oversize := []byte{0, 0, 0, 0, byte(wire.TPut), 0, 0, 0, 1}
	// The length field counts what follows it: this frame is one byte over
	// the 64 MiB limit. Only its header is sent: the leader must refuse it
	// without waiting for a body.
	rbPutU32(oversize, wire.MaxFrame-4+1)

	cases := []struct {
		name      string
		send      []byte
		halfClose bool     // shut our writing side after sending
		welcome   bool     // a welcome with status OK comes first
		logs      []string // what the leader's log must say
	}{
		{name: "garbage", send: []byte("GET / HTTP/1.1\r\nHost: party\r\n\r\n"),
			logs: []string{"bad handshake", "does not speak the party protocol"}},
		{name: "short garbage", send: []byte("hi"), halfClose: true,
			logs: []string{"bad handshake", "unexpected EOF"}},
		{name: "nothing", halfClose: true,
			logs: []string{"bad handshake", "EOF"}},
		{name: "truncated frame", send: append(rbHello(), put[:len(put)-2]...), halfClose: true, welcome: true,
			logs: []string{"closing follower connection", "unexpected EOF"}},
		{name: "truncated header", send: append(rbHello(), put[:6]...), halfClose: true, welcome: true,
			logs: []string{"closing follower connection", "unexpected EOF"}},
		{name: "oversize frame", send: append(rbHello(), oversize...), welcome: true,
			logs: []string{"closing follower connection", "frame exceeds the size limit"}},
		{name: "undersize frame", send: append(rbHello(), 0, 0, 0, 2, byte(wire.TGet), 0, 0, 0, 0, 0), welcome: true,
			logs: []string{"closing follower connection", "frame shorter than its header"}},
		{name: "unknown type", send: append(rbHello(), rbFrame(200, 1, []byte("x"))...), welcome: true,
			logs: []string{"closing follower connection", "unknown message type 200"}},
		{name: "type zero", send: append(rbHello(), rbFrame(0, 1, nil)...), welcome: true,
			logs: []string{"closing follower connection", "unknown message type 0"}},
		{name: "leader-only type", send: append(rbHello(), rbFrame(wire.TResponse, 1, []byte{0})...), welcome: true,
			logs: []string{"closing follower connection", "response is not a request"}},
		{name: "malformed put", send: append(rbHello(), rbFrame(wire.TPut, 1, []byte{0, 5, 'k'})...), welcome: true,
			logs: []string{"closing follower connection", "put: malformed message"}},
		{name: "bad seek mode", send: append(rbHello(), rbFrame(wire.TIterSeek, 1, []byte{0, 0, 0, 1, 9, 0, 0, 0, 1, 0})...), welcome: true,
			logs: []string{"closing follower connection", "malformed message: seek mode 9"}},
		{name: "trailing bytes", send: append(rbHello(), rbFrame(wire.TStatus, 1, []byte{1, 2})...), welcome: true,
			logs: []string{"closing follower connection", "status: malformed message: 2 trailing bytes"}},
		{name: "bad batch record", send: append(rbHello(), rbFrame(wire.TBatch, 1, []byte{0, 1, 1, 'k', 1, 'v', 7, 0})...), welcome: true,
			logs: []string{"closing follower connection", "record kind 7"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			from := log.Len()
			c := rbDial(t, dir)
			if len(tc.send) > 0 {
				if _, err := c.Write(tc.send); err != nil {
					t.Fatalf("write: %v", err)
				}
			}
			if tc.halfClose {
				c.CloseWrite()
			}
			data := rbReadToClose(t, c)
			if tc.welcome {
				w, rest := rbSplitWelcome(t, data)
				if w.Status != wire.WelcomeOK {
					t.Fatalf("welcome status %d (%s), want OK", w.Status, w.Msg)
				}
				if len(rest) != 0 {
					t.Errorf("the leader answered a bad frame with %q", rest)
				}
			} else if len(data) != 0 {
				t.Errorf("the leader answered a bad handshake with %q", data)
			}
			log.WaitFor(t, from, tc.logs...)
			keeper.Check(t, tc.name)
		})
	}

	t.Run("wrong version", func(t *testing.T) {
		from := log.Len()
		c := rbDial(t, dir)
		c.Write(wire.AppendHello(nil, wire.Hello{Version: wire.Version + 1}))
		w, rest := rbSplitWelcome(t, rbReadToClose(t, c))
		if w.Status != wire.WelcomeVersion {
			t.Fatalf("welcome status %d, want WelcomeVersion", w.Status)
		}
		want := fmt.Sprintf("leader speaks protocol version %d, follower %d", wire.Version, wire.Version+1)
		if w.Msg != want || w.Version != wire.Version {
			t.Errorf("welcome version %d message %q, want version %d message %q", w.Version, w.Msg, wire.Version, want)
		}
		if len(rest) != 0 {
			t.Errorf("%d bytes after the refusal", len(rest))
		}
		log.WaitFor(t, from, "version mismatch", want)
		keeper.Check(t, "wrong version")
	})

	t.Run("truncated frame then close", func(t *testing.T) {
		from := log.Len()
		c := rbDial(t, dir)
		c.Write(append(rbHello(), put[:len(put)-1]...))
		c.SetReadDeadline(time.Now().Add(rbWait))
		if _, err := wire.ReadWelcome(c); err != nil {
			t.Fatalf("welcome: %v", err)
		}
		c.Close()
		log.WaitFor(t, from, "closing follower connection", "unexpected EOF")
		keeper.Check(t, "truncated frame then close")
	})

	// Requests read before a bad frame are still served and answered:
	// the write is applied and acknowledged, then the connection closes.
	t.Run("good frames before a bad one", func(t *testing.T) {
		from := log.Len()
		c := rbDial(t, dir)
		msg := rbHello()
		msg = wire.AppendRequest(msg, &wire.Request{Type: wire.TPut, ID: 7, Key: []byte("rb-pipelined"), Value: []byte("kept")})
		msg = wire.AppendRequest(msg, &wire.Request{Type: wire.TGet, ID: 8, Key: []byte("rb-pipelined")})
		msg = append(msg, rbFrame(222, 9, nil)...)
		c.Write(msg)
		_, rest := rbSplitWelcome(t, rbReadToClose(t, c))
		r := wire.NewReader(bufio.NewReader(bytes.NewReader(rest)))
		answers := map[uint32]string{}
		for {
			typ, id, body, err := r.Next(true)
			if err == io.EOF {
				break
			}
			if err != nil || typ != wire.TResponse {
				t.Fatalf("answers: %v %v", typ, err)
			}
			code, payload, err := wire.DecodeResponse(body)
			if err != nil {
				t.Fatal(err)
			}
			answers[id] = fmt.Sprintf("%d:%s", code, payload)
		}
		// The get may run before the put is applied: the leader gathers
		// the writes of a burst and answers reads at once, and the
		// protocol orders nothing between requests in flight together.
		if answers[7] != "0:" || (answers[8] != "0:kept" && answers[8] != "1:") || len(answers) != 2 {
			t.Errorf("answers %v, want the put (7) acknowledged and the get (8) answered", answers)
		}
		log.WaitFor(t, from, "unknown message type 222")
		v, err := keeper.db.Get(rbCtx(t), []byte("rb-pipelined"))
		if err != nil || string(v) != "kept" {
			t.Errorf("the pipelined put is lost: %q, %v", v, err)
		}
		keeper.Check(t, "good frames before a bad one")
	})
}

func rbPutU32(b []byte, v uint32) {
	b[0], b[1], b[2], b[3] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
}

// TestRobustStaleSocket leaves a socket file nobody listens on, or one a
// program that is not party answers, and opens: the first handle takes the
// lock, replaces the socket and serves a follower.
func TestRobustStaleSocket(t *testing.T) {
	t.Run("nobody listening", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "party.sock")
		ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
		if err != nil {
			t.Fatal(err)
		}
		ln.SetUnlinkOnClose(false)
		ln.Close()
		if fi, err := os.Lstat(path); err != nil || fi.Mode()&os.ModeSocket == 0 {
			t.Fatalf("setup: no stale socket file: %v", err)
		}
		if c, err := net.Dial("unix", path); err == nil || !errors.Is(err, syscall.ECONNREFUSED) {
			if c != nil {
				c.Close()
			}
			t.Fatalf("setup: dialing the stale socket: %v, want ECONNREFUSED", err)
		}
		rbServes(t, dir)
	})
	t.Run("not party", func(t *testing.T) {
		dir := t.TempDir()
		ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: filepath.Join(dir, "party.sock"), Net: "unix"})
		if err != nil {
			t.Fatal(err)
		}
		ln.SetUnlinkOnClose(false)
		defer ln.Close()
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				c.Write([]byte("HTTP/1.1 400 Bad Request\r\n\r\n and some more text to fill a welcome"))
				c.Close()
			}
		}()
		rbServes(t, dir)
	})
}

// rbServes opens a leader and a follower on dir and checks that the
// follower works through the leader.
func rbServes(t *testing.T, dir string) {
	t.Helper()
	leader := rbOpen(t, dir, &Options{OpenTimeout: rbWait})
	if !leader.IsLeader() {
		t.Fatal("the first handle did not become leader")
	}
	follower := rbOpen(t, dir, &Options{OpenTimeout: rbWait})
	if follower.IsLeader() {
		t.Fatal("two leaders")
	}
	ctx := rbCtx(t)
	if err := follower.Put(ctx, []byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	if v, err := leader.Get(ctx, []byte("k")); err != nil || string(v) != "v" {
		t.Fatalf("leader get: %q %v", v, err)
	}
	rbCheckSocketMode(t, dir)
}

// rbCheckSocketMode checks that dir's socket is a socket of mode 0600.
func rbCheckSocketMode(t testing.TB, dir string) {
	t.Helper()
	fi, err := os.Lstat(filepath.Join(dir, "party.sock"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket file mode %v, want a socket of mode 0600", fi.Mode())
	}
}

// TestRobustLongPath runs a party in a directory whose socket path is far
// over the 108-byte limit of socket addresses, through a leader change.
func TestRobustLongPath(t *testing.T) {
	dir := t.TempDir()
	for len(filepath.Join(dir, "party.sock")) <= 160 {
		dir = filepath.Join(dir, "a-rather-long-directory-name")
	}
	t.Logf("socket path of %d bytes", len(filepath.Join(dir, "party.sock")))
	ctx := rbCtx(t)
	a := rbOpen(t, dir, nil)
	b := rbOpen(t, dir, nil)
	if !a.IsLeader() || b.IsLeader() {
		t.Fatalf("leader a=%v b=%v", a.IsLeader(), b.IsLeader())
	}
	rbCheckSocketMode(t, dir)
	const n = 50
	for i := range n {
		if err := b.Put(ctx, fmt.Appendf(nil, "k%03d", i), fmt.Appendf(nil, "v%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	rbCheckScan(t, b, n)
	rbCheckScan(t, a, n)

	// The follower takes over on the same long path and serves a newcomer.
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Put(ctx, []byte("after"), []byte("close")); err != nil {
		t.Fatal(err)
	}
	if !b.IsLeader() {
		t.Fatal("the follower did not take over")
	}
	rbCheckSocketMode(t, dir)
	c := rbOpen(t, dir, nil)
	if c.IsLeader() {
		t.Fatal("two leaders")
	}
	if v, err := c.Get(ctx, []byte("after")); err != nil || string(v) != "close" {
		t.Fatalf("newcomer get: %q %v", v, err)
	}
	rbCheckScan(t, c, n+1)
}

// rbCheckScan iterates db forward and backward and checks it has n keys.
func rbCheckScan(t testing.TB, db *DB, n int) {
	t.Helper()
	it := db.NewIterator(rbCtx(t), nil)
	defer it.Release()
	fwd, back := 0, 0
	for it.Next() {
		fwd++
	}
	for it.Prev() {
		back++
	}
	if err := it.Error(); err != nil || fwd != n || back != n {
		t.Fatalf("scan: %d forward, %d backward, want %d; err %v", fwd, back, n, err)
	}
}

// TestRobustSocketMode checks the socket file's mode on a short path.
func TestRobustSocketMode(t *testing.T) {
	dir := t.TempDir()
	rbOpen(t, dir, nil)
	rbCheckSocketMode(t, dir)
}

// Child processes: the parent runs the test binary again with
// -test.run=^TestRobustChild$ and PARTY_RB_CHILD naming what to do. The
// child prints "RB: ..." lines on stdout.
const (
	rbEnvChild = "PARTY_RB_CHILD"
	rbEnvPath  = "PARTY_RB_PATH"
)

// TestRobustChild is not a test: it is the body of the child processes of
// the tests below, and skips when run as a test.
func TestRobustChild(t *testing.T) {
	mode := os.Getenv(rbEnvChild)
	if mode == "" {
		t.Skip("runs only as a child process of other TestRobust tests")
	}
	path := os.Getenv(rbEnvPath)
	switch mode {
	case "fcntl":
		rbChildFcntl(path)
	case "dial":
		rbChildDial(path)
	case "open":
		rbChildOpen(path)
	case "lead":
		rbChildLead(path)
	case "txinc":
		txChildIncrement(path)
	case "txhold":
		txChildHold(path)
	case "wwrite":
		wpChildWrite(path)
	case "wwatch":
		wpChildWatch(path)
	default:
		fmt.Printf("RB: unknown mode %q\n", mode)
	}
	os.Exit(0)
}

// rbChildFcntl takes a classic fcntl write lock on path, as C++ LevelDB
// does, and holds it until stdin closes.
func rbChildFcntl(path string) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		fmt.Printf("RB: error %v\n", err)
		return
	}
	lk := unix.Flock_t{Type: unix.F_WRLCK}
	if err := unix.FcntlFlock(f.Fd(), unix.F_SETLK, &lk); err != nil {
		fmt.Printf("RB: error %v\n", err)
		return
	}
	fmt.Println("RB: locked")
	io.Copy(io.Discard, os.Stdin)
}

// rbChildDial connects to the socket at path and says hello.
func rbChildDial(path string) {
	c, err := net.DialTimeout("unix", path, rbWait)
	if err != nil {
		if errors.Is(err, syscall.EACCES) {
			fmt.Println("RB: dial EACCES")
		} else {
			fmt.Printf("RB: dial error %v\n", err)
		}
		return
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(rbWait))
	c.Write(rbHello())
	w, err := wire.ReadWelcome(c)
	if err != nil {
		fmt.Printf("RB: no welcome %v\n", err)
		return
	}
	fmt.Printf("RB: welcome %d %q\n", w.Status, w.Msg)
	// Whatever the welcome said, a request must go unanswered.
	c.Write(wire.AppendRequest(nil, &wire.Request{Type: wire.TGet, ID: 1, Key: []byte("secret")}))
	n, err := c.Read(make([]byte, 1))
	fmt.Printf("RB: then %d bytes, %v\n", n, err)
}

// rbChildOpen opens the database in dir with party.
func rbChildOpen(dir string) {
	db, err := Open(dir, &Options{OpenTimeout: 2 * time.Second})
	if err != nil {
		fmt.Printf("RB: open error %v\n", err)
		return
	}
	fmt.Printf("RB: open ok leader=%v\n", db.IsLeader())
	db.Close()
}

// rbChildLead opens dir, reports its role and stays until stdin closes.
func rbChildLead(dir string) {
	db, err := Open(dir, &Options{OpenTimeout: rbWait})
	if err != nil {
		fmt.Printf("RB: open error %v\n", err)
		return
	}
	fmt.Printf("RB: leader=%v\n", db.IsLeader())
	io.Copy(io.Discard, os.Stdin)
	db.Close()
}

// rbStartLeaderChild starts a child that leads dir and stays until the
// test ends.
func rbStartLeaderChild(t testing.TB, dir string) *rbChild {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	child := rbStartChild(t, exe, "lead", dir, nil)
	if l := child.Line(t); l != "leader=true" {
		t.Fatalf("child: %s", l)
	}
	return child
}

// rbChild is a running child process.
type rbChild struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string
	done  chan struct{}
}

// rbStartChild starts the test binary exe as a child in mode, as the
// given credential if not nil.
func rbStartChild(t testing.TB, exe, mode, path string, cred *syscall.Credential) *rbChild {
	t.Helper()
	cmd := exec.Command(exe, "-test.run=^TestRobustChild$")
	cmd.Env = append(os.Environ(), rbEnvChild+"="+mode, rbEnvPath+"="+path)
	cmd.Dir = filepath.Dir(exe)
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting child: %v", err)
	}
	c := &rbChild{cmd: cmd, stdin: stdin, lines: make(chan string, 16), done: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if line, ok := strings.CutPrefix(sc.Text(), "RB: "); ok {
				c.lines <- line
			}
		}
		cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(func() {
		stdin.Close()
		select {
		case <-c.done:
		case <-time.After(rbWait):
			cmd.Process.Kill()
			<-c.done
		}
		if t.Failed() && stderr.Len() > 0 {
			t.Logf("child %s stderr:\n%s", mode, stderr.String())
		}
	})
	return c
}

// Line returns the child's next "RB: " line.
func (c *rbChild) Line(t testing.TB) string {
	t.Helper()
	select {
	case l := <-c.lines:
		return l
	case <-c.done:
		select {
		case l := <-c.lines:
			return l
		default:
		}
		t.Fatal("the child exited without a result line")
	case <-time.After(2 * rbWait):
		t.Fatal("the child printed no result line")
	}
	return ""
}

// TestRobustForeignLock holds the database with programs that are not
// party: Open gives up after its timeout with ErrLockedByOther, naming the
// holder when it can, and succeeds once the lock is released.
func TestRobustForeignLock(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Run("fcntl lock", func(t *testing.T) {
		// A classic fcntl lock, as C++ LevelDB (Node's level) takes. It is
		// held by a child process: classic locks belong to the process and
		// fall when the process closes any descriptor of the file, as
		// party does after a failed attempt, so one held by this test
		// process would vanish at party's first try.
		dir := t.TempDir()
		child := rbStartChild(t, exe, "fcntl", filepath.Join(dir, "LOCK"), nil)
		if l := child.Line(t); l != "locked" {
			t.Fatalf("child: %s", l)
		}
		_, err := Open(dir, &Options{OpenTimeout: 300 * time.Millisecond})
		if !errors.Is(err, ErrLockedByOther) {
			t.Fatalf("open: %v, want ErrLockedByOther", err)
		}
		pid := strconv.Itoa(child.cmd.Process.Pid)
		if !strings.Contains(err.Error(), pid) {
			t.Errorf("the error does not name the holder, process %s: %v", pid, err)
		}
		t.Logf("open: %v", err)
		child.stdin.Close()
		<-child.done
		db := rbOpen(t, dir, &Options{OpenTimeout: rbWait})
		if !db.IsLeader() {
			t.Fatal("not leader once the lock was released")
		}
	})
	t.Run("goleveldb", func(t *testing.T) {
		dir := t.TempDir()
		ldb, err := leveldb.OpenFile(dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer ldb.Close()
		if err := ldb.Put([]byte("from"), []byte("goleveldb"), nil); err != nil {
			t.Fatal(err)
		}
		_, err = Open(dir, &Options{OpenTimeout: 300 * time.Millisecond})
		if !errors.Is(err, ErrLockedByOther) {
			t.Fatalf("open: %v, want ErrLockedByOther", err)
		}
		t.Logf("open: %v", err)
		if err := ldb.Close(); err != nil {
			t.Fatal(err)
		}
		db := rbOpen(t, dir, &Options{OpenTimeout: rbWait})
		if v, err := db.Get(rbCtx(t), []byte("from")); err != nil || string(v) != "goleveldb" {
			t.Fatalf("get: %q %v", v, err)
		}
	})
}

// TestRobustUnusableDir gives Open directories it cannot use: each fails
// at once with the cause, not after the open timeout, and leaves no lock
// behind.
func TestRobustUnusableDir(t *testing.T) {
	o := &Options{OpenTimeout: time.Minute} // a wait for the timeout would show as a hang
	notTimeout := func(t *testing.T, err error) {
		t.Helper()
		if err == nil {
			t.Fatal("open succeeded")
		}
		if errors.Is(err, ErrLockedByOther) || strings.Contains(err.Error(), "could not join within") {
			t.Fatalf("open failed by timeout instead of at once: %v", err)
		}
		t.Logf("open: %v", err)
	}
	t.Run("under a regular file", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "plain")
		if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, dir := range []string{file, filepath.Join(file, "db")} {
			_, err := Open(dir, o)
			notTimeout(t, err)
			if !errors.Is(err, syscall.ENOTDIR) || !strings.Contains(err.Error(), file) {
				t.Errorf("open %s: %v, want ENOTDIR naming the path", dir, err)
			}
		}
	})
	t.Run("LOCK is a directory", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.Mkdir(filepath.Join(dir, "LOCK"), 0o755); err != nil {
			t.Fatal(err)
		}
		_, err := Open(dir, o)
		notTimeout(t, err)
		if !errors.Is(err, syscall.EISDIR) {
			t.Errorf("open: %v, want EISDIR", err)
		}
	})
	t.Run("corrupt database", func(t *testing.T) {
		dir := t.TempDir()
		// CURRENT names a manifest that is missing while a journal is
		// there: goleveldb refuses to open rather than start afresh.
		for name, content := range map[string]string{"CURRENT": "MANIFEST-000042\n", "000041.log": "junk"} {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		_, err := Open(dir, o)
		notTimeout(t, err)
		var corrupted *lerrors.ErrCorrupted
		if !errors.As(err, &corrupted) {
			t.Errorf("open: %v, want goleveldb's corruption error", err)
		}
		// The failed attempt must have released the lock: once the
		// directory is repaired, Open leads at once.
		os.Remove(filepath.Join(dir, "CURRENT"))
		os.Remove(filepath.Join(dir, "000041.log"))
		db := rbOpen(t, dir, &Options{OpenTimeout: rbWait})
		if !db.IsLeader() {
			t.Fatal("not leader after the repair")
		}
	})
	t.Run("read-only directory", func(t *testing.T) {
		if os.Geteuid() == 0 {
			// Root writes through any mode bits, so there is no read-only
			// directory to test with.
			t.Skip("running as root: permission bits do not stop root")
		}
		dir := t.TempDir()
		if err := os.Chmod(dir, 0o500); err != nil {
			t.Fatal(err)
		}
		defer os.Chmod(dir, 0o700)
		_, err := Open(dir, o)
		notTimeout(t, err)
		if !errors.Is(err, syscall.EACCES) && !errors.Is(err, syscall.EROFS) {
			t.Errorf("open: %v, want EACCES", err)
		}
	})
}

// TestRobustPeerCredentials runs a child process as another user (nobody)
// against a leader run by root: it cannot open the 0600 socket, and when
// the socket is opened up by hand, the leader itself refuses it after
// reading its credentials.
func TestRobustPeerCredentials(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a child process as another user")
	}
	base, err := os.MkdirTemp("", "rbpeer")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	// The child must reach the socket to be refused by it, so the path is
	// searchable by others.
	for d := base; d != "/"; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		if d == base {
			os.Chmod(d, 0o755)
		} else if fi.Mode().Perm()&0o001 == 0 {
			t.Skipf("%s is not searchable by other users", d)
		}
	}
	// And it must be able to run a copy of this test binary.
	exe := filepath.Join(base, "party.test")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(exe, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(base, "db")
	leader, follower, log := rbPair(t, dir)
	keeper := rbNewKeeper(t, leader, follower)
	sockPath := filepath.Join(dir, "party.sock")
	nobody := &syscall.Credential{Uid: 65534, Gid: 65534}

	// The socket is 0600: the kernel refuses the connection.
	if l := rbStartChild(t, exe, "dial", sockPath, nobody).Line(t); l != "dial EACCES" {
		t.Fatalf("child as nobody: %s; want its connection refused with EACCES", l)
	}
	keeper.Check(t, "dial by nobody")

	// Opened up by hand, the socket lets nobody connect: the leader reads
	// its credentials and refuses it with a reason, then closes.
	if err := os.Chmod(sockPath, 0o666); err != nil {
		t.Fatal(err)
	}
	from := log.Len()
	child := rbStartChild(t, exe, "dial", sockPath, nobody)
	l := child.Line(t)
	if l != fmt.Sprintf("welcome %d %q", wire.WelcomeRefused, "peer belongs to another user") {
		t.Fatalf("child as nobody: %s; want a refusal", l)
	}
	if l := child.Line(t); !strings.HasPrefix(l, "then 0 bytes") {
		t.Errorf("after the refusal: %s", l)
	}
	log.WaitFor(t, from, "refusing connection", "peer_uid=65534", "another user")
	keeper.Check(t, "refused peer")

	// party.Open as nobody: refused by the leader, and unable to take the
	// lock, it fails with a reason.
	if l := rbStartChild(t, exe, "open", dir, nobody).Line(t); !strings.HasPrefix(l, "open error") {
		t.Errorf("party.Open as nobody: %s", l)
	} else {
		t.Logf("child: %s", l)
	}
	keeper.Check(t, "open by nobody")
}

// TestRobustTooLarge checks the frame limit from a follower: what cannot
// fit in a frame fails with ErrTooLarge before it is sent, leaving the
// connection as it was; the largest value that fits goes and comes back.
func TestRobustTooLarge(t *testing.T) {
	dir := t.TempDir()
	// A memtable that holds the largest value spares the test a 64 MiB
	// compaction, which is slow under the race detector.
	lo := &opt.Options{WriteBuffer: 2 * wire.MaxFrame, Compression: opt.NoCompression}
	// Replaying a 64 MiB journal under the race detector on a loaded
	// machine can take longer than the default OpenTimeout.
	leader := rbOpen(t, dir, &Options{LevelDB: lo, OpenTimeout: 2 * time.Minute})
	flog := &rbLog{}
	follower := rbOpen(t, dir, &Options{Logger: flog.Logger(), OpenTimeout: 2 * time.Minute})
	keeper := rbNewKeeper(t, leader, follower)
	ctx := rbCtx(t)
	huge := make([]byte, wire.MaxFrame+1)

	if err := follower.Put(ctx, []byte("big"), huge); !errors.Is(err, ErrTooLarge) {
		t.Errorf("put of %d bytes: %v, want ErrTooLarge", len(huge), err)
	}
	keeper.Check(t, "put too large")
	if err := follower.Put(ctx, huge, nil); !errors.Is(err, ErrTooLarge) {
		t.Errorf("put of a %d-byte key: %v, want ErrTooLarge", len(huge), err)
	}
	if err := follower.Delete(ctx, huge); !errors.Is(err, ErrTooLarge) {
		t.Errorf("delete of a %d-byte key: %v, want ErrTooLarge", len(huge), err)
	}
	var b Batch
	b.Put([]byte("a"), huge[:wire.MaxFrame/2])
	b.Put([]byte("b"), huge[:wire.MaxFrame/2])
	if err := follower.Write(ctx, &b); !errors.Is(err, ErrTooLarge) {
		t.Errorf("batch of two halves: %v, want ErrTooLarge", err)
	}
	if err := follower.DeleteRange(ctx, &Range{Start: huge}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("delete-range with a %d-byte bound: %v, want ErrTooLarge", len(huge), err)
	}
	keeper.Check(t, "writes too large")

	// The largest value Put accepts crosses the socket both ways.
	key := []byte("largest")
	n := wire.MaxFrame - wire.RequestSize(key, nil, nil)
	value := huge[:n]
	value[0], value[n-1] = 'A', 'Z'
	// Far above rbWait: under the race detector every 64 MiB copy stalls
	// the garbage collector, which cannot preempt the copying goroutine,
	// and a loaded 2-core machine takes over 10 s for the round trips.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := follower.Put(ctx, key, value); err != nil {
		t.Fatalf("put of the largest value, %d bytes: %v", n, err)
	}
	got, err := follower.Get(ctx, key)
	if err != nil || !bytes.Equal(got, value) {
		t.Fatalf("get of the largest value: %d bytes, %v", len(got), err)
	}
	it := follower.NewIterator(ctx, &Range{Start: key})
	if !it.Next() || !bytes.Equal(it.Value(), value) {
		t.Errorf("iterating the largest value: %d bytes, %v", len(it.Value()), it.Error())
	}
	it.Release()
	keeper.Check(t, "largest value")
	if l := flog.Since(0); strings.Contains(l, "leader lost") || strings.Count(l, "party: following") != 1 {
		t.Errorf("the follower's connection broke:\n%s", l)
	}
}

// TestRobustTooLargeRead checks the frame limit for reads from a follower:
// a key that cannot fit in a frame must fail with ErrTooLarge before it is
// sent, like a write, rather than be sent in a frame the leader refuses by
// closing the connection.
func TestRobustTooLargeRead(t *testing.T) {
	dir := t.TempDir()
	leader := rbOpen(t, dir, nil)
	flog := &rbLog{}
	follower := rbOpen(t, dir, &Options{Logger: flog.Logger()})
	keeper := rbNewKeeper(t, leader, follower)
	huge := make([]byte, wire.MaxFrame+1)
	// Each call gets a short context: it should fail at once, and a
	// follower that sends the key instead would retry until it ends.
	op := func() context.Context {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		t.Cleanup(cancel)
		return ctx
	}

	if _, err := follower.Get(op(), huge); !errors.Is(err, ErrTooLarge) {
		t.Errorf("get of a %d-byte key: %v, want ErrTooLarge", len(huge), err)
	}
	if _, err := follower.Has(op(), huge); !errors.Is(err, ErrTooLarge) {
		t.Errorf("has of a %d-byte key: %v, want ErrTooLarge", len(huge), err)
	}
	it := follower.NewIterator(op(), nil)
	if it.Seek(huge); !errors.Is(it.Error(), ErrTooLarge) {
		t.Errorf("seek to a %d-byte key: %v, want ErrTooLarge", len(huge), it.Error())
	}
	it.Release()
	it = follower.NewIterator(op(), &Range{Start: huge})
	if it.Next(); !errors.Is(it.Error(), ErrTooLarge) {
		t.Errorf("iterator from a %d-byte key: %v, want ErrTooLarge", len(huge), it.Error())
	}
	it.Release()
	keeper.Check(t, "reads too large")
	if l := flog.Since(0); strings.Contains(l, "leader lost") || strings.Count(l, "party: following") != 1 {
		t.Errorf("the follower's connection broke:\n%s", l)
	}
}

// TestRobustCloseStuckPeer has a peer pipeline reads of a large value and
// never read the answers, so that the leader blocks writing to it. The
// other follower must keep working, and the leader's Close must still
// return: a peer that does not read cannot be allowed to keep the lock
// held, and with it the whole party leaderless, forever.
func TestRobustCloseStuckPeer(t *testing.T) {
	dir := t.TempDir()
	leader, follower, _ := rbPair(t, dir)
	keeper := rbNewKeeper(t, nil, follower) // the stuck peer stays connected
	ctx := rbCtx(t)
	if err := leader.Put(ctx, []byte("big"), make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}
	c := rbDial(t, dir)
	msg := rbHello()
	for i := range 16 {
		msg = wire.AppendRequest(msg, &wire.Request{Type: wire.TGet, ID: uint32(i + 1), Key: []byte("big")})
	}
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	// Read the welcome and the start of the answers: the leader has read
	// the requests and is writing 16 MiB that nobody reads.
	c.SetReadDeadline(time.Now().Add(rbWait))
	if _, err := io.ReadFull(c, make([]byte, 64<<10)); err != nil {
		t.Fatal(err)
	}
	keeper.Check(t, "a peer stops reading")

	closed := make(chan error, 1)
	go func() { closed <- leader.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Errorf("close: %v", err)
		}
	case <-time.After(rbWait):
		t.Errorf("leader Close did not return within %v while a peer does not read its answers", rbWait)
		c.Close() // unblocks the leader's write
		if err := <-closed; err != nil {
			t.Errorf("close: %v", err)
		}
	}
	// The follower takes over with its data.
	if err := follower.Put(rbCtx(t), []byte("after"), []byte("close")); err != nil {
		t.Fatalf("follower after the leader closed: %v", err)
	}
	if !follower.IsLeader() {
		t.Fatal("the follower did not take over")
	}
	for _, k := range keeper.keys {
		if _, err := follower.Get(rbCtx(t), []byte(k)); err != nil {
			t.Errorf("get %s: %v", k, err)
		}
	}
}

// TestRobustTooLargeStored reads, from a follower, a value that another
// program stored with goleveldb directly and that no frame can carry: the
// read fails with ErrTooLarge, the iterator stops with ErrTooLarge, the
// connection lives on.
func TestRobustTooLargeStored(t *testing.T) {
	dir := t.TempDir()
	lo := &opt.Options{WriteBuffer: 3 * wire.MaxFrame, Compression: opt.NoCompression}
	ldb, err := leveldb.OpenFile(dir, lo)
	if err != nil {
		t.Fatal(err)
	}
	big := make([]byte, wire.MaxFrame)
	if err := ldb.Put([]byte("big"), big, nil); err != nil {
		t.Fatal(err)
	}
	if err := ldb.Put([]byte("small"), []byte("s"), nil); err != nil {
		t.Fatal(err)
	}
	if err := ldb.Close(); err != nil {
		t.Fatal(err)
	}

	// Replaying a 64 MiB journal under the race detector on a loaded
	// machine can take longer than the default OpenTimeout.
	leader := rbOpen(t, dir, &Options{LevelDB: lo, OpenTimeout: 2 * time.Minute})
	flog := &rbLog{}
	follower := rbOpen(t, dir, &Options{Logger: flog.Logger(), OpenTimeout: 2 * time.Minute})
	keeper := rbNewKeeper(t, leader, follower)
	ctx := rbCtx(t)
	if _, err := follower.Get(ctx, []byte("big")); !errors.Is(err, ErrTooLarge) {
		t.Errorf("follower get of a %d-byte value: %v, want ErrTooLarge", len(big), err)
	}
	if ok, err := follower.Has(ctx, []byte("big")); !ok || err != nil {
		t.Errorf("follower has: %v %v", ok, err)
	}
	keeper.Check(t, "get too large")
	it := follower.NewIterator(ctx, nil)
	for it.Next() {
		if string(it.Key()) == "big" {
			t.Errorf("iterator returned the %d-byte value", len(it.Value()))
		}
	}
	if !errors.Is(it.Error(), ErrTooLarge) {
		t.Errorf("iterator over the value: %v, want ErrTooLarge", it.Error())
	}
	it.Release()
	// Starting after it, the iterator reads on.
	it = follower.NewIterator(ctx, &Range{Start: []byte("big\x00")})
	if !it.Next() || string(it.Key()) != "rb-keeper-000" {
		t.Errorf("iterator after the value: %q %v", it.Key(), it.Error())
	}
	it.Release()
	keeper.Check(t, "iterate too large")
	if l := flog.Since(0); strings.Contains(l, "leader lost") || strings.Count(l, "party: following") != 1 {
		t.Errorf("the follower's connection broke:\n%s", l)
	}
}

// TestRobustStoppedLeader stops the leader process (SIGSTOP, as a ^Z in a
// terminal does). The kernel still accepts connections on its socket, but
// nobody answers the handshake. Open must still give up after its
// OpenTimeout with an error, not stay blocked in a handshake for longer.
func TestRobustStoppedLeader(t *testing.T) {
	dir := t.TempDir()
	child := rbStartLeaderChild(t, dir)
	proc := child.cmd.Process
	if err := proc.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	// Let the child go on before the cleanup closes its stdin.
	t.Cleanup(func() { proc.Signal(syscall.SIGCONT) })
	rbWaitStopped(t, proc.Pid)

	const timeout = 300 * time.Millisecond
	type result struct {
		db  *DB
		err error
	}
	done := make(chan result, 1)
	go func() {
		db, err := Open(dir, &Options{OpenTimeout: timeout})
		done <- result{db, err}
	}()
	var r result
	// Far longer than the timeout, shorter than the 5-second handshake
	// limit of the library: only a wait that ignores OpenTimeout gets here.
	const stall = 4 * time.Second
	select {
	case r = <-done:
	case <-time.After(stall):
		t.Errorf("Open with OpenTimeout %v still blocked after %v: the handshake with a peer that "+
			"accepted but does not answer ignores the timeout", timeout, stall)
		select {
		case r = <-done:
		case <-time.After(rbWait):
			t.Fatal("Open never returned")
		}
	}
	if r.err == nil {
		leader := r.db.IsLeader()
		r.db.Close()
		t.Fatalf("Open succeeded (as leader: %v) while the leader is stopped", leader)
	}
	t.Logf("open: %v", r.err)
	if err := proc.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	// Running again, the leader serves.
	db := rbOpen(t, dir, &Options{OpenTimeout: rbWait})
	if db.IsLeader() {
		t.Fatal("a second leader while the first runs")
	}
	if err := db.Put(rbCtx(t), []byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
}

// rbWaitStopped waits until every thread of process pid is stopped.
func rbWaitStopped(t testing.TB, pid int) {
	t.Helper()
	deadline := time.Now().Add(rbWait)
	for {
		tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
		if err != nil {
			t.Fatal(err)
		}
		stopped := 0
		for _, task := range tasks {
			stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/stat", pid, task.Name()))
			if err != nil {
				continue
			}
			// The state follows the command name, which is in parentheses.
			if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) && (stat[i+2] == 'T' || stat[i+2] == 't') {
				stopped++
			}
		}
		if stopped == len(tasks) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d: %d of %d threads stopped after SIGSTOP", pid, stopped, len(tasks))
		}
		time.Sleep(time.Millisecond)
	}
}
