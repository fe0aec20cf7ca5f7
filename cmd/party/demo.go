package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/levelparty/party"
	"github.com/levelparty/party/cmd/party/internal/child"
)

func newDemoCmd(g *globals) *cobra.Command {
	var writers int
	var seconds float64
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Watch processes share a database while its leader is killed",
		Long: `Run the scene party exists for, in a temporary directory: N writer
processes each put an increasing counter under their own key, one reader
process scans all the counters, and halfway through the leader process is
killed with kill -9. A follower takes over, and the writes carry on.

The run ends with a summary: writes acknowledged, and how many of them are
found in the database afterwards (they must be equal), who led before and
after the kill, and the failover gap: the time from the kill to the first
operation answered by the new leader.

The writers and the reader are this same program, started again. Everything
is removed at the end.`,
		Example: `  go run ./cmd/party demo
  party demo --writers 5 --seconds 10`,
		Args: cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			if writers < 1 || writers > 16 {
				return usageErrorf("--writers must be between 1 and 16, not %d", writers)
			}
			if seconds < 1 || seconds > 3600 {
				return usageErrorf("--seconds must be between 1 and 3600, not %g", seconds)
			}
			// Output closed early (party demo | head) must not kill the
			// demo before it cleans up: writes fail with EPIPE instead.
			signal.Ignore(syscall.SIGPIPE)
			d := &demo{
				out:      cmd.OutOrStdout(),
				writers:  writers,
				duration: time.Duration(seconds * float64(time.Second)),
			}
			return d.run(cmd.Context())
		}),
	}
	cmd.Flags().IntVar(&writers, "writers", 3, "number of writer processes")
	cmd.Flags().Float64Var(&seconds, "seconds", 4, "length of the run; the leader is killed halfway")
	return cmd
}

// demo runs party demo.
type demo struct {
	out      io.Writer
	writers  int
	duration time.Duration

	dir      string
	children []*demoChild // writers, then the reader
	events   chan demoEvent
	t0       time.Time // start of the run, after every child is ready

	killed    *demoChild
	killAt    time.Time
	before    *demoChild // leader killed
	after     *demoChild // leader elected after the kill
	electedAt time.Time  // when after was elected
	firstOp   time.Time  // first operation answered at or after electedAt
	firstSaid bool       // the first operation was announced
	backwards string     // what the reader saw go backwards, if anything
	werr      error      // the first error writing out
}

// demoChild is a writer or the reader, and what the demo knows of it.
type demoChild struct {
	name   string
	writer int // 1..N; 0 for the reader
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr bytes.Buffer // read only after the process has exited

	pid    int
	ready  bool
	leader bool
	exited bool
	err    error // why it failed, if it did
	acked  int64 // last counter acknowledged (writers)
	seen   []int64
	scans  int64 // reader
}

// demoEvent is a line from a child, or the end of its output.
type demoEvent struct {
	c    *demoChild
	line string
	done bool
	err  error // with done: how the process exited
}

func (d *demo) run(ctx context.Context) (err error) {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding this program to start the writers: %w", err)
	}
	tmp, err := os.MkdirTemp("", "party-demo-")
	if err != nil {
		return err
	}
	d.dir = filepath.Join(tmp, "db")
	d.events = make(chan demoEvent, 4096)
	defer func() {
		d.cleanup()
		if rerr := os.RemoveAll(tmp); rerr != nil && err == nil {
			err = rerr
		}
	}()

	d.printf("party demo: %d writer%s and 1 reader share one LevelDB directory through party.\n",
		d.writers, plural(d.writers))
	d.printf("Each writer puts an increasing counter under its own key; the reader scans\n")
	d.printf("them all. At %s the leader is killed with kill -9.\n\n", seconds(d.duration/2))

	// Start the writers one at a time, so that writer 1 leads first.
	for i := 1; i <= d.writers; i++ {
		if err := d.start(ctx, exe, fmt.Sprintf("writer %d", i), i, "demo-writer", d.dir, strconv.Itoa(i)); err != nil {
			return err
		}
	}
	if err := d.start(ctx, exe, "reader", 0, "demo-reader", d.dir, strconv.Itoa(d.writers)); err != nil {
		return err
	}

	// Eight rows of the timeline; the leader is killed after the fourth.
	d.t0 = time.Now()
	d.printf("\n%s\n", d.header())
	tick := time.NewTicker(d.duration / rows)
	defer tick.Stop()
	for row := 1; row <= rows; {
		select {
		case ev := <-d.events:
			if err := d.handle(ev); err != nil {
				return err
			}
		case <-tick.C:
			d.announceFirstOp()
			d.printf("%s\n", d.row())
			if d.werr != nil {
				return d.werr
			}
			if row == rows/2 {
				if err := d.kill(); err != nil {
					return err
				}
			}
			row++
		case <-ctx.Done():
			return ctx.Err()
		}
	}

	// On a slow machine the new leader may not have answered yet.
	if d.firstOp.IsZero() {
		d.event(time.Now(), "waiting for the new leader to answer")
		timeout := time.NewTimer(30 * time.Second)
		defer timeout.Stop()
		for d.firstOp.IsZero() {
			select {
			case ev := <-d.events:
				if err := d.handle(ev); err != nil {
					return err
				}
			case <-timeout.C:
				return errors.New("no new leader answered within 30s of the kill")
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		d.announceFirstOp()
	}
	d.event(time.Now(), "stopping the writers and the reader")
	if err := d.stop(ctx); err != nil {
		return err
	}
	d.announceFirstOp()
	return d.summary()
}

// printf writes to the demo's output and keeps the first error, which
// stops the demo at its next step.
func (d *demo) printf(format string, args ...any) {
	if _, err := fmt.Fprintf(d.out, format, args...); err != nil && d.werr == nil {
		d.werr = fmt.Errorf("writing the demo's output: %w", err)
	}
}

// event prints a line of the timeline.
func (d *demo) event(at time.Time, format string, args ...any) {
	d.printf("%7s   %s\n", seconds(at.Sub(d.t0)), fmt.Sprintf(format, args...))
}

// rows is the number of rows of the timeline.
const rows = 8

// start starts a child and waits until it has joined the database.
func (d *demo) start(ctx context.Context, exe, name string, writer int, args ...string) error {
	c := &demoChild{name: name, writer: writer}
	if writer == 0 {
		c.seen = make([]int64, d.writers)
	}
	c.cmd = exec.Command(exe, args...)
	c.cmd.SysProcAttr = child.Attr()
	c.cmd.Stderr = &c.stderr
	stdout, err := c.cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if c.stdin, err = c.cmd.StdinPipe(); err != nil {
		return err
	}
	if err := c.cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", name, err)
	}
	c.pid = c.cmd.Process.Pid
	d.children = append(d.children, c)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			d.events <- demoEvent{c: c, line: sc.Text()}
		}
		io.Copy(io.Discard, stdout)
		d.events <- demoEvent{c: c, done: true, err: c.cmd.Wait()}
	}()
	timeout := time.NewTimer(30 * time.Second)
	defer timeout.Stop()
	for !c.ready {
		select {
		case ev := <-d.events:
			if err := d.handle(ev); err != nil {
				return err
			}
		case <-timeout.C:
			return fmt.Errorf("%s did not join the database within 30s", name)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	role := "follower"
	if c.leader {
		role = "leader (first to open the database)"
	}
	d.printf("  %-9s  pid %-7d  %s\n", name, c.pid, role)
	return nil
}

// handle updates the demo with an event from a child.
func (d *demo) handle(ev demoEvent) error {
	c := ev.c
	if ev.done {
		c.exited = true
		c.leader = false
		if c == d.killed {
			return nil
		}
		if ev.err != nil && c.err == nil {
			c.err = fmt.Errorf("%s (pid %d) failed: %v: %s", c.name, c.pid, ev.err, lastLine(c.stderr.String()))
		}
		if c.err != nil {
			return c.err
		}
		return nil
	}
	f := strings.Fields(ev.line)
	if len(f) == 0 {
		return nil
	}
	bad := func() error {
		c.err = fmt.Errorf("%s (pid %d) said something unexpected: %q", c.name, c.pid, ev.line)
		return c.err
	}
	switch f[0] {
	case "ready":
		if len(f) != 4 {
			return bad()
		}
		c.ready = true
		c.leader = f[2] == "true"
	case "leader":
		t, err := unixNano(f, 1)
		if err != nil {
			return bad()
		}
		c.leader = true
		if d.killed != nil && d.after == nil {
			d.after, d.electedAt = c, t
			d.event(t, "%s (pid %d) took over as leader, %s after the kill", c.name, c.pid, millis(t.Sub(d.killAt)))
		}
	case "ack":
		if len(f) != 3 {
			return bad()
		}
		n, err := strconv.ParseInt(f[1], 10, 64)
		t, terr := unixNano(f, 2)
		if err != nil || terr != nil {
			return bad()
		}
		c.acked = n
		d.answered(t)
	case "seen":
		t, err := unixNano(f, 1)
		if err != nil || len(f) != 2+d.writers {
			return bad()
		}
		for i, s := range f[2:] {
			v, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return bad()
			}
			if v < c.seen[i] && d.backwards == "" {
				d.backwards = fmt.Sprintf("writer %d's counter went from %d to %d", i+1, c.seen[i], v)
			}
			c.seen[i] = v
		}
		c.scans++
		d.answered(t)
	case "done":
	default:
		return bad()
	}
	return nil
}

// answered notes an operation answered at t.
func (d *demo) answered(t time.Time) {
	if d.after != nil && !t.Before(d.electedAt) && (d.firstOp.IsZero() || t.Before(d.firstOp)) {
		d.firstOp = t
	}
}

// announceFirstOp prints, once, when the new leader first answered. It
// waits for a tick so that every child has reported its operations.
func (d *demo) announceFirstOp() {
	if d.firstOp.IsZero() || d.firstSaid {
		return
	}
	d.firstSaid = true
	d.event(d.firstOp, "first operation answered by the new leader, %s after the kill", millis(d.firstOp.Sub(d.killAt)))
}

// kill kills the leader with SIGKILL.
func (d *demo) kill() error {
	for _, c := range d.children {
		if c.leader && !c.exited {
			d.before, d.killed = c, c
			break
		}
	}
	if d.killed == nil {
		return errors.New("no child leads the database, so there is no leader to kill")
	}
	d.killAt = time.Now()
	if err := d.killed.cmd.Process.Kill(); err != nil {
		return fmt.Errorf("killing %s: %w", d.killed.name, err)
	}
	d.killed.leader = false
	d.event(d.killAt, "kill -9 %s (pid %d), the leader", d.killed.name, d.killed.pid)
	return nil
}

// stop closes the children's stdin, which ends them, and waits for them.
func (d *demo) stop(ctx context.Context) error {
	for _, c := range d.children {
		c.stdin.Close()
	}
	timeout := time.NewTimer(30 * time.Second)
	defer timeout.Stop()
	for {
		running := 0
		for _, c := range d.children {
			if !c.exited {
				running++
			}
		}
		if running == 0 {
			return nil
		}
		select {
		case ev := <-d.events:
			if err := d.handle(ev); err != nil {
				return err
			}
		case <-timeout.C:
			return fmt.Errorf("%d children did not stop within 30s", running)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// cleanup kills children still running and waits for them to exit.
func (d *demo) cleanup() {
	for _, c := range d.children {
		if !c.exited {
			c.stdin.Close()
			c.cmd.Process.Kill()
		}
	}
	for _, c := range d.children {
		for !c.exited {
			ev := <-d.events
			if ev.done {
				ev.c.exited = true
			}
		}
	}
}

// summary reads the counters back and compares them with what was
// acknowledged.
func (d *demo) summary() error {
	db, err := party.Open(d.dir, &party.Options{OpenTimeout: 30 * time.Second})
	if err != nil {
		return err
	}
	defer db.Close()
	var acked, found, extra int64
	var parts []string
	var missing []string
	for _, c := range d.children[:d.writers] {
		var f int64
		v, err := db.Get(context.Background(), []byte(demoPrefix+strconv.Itoa(c.writer)))
		switch {
		case errors.Is(err, party.ErrNotFound):
		case err != nil:
			return err
		default:
			if f, err = strconv.ParseInt(string(v), 10, 64); err != nil {
				return fmt.Errorf("%s's key holds %q, not a counter", c.name, v)
			}
		}
		acked += c.acked
		found += min(f, c.acked)
		extra += max(f-c.acked, 0)
		parts = append(parts, fmt.Sprintf("%s: %s", c.name, child.Thousands(c.acked)))
		if f < c.acked {
			missing = append(missing, fmt.Sprintf("%s acknowledged %d but the database holds %d", c.name, c.acked, f))
		}
	}
	reader := d.children[d.writers]
	ok := func(good bool) string {
		if good {
			return "✓"
		}
		return "✗"
	}

	d.printf("\nsummary\n")
	d.printf("  writes acknowledged        %-7s (%s)\n", child.Thousands(acked), strings.Join(parts, ", "))
	foundNote := "every acknowledged write is in the database"
	if len(missing) > 0 {
		foundNote = "LOST: " + strings.Join(missing, "; ")
	}
	d.printf("  acknowledged writes found  %-7s %s %s\n", child.Thousands(found), ok(found == acked), foundNote)
	if extra > 0 {
		d.printf("  applied, not acknowledged  %-7s (killed mid-write; writes are at-least-once)\n", child.Thousands(extra))
	}
	readerNote := "no counter ever went backwards"
	if d.backwards != "" {
		readerNote = d.backwards
	}
	d.printf("  reader                     %s scans, %s %s\n", child.Thousands(reader.scans), readerNote, ok(d.backwards == ""))
	d.printf("  leader before the kill     %s, pid %d\n", d.before.name, d.before.pid)
	if d.after != nil {
		d.printf("  leader after the kill      %s, pid %d\n", d.after.name, d.after.pid)
	} else {
		d.printf("  leader after the kill      none took over before the end of the run ✗\n")
	}
	if !d.firstOp.IsZero() {
		d.printf("  failover gap               %s from kill -9 to the first operation answered by the new leader\n",
			millis(d.firstOp.Sub(d.killAt)))
	} else {
		d.printf("  failover gap               unknown: no operation was answered after the kill ✗\n")
	}
	switch {
	case len(missing) > 0:
		return fmt.Errorf("acknowledged writes are missing: %s", strings.Join(missing, "; "))
	case d.backwards != "":
		return fmt.Errorf("the reader saw a counter go backwards: %s", d.backwards)
	case d.after == nil || d.firstOp.IsZero():
		return errors.New("no new leader answered after the kill; run the demo longer with --seconds")
	}
	return nil
}

func (d *demo) header() string {
	var sb strings.Builder
	sb.WriteString("   time")
	for i := 1; i <= d.writers; i++ {
		fmt.Fprintf(&sb, "  %8s", fmt.Sprintf("writer %d", i))
	}
	sb.WriteString("    reader sees")
	return sb.String()
}

func (d *demo) row() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "%7s", seconds(time.Since(d.t0)))
	for _, c := range d.children[:d.writers] {
		v := child.Thousands(c.acked)
		if c == d.killed {
			v = "killed"
		}
		fmt.Fprintf(&sb, "  %8s", v)
	}
	sb.WriteString("   ")
	for _, v := range d.children[d.writers].seen {
		fmt.Fprintf(&sb, " %s", child.Thousands(v))
	}
	return sb.String()
}

func unixNano(f []string, i int) (time.Time, error) {
	n, err := strconv.ParseInt(f[i], 10, 64)
	if err != nil {
		return time.Time{}, err
	}
	return time.Unix(0, n), nil
}

func seconds(d time.Duration) string { return fmt.Sprintf("%.2fs", d.Seconds()) }

func millis(d time.Duration) string {
	return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	if s == "" {
		return "no message"
	}
	return s
}
