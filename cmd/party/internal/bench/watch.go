package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/levelparty/party"
	"github.com/levelparty/party/cmd/party/internal/child"
)

// The watch figures.
const (
	// WatchLatency is the time from a Put on one follower to the Next
	// that returns it on a watcher in another process.
	WatchLatency = "watch_latency"
	// FollowerPutC64Watched is follower_put_c64 with watchWatchers
	// watcher processes attached; its direct side is the same puts with
	// none, so its ratio is what the watchers cost.
	FollowerPutC64Watched = "follower_put_c64_watched8"
	watchWatchers         = 8
)

// watchPrefix is where the latency figure writes.
var watchPrefix = []byte("bench-watch/")

// watchCommand runs a load child's watch command: "watch N" registers a
// watch of watchPrefix, says "watching", takes N changes whose values are
// the UnixNano time of their Put, and answers "done ELAPSED_NS Q0 ...
// Q100", the latencies from Put to Next; "watch all" starts a watch of
// every key, read in the background and dropped, and says "watching";
// "watch stop" ends it and says "stopped".
func watchCommand(ctx context.Context, db *party.DB, arg string, out *child.Lines, stop *func() error) error {
	switch arg {
	case "all":
		w, err := db.Watch(ctx, nil)
		if err != nil {
			return err
		}
		done := make(chan error, 1)
		go func() {
			for {
				_, err := w.Next(ctx)
				if errors.Is(err, party.ErrClosed) {
					done <- nil
					return
				}
				if err != nil && !errors.Is(err, party.ErrWatchGap) {
					done <- err
					return
				}
			}
		}()
		*stop = func() error { w.Close(); return <-done }
		out.Printf("watching")
		return nil
	case "stop":
		if *stop == nil {
			return errors.New("watch stop: no watch")
		}
		err := (*stop)()
		*stop = nil
		out.Printf("stopped")
		return err
	}
	n, err := strconv.Atoi(arg)
	if err != nil {
		return fmt.Errorf("watch %q: %w", arg, err)
	}
	w, err := db.Watch(ctx, party.BytesPrefix(watchPrefix))
	if err != nil {
		return err
	}
	defer w.Close()
	out.Printf("watching")
	lat := make([]time.Duration, 0, n)
	start := time.Now()
	for len(lat) < n {
		ev, err := w.Next(ctx)
		if err != nil {
			return fmt.Errorf("watch: %w", err)
		}
		now := time.Now().UnixNano()
		for _, c := range ev {
			if len(c.Value) == 8 {
				lat = append(lat, time.Duration(now-int64(binary.BigEndian.Uint64(c.Value))))
			}
		}
	}
	q := make([]string, 0, 101)
	for _, v := range quantiles(lat) {
		q = append(q, strconv.FormatInt(int64(v), 10))
	}
	out.Printf("done %d %s", time.Since(start).Nanoseconds(), strings.Join(q, " "))
	return nil
}

// watchFigures measures WatchLatency and FollowerPutC64Watched, with load
// children following the leader of partyDir.
func (r *runner) watchFigures(partyDir string, db *party.DB) ([]Figure, error) {
	var loads []*proc
	defer func() {
		for _, p := range loads {
			p.stop()
		}
	}()
	for range watchWatchers {
		p, err := r.spawn(roleLoadFollower, partyDir)
		if err != nil {
			return nil, err
		}
		loads = append(loads, p)
	}
	ctx := r.ctx

	// Latency: sequential puts here, one watcher there.
	n := max(100, r.sz.seqOps/10)
	lf := Figure{Name: WatchLatency, Kind: Bound, Reps: r.sz.reps, Ops: n,
		Note: "Put on this follower to Next on a watcher in another process"}
	var rate, p50, p99 []float64
	for rep := range r.sz.reps {
		w := loads[0]
		if err := w.send(fmt.Sprintf("watch %d", n)); err != nil {
			return nil, err
		}
		if _, err := w.expect(ctx, time.Minute, "watching"); err != nil {
			return nil, err
		}
		k := make([]byte, len(watchPrefix)+8)
		copy(k, watchPrefix)
		v := make([]byte, 8)
		start := time.Now()
		for i := range n {
			binary.BigEndian.PutUint64(k[len(watchPrefix):], uint64(rep)<<32|uint64(i))
			binary.BigEndian.PutUint64(v, uint64(time.Now().UnixNano()))
			if err := db.Put(ctx, k, v); err != nil {
				return nil, err
			}
		}
		elapsed := time.Since(start)
		line, err := w.expect(ctx, time.Minute, "done ")
		if err != nil {
			return nil, err
		}
		var lat []time.Duration
		for _, s := range strings.Fields(line)[2:] {
			ns, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("bench: %s: %q", w, line)
			}
			lat = append(lat, time.Duration(ns))
		}
		p := percentiles(lat, 50, 99)
		rate, p50, p99 = append(rate, float64(n)/elapsed.Seconds()), append(p50, p[0]), append(p99, p[1])
		r.logf("%s rep %d/%d: p50 %.1f µs p99 %.1f µs", WatchLatency, rep+1, r.sz.reps, p[0], p[1])
	}
	lf.OpsPerSec, lf.P50us, lf.P99us = spread(rate), spread(p50), spread(p99)

	// Puts with 64 in flight, with 8 watchers of every key, against none.
	c64 := func(rep int) (sample, error) {
		return concurrent(ctx, r.sz.c64Ops, concurrency, putOp(func(k, v []byte) error { return db.Put(ctx, k, v) }, uint64(30)<<48|uint64(rep)<<32))
	}
	watched := func(rep int) (sample, error) {
		for _, p := range loads {
			if err := p.send("watch all"); err != nil {
				return sample{}, err
			}
			if _, err := p.expect(ctx, time.Minute, "watching"); err != nil {
				return sample{}, err
			}
		}
		s, err := concurrent(ctx, r.sz.c64Ops, concurrency, putOp(func(k, v []byte) error { return db.Put(ctx, k, v) }, uint64(31)<<48|uint64(rep)<<32))
		for _, p := range loads {
			if cerr := p.send("watch stop"); cerr != nil && err == nil {
				err = cerr
			}
			if _, cerr := p.expect(ctx, time.Minute, "stopped"); cerr != nil && err == nil {
				err = cerr
			}
		}
		return s, err
	}
	wf, err := r.throughputFigure(FollowerPutC64Watched, r.sz.c64Ops, "follower", nil, watched, c64)
	if err != nil {
		return nil, err
	}
	wf.Note = fmt.Sprintf("%d watcher processes of every key; direct: the same puts on party with no watcher", watchWatchers)
	return []Figure{lf, wf}, nil
}
