//go:build linux

package party

import (
	"bytes"
	"fmt"
	"syscall"
	"testing"
	"time"
)

// TestBusyPoll: a follower that busy-polls reads and writes like any
// other, in sequence and concurrently, and a handle that makes no call
// does not spin: its process uses almost no CPU while it idles.
func TestBusyPoll(t *testing.T) {
	dir := t.TempDir()
	leader := rbOpen(t, dir, &Options{BusyPoll: 100 * time.Microsecond})
	f := rbOpen(t, dir, &Options{BusyPoll: 100 * time.Microsecond})
	if f.IsLeader() {
		t.Fatal("setup: the second handle leads")
	}
	ctx := rbCtx(t)
	for i := range 200 {
		k, v := fmt.Appendf(nil, "k%03d", i), bytes.Repeat([]byte{byte(i)}, i)
		if err := f.Put(ctx, k, v); err != nil {
			t.Fatal(err)
		}
		if got, err := f.Get(ctx, k); err != nil || !bytes.Equal(got, v) {
			t.Fatalf("get %s: %q, %v", k, got, err)
		}
	}
	errs := make(chan error, 16)
	for g := range 16 {
		go func() {
			var err error
			for i := 0; i < 50 && err == nil; i++ {
				_, err = f.Get(ctx, fmt.Appendf(nil, "k%03d", (g*50+i)%200))
			}
			errs <- err
		}()
	}
	for range 16 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if n := rbCount(t, f); n != 200 {
		t.Fatalf("%d keys, want 200", n)
	}

	// Idle: neither the follower's nor the leader's side spins.
	time.Sleep(50 * time.Millisecond)
	before := cpuTime(t)
	const idle = 500 * time.Millisecond
	time.Sleep(idle)
	if used := cpuTime(t) - before; used > idle/4 {
		t.Errorf("idle handles used %v of CPU in %v: something spins", used, idle)
	} else {
		t.Logf("idle handles used %v of CPU in %v", used, idle)
	}
	_ = leader
}

// rbCount counts the keys of db.
func rbCount(t *testing.T, db *DB) int {
	t.Helper()
	it := db.NewIterator(rbCtx(t), nil)
	defer it.Release()
	n := 0
	for it.Next() {
		n++
	}
	if err := it.Error(); err != nil {
		t.Fatal(err)
	}
	return n
}

// cpuTime returns the CPU time this process has used.
func cpuTime(t *testing.T) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
