// Package bench measures party as issue 4 asks: a leader and a follower
// in separate processes on a fresh temporary directory, the same
// operations on goleveldb used directly in the same run, several
// repetitions, and the spread (min, median, max) of every measure.
//
// The leader, and the participants of the failover figure, are child
// processes: the current binary (os.Executable) run again with
// PARTY_BENCH_CHILD set. The main function of any binary that calls Run
// must therefore call MaybeChild first.
//
// # Figures
//
// Keys are 16 bytes and values 100 bytes.
//
//	follower_get_seq        Get on a follower, one at a time, of random keys among
//	                        50,000 (about 6 MB: they fit goleveldb's block cache)
//	follower_put_seq        Put on a follower, one at a time
//	follower_put_c64        Put on a follower, 64 goroutines in flight
//	follower_iter           full iteration of N entries on a follower; one op is one entry
//	follower_scan10_seq     a short range read on a follower, one at a time: open an
//	                        iterator at a random key, read 10 entries, release it
//	failover_gap_ms         kill -9 of the leader to the first acknowledged op on every follower
//	follower_get_c64        Get on a follower, 64 goroutines in flight
//	local_put_seq           the leader's own Puts, one at a time
//	follower_iter_slow_mem  RSS growth of the leader and the follower while a slow reader
//	                        iterates a large range (sleeping between batches of entries),
//	                        and of a goleveldb reader doing the same, for comparison
//	tx_update_c4            Update increments of one counter from 4 follower processes,
//	                        one at a time each; direct: Get and Put under a mutex
//	watch_latency           Put on this follower to Next on a watcher in another process
//	follower_put_c64_watched8  follower_put_c64 with 8 watcher processes of every key;
//	                        direct: the same puts with no watcher
//	socket_roundtrip_seq    the bound of the sequential figures: a bare round trip of
//	                        116 bytes each way over a unix socket between two processes
//
// The failover figure also reads, from goleveldb's LOG, how long the new
// leader's engine took to open: the part of the gap spent in recovery.
//
// Each throughput figure runs the same operations on goleveldb directly,
// in the measuring process, in the same repetition; ratio is party's
// rate divided by goleveldb's. Latency percentiles come from a timing of
// every operation.
//
// Setting PARTY_BENCH_CPUPROFILE to a directory writes a CPU profile of
// the measuring process and of the leader child for the party side of
// every repetition of every throughput figure, for go tool pprof.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"time"
)

// Options configure Run. The zero value runs the full benchmark.
type Options struct {
	// Quick runs smaller figures and fewer repetitions, to finish in well
	// under 30 seconds.
	Quick bool

	// Reps is the number of repetitions of every figure. Zero means 5, or
	// 3 with Quick.
	Reps int

	// Dir is where the temporary directories are made. Empty means
	// os.TempDir().
	Dir string

	// Progress receives a line per step. Nil means silent.
	Progress io.Writer

	// Large also measures the database-size figures (LargeNames), on
	// databases of 1 M and 10 M entries: about 3 GB of temporary disk and
	// several more minutes.
	Large bool

	// sizes overrides the sizes, for tests.
	sizes *sizes
}

// sizes are the dimensions of one run.
type sizes struct {
	reps       int
	seqOps     int           // operations per repetition of a sequential figure
	c64Ops     int           // operations per repetition of a 64-goroutine figure
	iterN      int           // entries of follower_iter
	getKeys    int           // the get figures read random keys among the first getKeys
	memBytes   int64         // bytes of keys and values in the slow reader's range
	sizeBytes  int           // bytes of values written, read and iterated per value size
	scaleOps   int           // operations per follower process in a repetition of a scaling figure
	slowBatch  int           // entries the slow reader reads between two sleeps
	slowSleep  time.Duration // the slow reader's sleep
	followers  int           // follower children of the failover figure
	kills      int           // kills of the leader per repetition of the failover figure
	settle     time.Duration // steady operation before each kill
	childStart time.Duration // bound on a child's start, to detect a hang
}

var (
	fullSizes = sizes{
		reps:       5,
		seqOps:     50000,
		c64Ops:     200000,
		iterN:      1000000,
		getKeys:    50000,
		memBytes:   200 << 20,
		sizeBytes:  64 << 20,
		scaleOps:   50000,
		slowBatch:  1000,
		slowSleep:  time.Millisecond,
		followers:  3,
		kills:      5,
		settle:     100 * time.Millisecond,
		childStart: 30 * time.Second,
	}
	quickSizes = sizes{
		reps:       3,
		seqOps:     5000,
		c64Ops:     30000,
		iterN:      100000,
		getKeys:    50000,
		memBytes:   20 << 20,
		sizeBytes:  2 << 20,
		scaleOps:   3000,
		slowBatch:  1000,
		slowSleep:  time.Millisecond,
		followers:  3,
		kills:      3,
		settle:     50 * time.Millisecond,
		childStart: 30 * time.Second,
	}
)

// The names of the figures, in the order Run returns them.
const (
	FollowerGetSeq      = "follower_get_seq"
	FollowerPutSeq      = "follower_put_seq"
	FollowerGetSeqPoll  = "follower_get_seq_busypoll"
	FollowerPutSeqPoll  = "follower_put_seq_busypoll"
	FollowerPutC64      = "follower_put_c64"
	FollowerIter        = "follower_iter"
	FollowerScan10Seq   = "follower_scan10_seq"
	FailoverGapMs       = "failover_gap_ms"
	FollowerGetC64      = "follower_get_c64"
	LocalPutSeq         = "local_put_seq"
	FollowerIterSlowMem = "follower_iter_slow_mem"
	SocketRoundtripSeq  = "socket_roundtrip_seq"
)

// Names lists the figures in the order Run returns them: then the
// scaling figures, followers_get_KxN and followers_put_KxN, the
// transactions figure and the value-size figures.
var Names = append([]string{
	FollowerGetSeq, FollowerPutSeq, FollowerGetSeqPoll, FollowerPutSeqPoll, FollowerPutC64, FollowerIter,
	FollowerScan10Seq, FailoverGapMs, FollowerGetC64, LocalPutSeq, FollowerIterSlowMem,
	SocketRoundtripSeq,
}, append(append(scaleNames(), TxUpdateC4, WatchLatency, FollowerPutC64Watched), sizeNames()...)...)

const (
	keyLen   = 16
	valueLen = 100
	// concurrency is the number of goroutines of the c64 figures.
	concurrency = 64
	// busyPoll is the follower's Options.BusyPoll in the busypoll figures.
	busyPoll = 50 * time.Microsecond
)

// Run measures every figure and returns them in the order of Names. It
// removes its temporary directories and stops its child processes before
// returning, whatever happens.
func Run(ctx context.Context, o Options) ([]Figure, error) {
	sz := fullSizes
	if o.Quick {
		sz = quickSizes
	}
	if o.sizes != nil {
		sz = *o.sizes
	}
	if o.Reps > 0 {
		sz.reps = o.Reps
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("bench: cannot re-execute this program: %w", err)
	}
	root, err := os.MkdirTemp(o.Dir, "party-bench-")
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	defer os.RemoveAll(root)
	r := &runner{
		ctx:      ctx,
		sz:       sz,
		exe:      exe,
		root:     root,
		progress: o.Progress,
		profile:  os.Getenv(envCPUProfile),
	}
	defer stopProcs(r.procs...)
	r.logf("party bench: %d repetitions, %d-byte keys, %d-byte values, GOMAXPROCS %d, in %s",
		sz.reps, keyLen, valueLen, runtime.GOMAXPROCS(0), root)
	r.logLoad("before")
	defer r.logLoad("after")

	var figs []Figure
	steps := []func() ([]Figure, error){r.roundtripFigure, r.followerFigures, r.localFigure, r.failoverFigure}
	names := Names
	if o.Large {
		steps = append(steps, r.dbSizeFigures)
		names = append(slices.Clone(Names), LargeNames...)
	}
	for _, step := range steps {
		f, err := step()
		if err != nil {
			return nil, err
		}
		figs = append(figs, f...)
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	// Every child has been stopped by now: it must have exited cleanly.
	stopProcs(r.procs...)
	for _, p := range r.procs {
		if p.stopErr != nil {
			return nil, p.stopErr
		}
	}
	return order(figs, names)
}

// order sorts figs as names and checks that every figure is there once.
func order(figs []Figure, names []string) ([]Figure, error) {
	byName := make(map[string]Figure, len(figs))
	for _, f := range figs {
		if _, dup := byName[f.Name]; dup {
			return nil, fmt.Errorf("bench: figure %s measured twice", f.Name)
		}
		byName[f.Name] = f
	}
	out := make([]Figure, 0, len(names))
	for _, n := range names {
		f, ok := byName[n]
		if !ok {
			return nil, fmt.Errorf("bench: figure %s was not measured", n)
		}
		out = append(out, f)
	}
	return out, nil
}

// runner is the state of one Run.
type runner struct {
	ctx      context.Context
	sz       sizes
	exe      string
	root     string
	progress io.Writer
	profile  string // directory for CPU profiles; empty: none

	procs []*proc // every child started; Run stops them all
}

func (r *runner) logf(format string, args ...any) {
	if r.progress != nil {
		fmt.Fprintf(r.progress, format+"\n", args...)
	}
}

// logLoad reports the load average, and warns when other programs compete
// for the processors: the figures are then lower and wider than they
// should be.
func (r *runner) logLoad(when string) {
	load, err := loadAverage()
	if err != nil {
		return
	}
	r.logf("load average %s: %.2f", when, load)
	if n := runtime.NumCPU(); when == "before" && load > float64(n)/2 {
		r.logf("warning: the load average is %.2f on %d processors: other programs compete with the benchmark", load, n)
	}
}

// dir returns a fresh directory under the run's root.
func (r *runner) dir(name string) string {
	return filepath.Join(r.root, name)
}

// errNotFollower is returned when the measuring process did not become a
// follower of the leader child.
var errNotFollower = errors.New("bench: the measuring process became leader although the leader child holds the database")
