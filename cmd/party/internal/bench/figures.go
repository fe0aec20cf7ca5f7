package bench

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"sync"
	"time"

	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/util"

	"github.com/levelparty/party"
	"github.com/levelparty/party/cmd/party/internal/child"
)

// memEntries is the number of entries of the slow reader's range.
func (s sizes) memEntries() int {
	return int(s.memBytes / (keyLen + valueLen))
}

// followerFigures measures the follower figures on one database filled
// with fill entries, read by a follower in this process from a leader
// child, and by goleveldb directly on a copy of the same files; then the
// slow reader's memory.
func (r *runner) followerFigures() ([]Figure, error) {
	sz := r.sz
	fill := max(sz.iterN, sz.memEntries())
	directDir, partyDir := r.dir("direct"), r.dir("party")
	r.logf("filling goleveldb with %s entries (%.0f MB of keys and values) and copying it for party...",
		child.Thousands(int64(fill)), float64(fill*(keyLen+valueLen))/(1<<20))
	t0 := time.Now()
	if err := fillDirect(directDir, fill); err != nil {
		return nil, err
	}
	if err := copyDB(directDir, partyDir); err != nil {
		return nil, err
	}
	r.logf("filled in %v", time.Since(t0).Round(time.Millisecond))

	figs, err := r.followerThroughput(partyDir, directDir, fill)
	if err != nil {
		return nil, err
	}
	mem, err := r.slowMemFigure(partyDir)
	if err != nil {
		return nil, err
	}
	return append(figs, mem), nil
}

// sides opens the two sides of a comparison: goleveldb on directDir in
// this process, and a follower in this process of a leader child serving
// partyDir. done closes all three.
func (r *runner) sides(partyDir, directDir string) (direct *leveldb.DB, leader *proc, db *party.DB, done func(), err error) {
	direct, err = leveldb.OpenFile(directDir, nil)
	if err != nil {
		return nil, nil, nil, nil, fmt.Errorf("bench: open goleveldb: %w", err)
	}
	leader, err = r.spawn(roleLeader, partyDir)
	if err != nil {
		direct.Close()
		return nil, nil, nil, nil, err
	}
	db, err = r.openFollower(partyDir, leader, nil)
	if err != nil {
		leader.stop()
		direct.Close()
		return nil, nil, nil, nil, err
	}
	return direct, leader, db, func() { db.Close(); leader.stop(); direct.Close() }, nil
}

func (r *runner) followerThroughput(partyDir, directDir string, fill int) ([]Figure, error) {
	sz := r.sz
	ctx := r.ctx
	direct, leader, db, done, err := r.sides(partyDir, directDir)
	if err != nil {
		return nil, err
	}
	defer done()
	// A second follower handle in this process, that busy-polls.
	pollDB, err := r.openFollower(partyDir, leader, &party.Options{BusyPoll: busyPoll})
	if err != nil {
		return nil, err
	}
	defer pollDB.Close()
	r.logf("leader: process %d; follower: this process %d", leader.pid(), os.Getpid())

	partyGet := func(k []byte) ([]byte, error) { return db.Get(ctx, k) }
	directGet := func(k []byte) ([]byte, error) { return direct.Get(k, nil) }
	partyPut := func(k, v []byte) error { return db.Put(ctx, k, v) }
	pollGet := func(k []byte) ([]byte, error) { return pollDB.Get(ctx, k) }
	pollPut := func(k, v []byte) error { return pollDB.Put(ctx, k, v) }
	directPut := func(k, v []byte) error { return direct.Put(k, v, nil) }
	// Every figure and repetition reads or writes its own keys: base
	// numbers them apart.
	base := func(figure, rep int) uint64 { return uint64(figure)<<48 | uint64(rep)<<32 }
	seq := func(n int, mk func(rep int) op) side {
		return func(rep int) (sample, error) { return sequential(ctx, n, mk(rep)) }
	}
	c64 := func(n int, mk func(rep int) op) side {
		return func(rep int) (sample, error) { return concurrent(ctx, n, concurrency, mk(rep)) }
	}

	// The busy-poll figures run before the puts, on a leader that is not
	// compacting: with both processes spinning on a small machine, a third
	// busy thread would time-slice them.
	// The gets read keys that fit the block cache, to measure the path to
	// the engine rather than the engine's misses; both sides read them all
	// once first, which fills their caches.
	getKeys := min(sz.getKeys, fill)
	getNote := fmt.Sprintf("random keys among %s of %s", child.Thousands(int64(getKeys)), child.Thousands(int64(fill)))
	if err := r.warm(db, direct, getKeys); err != nil {
		return nil, err
	}
	start, limit := make([]byte, keyLen), make([]byte, keyLen)
	fillKey(start, 0)
	fillKey(limit, uint64(sz.iterN))
	specs := []struct {
		name          string
		ops           int
		note          string
		party, direct side
	}{
		{FollowerGetSeq, sz.seqOps, getNote,
			seq(sz.seqOps, func(rep int) op { return getOp(partyGet, getKeys, base(1, rep)) }),
			seq(sz.seqOps, func(rep int) op { return getOp(directGet, getKeys, base(1, rep)) })},
		{FollowerGetSeqPoll, sz.seqOps, getNote + fmt.Sprintf("; Options.BusyPoll %v", busyPoll),
			seq(sz.seqOps, func(rep int) op { return getOp(pollGet, getKeys, base(5, rep)) }),
			seq(sz.seqOps, func(rep int) op { return getOp(directGet, getKeys, base(5, rep)) })},
		{FollowerPutSeqPoll, sz.seqOps, fmt.Sprintf("Options.BusyPoll %v", busyPoll),
			seq(sz.seqOps, func(rep int) op { return putOp(pollPut, base(6, rep)) }),
			seq(sz.seqOps, func(rep int) op { return putOp(directPut, base(6, rep)) })},
		{FollowerGetC64, sz.c64Ops, getNote,
			c64(sz.c64Ops, func(rep int) op { return getOp(partyGet, getKeys, base(2, rep)) }),
			c64(sz.c64Ops, func(rep int) op { return getOp(directGet, getKeys, base(2, rep)) })},
		{FollowerIter, sz.iterN, "",
			func(int) (sample, error) {
				return scan(ctx, sz.iterN, valueLen, func() cursor { return db.NewIterator(ctx, &party.Range{Start: start, Limit: limit}) })
			},
			func(int) (sample, error) {
				return scan(ctx, sz.iterN, valueLen, func() cursor { return direct.NewIterator(&util.Range{Start: start, Limit: limit}, nil) })
			}},
		{FollowerScan10Seq, sz.seqOps / 4, getNote,
			seq(sz.seqOps/4, func(rep int) op {
				return scanOp(func(k []byte) cursor { return db.NewIterator(ctx, &party.Range{Start: k}) }, getKeys, base(7, rep))
			}),
			seq(sz.seqOps/4, func(rep int) op {
				return scanOp(func(k []byte) cursor { return direct.NewIterator(&util.Range{Start: k}, nil) }, getKeys, base(7, rep))
			})},
		{FollowerPutSeq, sz.seqOps, "",
			seq(sz.seqOps, func(rep int) op { return putOp(partyPut, base(3, rep)) }),
			seq(sz.seqOps, func(rep int) op { return putOp(directPut, base(3, rep)) })},
		{FollowerPutC64, sz.c64Ops, "",
			c64(sz.c64Ops, func(rep int) op { return putOp(partyPut, base(4, rep)) }),
			c64(sz.c64Ops, func(rep int) op { return putOp(directPut, base(4, rep)) })},
	}
	var figs []Figure
	for _, s := range specs {
		f, err := r.throughputFigure(s.name, s.ops, "follower", leader, s.party, s.direct)
		if err != nil {
			return nil, err
		}
		f.Note = s.note
		figs = append(figs, f)
	}
	scale, err := r.scaleFigures(partyDir, leader, directGet, directPut, getKeys)
	if err != nil {
		return nil, err
	}
	tx, err := r.txFigure(partyDir, db, direct)
	if err != nil {
		return nil, err
	}
	watch, err := r.watchFigures(partyDir, db)
	if err != nil {
		return nil, err
	}
	sized, err := r.sizeFigures(db, direct)
	if err != nil {
		return nil, err
	}
	figs = append(append(figs, scale...), tx)
	return append(append(figs, watch...), sized...), nil
}

// warm reads the first n fill entries on both sides, which brings their
// blocks into both block caches.
func (r *runner) warm(db *party.DB, direct *leveldb.DB, n int) error {
	start, limit := make([]byte, keyLen), make([]byte, keyLen)
	fillKey(start, 0)
	fillKey(limit, uint64(n))
	if _, err := scan(r.ctx, n, valueLen, func() cursor { return db.NewIterator(r.ctx, &party.Range{Start: start, Limit: limit}) }); err != nil {
		return err
	}
	_, err := scan(r.ctx, n, valueLen, func() cursor { return direct.NewIterator(&util.Range{Start: start, Limit: limit}, nil) })
	return err
}

// localFigure measures the leader's own puts: this process opens a fresh
// directory and must become its leader.
func (r *runner) localFigure() ([]Figure, error) {
	ctx := r.ctx
	db, err := party.Open(r.dir("local"), nil)
	if err != nil {
		return nil, fmt.Errorf("bench: open leader: %w", err)
	}
	defer db.Close()
	if !db.IsLeader() {
		return nil, errors.New("bench: this process is not the leader of a fresh directory")
	}
	direct, err := leveldb.OpenFile(r.dir("local-direct"), nil)
	if err != nil {
		return nil, fmt.Errorf("bench: open goleveldb: %w", err)
	}
	defer direct.Close()
	n := r.sz.seqOps
	f, err := r.throughputFigure(LocalPutSeq, n, "leader", nil,
		func(rep int) (sample, error) {
			return sequential(ctx, n, putOp(func(k, v []byte) error { return db.Put(ctx, k, v) }, uint64(rep)<<32))
		},
		func(rep int) (sample, error) {
			return sequential(ctx, n, putOp(func(k, v []byte) error { return direct.Put(k, v, nil) }, uint64(rep)<<32))
		},
	)
	if err != nil {
		return nil, err
	}
	return []Figure{f}, nil
}

// slowMemFigure measures, in every repetition, a fresh leader child and
// a fresh follower in this process while the follower reads
// sz.memEntries() entries slowly, sleeping after every batch: their peak
// RSS during the read, minus their RSS before it. Then, for comparison, a
// fresh child reads the same entries at the same pace with goleveldb
// directly: what the engine itself costs.
func (r *runner) slowMemFigure(partyDir string) (Figure, error) {
	sz := r.sz
	n := sz.memEntries()
	f := Figure{Name: FollowerIterSlowMem, Kind: Memory, Reps: sz.reps, Ops: n,
		RangeMB: float64(n*(keyLen+valueLen)) / (1 << 20)}
	if !rssSupported {
		return f, errors.New("bench: " + FollowerIterSlowMem + " reads RSS from /proc: Linux only")
	}
	var lg, fg, dg, lp, fp []float64
	for rep := range sz.reps {
		growth, peak, err := r.slowRead(partyDir, n)
		if err != nil {
			return f, fmt.Errorf("%s: %w", FollowerIterSlowMem, err)
		}
		direct, err := r.slowReadDirect(partyDir, n)
		if err != nil {
			return f, fmt.Errorf("%s: %w", FollowerIterSlowMem, err)
		}
		lg, fg, dg = append(lg, growth[0]), append(fg, growth[1]), append(dg, direct)
		lp, fp = append(lp, peak[0]), append(fp, peak[1])
		r.logf("%s rep %d/%d: %.0f MB range: leader RSS +%.1f MB (peak %.1f MB), follower RSS +%.1f MB (peak %.1f MB); goleveldb direct reader RSS +%.1f MB",
			FollowerIterSlowMem, rep+1, sz.reps, f.RangeMB, growth[0], peak[0], growth[1], peak[1], direct)
	}
	f.LeaderRSSGrowthMB, f.FollowerRSSGrowthMB, f.DirectRSSGrowthMB = spread(lg), spread(fg), spread(dg)
	f.LeaderRSSPeakMB, f.FollowerRSSPeakMB = spread(lp), spread(fp)
	return f, nil
}

// slowRead is one repetition of slowMemFigure on party: it returns the
// growth and the peak of the leader's RSS and of the follower's, in MB.
func (r *runner) slowRead(partyDir string, n int) (growth, peak []float64, err error) {
	leader, err := r.spawn(roleLeader, partyDir)
	if err != nil {
		return nil, nil, err
	}
	defer leader.stop()
	db, err := r.openFollower(partyDir, leader, nil)
	if err != nil {
		return nil, nil, err
	}
	defer db.Close()
	runtime.GC()
	debug.FreeOSMemory()
	w, err := watchRSS(leader.pid(), os.Getpid())
	if err != nil {
		return nil, nil, err
	}
	it := db.NewIterator(r.ctx, memRange(n))
	err = slowScan(it, n, r.sz.slowBatch, r.sz.slowSleep)
	growth, peak, werr := w.stop()
	if err == nil {
		err = werr
	}
	return growth, peak, err
}

// slowReadDirect reads like slowRead, with goleveldb directly in a fresh
// child, and returns the growth of the child's RSS in MB.
func (r *runner) slowReadDirect(dir string, n int) (float64, error) {
	p, err := r.spawn(roleDirectReader, dir)
	if err != nil {
		return 0, err
	}
	defer p.stop()
	w, err := watchRSS(p.pid())
	if err != nil {
		return 0, err
	}
	err = p.command(r.ctx, fmt.Sprintf("read %d %d %d", n, r.sz.slowBatch, r.sz.slowSleep))
	growth, _, werr := w.stop()
	if err == nil {
		err = werr
	}
	if err != nil {
		return 0, err
	}
	return growth[0], nil
}

// memRange is the range of the first n fill entries.
func memRange(n int) *party.Range {
	start, limit := make([]byte, keyLen), make([]byte, keyLen)
	fillKey(start, 0)
	fillKey(limit, uint64(n))
	return &party.Range{Start: start, Limit: limit}
}

// slowScan reads every entry of it, sleeping after every batch entries,
// checks that there are n, and releases it.
func slowScan(it cursor, n, batch int, sleep time.Duration) error {
	defer it.Release()
	got := 0
	for it.Next() {
		got++
		if got%batch == 0 {
			time.Sleep(sleep)
		}
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("bench: slow read: %w", err)
	}
	if got != n {
		return fmt.Errorf("bench: slow read: %d entries, want %d", got, n)
	}
	return nil
}

// rssWatch samples the RSS of processes every few milliseconds.
type rssWatch struct {
	pids []int
	base []int64
	done chan struct{}
	wg   sync.WaitGroup

	mu   sync.Mutex // guards peak and err
	peak []int64
	err  error
}

// watchRSS reads the RSS of pids now and starts sampling it.
func watchRSS(pids ...int) (*rssWatch, error) {
	w := &rssWatch{pids: pids, base: make([]int64, len(pids)), peak: make([]int64, len(pids)), done: make(chan struct{})}
	for i, pid := range pids {
		v, err := rss(pid)
		if err != nil {
			return nil, err
		}
		w.base[i], w.peak[i] = v, v
	}
	w.wg.Go(func() {
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			for i, pid := range w.pids {
				v, err := rss(pid)
				w.mu.Lock()
				if err != nil && w.err == nil {
					w.err = err
				}
				w.peak[i] = max(w.peak[i], v)
				w.mu.Unlock()
			}
			select {
			case <-w.done:
				return
			case <-tick.C:
			}
		}
	})
	return w, nil
}

// stop ends the sampling, takes a last sample, and returns each process's
// peak minus its first RSS, and its peak, in MB.
func (w *rssWatch) stop() (growth, peak []float64, err error) {
	close(w.done)
	w.wg.Wait()
	mb := func(b int64) float64 { return float64(b) / (1 << 20) }
	for i := range w.pids {
		growth = append(growth, mb(w.peak[i]-w.base[i]))
		peak = append(peak, mb(w.peak[i]))
	}
	return growth, peak, w.err
}

// fillDirect writes n fill entries with goleveldb into a fresh dir and
// compacts them, so that every reader starts from the same settled
// files.
func fillDirect(dir string, n int) error {
	db, err := leveldb.OpenFile(dir, nil)
	if err != nil {
		return fmt.Errorf("bench: fill: %w", err)
	}
	var b leveldb.Batch
	k := make([]byte, keyLen)
	for i := range n {
		fillKey(k, uint64(i))
		b.Put(k, value(i))
		if b.Len() == 1000 || i == n-1 {
			if err := db.Write(&b, nil); err != nil {
				db.Close()
				return fmt.Errorf("bench: fill: %w", err)
			}
			b.Reset()
		}
	}
	if err := db.CompactRange(util.Range{}); err != nil {
		db.Close()
		return fmt.Errorf("bench: fill: compact: %w", err)
	}
	if err := db.Close(); err != nil {
		return fmt.Errorf("bench: fill: %w", err)
	}
	return nil
}

// copyDB copies the files of a closed goleveldb database, but its lock
// and logs, into a fresh directory.
func copyDB(from, to string) error {
	if err := os.MkdirAll(to, 0o755); err != nil {
		return err
	}
	entries, err := os.ReadDir(from)
	if err != nil {
		return err
	}
	for _, e := range entries {
		switch name := e.Name(); {
		case !e.Type().IsRegular(), name == "LOCK", name == "LOG", name == "LOG.old":
			continue
		}
		if err := copyFile(filepath.Join(from, e.Name()), filepath.Join(to, e.Name())); err != nil {
			return fmt.Errorf("bench: copy database: %w", err)
		}
	}
	return nil
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// startCPUProfile profiles this process into path until the returned
// function is called.
func startCPUProfile(path string) (func() error, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("bench: cpu profile: %w", err)
	}
	return func() error {
		pprof.StopCPUProfile()
		return f.Close()
	}, nil
}
