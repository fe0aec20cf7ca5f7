package party

import (
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

// txEnvKills sets the number of leader kills of TestTxCounterKillLeader
// for a long run; txEnvIncrements the Updates of each process.
const (
	txEnvKills      = "PARTY_TX_KILLS"
	txEnvIncrements = "PARTY_TX_INCREMENTS"
)

// txCounterKey is the counter the processes increment.
var txCounterKey = []byte("counter")

// txIncrement adds one to the counter in tx.
func txIncrement(ctx context.Context, tx *Transaction) error {
	v, err := tx.Get(ctx, txCounterKey)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	n := 0
	if err == nil {
		if n, err = strconv.Atoi(string(v)); err != nil {
			return err
		}
	}
	return tx.Put(ctx, txCounterKey, []byte(strconv.Itoa(n+1)))
}

// txChildIncrement is a child process of TestTxCounterKillLeader: a
// handle that never leads runs the number of Updates given on stdin, then
// reports how many returned nil and the errors of the others.
func txChildIncrement(dir string) {
	db, err := openFollowerOnly(dir, &Options{OpenTimeout: rbWait})
	if err != nil {
		fmt.Printf("RB: open error %v\n", err)
		return
	}
	defer db.Close()
	var n int
	fmt.Fscan(os.Stdin, &n)
	ok, failed := 0, 0
	for range n {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		err := db.Update(ctx, func(tx *Transaction) error { return txIncrement(ctx, tx) })
		cancel()
		if err != nil {
			failed++
			fmt.Fprintf(os.Stderr, "update: %v\n", err)
			continue
		}
		ok++
	}
	fmt.Printf("RB: done ok=%d failed=%d\n", ok, failed)
	io.Copy(io.Discard, os.Stdin)
}

// TestTxCounterKillLeader is the counter of the transactions issue: 4
// processes, none of which ever leads, each run hundreds of Update
// increments of one key, while the leader (a process of its own, replaced
// by a standby that takes over) is killed with SIGKILL several times. The
// final value equals the number of Updates that returned nil, exactly.
// PARTY_TX_KILLS and PARTY_TX_INCREMENTS make a longer run.
func TestTxCounterKillLeader(t *testing.T) {
	kills, increments := 3, 300
	for env, v := range map[string]*int{txEnvKills: &kills, txEnvIncrements: &increments} {
		if s := os.Getenv(env); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 {
				t.Fatalf("%s=%q: want a positive number", env, s)
			}
			*v = n
		}
	}
	dir := t.TempDir()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	standbys := rbStartStandbys(t, dir, 3)
	var incs []*rbChild
	for range 4 {
		c := rbStartChild(t, exe, "txinc", dir, nil)
		incs = append(incs, c)
	}
	watch, err := openFollowerOnly(dir, &Options{OpenTimeout: rbWait})
	if err != nil {
		t.Fatal(err)
	}
	defer watch.Close()
	ctx := rbCtx(t)
	for _, c := range incs {
		fmt.Fprintln(c.stdin, increments)
	}

	progress := func() int {
		ctx, cancel := context.WithTimeout(context.Background(), rbWait)
		defer cancel()
		v, err := watch.Get(ctx, txCounterKey)
		if errors.Is(err, ErrNotFound) {
			return 0
		}
		if err != nil {
			t.Fatalf("reading the counter: %v", err)
		}
		n, _ := strconv.Atoi(string(v))
		return n
	}
	for k := range kills {
		// Let the counter move between two kills.
		start := progress()
		deadline := time.Now().Add(rbWait)
		for progress() < start+20 {
			if time.Now().After(deadline) {
				t.Fatalf("kill %d: the counter stays at %d", k, progress())
			}
			time.Sleep(5 * time.Millisecond)
		}
		standbys.killLeader(ctx, watch)
	}

	total := 0
	for i, c := range incs {
		line := c.Line(t)
		var ok, failed int
		if _, err := fmt.Sscanf(line, "done ok=%d failed=%d", &ok, &failed); err != nil {
			t.Fatalf("incrementer %d: %q", i, line)
		}
		if failed > 0 {
			t.Errorf("incrementer %d: %d Updates failed (see its stderr)", i, failed)
		}
		total += ok
	}
	if got := progress(); got != total {
		t.Fatalf("counter = %d, but %d Updates returned nil", got, total)
	}
	t.Logf("%d increments from 4 processes across %d kills of the leader", total, kills)
}

// txChildHold is a child process of TestTxHolderProcess: a follower that
// opens a transaction with the TxTimeout read from stdin, writes in it,
// says so, and never commits.
func txChildHold(dir string) {
	var ns int64
	fmt.Fscan(os.Stdin, &ns)
	db, err := openFollowerOnly(dir, &Options{OpenTimeout: rbWait, TxTimeout: time.Duration(ns)})
	if err != nil {
		fmt.Printf("RB: open error %v\n", err)
		return
	}
	defer db.Close()
	ctx := context.Background()
	tx, err := db.OpenTransaction(ctx)
	if err == nil {
		err = tx.Put(ctx, []byte("held"), []byte("never committed"))
	}
	if err != nil {
		fmt.Printf("RB: error %v\n", err)
		return
	}
	fmt.Println("RB: holding")
	io.Copy(io.Discard, os.Stdin)
}

// TestTxHolderProcess checks the two ways a holder process fails: killed
// with SIGKILL before Commit, its transaction is aborted at once (the
// writer it blocked goes on, though the holder's TxTimeout is an hour);
// stopped with SIGSTOP, its transaction is aborted after its TxTimeout
// (300 ms). Neither leaves anything behind.
func TestTxHolderProcess(t *testing.T) {
	dir := t.TempDir()
	l := txOpen(t, dir, nil, false)
	ctx := rbCtx(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, how := range []string{"SIGKILL", "SIGSTOP"} {
		c := rbStartChild(t, exe, "txhold", dir, nil)
		fmt.Fprintln(c.stdin, int64(map[string]time.Duration{"SIGKILL": time.Hour, "SIGSTOP": 300 * time.Millisecond}[how]))
		if line := c.Line(t); line != "holding" {
			t.Fatalf("holder: %s", line)
		}
		put := txAsync(func() error { return l.Put(ctx, []byte("w"), []byte(how)) })
		txBlocked(t, "the leader's Put", put, 50*time.Millisecond)
		var start time.Time
		switch how {
		case "SIGKILL":
			start = time.Now()
			c.cmd.Process.Signal(syscall.SIGKILL)
		case "SIGSTOP":
			c.cmd.Process.Signal(syscall.SIGSTOP)
			t.Cleanup(func() { c.cmd.Process.Signal(syscall.SIGCONT) })
			rbWaitStopped(t, c.cmd.Process.Pid)
			start = time.Now()
		}
		if err := txDone(t, "the leader's Put", put); err != nil {
			t.Fatal(err)
		}
		waited := time.Since(start)
		t.Logf("%s: the writer went on %v after the holder was stopped or killed", how, waited)
		if _, err := l.Get(ctx, []byte("held")); !errors.Is(err, ErrNotFound) {
			t.Fatalf("%s: the aborted transaction's write: %v, want ErrNotFound", how, err)
		}
		if how == "SIGKILL" {
			<-c.done
		}
	}
}

// rbStandbys are leader processes of one directory: the first leads, the
// others wait to take over when it is killed.
type rbStandbys struct {
	t     *testing.T
	dir   string
	exe   string
	byPID map[int]*rbChild
}

// rbStartStandbys starts n standby processes on dir; the first leads.
func rbStartStandbys(t *testing.T, dir string, n int) *rbStandbys {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	s := &rbStandbys{t: t, dir: dir, exe: exe, byPID: map[int]*rbChild{}}
	for range n {
		s.add()
	}
	return s
}

func (s *rbStandbys) add() {
	s.t.Helper()
	c := rbStartChild(s.t, s.exe, "lead", s.dir, nil)
	if l := c.Line(s.t); !strings.HasPrefix(l, "leader=") {
		s.t.Fatalf("standby: %s", l)
	}
	s.byPID[c.cmd.Process.Pid] = c
}

// killLeader kills the leader (which must be a standby, as db's Status
// names it) with SIGKILL, waits for it to die, and starts a replacement.
func (s *rbStandbys) killLeader(ctx context.Context, db *DB) {
	s.t.Helper()
	st, err := db.Status(ctx)
	if err != nil {
		s.t.Fatal(err)
	}
	c, ok := s.byPID[st.PID]
	if !ok {
		s.t.Fatalf("the leader, pid %d, is not a standby", st.PID)
	}
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		s.t.Fatal(err)
	}
	<-c.done
	delete(s.byPID, st.PID)
	s.add()
}
