package party

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"testing"
)

// TestIteratorFirstWithoutRoundTrip checks that a follower iterator's
// first batch comes with the answer to its open: once NewIterator has
// returned, First and the Nexts of a short range need nothing more from
// the leader, which is stopped (SIGSTOP) before they run. A Seek, or a Next
// past the first batch, does need it, and so ends with its context.
func TestIteratorFirstWithoutRoundTrip(t *testing.T) {
	dir := t.TempDir()
	child := rbStartLeaderChild(t, dir)
	proc := child.cmd.Process
	t.Cleanup(func() { proc.Signal(syscall.SIGCONT) })
	f := rbOpenFollower(t, dir)
	ctx := rbCtx(t)
	var b Batch
	for i := range 100 {
		b.Put(fmt.Appendf(nil, "k%03d", i), fmt.Appendf(nil, "v%03d", i))
	}
	if err := f.Write(ctx, &b); err != nil {
		t.Fatal(err)
	}

	// 10 entries: they fit the first batch (16 entries), with its end.
	short, cancel := context.WithTimeout(context.Background(), rbWait)
	defer cancel()
	it := f.NewIterator(short, &Range{Start: []byte("k010"), Limit: []byte("k020")})
	defer it.Release()
	// More than one batch: the first 16 entries come with the open.
	long, cancelLong := context.WithTimeout(context.Background(), rbWait)
	defer cancelLong()
	it2 := f.NewIterator(long, nil)
	defer it2.Release()
	// Another seek than First needs the leader.
	seekCtx, cancelSeek := context.WithCancel(context.Background())
	it3 := f.NewIterator(seekCtx, nil)
	defer it3.Release()

	if err := proc.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	rbWaitStopped(t, proc.Pid)

	var got []string
	for ok := it.First(); ok; ok = it.Next() {
		got = append(got, string(it.Key()))
	}
	if err := it.Error(); err != nil || len(got) != 10 || got[0] != "k010" || got[9] != "k019" {
		t.Fatalf("short range with the leader stopped: %q, %v", got, err)
	}
	for i := range 16 {
		ok := false
		if i == 0 {
			ok = it2.First()
		} else {
			ok = it2.Next()
		}
		if !ok {
			t.Fatalf("entry %d of the first batch: %v", i, it2.Error())
		}
		if want := fmt.Sprintf("k%03d", i); string(it2.Key()) != want {
			t.Fatalf("entry %d: %q, want %q", i, it2.Key(), want)
		}
	}

	// The 17th entry and a Seek wait for the stopped leader: they end
	// with their contexts.
	cancelLong()
	if it2.Next() || !errors.Is(it2.Error(), context.Canceled) {
		t.Fatalf("17th entry with the leader stopped: %q, %v", it2.Key(), it2.Error())
	}
	cancelSeek()
	if it3.Seek([]byte("k050")) || !errors.Is(it3.Error(), context.Canceled) {
		t.Fatalf("seek with the leader stopped: %q, %v", it3.Key(), it3.Error())
	}

	// Resumed, the leader serves the rest.
	if err := proc.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	it4 := f.NewIterator(ctx, &Range{Start: []byte("k090")})
	defer it4.Release()
	n := 0
	for ok := it4.Last(); ok; ok = it4.Prev() {
		n++
	}
	if err := it4.Error(); err != nil || n != 10 {
		t.Fatalf("after SIGCONT, reverse: %d entries, %v", n, err)
	}
}

// TestIteratorShortScanReadAhead checks that a short scan makes the leader
// send little more than it reads: 100 scans of 10 entries over 20,000
// receive at most 48 entries each (the first batch, and at most the one
// after it), where a full window would send thousands. A full iteration
// still receives every entry.
func TestIteratorShortScanReadAhead(t *testing.T) {
	dir := t.TempDir()
	l := rbOpen(t, dir, nil)
	f := rbOpenFollower(t, dir)
	ctx := rbCtx(t)
	const n = 20000
	var b Batch
	for i := range n {
		b.Put(fmt.Appendf(nil, "k%05d", i), make([]byte, 100))
	}
	if err := l.Write(ctx, &b); err != nil {
		t.Fatal(err)
	}
	before := f.entriesReceived()
	const scans = 100
	for i := range scans {
		it := f.NewIterator(ctx, &Range{Start: fmt.Appendf(nil, "k%05d", i*100)})
		for j := range 10 {
			if !it.Next() {
				t.Fatalf("scan %d: entry %d: %v", i, j, it.Error())
			}
		}
		it.Release()
	}
	if got := f.entriesReceived() - before; got > scans*48 {
		t.Errorf("%d scans of 10 entries received %d entries, want at most %d", scans, got, scans*48)
	}

	before = f.entriesReceived()
	it := f.NewIterator(ctx, nil)
	count := 0
	for it.Next() {
		count++
	}
	it.Release()
	if err := it.Error(); err != nil || count != n {
		t.Fatalf("full iteration: %d entries, %v", count, err)
	}
	// Batches of the short scans may still arrive: they were sent before
	// the leader read their close.
	if got := f.entriesReceived() - before; got < n || got > n+scans*48 {
		t.Errorf("full iteration received %d entries, want %d", got, n)
	}
}
