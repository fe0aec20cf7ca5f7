package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/opt"
	"github.com/syndtr/goleveldb/leveldb/util"

	"github.com/levelparty/party"
	"github.com/levelparty/party/cmd/party/internal/child"
)

// Environment of a child process.
const (
	envChild      = "PARTY_BENCH_CHILD" // the role; its presence makes MaybeChild run it
	envDir        = "PARTY_BENCH_DIR"   // the database directory
	envCPUProfile = "PARTY_BENCH_CPUPROFILE"
)

// Roles of child processes.
const (
	roleLeader           = "leader"
	roleFailoverFollower = "failover-follower"
	roleEcho             = "echo"
	roleDirectReader     = "direct-reader"
)

// MaybeChild runs the child role named by PARTY_BENCH_CHILD and exits the
// process, or returns at once when the variable is unset. The main
// function of every binary that calls Run must call it first.
//
// A child talks to its parent by lines: it reads commands on stdin and
// writes "ready ...", "ok", "gap ..." or "error ..." on stdout; it ends
// when stdin closes.
func MaybeChild() {
	role := os.Getenv(envChild)
	if role == "" {
		return
	}
	out := child.NewLines(os.Stdout)
	dir := os.Getenv(envDir)
	var err error
	switch {
	case dir == "":
		err = errors.New(envDir + " is not set")
	case role == roleLeader:
		err = leaderChild(dir, out)
	case role == roleFailoverFollower:
		err = failoverFollowerChild(dir, out)
	case role == roleEcho:
		err = echoChild(out)
	case role == roleDirectReader:
		err = directReaderChild(dir, out)
	case role == roleLoadFollower:
		err = loadFollowerChild(dir, out)
	default:
		err = fmt.Errorf("unknown role %q", role)
	}
	if err != nil {
		out.Printf("error %s: %v", role, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// leaderChild opens the database, which must make it leader, says
// "ready PID", and serves until stdin closes. Commands on stdin:
// "cpuprofile PATH" starts a CPU profile, "stop" ends it.
func leaderChild(dir string, out *child.Lines) (err error) {
	db, err := party.Open(dir, nil)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := db.Close(); err == nil {
			err = cerr
		}
	}()
	if !db.IsLeader() {
		return errors.New("the leader child became a follower: someone else leads the fresh directory")
	}
	out.Printf("ready %d", os.Getpid())
	var prof *os.File
	defer func() {
		if prof != nil {
			pprof.StopCPUProfile()
			prof.Close()
		}
	}()
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		cmd, arg, _ := strings.Cut(sc.Text(), " ")
		switch cmd {
		case "cpuprofile":
			if prof != nil {
				return errors.New("cpuprofile: a profile is running")
			}
			if prof, err = os.Create(arg); err != nil {
				return err
			}
			if err := pprof.StartCPUProfile(prof); err != nil {
				return err
			}
		case "stop":
			if prof != nil {
				pprof.StopCPUProfile()
				err := prof.Close()
				prof = nil
				if err != nil {
					return err
				}
			}
		default:
			return fmt.Errorf("unknown command %q", sc.Text())
		}
		out.Printf("ok")
	}
	return nil
}

// directReaderChild opens dir with goleveldb directly, read-only, says
// "ready PID", and serves commands until stdin closes: "read N BATCH
// SLEEPNS" reads the first N fill entries, sleeping SLEEPNS nanoseconds
// after every BATCH entries, and answers "ok".
func directReaderChild(dir string, out *child.Lines) (err error) {
	db, err := leveldb.OpenFile(dir, &opt.Options{ReadOnly: true})
	if err != nil {
		return err
	}
	defer func() {
		if cerr := db.Close(); err == nil {
			err = cerr
		}
	}()
	out.Printf("ready %d", os.Getpid())
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		var n, batch int
		var sleep time.Duration
		if _, err := fmt.Sscanf(sc.Text(), "read %d %d %d", &n, &batch, &sleep); err != nil {
			return fmt.Errorf("command %q: %w", sc.Text(), err)
		}
		rng := memRange(n)
		if err := slowScan(db.NewIterator(&util.Range{Start: rng.Start, Limit: rng.Limit}, nil), n, batch, sleep); err != nil {
			return err
		}
		out.Printf("ok")
	}
	return nil
}

// failoverPace is the pause between two puts of a failover follower: it
// bounds how late after the gap the follower's next operation starts.
const failoverPace = 250 * time.Microsecond

// failoverFollowerChild opens the database as a follower, puts one key
// after another, and says "ready PID" after its first acknowledged put.
// After every change of leader it says "gap NANOS ROLE": the wall-clock
// time of the first put acknowledged by the new leader, and whether this
// process is now "leader" or "follower". It stops when stdin closes.
func failoverFollowerChild(dir string, out *child.Lines) (err error) {
	var terms termCounter
	db, err := party.Open(dir, &party.Options{Logger: slog.New(&terms)})
	if err != nil {
		return err
	}
	defer func() {
		if cerr := db.Close(); err == nil {
			err = cerr
		}
	}()
	if db.IsLeader() {
		return errors.New("a failover follower became leader at its start: the leader child is not serving")
	}
	stop := make(chan struct{})
	go func() {
		io.Copy(io.Discard, os.Stdin)
		close(stop)
	}()
	ctx := context.Background()
	key := make([]byte, keyLen)
	copy(key, "failover")
	binary.BigEndian.PutUint64(key[8:], uint64(os.Getpid()))
	value := make([]byte, valueLen)
	seen := int64(-1)
	for n := uint64(0); ; n++ {
		binary.BigEndian.PutUint64(value, n)
		if err := db.Put(ctx, key, value); err != nil {
			return err
		}
		acked := time.Now().UnixNano()
		if t := terms.n.Load(); t != seen {
			if seen < 0 {
				out.Printf("ready %d", os.Getpid())
			} else {
				role := "follower"
				if db.IsLeader() {
					role = "leader"
				}
				out.Printf("gap %d %s", acked, role)
			}
			seen = t
		}
		select {
		case <-stop:
			return nil
		case <-time.After(failoverPace):
		}
	}
}

// termCounter is a slog.Handler that counts the leaders a handle has had:
// party logs "party: following" and "party: elected leader" when the
// handle gets a new leader, before it sends the calls that waited for one.
type termCounter struct {
	n atomic.Int64
}

func (t *termCounter) Enabled(context.Context, slog.Level) bool { return true }

func (t *termCounter) Handle(_ context.Context, r slog.Record) error {
	switch r.Message {
	case "party: following", "party: elected leader":
		t.n.Add(1)
	}
	return nil
}

func (t *termCounter) WithAttrs([]slog.Attr) slog.Handler { return t }
func (t *termCounter) WithGroup(string) slog.Handler      { return t }

// proc is a child process seen from the measuring process.
type proc struct {
	role  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string // stdout, line by line; closed at its end

	stderrMu sync.Mutex
	stderr   bytes.Buffer

	exited  chan struct{} // closed once the process has been waited for
	waitErr error         // set before exited is closed
	killed  atomic.Bool   // kill was called: a failed exit is expected

	closeOnce, waitOnce sync.Once
	stopErr             error // set by waitOnce
}

// spawn starts the current binary as a child in role on dir and waits for
// its "ready PID" line.
func (r *runner) spawn(role, dir string) (*proc, error) {
	return r.spawnWith(role, dir)
}

// spawnWith is spawn with files the child inherits as descriptors 3, 4...
func (r *runner) spawnWith(role, dir string, files ...*os.File) (*proc, error) {
	if err := r.ctx.Err(); err != nil {
		return nil, err
	}
	cmd := exec.Command(r.exe)
	cmd.Env = append(childEnv(), envChild+"="+role, envDir+"="+dir)
	cmd.SysProcAttr = child.Attr()
	cmd.ExtraFiles = files
	p := &proc{role: role, cmd: cmd, lines: make(chan string, 1024), exited: make(chan struct{})}
	cmd.Stderr = &lockedWriter{mu: &p.stderrMu, w: &p.stderr}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("bench: start %s child: %w", role, err)
	}
	r.procs = append(r.procs, p)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	line, err := p.expect(r.ctx, r.sz.childStart, "ready")
	if err != nil {
		p.kill()
		p.stop()
		return nil, err
	}
	if pid, err := strconv.Atoi(strings.TrimPrefix(line, "ready ")); err != nil || pid != p.pid() {
		p.kill()
		p.stop()
		return nil, fmt.Errorf("bench: %s child %d: unexpected first line %q", role, p.pid(), line)
	}
	return p, nil
}

// childEnv is this process's environment without the variables of a
// child. Unless GORACE is set, a child built with the race detector
// exits at once instead of sleeping a second first; it still reports
// races, and its exit status says so.
func childEnv() []string {
	var env []string
	race := false
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, envChild+"=") || strings.HasPrefix(kv, envDir+"=") {
			continue
		}
		race = race || strings.HasPrefix(kv, "GORACE=")
		env = append(env, kv)
	}
	if !race {
		env = append(env, "GORACE=atexit_sleep_ms=0")
	}
	return env
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) String() string { return fmt.Sprintf("%s child %d", p.role, p.pid()) }

// expect returns the next line, which must start with prefix. An "error"
// line, the end of the child, ctx or the timeout make it fail.
func (p *proc) expect(ctx context.Context, timeout time.Duration, prefix string) (string, error) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case line, ok := <-p.lines:
		if !ok {
			<-p.exited
			return "", fmt.Errorf("bench: %v exited (%v) before saying %q; does the program's main call bench.MaybeChild? stderr:\n%s",
				p, p.waitErr, prefix, p.stderrTail())
		}
		if strings.HasPrefix(line, "error ") {
			return "", fmt.Errorf("bench: %v: %s", p, line)
		}
		if !strings.HasPrefix(line, prefix) {
			return "", fmt.Errorf("bench: %v said %q, want %q", p, line, prefix)
		}
		return line, nil
	case <-timer.C:
		return "", fmt.Errorf("bench: %v did not say %q within %v (hung?); stderr:\n%s", p, prefix, timeout, p.stderrTail())
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// send sends a command line without waiting for an answer.
func (p *proc) send(line string) error {
	if _, err := fmt.Fprintln(p.stdin, line); err != nil {
		return fmt.Errorf("bench: %v: %w", p, err)
	}
	return nil
}

// command sends a command line and waits for "ok".
func (p *proc) command(ctx context.Context, line string) error {
	if _, err := fmt.Fprintln(p.stdin, line); err != nil {
		return fmt.Errorf("bench: %v: %w", p, err)
	}
	_, err := p.expect(ctx, 30*time.Second, "ok")
	return err
}

// stopWait bounds how long a child may take to exit once its stdin has
// closed; a child still running then is killed, and that is an error.
const stopWait = 20 * time.Second

// stop ends the child: stdin closes, which makes it close its database
// and exit. It returns an error if the child, not killed by kill, exits
// with a failure (a race report, a panic) or has to be killed. Stop may be
// called many times; later calls return the first call's result.
func (p *proc) stop() error {
	stopProcs(p)
	return p.stopErr
}

// stopProcs stops every child of ps at once.
func stopProcs(ps ...*proc) {
	for _, p := range ps {
		p.closeOnce.Do(func() {
			p.stdin.Close()
			go func() {
				for range p.lines { // drain, so that the child never blocks on stdout
				}
			}()
		})
	}
	deadline := time.After(stopWait)
	for _, p := range ps {
		p.waitOnce.Do(func() {
			select {
			case <-p.exited:
			case <-deadline:
				p.cmd.Process.Kill()
				<-p.exited
				p.stopErr = fmt.Errorf("bench: %v did not exit within %v after its stdin closed; stderr:\n%s", p, stopWait, p.stderrTail())
				return
			}
			if p.waitErr != nil && !p.killed.Load() {
				p.stopErr = fmt.Errorf("bench: %v failed: %v; stderr:\n%s", p, p.waitErr, p.stderrTail())
			}
		})
	}
}

// kill sends SIGKILL and returns at once; exited closes when the kernel
// has reaped the child.
func (p *proc) kill() error {
	p.killed.Store(true)
	return killProcess(p.pid())
}

func (p *proc) stderrTail() string {
	p.stderrMu.Lock()
	defer p.stderrMu.Unlock()
	b := p.stderr.Bytes()
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// lockedWriter serializes writes to w.
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}
