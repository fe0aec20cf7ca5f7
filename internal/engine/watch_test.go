package engine

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/levelparty/party/backend"
)

// TestWatchTotalBounded checks that the watches of an engine hold at most
// maxWatchTotal bytes together, whatever their number: 24 watches that
// never read, each allowed 4 MiB, while 3 MiB of changes pass (72 MiB for all). Each watch
// then has its changes in order, or a gap first.
func TestWatchTotalBounded(t *testing.T) {
	e, err := Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	var ws []*Watch
	for range 24 {
		w, err := e.Watch(backend.Range{}, 0)
		if err != nil {
			t.Fatal(err)
		}
		ws = append(ws, w)
	}
	value := make([]byte, 10<<10)
	peak := int64(0)
	ctx := context.Background()
	for i := range 300 {
		if err := e.Put(ctx, fmt.Appendf(nil, "k%04d", i), value, false); err != nil {
			t.Fatal(err)
		}
		peak = max(peak, e.hub.total.Load())
	}
	if peak > maxWatchTotal {
		t.Fatalf("the watches held %d bytes together, more than %d", peak, maxWatchTotal)
	}
	gaps := 0
	for i, w := range ws {
		ev, err := w.Next(ctx)
		if errors.Is(err, backend.ErrWatchGap) {
			gaps++
			continue
		}
		if err != nil || string(ev[0].Key) != "k0000" {
			t.Fatalf("watch %d: first event %v, %v: want k0000 or a gap", i, ev, err)
		}
	}
	if gaps == 0 {
		t.Fatal("no watch dropped its changes, though together they could not hold them")
	}
	t.Logf("peak %.1f MiB held by 24 watches; %d reported a gap", float64(peak)/(1<<20), gaps)
}
