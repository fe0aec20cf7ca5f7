package partyetcd

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/levelparty/party"
	"github.com/levelparty/party/backend"
)

// TestCommitRecords checks that commit records do not pile up: 100
// Updates on one handle leave one record (each commit deletes the
// previous one's), and Close deletes the last. It once failed with every
// record deleted by a commit queued again for deletion, which made each
// commit carry 32 useless deletes against etcd's 128 operations.
func TestCommitRecords(t *testing.T) {
	c := newCluster(t, 1)
	db := c.open(t, "rec/", nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for i := range 100 {
		must(t, db.Update(ctx, func(tx *party.Transaction) error {
			return tx.Put(ctx, []byte("k"), fmt.Appendf(nil, "%d", i))
		}))
	}
	cli, err := clientv3.New(c.Config())
	must(t, err)
	defer cli.Close()
	records := func() int64 {
		resp, err := cli.Get(ctx, "rec/"+string(backend.HiddenPrefix()), clientv3.WithPrefix(), clientv3.WithCountOnly())
		must(t, err)
		return resp.Count
	}
	if n := records(); n != 1 {
		t.Errorf("%d commit records after 100 Updates, want 1", n)
	}
	// A transaction of 100 writes still fits etcd's 128 operations.
	must(t, db.Update(ctx, func(tx *party.Transaction) error {
		for i := range 100 {
			if err := tx.Put(ctx, fmt.Appendf(nil, "w%03d", i), nil); err != nil {
				return err
			}
		}
		return nil
	}))
	must(t, db.Close())
	if n := records(); n != 0 {
		t.Errorf("%d commit records after Close, want 0", n)
	}
}

// TestWatchEmptyRange: a watch of an empty range is no error, and its
// Next waits for its context (etcd refuses to watch such a range).
func TestWatchEmptyRange(t *testing.T) {
	c := newCluster(t, 1)
	db := c.open(t, "empty/", nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	w, err := db.Watch(ctx, &party.Range{Start: []byte("b"), Limit: []byte("a")})
	must(t, err)
	defer w.Close()
	must(t, db.Put(ctx, []byte("a"), nil))
	short, cancelShort := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancelShort()
	if cs, err := w.Next(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next on an empty range: %v, %v; want its context's end", cs, err)
	}
}
