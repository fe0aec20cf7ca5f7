package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// raceEnabled is set by race_test.go when the tests run with -race; the
// party binary is then built with -race too.
var raceEnabled bool

// partyBin is the party binary that TestMain builds.
var partyBin string

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "party-cli-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	partyBin = filepath.Join(dir, "party")
	// A -race binary sleeps a second before it exits unless told not to.
	os.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	args := []string{"build", "-o", partyBin}
	if raceEnabled {
		args = append(args, "-race")
	}
	build := exec.Command(goTool(), append(args, ".")...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building the party binary:", err)
		return 1
	}
	return m.Run()
}

// goTool finds the go command that runs these tests.
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(os.Getenv("GOROOT"), "bin", "go")
}

// result is what a run of the party binary did.
type result struct {
	stdout, stderr string
	code           int
}

// cli runs the party binary with args and stdin, failing the test if it hangs.
func cli(t testing.TB, stdin string, args ...string) result {
	t.Helper()
	return partyEnv(t, nil, stdin, args...)
}

func partyEnv(t testing.TB, env []string, stdin string, args ...string) result {
	t.Helper()
	limit := 90 * time.Second
	if len(args) > 0 && args[0] == "bench" {
		limit = 5 * time.Minute // the real benchmark, on a machine busy with other tests
	}
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, partyBin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	if os.Getenv("PARTY_TEST_TIMES") != "" {
		t.Logf("%v party %q", time.Since(start).Round(time.Millisecond), args)
	}
	if ctx.Err() != nil {
		t.Fatalf("party %q hung; stderr: %s", args, stderr.String())
	}
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("party %q: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return result{stdout: stdout.String(), stderr: stderr.String(), code: code}
}

// ok runs party and fails the test unless it succeeds with an empty
// stderr; it returns stdout.
func ok(t testing.TB, stdin string, args ...string) string {
	t.Helper()
	r := cli(t, stdin, args...)
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("party %q: exit %d, stderr %q", args, r.code, r.stderr)
	}
	return r.stdout
}

// fails runs party and fails the test unless it exits with code and one
// line on stderr that contains every string in want; it returns stderr.
func fails(t testing.TB, code int, want []string, stdin string, args ...string) string {
	t.Helper()
	r := cli(t, stdin, args...)
	if r.code != code {
		t.Fatalf("party %q: exit %d, want %d; stdout %q stderr %q", args, r.code, code, r.stdout, r.stderr)
	}
	if strings.Count(r.stderr, "\n") != 1 || !strings.HasSuffix(r.stderr, "\n") {
		t.Fatalf("party %q: stderr is not one line: %q", args, r.stderr)
	}
	for _, w := range want {
		if !strings.Contains(r.stderr, w) {
			t.Fatalf("party %q: stderr %q does not contain %q", args, r.stderr, w)
		}
	}
	return r.stderr
}

// newDir returns a path for a new database.
func newDir(t testing.TB) string {
	return filepath.Join(t.TempDir(), "db")
}

// holder is a party process that keeps a database open: `party hold`.
type holder struct {
	pid    int
	leader bool
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string
	exited chan struct{} // closed once the process has exited
	err    error         // how it exited, set before exited closes
}

// hold starts a process that joins dir and keeps it open until stop or
// kill, and waits until it has joined.
func hold(t testing.TB, dir string) *holder {
	t.Helper()
	h := &holder{cmd: exec.Command(partyBin, "hold", dir), lines: make(chan string, 16), exited: make(chan struct{})}
	var stderr bytes.Buffer
	h.cmd.Stderr = &stderr
	stdout, err := h.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if h.stdin, err = h.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := h.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			h.lines <- sc.Text()
		}
		close(h.lines)
		h.err = h.cmd.Wait()
		close(h.exited)
	}()
	t.Cleanup(func() {
		h.cmd.Process.Kill()
		<-h.exited
	})
	select {
	case line, ok := <-h.lines:
		f := strings.Fields(line)
		if !ok || len(f) != 4 || f[0] != "ready" {
			t.Fatalf("hold: unexpected %q; stderr %s", line, stderr.String())
		}
		h.pid, _ = strconv.Atoi(f[1])
		h.leader = f[2] == "true"
	case <-time.After(60 * time.Second):
		t.Fatal("hold did not join the database within 60s")
	}
	return h
}

// waitLeader waits until the holder says it became leader.
func (h *holder) waitLeader(t testing.TB) {
	t.Helper()
	if h.leader {
		return
	}
	select {
	case line := <-h.lines:
		if !strings.HasPrefix(line, "leader ") {
			t.Fatalf("hold: unexpected %q", line)
		}
		h.leader = true
	case <-time.After(60 * time.Second):
		t.Fatal("holder did not become leader within 60s")
	}
}

// stop closes the holder's stdin, which closes its database, and waits.
func (h *holder) stop(t testing.TB) {
	t.Helper()
	h.stdin.Close()
	select {
	case <-h.exited:
		if h.err != nil {
			t.Fatalf("hold exited with %v", h.err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("hold did not stop within 60s")
	}
}

// kill kills the holder with SIGKILL and waits for it to die.
func (h *holder) kill(t testing.TB) {
	t.Helper()
	if err := h.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-h.exited:
	case <-time.After(60 * time.Second):
		t.Fatal("killed holder did not exit within 60s")
	}
}
