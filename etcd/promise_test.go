package partyetcd

import (
	"context"
	"errors"
	"syscall"
	"testing"
	"time"

	"github.com/levelparty/party"
)

// TestPromiseStoppedCluster: with every member stopped (SIGSTOP), each
// call returns at its context's deadline, with the context's error, and
// the handle works again once the members go on. (Its first run found
// that abandoned writes apply when the members go on, after a later write
// made through another member: documented.)
func TestPromiseStoppedCluster(t *testing.T) {
	c := newCluster(t, 3)
	db := c.open(t, "stopped/", nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	must(t, db.Put(ctx, []byte("k"), []byte("v")))
	w, err := db.Watch(ctx, nil)
	must(t, err)
	defer w.Close()
	snap, err := db.GetSnapshot(ctx)
	must(t, err)
	defer snap.Release()

	for i := range 3 {
		must(t, c.Signal(i, syscall.SIGSTOP))
	}
	stopped := true
	defer func() {
		if stopped {
			for i := range 3 {
				c.Signal(i, syscall.SIGCONT)
			}
		}
	}()
	const deadline = 300 * time.Millisecond
	calls := map[string]func(ctx context.Context) error{
		"Get":         func(ctx context.Context) error { _, err := db.Get(ctx, []byte("k")); return err },
		"Put":         func(ctx context.Context) error { return db.Put(ctx, []byte("k"), []byte("w")) },
		"Delete":      func(ctx context.Context) error { return db.Delete(ctx, []byte("k")) },
		"DeleteRange": func(ctx context.Context) error { return db.DeleteRange(ctx, nil) },
		"Write": func(ctx context.Context) error {
			var b party.Batch
			b.Put([]byte("a"), nil)
			return db.Write(ctx, &b)
		},
		"iterator": func(ctx context.Context) error {
			it := db.NewIterator(ctx, nil)
			defer it.Release()
			it.First()
			return it.Error()
		},
		"snapshot Get": func(ctx context.Context) error { _, err := snap.Get(ctx, []byte("k")); return err },
		"GetSnapshot":  func(ctx context.Context) error { _, err := db.GetSnapshot(ctx); return err },
		"Update": func(ctx context.Context) error {
			return db.Update(ctx, func(tx *party.Transaction) error {
				if _, err := tx.Get(ctx, []byte("k")); err != nil && !errors.Is(err, party.ErrNotFound) {
					return err
				}
				return tx.Put(ctx, []byte("k"), nil)
			})
		},
		"Watch":        func(ctx context.Context) error { _, err := db.Watch(ctx, nil); return err },
		"Watcher.Next": func(ctx context.Context) error { _, err := w.Next(ctx); return err },
		"Status":       func(ctx context.Context) error { _, err := db.Status(ctx); return err },
	}
	for name, call := range calls {
		cctx, ccancel := context.WithTimeout(context.Background(), deadline)
		start := time.Now()
		err := call(cctx)
		took := time.Since(start)
		ccancel()
		if err == nil || !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, party.ErrCommitUnknown) {
			t.Errorf("%s with the cluster stopped: %v, want the context's error", name, err)
		}
		if took > deadline+time.Second {
			t.Errorf("%s returned after %v, past its %v deadline", name, took, deadline)
		}
	}
	for i := range 3 {
		must(t, c.Signal(i, syscall.SIGCONT))
	}
	stopped = false
	// The writes abandoned above may still apply once the members go on
	// (etcd has no way to take back a request it received): let them,
	// before writing again.
	time.Sleep(time.Second)
	must(t, db.Put(ctx, []byte("k"), []byte("after")))
	if v, err := db.Get(ctx, []byte("k")); err != nil || string(v) != "after" {
		t.Fatalf("after the members went on: %q, %v", v, err)
	}
}
