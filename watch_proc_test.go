package party

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Watch tests with processes: writers and watchers are child processes
// (this test binary run again) that never lead; the leader is a standby
// process of its own, which a test may kill.

// wpChildWrite is a writer: it reads "ID N BATCH" on stdin and writes N
// times, one after another, key "w/ID/SEQ" (SEQ zero-padded): a Put, or
// every BATCH-th time a Write of three keys SEQ.a, SEQ.b, SEQ.c (BATCH 0:
// never). It says "done" when all were acknowledged.
func wpChildWrite(dir string) {
	db, err := openFollowerOnly(dir, &Options{OpenTimeout: rbWait})
	if err != nil {
		fmt.Printf("RB: open error %v\n", err)
		return
	}
	defer db.Close()
	var id, n, batch int
	fmt.Fscan(os.Stdin, &id, &n, &batch)
	ctx := context.Background()
	for i := range n {
		k := fmt.Sprintf("w/%d/%06d", id, i)
		if batch > 0 && i%batch == 0 {
			var b Batch
			for _, s := range []string{".a", ".b", ".c"} {
				b.Put([]byte(k+s), []byte("v"))
			}
			err = db.Write(ctx, &b)
		} else {
			err = db.Put(ctx, []byte(k), []byte("v"))
		}
		if err != nil {
			fmt.Printf("RB: write error %v\n", err)
			return
		}
	}
	fmt.Println("RB: done")
	io.Copy(io.Discard, os.Stdin)
}

// wpChildWatch is a watcher of the keys under "w/" and of "fin": it says
// "ready" once its watch is registered, then prints each event as "ev
// KEY KEY ..." and each gap as "gap", and ends at the event of "fin".
func wpChildWatch(dir string) {
	db, err := openFollowerOnly(dir, &Options{OpenTimeout: rbWait})
	if err != nil {
		fmt.Printf("RB: open error %v\n", err)
		return
	}
	defer db.Close()
	ctx := context.Background()
	w, err := db.Watch(ctx, &Range{Start: []byte("fin"), Limit: []byte("x")})
	if err != nil {
		fmt.Printf("RB: watch error %v\n", err)
		return
	}
	out := bufio.NewWriter(os.Stdout)
	fmt.Fprintln(out, "RB: ready")
	out.Flush()
	for {
		ev, err := w.Next(ctx)
		if errors.Is(err, ErrWatchGap) {
			fmt.Fprintln(out, "RB: gap")
			continue
		}
		if err != nil {
			fmt.Fprintf(out, "RB: next error %v\n", err)
			out.Flush()
			return
		}
		keys := make([]string, len(ev))
		for i, c := range ev {
			keys[i] = string(c.Key)
		}
		fmt.Fprintf(out, "RB: ev %s\n", strings.Join(keys, " "))
		out.Flush()
		if keys[0] == "fin" {
			io.Copy(io.Discard, os.Stdin)
			return
		}
	}
}

// wpCheck checks what a watcher printed against writers that each wrote n
// times (batch as wpChildWrite says): every write arrives whole, in each
// writer's order, exactly once, unless a gap was reported in between (a
// write missing, or one seen again after a failover, must have a gap
// since the writer's previous event). It returns the number of gaps.
func wpCheck(t *testing.T, name string, lines []string, writers, n, batch int) int {
	t.Helper()
	last := make([]int, writers)      // last seq seen per writer
	gapSince := make([]bool, writers) // a gap since that writer's last event
	for i := range last {
		last[i] = -1
	}
	gaps := 0
	for _, l := range lines {
		if l == "gap" {
			gaps++
			for i := range gapSince {
				gapSince[i] = true
			}
			continue
		}
		keys := strings.Fields(strings.TrimPrefix(l, "ev "))
		if keys[0] == "fin" {
			break
		}
		var id, seq int
		if _, err := fmt.Sscanf(keys[0], "w/%d/%06d", &id, &seq); err != nil || id >= writers {
			t.Fatalf("%s: unexpected event %q", name, l)
		}
		k := fmt.Sprintf("w/%d/%06d", id, seq)
		want := k
		if batch > 0 && seq%batch == 0 {
			want = k + ".a " + k + ".b " + k + ".c"
		}
		if strings.Join(keys, " ") != want {
			t.Fatalf("%s: event %q, want %q: a write split or merged", name, l, want)
		}
		switch {
		case seq == last[id]+1:
		case gapSince[id]:
			// Missed writes, or one applied again after a failover,
			// after a gap: allowed.
		default:
			t.Fatalf("%s: writer %d: %s after %d with no gap in between", name, id, k, last[id])
		}
		last[id], gapSince[id] = seq, false
	}
	for id, s := range last {
		if s != n-1 && !gapSince[id] {
			t.Fatalf("%s: writer %d: last write seen %d of %d, with no gap after it", name, id, s, n)
		}
	}
	return gaps
}

// wpCollect reads a watcher's lines as they come, so that it never
// waits on its output, and returns a function that returns them all once
// "ev fin" came.
func wpCollect(c *rbChild) func(t *testing.T) []string {
	done := make(chan []string, 1)
	go func() {
		var lines []string
		for {
			select {
			case l := <-c.lines:
				lines = append(lines, l)
				if l == "ev fin" || strings.Contains(l, "error") {
					done <- lines
					return
				}
			case <-c.done:
				done <- append(lines, "exited")
				return
			}
		}
	}()
	return func(t *testing.T) []string {
		t.Helper()
		select {
		case lines := <-done:
			if l := lines[len(lines)-1]; l != "ev fin" {
				t.Fatalf("watcher: %s", l)
			}
			return lines
		case <-time.After(time.Minute):
			t.Fatal("watcher: no \"fin\" within a minute")
			return nil
		}
	}
}

// wpStart starts writers and watchers on dir, the watchers registered
// before the writers start.
func wpStart(t *testing.T, dir string, writers, watchers, n, batch int) (ws []*rbChild, ww []func(*testing.T) []string) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for range watchers {
		c := rbStartChild(t, exe, "wwatch", dir, nil)
		if l := c.Line(t); l != "ready" {
			t.Fatalf("watcher: %s", l)
		}
		ww = append(ww, wpCollect(c))
	}
	for i := range writers {
		c := rbStartChild(t, exe, "wwrite", dir, nil)
		fmt.Fprintln(c.stdin, i, n, batch)
		ws = append(ws, c)
	}
	return ws, ww
}

// TestWatchProcesses: 3 writer processes and 3 watcher processes, no
// failover: every watcher receives every acknowledged write exactly once,
// in each writer's order, batches whole, and no gap.
func TestWatchProcesses(t *testing.T) {
	dir := t.TempDir()
	rbStartLeaderChild(t, dir)
	const writers, n, batch = 3, 300, 7
	ws, ww := wpStart(t, dir, writers, 3, n, batch)
	for _, c := range ws {
		if l := c.Line(t); l != "done" {
			t.Fatalf("writer: %s", l)
		}
	}
	f := rbOpenFollower(t, dir)
	if err := f.Put(rbCtx(t), []byte("fin"), nil); err != nil {
		t.Fatal(err)
	}
	for i, lines := range ww {
		if gaps := wpCheck(t, fmt.Sprint("watcher ", i), lines(t), writers, n, batch); gaps > 0 {
			t.Fatalf("watcher %d: %d gaps without a failover", i, gaps)
		}
	}
}

// TestWatchKillLeader: the leader is killed with SIGKILL several times
// while 3 processes write and 2 watch; every write a watcher did not
// receive is covered by a gap it reported after its last event of that
// writer; changes keep arriving after gaps; duplicates only after a gap.
func TestWatchKillLeader(t *testing.T) {
	dir := t.TempDir()
	standbys := rbStartStandbys(t, dir, 2)
	const writers, n, batch = 3, 800, 5
	ws, ww := wpStart(t, dir, writers, 2, n, batch)
	f, err := openFollowerOnly(dir, &Options{OpenTimeout: rbWait})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ctx := rbCtx(t)
	for range 3 {
		time.Sleep(40 * time.Millisecond)
		standbys.killLeader(ctx, f)
	}
	for _, c := range ws {
		if l := c.Line(t); l != "done" {
			t.Fatalf("writer: %s", l)
		}
	}
	if err := f.Put(ctx, []byte("fin"), nil); err != nil {
		t.Fatal(err)
	}
	for i, lines := range ww {
		gaps := wpCheck(t, fmt.Sprint("watcher ", i), lines(t), writers, n, batch)
		if gaps == 0 {
			t.Errorf("watcher %d: no gap across 3 kills of the leader", i)
		}
		t.Logf("watcher %d: %d gaps across 3 kills", i, gaps)
	}
}

// wpRSS returns the resident memory of process pid, in bytes.
func wpRSS(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// TestWatchStoppedWatcher: a watcher process is stopped (SIGSTOP) while
// 200,000 changes pass; writers are not held up (they finish), the
// leader's memory stays bounded (it grows by less than the changes would
// take if it kept them for the watcher, measured against the same writes
// with the watcher reading), and once resumed the watcher reports a gap,
// then the changes after it.
func TestWatchStoppedWatcher(t *testing.T) {
	dir := t.TempDir()
	leader := rbStartLeaderChild(t, dir)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	w := rbStartChild(t, exe, "wwatch", dir, nil)
	if l := w.Line(t); l != "ready" {
		t.Fatalf("watcher: %s", l)
	}
	collected := wpCollect(w)
	f := rbOpenFollower(t, dir)
	ctx := rbCtx(t)
	var b Batch
	val := make([]byte, 100)
	write := func(from int) {
		for i := from; i < from+2000; i++ { // 2,000 writes of 100 changes
			b.Reset()
			for j := range 100 {
				b.Put(fmt.Appendf(nil, "w/0/%06d.%03d", i, j), val)
			}
			if err := f.Write(ctx, &b); err != nil {
				t.Fatal(err)
			}
		}
	}
	// With the watcher reading: the leader's memory at its working size.
	write(0)
	if err := f.Put(ctx, []byte("w/sync"), nil); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	w.cmd.Process.Signal(syscall.SIGSTOP)
	t.Cleanup(func() { w.cmd.Process.Signal(syscall.SIGCONT) })
	rbWaitStopped(t, w.cmd.Process.Pid)
	before := wpRSS(t, leader.cmd.Process.Pid)
	write(2000)
	growth := wpRSS(t, leader.cmd.Process.Pid) - before
	// Kept for the watcher, 200,000 changes make the leader grow by about
	// 42 MB here; dropped for a gap, by about 15 MB (goleveldb's memtables
	// and the garbage collector's slack). The race detector's shadow
	// memory multiplies both.
	t.Logf("the leader's RSS grew by %.1f MB while 200,000 changes (23 MB) passed a stopped watcher", float64(growth)/(1<<20))
	if !raceOn && growth > 28<<20 {
		t.Errorf("the leader's RSS grew by %.1f MB: not bounded by the watch buffer", float64(growth)/(1<<20))
	}
	w.cmd.Process.Signal(syscall.SIGCONT)
	if err := f.Put(ctx, []byte("fin"), nil); err != nil {
		t.Fatal(err)
	}
	lines := collected(t)
	gap := -1
	for i, l := range lines {
		if l == "gap" {
			gap = i
			break
		}
	}
	if gap < 0 {
		t.Fatalf("no gap after 200,000 changes passed a stopped watcher (%d events)", len(lines))
	}
	t.Logf("the resumed watcher read %d events, then a gap, then %d events", gap, len(lines)-gap-1)
}
