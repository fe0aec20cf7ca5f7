package partyetcd

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/levelparty/party/backend"
)

// TestWatchSlowReader writes 12 MiB of changes that a watcher does not
// read: it holds at most its bound (it stopped etcd's watch), and then
// delivers every change, in order and once, with no gap (it started
// etcd's watch again from the next revision). With an unbounded buffer
// the watcher holds all 12 MiB.
func TestWatchSlowReader(t *testing.T) {
	s, _ := newCluster(t, 1).store(t, "slow/")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bw, err := s.Watch(ctx, backend.Range{})
	must(t, err)
	w := bw.(*watcher)
	defer w.Close()

	const writes = 120
	value := bytes.Repeat([]byte("v"), 100<<10)
	for i := range writes {
		must(t, s.Put(ctx, fmt.Appendf(nil, "k%03d", i), value))
	}
	time.Sleep(500 * time.Millisecond) // let the watcher take what it will
	held := w.buffered()
	t.Logf("the watcher holds %d bytes of %d written", held, writes*len(value))
	if held > maxWatchBuffer+2<<20 {
		t.Fatalf("the watcher holds %d bytes: more than its bound %d and one response", held, maxWatchBuffer)
	}
	for i := range writes {
		cs, err := w.Next(ctx)
		must(t, err)
		if len(cs) != 1 || string(cs[0].Key) != fmt.Sprintf("k%03d", i) {
			t.Fatalf("change %d: %d changes, first key %q", i, len(cs), cs[0].Key)
		}
	}
}
