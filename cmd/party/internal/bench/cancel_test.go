package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// cancelOn is a progress writer that cancels a run when a line contains
// a given text.
type cancelOn struct {
	mu     sync.Mutex
	text   string
	cancel context.CancelFunc
	log    bytes.Buffer
	seen   bool
}

func (c *cancelOn) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.log.Write(b)
	if !c.seen && bytes.Contains(b, []byte(c.text)) {
		c.seen = true
		c.cancel()
	}
	return len(b), nil
}

// TestRunCancelled cancels runs at several stages, with children alive,
// and checks that Run returns the context's error, stops every child and
// removes its directories.
func TestRunCancelled(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("children are found through /proc")
	}
	sz := tinySizes
	sz.reps, sz.seqOps, sz.c64Ops, sz.iterN, sz.getKeys, sz.memBytes = 1, 100, 500, 1000, 1000, 256<<10
	for _, at := range []string{
		FollowerGetSeq + " rep 1/",          // a leader child serves this process
		FailoverGapMs + " rep 1/1, kill 1/", // a leader and followers run
	} {
		t.Run(strings.Fields(at)[0], func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			progress := &cancelOn{text: at, cancel: cancel}
			dir := t.TempDir()
			_, err := Run(ctx, Options{Dir: dir, Progress: progress, sizes: &sz})
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("Run returned %v, want context.Canceled\nprogress:\n%s", err, progress.log.String())
			}
			if !progress.seen {
				t.Fatalf("the run never reached %q", at)
			}
			if kids := children(t); len(kids) != 0 {
				t.Errorf("children left running: %v", kids)
			}
			if left, _ := os.ReadDir(dir); len(left) != 0 {
				t.Errorf("Run left %d entries in its directory", len(left))
			}
		})
	}
}

// children lists the processes whose parent is this process.
func children(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue // gone
		}
		s := string(b)
		rest := s[strings.LastIndexByte(s, ')')+1:]
		f := strings.Fields(rest) // state, ppid, ...
		if len(f) > 1 && f[1] == strconv.Itoa(os.Getpid()) {
			kids = append(kids, strings.TrimSpace(s[:strings.LastIndexByte(s, ')')+1])+" "+f[0])
		}
	}
	return kids
}
