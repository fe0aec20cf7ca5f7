package party

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// wtNext returns the next event of w, failing the test after a while.
func wtNext(t *testing.T, w *Watcher) ([]Change, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), itxWait)
	defer cancel()
	ev, err := w.Next(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatal("no event within the wait")
	}
	return ev, err
}

// wtString writes an event as put:k=v del:k, for comparisons.
func wtString(ev []Change) string {
	var s []string
	for _, c := range ev {
		if c.Deleted {
			s = append(s, "del:"+string(c.Key))
		} else {
			s = append(s, fmt.Sprintf("put:%s=%s", c.Key, c.Value))
		}
	}
	return strings.Join(s, " ")
}

// TestWatchEveryChange checks that watchers on the leader's handle and on
// followers, over every key and over a range, receive every committed
// write from every handle in commit order, write by write: a Put or
// Delete one change, a Write and a transaction their entries together, a
// DeleteRange the keys it deleted, and only the changes in their range.
func TestWatchEveryChange(t *testing.T) {
	dir := t.TempDir()
	l := txOpen(t, dir, nil, false)
	f := txOpen(t, dir, nil, true)
	g := txOpen(t, dir, nil, true)
	ctx := itxCtx(t)
	if err := l.Put(ctx, []byte("a0"), []byte("before the watches")); err != nil {
		t.Fatal(err)
	}
	type watch struct {
		name string
		w    *Watcher
		rng  *Range
	}
	var watches []watch
	for _, h := range []struct {
		name string
		db   *DB
	}{{"leader", l}, {"follower", f}} {
		for _, r := range []*Range{nil, {Start: []byte("b"), Limit: []byte("c")}} {
			w, err := h.db.Watch(ctx, r)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			watches = append(watches, watch{fmt.Sprintf("%s %v", h.name, r), w, r})
		}
	}
	var want []string
	write := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		want = append(want, what)
	}
	write("put:a1=1", l.Put(ctx, []byte("a1"), []byte("1")))
	write("put:b1=2", f.Put(ctx, []byte("b1"), []byte("2")))
	write("put:b2=3", g.Put(ctx, []byte("b2"), []byte("3")))
	write("del:a1", g.Delete(ctx, []byte("a1")))
	var b Batch
	b.Put([]byte("a2"), []byte("4"))
	b.Delete([]byte("b1"))
	b.Put([]byte("c1"), []byte("5"))
	write("put:a2=4 del:b1 put:c1=5", f.Write(ctx, &b))
	write("put:b3=6 put:d1=7", g.Update(ctx, func(tx *Transaction) error {
		tx.Put(ctx, []byte("b3"), []byte("6"))
		return tx.Put(ctx, []byte("d1"), []byte("7"))
	}))
	write("del:b2 del:b3", l.DeleteRange(ctx, &Range{Start: []byte("b"), Limit: []byte("c")}))

	for _, w := range watches {
		for _, e := range want {
			// The events of this watch's range.
			var in []string
			for _, c := range strings.Fields(e) {
				k, _, _ := strings.Cut(c[4:], "=")
				if w.rng == nil || (k >= string(w.rng.Start) && k < string(w.rng.Limit)) {
					in = append(in, c)
				}
			}
			if len(in) == 0 {
				continue
			}
			ev, err := wtNext(t, w.w)
			if err != nil || wtString(ev) != strings.Join(in, " ") {
				t.Fatalf("%s: got %q, %v; want %q", w.name, wtString(ev), err, strings.Join(in, " "))
			}
		}
		// Nothing more.
		short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
		ev, err := w.w.Next(short)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("%s: after the last write: %q, %v", w.name, wtString(ev), err)
		}
	}
}

// TestWatchGapWhenBehind checks that a watcher that does not read while
// more changes pass than its buffers hold gets ErrWatchGap once, then the
// changes that come after, and that the writers were not held up.
func TestWatchGapWhenBehind(t *testing.T) {
	dir := t.TempDir()
	l := txOpen(t, dir, nil, false)
	f := txOpen(t, dir, nil, true)
	ctx := itxCtx(t)
	for _, h := range []*DB{l, f} {
		w, err := h.Watch(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		big := bytes.Repeat([]byte{'v'}, 64<<10)
		for i := range 400 { // 25 MiB: more than the leader's, the socket's and the follower's buffers
			if err := l.Put(ctx, []byte(fmt.Sprint("k", i%10)), big); err != nil {
				t.Fatal(err)
			}
		}
		if err := l.Put(ctx, []byte("last"), []byte("1")); err != nil {
			t.Fatal(err)
		}
		gaps, last := 0, false
		for !last {
			ev, err := wtNext(t, w)
			switch {
			case errors.Is(err, ErrWatchGap):
				gaps++
			case err != nil:
				t.Fatal(err)
			default:
				last = string(ev[0].Key) == "last"
			}
		}
		if gaps == 0 {
			t.Fatal("no ErrWatchGap although the watcher fell 25 MiB behind")
		}
		w.Close()
		if _, err := w.Next(ctx); !errors.Is(err, ErrClosed) {
			t.Fatalf("Next after Close: %v, want ErrClosed", err)
		}
	}
}

// TestWatchLeaderLost checks that a follower's watcher reports one gap
// when its connection to the leader is lost, only once it is registered
// again, so that a write made right after the gap arrives; and that Close
// ends a Next that waits.
func TestWatchLeaderLost(t *testing.T) {
	dir := t.TempDir()
	l := txOpen(t, dir, nil, false)
	f := txOpen(t, dir, nil, true)
	ctx := itxCtx(t)
	w, err := f.Watch(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Put(ctx, []byte("a"), []byte("1")); err != nil {
		t.Fatal(err)
	}
	if ev, err := wtNext(t, w); err != nil || wtString(ev) != "put:a=1" {
		t.Fatalf("first event: %q, %v", wtString(ev), err)
	}
	f.dropConn()
	if _, err := wtNext(t, w); !errors.Is(err, ErrWatchGap) {
		t.Fatalf("after the connection dropped: %v, want ErrWatchGap", err)
	}
	// The gap came once the watch was registered again: a write made
	// right after it arrives (the pattern: on a gap, read the state, then
	// apply the changes that follow).
	if err := l.Put(ctx, []byte("b"), []byte("after the gap")); err != nil {
		t.Fatal(err)
	}
	if ev, err := wtNext(t, w); err != nil || wtString(ev) != "put:b=after the gap" {
		t.Fatalf("the write right after the gap: %q, %v", wtString(ev), err)
	}
	done := make(chan error, 1)
	go func() { _, err := w.Next(ctx); done <- err }()
	time.Sleep(10 * time.Millisecond)
	w.Close()
	select {
	case err := <-done:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("a Next waiting when Close was called: %v, want ErrClosed", err)
		}
	case <-time.After(itxWait):
		t.Fatal("Close did not end a waiting Next")
	}
}
