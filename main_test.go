//go:build unix

package party

// Multi-process tests re-execute the test binary as a child process. When
// PARTY_CF_CHILD names a mode, TestMain runs that mode instead of the tests
// and exits with its status. The parent talks to a child through its
// standard streams: the child prints one line per event to stdout (one
// write per line, so a line is never torn), and exits when its stdin
// closes, so that no child outlives the test binary.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Environment of a child process.
const (
	cfEnvMode  = "PARTY_CF_CHILD" // the child mode to run
	cfEnvDir   = "PARTY_CF_DIR"   // the database directory
	cfEnvID    = "PARTY_CF_ID"    // the writer's id, unique in a test
	cfEnvKey   = "PARTY_CF_KEY"   // the key the put mode writes
	cfEnvValue = "PARTY_CF_VALUE" // the value the put mode writes
)

// cfChildModes are the modes a child process can run, by name. A mode
// returns the exit status. Other test files may add modes from init.
var cfChildModes = map[string]func(dir string) int{
	"put":    cfChildPut,
	"writer": cfChildWriter,
	"hold":   cfChildHold,
}

func TestMain(m *testing.M) {
	if mode := os.Getenv(cfEnvMode); mode != "" {
		os.Exit(cfChildMain(mode))
	}
	os.Exit(m.Run())
}

// cfChildMain runs a child mode.
func cfChildMain(mode string) int {
	run, ok := cfChildModes[mode]
	if !ok {
		fmt.Fprintf(os.Stderr, "party test child: unknown mode %q\n", mode)
		return 2
	}
	dir := os.Getenv(cfEnvDir)
	if dir == "" {
		fmt.Fprintf(os.Stderr, "party test child: %s is not set\n", cfEnvDir)
		return 2
	}
	go func() {
		io.Copy(io.Discard, os.Stdin)
		close(cfStdinClosed)
		// A mode stops gracefully when stdin closes; one that does not
		// within a while is stuck, and must not outlive its parent.
		time.Sleep(cfChildGrace)
		fmt.Fprintln(os.Stderr, "party test child: still running long after stdin closed; exiting")
		os.Exit(3)
	}()
	return run(dir)
}

// cfStdinClosed is closed, in a child, when its stdin reaches end of file:
// the parent wants it to stop, or the parent is gone.
var cfStdinClosed = make(chan struct{})

// cfChildGrace bounds how long a child may take to stop once asked.
const cfChildGrace = 30 * time.Second

// cfChildOpTimeout bounds one operation in a child, so that a hang shows
// as an error line instead of a silent stall.
const cfChildOpTimeout = 60 * time.Second

// cfOut serializes a child's stdout lines.
var cfOut sync.Mutex

// cfPrintln writes one line to stdout in a single write.
func cfPrintln(a ...any) {
	line := fmt.Sprintln(a...)
	cfOut.Lock()
	defer cfOut.Unlock()
	os.Stdout.WriteString(line)
}

func cfChildOpen(dir string) (*DB, error) {
	return Open(dir, &Options{OpenTimeout: cfChildOpTimeout})
}

func cfRoleName(db *DB) string {
	if db.IsLeader() {
		return "leader"
	}
	return "follower"
}

// cfChildPut puts PARTY_CF_KEY = PARTY_CF_VALUE and exits.
func cfChildPut(dir string) int {
	db, err := cfChildOpen(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), cfChildOpTimeout)
	defer cancel()
	if err := db.Put(ctx, []byte(os.Getenv(cfEnvKey)), []byte(os.Getenv(cfEnvValue))); err != nil {
		fmt.Fprintln(os.Stderr, "put:", err)
		db.Close()
		return 1
	}
	if err := db.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "close:", err)
		return 1
	}
	cfPrintln("done")
	return 0
}

// cfChildHold joins the party and stays until stdin closes. It prints
// "leader" or "follower" once joined, and "leader" again if a follower is
// elected later.
func cfChildHold(dir string) int {
	db, err := cfChildOpen(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		return 1
	}
	cfPrintln(cfRoleName(db))
	if !db.IsLeader() {
		select {
		case <-db.Elected():
			cfPrintln("leader")
		case <-cfStdinClosed:
		}
	}
	<-cfStdinClosed
	if err := db.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "close:", err)
		return 1
	}
	cfPrintln("bye")
	return 0
}

// cfWriterLanes is the number of goroutines of a writer child, each
// writing its own keys one operation at a time.
const cfWriterLanes = 2

// cfChildWriter joins the party and writes until stdin closes. Every lane
// prints "T <lane> <mutations>" before it issues an operation, then
// "A <lane>" once it is acknowledged, or "E <lane> <error>" and stops. A
// mutation is "+key=value" or "-key"; an operation of several mutations is
// a batch. It prints "ready <role>" after Open and "bye" after Close.
func cfChildWriter(dir string) int {
	id := os.Getenv(cfEnvID)
	db, err := cfChildOpen(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		return 1
	}
	cfPrintln("ready", cfRoleName(db))
	var failed atomic.Bool
	var wg sync.WaitGroup
	for lane := range cfWriterLanes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-cfStdinClosed:
					return
				default:
				}
				muts := cfWriterOp(id, lane, i)
				cfPrintln(append([]any{"T", lane}, cfAnys(muts)...)...)
				if err := cfApply(db, muts); err != nil {
					cfPrintln("E", lane, strconv.Quote(err.Error()))
					failed.Store(true)
					return
				}
				cfPrintln("A", lane)
			}
		}()
	}
	wg.Wait()
	if err := db.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "close:", err)
		return 1
	}
	cfPrintln("bye")
	if failed.Load() {
		return 1
	}
	return 0
}

func cfAnys(s []string) []any {
	a := make([]any, len(s))
	for i, v := range s {
		a[i] = v
	}
	return a
}

// cfWriterOp returns the mutations of operation i of a writer's lane: mostly
// puts of new keys, and now and then an overwrite, a delete of an earlier
// key, or a batch of two puts and a delete.
func cfWriterOp(id string, lane, i int) []string {
	k := func(j int) string { return fmt.Sprintf("w%s.%d.%06d", id, lane, j) }
	switch {
	case i%10 == 9:
		return []string{"+" + k(i) + "=b" + strconv.Itoa(i), "+" + k(i) + "x=b" + strconv.Itoa(i), "-" + k(i-5)}
	case i%7 == 3:
		return []string{"-" + k(i-2)}
	case i%5 == 4:
		return []string{"+" + k(i-1) + "=o" + strconv.Itoa(i)}
	}
	return []string{"+" + k(i) + "=v" + strconv.Itoa(i)}
}

// cfParseMut splits a mutation into key, value and whether it is a put.
func cfParseMut(m string) (key, value string, put bool) {
	if strings.HasPrefix(m, "-") {
		return m[1:], "", false
	}
	key, value, _ = strings.Cut(m[1:], "=")
	return key, value, true
}

// cfApply applies mutations as one operation: a put, a delete or a batch.
func cfApply(db *DB, muts []string) error {
	ctx, cancel := context.WithTimeout(context.Background(), cfChildOpTimeout)
	defer cancel()
	if len(muts) == 1 {
		k, v, put := cfParseMut(muts[0])
		if put {
			return db.Put(ctx, []byte(k), []byte(v))
		}
		return db.Delete(ctx, []byte(k))
	}
	var b Batch
	for _, m := range muts {
		k, v, put := cfParseMut(m)
		if put {
			b.Put([]byte(k), []byte(v))
		} else {
			b.Delete([]byte(k))
		}
	}
	return db.Write(ctx, &b)
}

// cfChild is a child process running a mode, seen from the test.
type cfChild struct {
	t     testing.TB
	name  string
	cmd   *exec.Cmd
	stdin io.WriteCloser

	stderr cfSafeBuffer
	onLine func(string) // called by the reader for each line, if set

	mu     sync.Mutex // guards the fields below
	lines  []string
	notify chan struct{} // closed and replaced when a line arrives

	exited  chan struct{} // closed once the process exited and its output is read
	waitErr error         // the outcome of Wait, valid once exited is closed
}

// cfSafeBuffer is a bytes.Buffer safe for concurrent use.
type cfSafeBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *cfSafeBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *cfSafeBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// cfSpawn starts the test binary as a child running mode on dir, with
// extra environment entries ("NAME=value"). The child is killed, if still
// running, when the test ends; a data race it reports fails the test.
func cfSpawn(t testing.TB, mode, dir string, env ...string) *cfChild {
	t.Helper()
	return cfSpawnWith(t, nil, mode, dir, env...)
}

// cfSpawnWith is cfSpawn with a function the reader calls for each line
// the child prints, before the line is recorded.
func cfSpawnWith(t testing.TB, onLine func(string), mode, dir string, env ...string) *cfChild {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	// The race detector sleeps a second at exit by default; a child's
	// exit is part of what these tests wait for.
	gorace := strings.TrimSpace(os.Getenv("GORACE") + " atexit_sleep_ms=0")
	cmd.Env = append(os.Environ(), cfEnvMode+"="+mode, cfEnvDir+"="+dir, "GORACE="+gorace)
	cmd.Env = append(cmd.Env, env...)
	c := &cfChild{t: t, name: mode, cmd: cmd, onLine: onLine, notify: make(chan struct{}), exited: make(chan struct{})}
	cmd.Stderr = &c.stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting child %s: %v", mode, err)
	}
	c.stdin = stdin
	c.name = fmt.Sprintf("%s[%d]", mode, cmd.Process.Pid)
	go c.read(stdout)
	t.Cleanup(c.cleanup)
	return c
}

func (c *cfChild) read(stdout io.Reader) {
	br := bufio.NewReader(stdout)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			break // a line cut short by a kill was never complete
		}
		line = strings.TrimSuffix(line, "\n")
		if c.onLine != nil {
			c.onLine(line)
		}
		c.mu.Lock()
		c.lines = append(c.lines, line)
		close(c.notify)
		c.notify = make(chan struct{})
		c.mu.Unlock()
	}
	c.waitErr = c.cmd.Wait()
	close(c.exited)
}

func (c *cfChild) cleanup() {
	c.stdin.Close()
	select {
	case <-c.exited:
	default:
		c.cmd.Process.Kill()
		<-c.exited
	}
	stderr := c.stderr.String()
	if strings.Contains(stderr, "DATA RACE") {
		c.t.Errorf("child %s reported a data race:\n%s", c.name, stderr)
	} else if c.t.Failed() && stderr != "" {
		c.t.Logf("stderr of child %s:\n%s", c.name, cfTail(stderr, 4000))
	}
}

func cfTail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

// PID returns the child's process id.
func (c *cfChild) PID() int { return c.cmd.Process.Pid }

// Lines returns the lines the child has printed so far.
func (c *cfChild) Lines() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lines[:len(c.lines):len(c.lines)]
}

// WaitLine waits until the child has printed a line for which match is
// true and returns it. It fails the test if the child exits first or if
// timeout passes: timeouts here only detect hangs.
func (c *cfChild) WaitLine(timeout time.Duration, match func(string) bool) string {
	c.t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	seen := 0
	for {
		c.mu.Lock()
		lines, notify := c.lines, c.notify
		c.mu.Unlock()
		for _, l := range lines[seen:] {
			if match(l) {
				return l
			}
		}
		seen = len(lines)
		select {
		case <-notify:
		case <-c.exited:
			c.mu.Lock()
			more := len(c.lines) > seen
			c.mu.Unlock()
			if !more {
				c.t.Fatalf("child %s exited (%v) before printing the expected line; stderr:\n%s", c.name, c.waitErr, cfTail(c.stderr.String(), 4000))
			}
		case <-timer.C:
			c.t.Fatalf("child %s printed no expected line within %v; lines so far: %q", c.name, timeout, cfTail(strings.Join(lines, "\n"), 2000))
		}
	}
}

// WaitRole waits until the child (a "hold" child) has joined and returns
// "leader" or "follower".
func (c *cfChild) WaitRole(timeout time.Duration) string {
	c.t.Helper()
	return c.WaitLine(timeout, func(l string) bool { return l == "leader" || l == "follower" })
}

// Signal sends sig to the child.
func (c *cfChild) Signal(sig os.Signal) {
	c.t.Helper()
	if err := c.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		c.t.Fatalf("signal %v to child %s: %v", sig, c.name, err)
	}
}

// Kill kills the child with SIGKILL and waits until it is gone.
func (c *cfChild) Kill() {
	c.t.Helper()
	c.Signal(syscall.SIGKILL)
	<-c.exited
}

// Exited is closed once the child has exited and all its output is read.
func (c *cfChild) Exited() <-chan struct{} { return c.exited }

// Wait waits for the child to exit and returns its exit error; it fails
// the test if that takes longer than timeout.
func (c *cfChild) Wait(timeout time.Duration) error {
	c.t.Helper()
	select {
	case <-c.exited:
		return c.waitErr
	case <-time.After(timeout):
		c.t.Fatalf("child %s did not exit within %v", c.name, timeout)
		return nil
	}
}

// Stop closes the child's stdin, which asks it to stop gracefully, and
// waits for it to exit like Wait.
func (c *cfChild) Stop(timeout time.Duration) error {
	c.t.Helper()
	c.stdin.Close()
	return c.Wait(timeout)
}

// Stderr returns what the child has written to stderr so far.
func (c *cfChild) Stderr() string { return c.stderr.String() }

// String names the child for messages.
func (c *cfChild) String() string { return c.name }
