//go:build linux

package party

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Tests of the promises every call makes: it never reads the caller's
// slices once it has returned, and it returns within its context (plus a
// small bound) whatever the leader does.

// TestPromiseReusedSlices: callers reuse their key and value buffers as
// soon as Put returns, as doc.go allows, while their calls are abandoned
// by short deadlines and the follower's connection is dropped every few
// milliseconds, so that abandoned calls sit in the queue being resent.
// Every stored value must belong to its key. Before the fix, the election
// goroutine encoded an abandoned call's slices after Put had returned: the
// race detector reported it, and stored values belonged to other keys.
func TestPromiseReusedSlices(t *testing.T) {
	dir := t.TempDir()
	rbOpen(t, dir, nil) // the leader
	f := rbOpen(t, dir, nil)
	if f.IsLeader() {
		t.Fatal("setup: the second handle leads")
	}
	const (
		writers  = 256
		duration = 1500 * time.Millisecond
	)
	stop := make(chan struct{})
	var dropper sync.WaitGroup
	dropper.Add(1)
	go func() {
		defer dropper.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Duration(1+rand.N(3)) * time.Millisecond):
				f.dropConn()
			}
		}
	}()
	var wg sync.WaitGroup
	for g := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := make([]byte, 12)
			value := make([]byte, 5*len(key))
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				copy(key, fmt.Sprintf("g%03d-k%06d", g, i%1000))
				for j := 0; j < len(value); j += len(key) {
					copy(value[j:], key)
				}
				ctx, cancel := context.WithTimeout(context.Background(), time.Duration(rand.N(200))*time.Microsecond)
				f.Put(ctx, key, value)
				cancel()
				// Allowed: the call has returned. A value that still
				// reaches the leader now belongs to no key.
				for j := range value {
					value[j] = 'X'
				}
				key[0] = 'X'
			}
		}()
	}
	time.Sleep(duration)
	close(stop)
	wg.Wait()
	dropper.Wait()

	ctx := rbCtx(t)
	it := f.NewIterator(ctx, nil)
	defer it.Release()
	n, bad := 0, 0
	for it.Next() {
		n++
		k, v := it.Key(), it.Value()
		if !bytes.Equal(v, bytes.Repeat(k, 5)) {
			if bad++; bad <= 5 {
				t.Errorf("stored %q = %q: the value belongs to another call", k, v)
			}
		}
	}
	if err := it.Error(); err != nil {
		t.Fatal(err)
	}
	if bad > 0 {
		t.Fatalf("%d of %d stored values do not belong to their key", bad, n)
	}
	t.Logf("%d keys stored, all with their own value", n)
}

// promiseBound is how long past its deadline a call may take to return.
// It only tells a hang from a slow machine: a call that honours its
// context returns within microseconds of its deadline.
const promiseBound = 2 * time.Second

// promiseDeadline is the deadline of every call made while the leader is
// stopped.
const promiseDeadline = 200 * time.Millisecond

// TestPromiseStoppedLeader stops the leader process (SIGSTOP) and fills
// the socket with a value larger than its buffer, so that writes to the
// leader block. Every call must still return within its context plus a
// small bound, and the handle must work again once the leader resumes, and
// once it is replaced.
func TestPromiseStoppedLeader(t *testing.T) {
	dir := t.TempDir()
	child := rbStartLeaderChild(t, dir)
	proc := child.cmd.Process
	t.Cleanup(func() { proc.Signal(syscall.SIGCONT) })

	f := rbOpenFollower(t, dir)
	ctx := rbCtx(t)
	const keys = 2000
	var b Batch
	for i := range keys {
		b.Put(fmt.Appendf(nil, "k%05d", i), bytes.Repeat([]byte{'v'}, 100))
	}
	if err := f.Write(ctx, &b); err != nil {
		t.Fatal(err)
	}
	snap, err := f.GetSnapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Release()
	itCtx, itCancel := context.WithCancel(context.Background())
	defer itCancel()
	it := f.NewIterator(itCtx, nil)
	defer it.Release()
	if !it.First() {
		t.Fatalf("iterator: %v", it.Error())
	}
	closer := rbOpenFollower(t, dir)
	// A transaction held by another follower when the leader stops.
	txf := rbOpenFollower(t, dir)
	tx, err := txf.OpenTransaction(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Put(ctx, []byte("tx"), []byte("v")); err != nil {
		t.Fatal(err)
	}

	big := bytes.Repeat([]byte{'b'}, 8<<20)
	stopped := func(what string) {
		if err := proc.Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		rbWaitStopped(t, proc.Pid)
		// Fills the socket buffer: the calls below find it full.
		promiseCall(t, what+": put of 8 MiB", func(ctx context.Context) error { return f.Put(ctx, []byte("big"), big) })
	}

	stopped("stopped")
	checks := []struct {
		name string
		run  func(ctx context.Context) error
	}{
		{"put of 8 MiB again", func(ctx context.Context) error { return f.Put(ctx, []byte("big2"), big) }},
		{"get", func(ctx context.Context) error { _, err := f.Get(ctx, []byte("k00001")); return err }},
		{"has", func(ctx context.Context) error { _, err := f.Has(ctx, []byte("k00001")); return err }},
		{"put", func(ctx context.Context) error { return f.Put(ctx, []byte("p"), []byte("v")) }},
		{"delete", func(ctx context.Context) error { return f.Delete(ctx, []byte("k00002")) }},
		{"write", func(ctx context.Context) error {
			var b Batch
			b.Put([]byte("w"), []byte("v"))
			return f.Write(ctx, &b)
		}},
		{"delete range", func(ctx context.Context) error {
			return f.DeleteRange(ctx, &Range{Start: []byte("k00010"), Limit: []byte("k00020")})
		}},
		{"new iterator and first", func(ctx context.Context) error {
			it := f.NewIterator(ctx, nil)
			defer it.Release()
			it.First()
			return it.Error()
		}},
		{"iterator moves", func(ctx context.Context) error {
			stop := context.AfterFunc(ctx, itCancel)
			defer stop()
			for it.Next() {
			}
			return it.Error()
		}},
		{"get snapshot", func(ctx context.Context) error {
			s, err := f.GetSnapshot(ctx)
			if err == nil {
				s.Release()
			}
			return err
		}},
		{"snapshot get", func(ctx context.Context) error { _, err := snap.Get(ctx, []byte("k00001")); return err }},
		{"snapshot has", func(ctx context.Context) error { _, err := snap.Has(ctx, []byte("k00001")); return err }},
		{"snapshot iterator", func(ctx context.Context) error {
			it := snap.NewIterator(ctx, nil)
			defer it.Release()
			for it.Next() {
			}
			return it.Error()
		}},
		{"status", func(ctx context.Context) error { _, err := f.Status(ctx); return err }},
		{"open transaction", func(ctx context.Context) error {
			tx, err := f.OpenTransaction(ctx)
			if err == nil {
				tx.Discard()
			}
			return err
		}},
		{"update", func(ctx context.Context) error {
			return f.Update(ctx, func(tx *Transaction) error { return tx.Put(ctx, []byte("u"), nil) })
		}},
		{"transaction get", func(ctx context.Context) error { _, err := tx.Get(ctx, []byte("k00001")); return err }},
		{"transaction iterator", func(ctx context.Context) error {
			it := tx.NewIterator(ctx, nil)
			defer it.Release()
			for it.Next() {
			}
			return it.Error()
		}},
		{"transaction commit", func(ctx context.Context) error {
			err := tx.Commit(ctx)
			if !errors.Is(err, ErrCommitUnknown) {
				t.Errorf("commit to a stopped leader: %v, want ErrCommitUnknown", err)
			}
			return err
		}},
		{"close a follower blocked writing", func(context.Context) error {
			put := make(chan error, 1)
			go func() { put <- closer.Put(context.Background(), []byte("big3"), big) }()
			time.Sleep(50 * time.Millisecond)
			err := closer.Close()
			if perr := <-put; !errors.Is(perr, ErrClosed) {
				t.Errorf("a put pending when its handle closed returned %v, want ErrClosed", perr)
			}
			return err
		}},
	}
	for _, c := range checks {
		promiseCall(t, c.name, c.run)
	}

	// Resumed, the leader serves the same handle again.
	if err := proc.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	promiseWorks(t, f, "after the leader resumed")
	txf.Close()

	// Stopped again, then killed: the handle works on the next leader.
	stopped("stopped again")
	if err := proc.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	promiseWorks(t, f, "after the stopped leader was killed")
	if !f.IsLeader() {
		t.Error("the only handle left did not become leader")
	}
}

// rbOpenFollower opens a handle that is expected to follow.
func rbOpenFollower(t testing.TB, dir string) *DB {
	t.Helper()
	db := rbOpen(t, dir, &Options{OpenTimeout: rbWait})
	if db.IsLeader() {
		t.Fatal("setup: the handle leads")
	}
	return db
}

// promiseCall runs call with a deadline of promiseDeadline and fails the
// test if it returns much later, or succeeds.
func promiseCall(t *testing.T, name string, call func(ctx context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), promiseDeadline)
	defer cancel()
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- call(ctx) }()
	select {
	case err := <-done:
		took := time.Since(start)
		t.Logf("%s: returned after %v: %v", name, took.Round(time.Millisecond), err)
		if took > promiseDeadline+promiseBound {
			t.Errorf("%s returned %v after a deadline of %v", name, took, promiseDeadline)
		}
	case <-time.After(promiseDeadline + promiseBound):
		t.Errorf("%s: still blocked %v after a deadline of %v", name, promiseDeadline+promiseBound, promiseDeadline)
	}
}

// promiseWorks checks that db reads its own writes again.
func promiseWorks(t *testing.T, db *DB, when string) {
	t.Helper()
	ctx := rbCtx(t)
	if err := db.Put(ctx, []byte("after"), []byte(when)); err != nil {
		t.Fatalf("%s: put: %v", when, err)
	}
	v, err := db.Get(ctx, []byte("after"))
	if err != nil || string(v) != when {
		t.Fatalf("%s: get = %q, %v", when, v, err)
	}
	it := db.NewIterator(ctx, &Range{Start: []byte("k"), Limit: []byte("l")})
	defer it.Release()
	n := 0
	for it.Next() {
		n++
	}
	if err := it.Error(); err != nil || n == 0 {
		t.Fatalf("%s: iteration: %d entries, %v", when, n, err)
	}
}

// TestPromiseIdleFollowerNoticesDeath: a follower that makes no call has
// no goroutine reading its connection (waiting callers read in place), yet
// it must notice at once that its leader died, and take over.
func TestPromiseIdleFollowerNoticesDeath(t *testing.T) {
	dir := t.TempDir()
	child := rbStartLeaderChild(t, dir)
	f := rbOpenFollower(t, dir)
	// One call, so that the connection has been read in place and left
	// with nobody reading.
	if err := f.Put(rbCtx(t), []byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	if err := child.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	select {
	case <-f.Elected():
		t.Logf("the idle follower led %v after the kill", time.Since(start).Round(time.Millisecond))
	case <-time.After(rbWait):
		t.Fatalf("the idle follower did not notice its leader's death within %v", rbWait)
	}
	v, err := f.Get(rbCtx(t), []byte("k"))
	if err != nil || string(v) != "v" {
		t.Fatalf("get after taking over: %q, %v", v, err)
	}
}
