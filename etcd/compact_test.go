package partyetcd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/levelparty/party"
	"github.com/levelparty/party/backend"
)

// TestCompaction: once etcd compacts the revisions a reader needs, a
// snapshot's reads and an iterator's next page fail with ErrSnapshotLost,
// and a watcher that had not received them reports ErrWatchGap, once,
// after the changes it holds, then goes on from the compaction's revision.
func TestCompaction(t *testing.T) {
	s, cli := newCluster(t, 1).store(t, "compact/")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	for i := range 40 {
		must(t, s.Put(ctx, fmt.Appendf(nil, "it%03d", i), nil))
	}
	snap, err := s.GetSnapshot(ctx)
	must(t, err)
	cur, err := s.NewCursor(ctx, backend.Range{Start: []byte("it"), Limit: []byte("iu")})
	must(t, err)
	if _, _, ok, err := cur.Seek(ctx, backend.SeekFirst, nil); !ok || err != nil {
		t.Fatalf("first entry: %v, %v", ok, err)
	}
	// A watcher that falls behind: it stops etcd's watch past 4 MiB.
	bw, err := s.Watch(ctx, backend.Range{Start: []byte("w"), Limit: []byte("x")})
	must(t, err)
	w := bw.(*watcher)
	defer w.Close()
	value := bytes.Repeat([]byte("v"), 100<<10)
	const writes = 80
	for i := range writes {
		must(t, s.Put(ctx, fmt.Appendf(nil, "w%03d", i), value))
	}
	time.Sleep(500 * time.Millisecond)
	rev, err := s.revision(ctx)
	must(t, err)
	if _, err := cli.Compact(ctx, rev); err != nil {
		t.Fatal(err)
	}
	must(t, s.Put(ctx, []byte("w999"), []byte("after")))

	if _, err := snap.Get(ctx, []byte("it000")); !errors.Is(err, party.ErrSnapshotLost) {
		t.Errorf("a snapshot's Get after compaction: %v, want ErrSnapshotLost", err)
	}
	var curErr error
	for range 40 {
		if _, _, ok, err := cur.Next(ctx); err != nil || !ok {
			curErr = err
			break
		}
	}
	if !errors.Is(curErr, party.ErrSnapshotLost) {
		t.Errorf("an iterator's next page after compaction: %v, want ErrSnapshotLost", curErr)
	}
	got, gaps := 0, 0
	for {
		cs, err := w.Next(ctx)
		if errors.Is(err, party.ErrWatchGap) {
			gaps++
			continue
		}
		must(t, err)
		if string(cs[0].Key) == "w999" {
			break
		}
		if gaps > 0 {
			// etcd keeps the compaction's own revision: the last write
			// before it may come again after the gap, no other.
			if string(cs[0].Key) != fmt.Sprintf("w%03d", writes-1) {
				t.Fatalf("a change from before the compaction after the gap: %q", cs[0].Key)
			}
			continue
		}
		got++
	}
	if gaps != 1 || got == 0 || got == writes {
		t.Errorf("%d changes before %d gaps, then the later write; want some changes (those held), one gap", got, gaps)
	}
	t.Logf("%d of %d changes held before the gap", got, writes)
}
