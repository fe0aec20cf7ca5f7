//go:build linux

package party

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/levelparty/party/backend"
	"github.com/levelparty/party/internal/wire"
)

// Regression tests for defects found in review.

// TestRobustFailedIteratorCredit: credit for an iterator whose open failed
// (unknown snapshot, or too many iterators) must not crash the leader.
func TestRobustFailedIteratorCredit(t *testing.T) {
	dir := t.TempDir()
	leader, follower, _ := rbPair(t, dir)
	keeper := rbNewKeeper(t, leader, follower)
	c := rbDial(t, dir)
	msg := rbHello()
	msg = wire.AppendRequest(msg, &wire.Request{Type: wire.TIterOpen, ID: 1, Iter: 7, Snap: 99})
	msg = wire.AppendRequest(msg, &wire.Request{Type: wire.TIterCredit, ID: 7, Gen: 0, Credit: 1})
	msg = wire.AppendRequest(msg, &wire.Request{Type: wire.TIterSeek, ID: 7, Gen: 1, Mode: backend.SeekFirst, Credit: 4})
	msg = wire.AppendRequest(msg, &wire.Request{Type: wire.TIterCredit, ID: 7, Gen: 1, Credit: 1})
	msg = wire.AppendRequest(msg, &wire.Request{Type: wire.TIterCredit, ID: 8, Gen: 0, Credit: 1}) // never opened
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	// The leader answers the open with the failure and ends the seek's
	// generation with it; then the connection stays usable.
	ping := wire.AppendRequest(nil, &wire.Request{Type: wire.TStatus, ID: 2})
	if _, err := c.Write(ping); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(rbWait))
	w, err := wire.ReadWelcome(c)
	if err != nil || w.Status != wire.WelcomeOK {
		t.Fatalf("welcome: %+v, %v", w, err)
	}
	r := wire.NewReader(bufio.NewReader(c))
	var sawOpen, sawEnd, sawStatus bool
	for !(sawOpen && sawEnd && sawStatus) {
		typ, id, body, err := r.Next(true)
		if err != nil {
			t.Fatalf("reading answers: %v (open %v, end %v, status %v)", err, sawOpen, sawEnd, sawStatus)
		}
		switch {
		case typ == wire.TResponse && id == 1:
			code, _, _ := wire.DecodeResponse(body)
			if code != wire.SnapshotUnknown {
				t.Errorf("iter-open on an unknown snapshot answered %d", code)
			}
			sawOpen = true
		case typ == wire.TIterBatch && id == 7:
			var b wire.IterBatch
			if err := wire.DecodeIterBatch(body, &b); err != nil || !b.EOF || b.Code != wire.SnapshotUnknown {
				t.Errorf("seek of a failed iterator: %+v, %v", b, err)
			}
			sawEnd = true
		case typ == wire.TResponse && id == 2:
			sawStatus = true
		}
	}
	c.Close()
	keeper.Check(t, "credit for a failed iterator")
}

// TestCloseRacingOperations: operations racing with Close on a follower
// all return (with ErrClosed or success), even those that meet the
// connection Close is tearing down. Close twice at once: both return after
// everything is released.
func TestCloseRacingOperations(t *testing.T) {
	dir := t.TempDir()
	leader := rbOpen(t, dir, nil)
	_ = leader
	for round := 0; round < 300; round++ {
		f, err := Open(dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make(chan error, 64)
		for g := 0; g < 64; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					err := f.Put(context.Background(), []byte(fmt.Sprint(round, "/", g, "/", i)), []byte("v"))
					if err != nil {
						if !errors.Is(err, ErrClosed) {
							errs <- err
						}
						return
					}
				}
			}()
		}
		time.Sleep(time.Duration(round%5) * 200 * time.Microsecond)
		var cw sync.WaitGroup
		for range 2 {
			cw.Add(1)
			go func() { defer cw.Done(); f.Close() }()
		}
		done := make(chan struct{})
		go func() { wg.Wait(); cw.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(rbWait):
			t.Fatalf("round %d: an operation or Close never returned after Close", round)
		}
		close(errs)
		for err := range errs {
			t.Errorf("round %d: %v, want nil or ErrClosed", round, err)
		}
	}
}
