package bench

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/levelparty/party"
	"github.com/levelparty/party/cmd/party/internal/child"
)

// Keys are 16 bytes: an 8-byte prefix and a big-endian number. The fill
// keys are 0, 1, 2...; the keys of the put figures are scrambled numbers,
// so that puts land all over the key space.
const (
	fillPrefix = "bench/f:"
	putPrefix  = "bench/p:"
)

func fillKey(k []byte, i uint64) {
	copy(k, fillPrefix)
	binary.BigEndian.PutUint64(k[8:], i)
}

func putKey(k []byte, i uint64) {
	copy(k, putPrefix)
	binary.BigEndian.PutUint64(k[8:], scramble(i))
}

// scramble is a bijection of uint64 that spreads consecutive numbers.
func scramble(i uint64) uint64 { return i * 0x9e3779b97f4a7c15 }

// values are 256 random values of valueLen bytes; entry i has value i%256,
// so that the data does not compress much.
var values = func() [256][]byte {
	var vs [256][]byte
	rnd := rand.New(rand.NewPCG(1, 2))
	for i := range vs {
		vs[i] = make([]byte, valueLen)
		for j := range vs[i] {
			vs[i][j] = byte(rnd.Uint32())
		}
	}
	return vs
}()

func value(i int) []byte { return values[i%len(values)] }

// op is one operation of a figure: number i, with k a key buffer of its
// goroutine.
type op func(i int, k []byte) error

// getOp reads a random key of the fill, and checks its value.
func getOp(get func(k []byte) ([]byte, error), fill int, base uint64) op {
	return func(i int, k []byte) error {
		n := scramble(base+uint64(i)) % uint64(fill)
		fillKey(k, n)
		v, err := get(k)
		if err != nil {
			return fmt.Errorf("bench: get fill key %d: %w", n, err)
		}
		if len(v) != valueLen {
			return fmt.Errorf("bench: get fill key %d: %d bytes, want %d", n, len(v), valueLen)
		}
		return nil
	}
}

// scanLen is the number of entries a scanOp reads.
const scanLen = 10

// scanOp opens a cursor at a random key of the fill, reads scanLen
// entries and releases it.
func scanOp(open func(k []byte) cursor, fill int, base uint64) op {
	return func(i int, k []byte) error {
		n := scramble(base+uint64(i)) % uint64(fill-scanLen)
		fillKey(k, n)
		it := open(k)
		defer it.Release()
		for j := range scanLen {
			if !it.Next() {
				return fmt.Errorf("bench: scan from fill key %d: %d entries, want %d: %v", n, j, scanLen, it.Error())
			}
		}
		return it.Error()
	}
}

// putOp writes key base+i.
func putOp(put func(k, v []byte) error, base uint64) op {
	return func(i int, k []byte) error {
		putKey(k, base+uint64(i))
		return put(k, value(i))
	}
}

// sequential runs n operations one after another, timing each.
func sequential(ctx context.Context, n int, f op) (sample, error) {
	lat := make([]time.Duration, n)
	k := make([]byte, keyLen)
	start := time.Now()
	prev := start
	for i := range n {
		if err := f(i, k); err != nil {
			return sample{}, err
		}
		now := time.Now()
		lat[i] = now.Sub(prev)
		prev = now
		if i%1024 == 0 && ctx.Err() != nil {
			return sample{}, ctx.Err()
		}
	}
	return sample{n: n, elapsed: prev.Sub(start), lat: lat}, nil
}

// concurrent runs n operations from g goroutines, each taking the next
// operation as soon as its last one is done, timing each.
func concurrent(ctx context.Context, n, g int, f op) (sample, error) {
	lat := make([]time.Duration, n)
	var next atomic.Int64
	var once sync.Once
	var firstErr error
	var failed atomic.Bool
	var wg sync.WaitGroup
	start := time.Now()
	for range g {
		wg.Go(func() {
			k := make([]byte, keyLen)
			for !failed.Load() {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				t0 := time.Now()
				err := f(i, k)
				lat[i] = time.Since(t0)
				if err == nil {
					err = ctx.Err()
				}
				if err != nil {
					once.Do(func() { firstErr = err })
					failed.Store(true)
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if firstErr != nil {
		return sample{}, firstErr
	}
	return sample{n: n, elapsed: elapsed, lat: lat}, nil
}

// cursor is what party's and goleveldb's iterators have in common.
type cursor interface {
	Next() bool
	Key() []byte
	Value() []byte
	Error() error
	Release()
}

// scan reads every entry of two fresh cursors on the same n entries: the
// first untimed, for the rate, the second timing every entry, for the
// latencies. One op is one entry.
func scan(ctx context.Context, n, vlen int, open func() cursor) (sample, error) {
	read := func(timed bool) (time.Duration, []time.Duration, error) {
		var lat []time.Duration
		if timed {
			lat = make([]time.Duration, 0, n)
		}
		it := open()
		defer it.Release()
		got, size := 0, 0
		start := time.Now()
		prev := start
		for it.Next() {
			size += len(it.Key()) + len(it.Value())
			got++
			if timed {
				now := time.Now()
				lat = append(lat, now.Sub(prev))
				prev = now
			}
		}
		elapsed := time.Since(start)
		if err := it.Error(); err != nil {
			return 0, nil, fmt.Errorf("bench: iterate: %w", err)
		}
		if got != n || size != n*(keyLen+vlen) {
			return 0, nil, fmt.Errorf("bench: iterate: %d entries of %d bytes, want %d of %d", got, size, n, n*(keyLen+vlen))
		}
		return elapsed, lat, ctx.Err()
	}
	elapsed, _, err := read(false)
	if err != nil {
		return sample{}, err
	}
	_, lat, err := read(true)
	if err != nil {
		return sample{}, err
	}
	return sample{n: n, elapsed: elapsed, lat: lat}, nil
}

// side runs repetition rep of a figure on party or on goleveldb.
type side func(rep int) (sample, error)

// throughputFigure runs party and direct reps times each, alternating
// which goes first. When profiling, the party side of every repetition is
// profiled in this process (as self) and in leader, if not nil.
func (r *runner) throughputFigure(name string, ops int, self string, leader *proc, party, direct side) (Figure, error) {
	f := Figure{Name: name, Kind: Throughput, Reps: r.sz.reps, Ops: ops}
	var rate, p50, p99, drate, dp50, dp99, ratio []float64
	for rep := range r.sz.reps {
		var ps, ds sample
		runParty := func() error {
			stop, err := r.startProfile(name, rep, self, leader)
			if err != nil {
				return err
			}
			ps, err = party(rep)
			if serr := stop(); err == nil {
				err = serr
			}
			return err
		}
		runDirect := func() (err error) {
			ds, err = direct(rep)
			return err
		}
		first, second := runDirect, runParty
		if rep%2 == 1 {
			first, second = runParty, runDirect
		}
		if err := first(); err != nil {
			return f, fmt.Errorf("%s: %w", name, err)
		}
		if err := second(); err != nil {
			return f, fmt.Errorf("%s: %w", name, err)
		}
		pp := percentiles(ps.lat, 50, 99)
		dp := percentiles(ds.lat, 50, 99)
		rate = append(rate, ps.opsPerSec())
		p50 = append(p50, pp[0])
		p99 = append(p99, pp[1])
		drate = append(drate, ds.opsPerSec())
		dp50 = append(dp50, dp[0])
		dp99 = append(dp99, dp[1])
		ratio = append(ratio, ps.opsPerSec()/ds.opsPerSec())
		r.logf("%s rep %d/%d: party %s/s p50 %.2f µs p99 %.2f µs; direct %s/s p50 %.2f µs; ratio %.3f",
			name, rep+1, r.sz.reps, child.Thousands(int64(ps.opsPerSec())), pp[0], pp[1], child.Thousands(int64(ds.opsPerSec())), dp[0], ps.opsPerSec()/ds.opsPerSec())
	}
	f.OpsPerSec, f.P50us, f.P99us = spread(rate), spread(p50), spread(p99)
	f.DirectOpsPerSec, f.DirectP50us, f.DirectP99us = spread(drate), spread(dp50), spread(dp99)
	f.Ratio = spread(ratio)
	return f, nil
}

// startProfile starts the CPU profiles of one repetition, if asked, and
// returns the function that stops them.
func (r *runner) startProfile(name string, rep int, self string, leader *proc) (func() error, error) {
	if r.profile == "" {
		return func() error { return nil }, nil
	}
	if err := os.MkdirAll(r.profile, 0o755); err != nil {
		return nil, err
	}
	base := filepath.Join(r.profile, fmt.Sprintf("%s.rep%d", name, rep+1))
	stopSelf, err := startCPUProfile(base + "." + self + ".pprof")
	if err != nil {
		return nil, err
	}
	if leader != nil {
		abs, err := filepath.Abs(base + ".leader.pprof")
		if err == nil {
			err = leader.command(r.ctx, "cpuprofile "+abs)
		}
		if err != nil {
			stopSelf()
			return nil, err
		}
	}
	return func() error {
		err := stopSelf()
		if leader != nil {
			if lerr := leader.command(r.ctx, "stop"); err == nil {
				err = lerr
			}
		}
		return err
	}, nil
}

// openFollower opens dir in this process, which must become a follower
// of leader.
func (r *runner) openFollower(dir string, leader *proc, o *party.Options) (*party.DB, error) {
	db, err := party.Open(dir, o)
	if err != nil {
		return nil, fmt.Errorf("bench: open follower: %w", err)
	}
	if db.IsLeader() {
		db.Close()
		return nil, errNotFollower
	}
	ctx, cancel := context.WithTimeout(r.ctx, 30*time.Second)
	defer cancel()
	st, err := db.Status(ctx)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("bench: status of the follower: %w", err)
	}
	if st.PID != leader.pid() {
		db.Close()
		return nil, fmt.Errorf("bench: the follower's leader is process %d, not the leader child %d", st.PID, leader.pid())
	}
	return db, nil
}
