// Command bench measures party on a local 3-member etcd cluster, beside
// party on a directory (this process a follower, the leader another
// process) and goleveldb used directly, in the same run: the cost of going
// distributed, figure by figure.
//
// client_get_seq is etcd's own client Get on the same cluster: the floor
// of every etcd figure, as the socket round trip is of a directory's.
//
// The members are child processes of this program on loopback ports, with
// their data in a temporary directory; each write is fsynced by etcd (its
// WAL), which party on a directory does only with Options.Sync, so
// put_seq is also given for a directory handle with Sync. 16-byte keys,
// 100-byte values, 10,000 entries; medians over repetitions.
//
//	go run ./bench [--reps N] [--json] [--quick]
package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/syndtr/goleveldb/leveldb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/levelparty/party"
	partyetcd "github.com/levelparty/party/etcd"
	"github.com/levelparty/party/etcd/internal/cluster"
)

const (
	keyLen   = 16
	valueLen = 100
	envLead  = "PARTYETCD_BENCH_LEAD" // a directory: lead it until stdin closes
)

// sizes of a run.
type sizes struct{ entries, seqOps, concOps, scans, txOps, watchOps, reps int }

var (
	full  = sizes{entries: 10000, seqOps: 2000, concOps: 10000, scans: 1000, txOps: 250, watchOps: 1000, reps: 3}
	quick = sizes{entries: 2000, seqOps: 300, concOps: 2000, scans: 200, txOps: 50, watchOps: 200, reps: 1}
)

func main() {
	cluster.MaybeMember()
	if dir := os.Getenv(envLead); dir != "" {
		lead(dir)
		return
	}
	reps := flag.Int("reps", 0, "repetitions of every figure (0: 3, or 1 with --quick)")
	asJSON := flag.Bool("json", false, "print one JSON object per figure")
	q := flag.Bool("quick", false, "small figures, once")
	flag.Parse()
	sz := full
	if *q {
		sz = quick
	}
	if *reps > 0 {
		sz.reps = *reps
	}
	if err := run(sz, *asJSON); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// lead holds dir open as its leader until stdin closes.
func lead(dir string) {
	db, err := party.Open(dir, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
	db.Close()
}

// Figure is one figure: medians over repetitions.
type Figure struct {
	Name          string  `json:"name"`
	EtcdOpsPerSec float64 `json:"etcd_ops_per_sec"`
	EtcdP50us     float64 `json:"etcd_p50_us"`
	EtcdP99us     float64 `json:"etcd_p99_us"`
	DirOpsPerSec  float64 `json:"dir_ops_per_sec"`
	DirP50us      float64 `json:"dir_p50_us"`
	DirectOps     float64 `json:"direct_ops_per_sec,omitempty"`
	EtcdVsDir     float64 `json:"etcd_vs_dir"` // etcd ops/s over directory ops/s
}

// sample is one repetition of one figure on one store.
type sample struct {
	ops      float64
	p50, p99 time.Duration
}

// measure runs n ops on c goroutines and times each.
func measure(c, n int, op func(i int) error) (sample, error) {
	lat := make([]time.Duration, n)
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	for range c {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				t := time.Now()
				if err := op(i); err != nil {
					once.Do(func() { firstErr = err })
					return
				}
				lat[i] = time.Since(t)
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return sample{}, firstErr
	}
	el := time.Since(start)
	slices.Sort(lat)
	return sample{ops: float64(n) / el.Seconds(), p50: lat[n/2], p99: lat[n*99/100]}, nil
}

func key(i int) []byte {
	k := make([]byte, keyLen)
	copy(k, "k/")
	binary.BigEndian.PutUint64(k[keyLen-8:], uint64(i))
	return k
}

var value = make([]byte, valueLen)

// stores is what one figure runs on.
type stores struct {
	etcd, etcd2 *party.DB // two clients on the cluster
	dir, dir2   *party.DB // two followers of the directory
	dirSync     *party.DB // a follower whose writes are fsynced
	direct      *leveldb.DB
	directMu    sync.Mutex
	client      *clientv3.Client // etcd's client used directly: the floor
}

func run(sz sizes, asJSON bool) error {
	tmp, err := os.MkdirTemp("", "partyetcd-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	ctx := context.Background()
	fmt.Fprintf(os.Stderr, "bench: starting a 3-member etcd cluster and a directory leader in %s\n", tmp)
	c, err := cluster.Start(3, filepath.Join(tmp, "etcd"), 0)
	if err != nil {
		return err
	}
	defer c.Stop()
	var s stores
	for _, h := range []**party.DB{&s.etcd, &s.etcd2} {
		if *h, err = partyetcd.Open(c.Config(), "bench/", nil); err != nil {
			return err
		}
		defer (*h).Close()
	}
	if s.client, err = clientv3.New(c.Config()); err != nil {
		return err
	}
	defer s.client.Close()
	dir := filepath.Join(tmp, "dir")
	stopLeader, err := startLeader(dir)
	if err != nil {
		return err
	}
	defer stopLeader()
	for _, f := range []struct {
		h *(*party.DB)
		o *party.Options
	}{{&s.dir, nil}, {&s.dir2, nil}, {&s.dirSync, &party.Options{Sync: true}}} {
		if *f.h, err = party.Open(dir, f.o); err != nil {
			return err
		}
		defer (*f.h).Close()
	}
	if s.direct, err = leveldb.OpenFile(filepath.Join(tmp, "direct"), nil); err != nil {
		return err
	}
	defer s.direct.Close()

	fmt.Fprintf(os.Stderr, "bench: filling each with %d entries\n", sz.entries)
	for i := 0; i < sz.entries; i += 100 {
		var b party.Batch
		var lb leveldb.Batch
		for j := i; j < min(i+100, sz.entries); j++ {
			b.Put(key(j), value)
			lb.Put(key(j), value)
		}
		if err := s.etcd.Write(ctx, &b); err != nil {
			return err
		}
		if err := s.dir.Write(ctx, &b); err != nil {
			return err
		}
		if err := s.direct.Write(&lb, nil); err != nil {
			return err
		}
	}

	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	for _, f := range figures(sz) {
		var et, di, dr []sample
		for rep := range sz.reps {
			for _, m := range []struct {
				into *[]sample
				run  func(*stores, int) (sample, error)
			}{{&et, f.etcd}, {&di, f.dir}, {&dr, f.direct}} {
				if m.run == nil {
					continue
				}
				smp, err := m.run(&s, rep)
				if err != nil {
					return fmt.Errorf("%s: %w", f.name, err)
				}
				*m.into = append(*m.into, smp)
			}
		}
		fig := Figure{Name: f.name}
		fig.EtcdOpsPerSec, fig.EtcdP50us, fig.EtcdP99us = medians(et)
		fig.DirOpsPerSec, fig.DirP50us, _ = medians(di)
		fig.DirectOps, _, _ = medians(dr)
		if fig.DirOpsPerSec > 0 {
			fig.EtcdVsDir = round(fig.EtcdOpsPerSec/fig.DirOpsPerSec, 3)
		}
		if asJSON {
			b, _ := json.Marshal(fig)
			out.Write(append(b, '\n'))
		} else {
			fmt.Fprintf(out, "%-18s etcd %9.0f/s p50 %8.1f µs p99 %8.1f µs | directory %9.0f/s p50 %7.1f µs | goleveldb %9.0f/s | etcd/directory %.3f\n",
				fig.Name, fig.EtcdOpsPerSec, fig.EtcdP50us, fig.EtcdP99us, fig.DirOpsPerSec, fig.DirP50us, fig.DirectOps, fig.EtcdVsDir)
		}
		out.Flush()
	}
	return nil
}

// medians returns the median ops/s, p50 and p99 (in µs) of samples.
func medians(ss []sample) (ops, p50, p99 float64) {
	if len(ss) == 0 {
		return 0, 0, 0
	}
	med := func(f func(sample) float64) float64 {
		v := make([]float64, len(ss))
		for i, s := range ss {
			v[i] = f(s)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	return round(med(func(s sample) float64 { return s.ops }), 0),
		round(med(func(s sample) float64 { return float64(s.p50) / 1e3 }), 1),
		round(med(func(s sample) float64 { return float64(s.p99) / 1e3 }), 1)
}

func round(x float64, digits int) float64 {
	v, _ := strconv.ParseFloat(strconv.FormatFloat(x, 'f', digits, 64), 64)
	return v
}

// startLeader starts a process that leads dir, and returns once it does.
func startLeader(dir string) (stop func(), err error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), envLead+"="+dir)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	outp, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	line, _ := bufio.NewReader(outp).ReadString('\n')
	if line != "ready\n" {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, fmt.Errorf("the directory's leader did not start: %q", line)
	}
	return func() { in.Close(); cmd.Wait() }, nil
}

// figure is one figure's operation on each store (nil: not measured).
type figure struct {
	name              string
	etcd, dir, direct func(s *stores, rep int) (sample, error)
}

func figures(sz sizes) []figure {
	ctx := context.Background()
	rnd := func(rep int) *rand.Rand { return rand.New(rand.NewPCG(uint64(rep), 1)) }
	get := func(db func(*stores) *party.DB, c, n int) func(*stores, int) (sample, error) {
		return func(s *stores, rep int) (sample, error) {
			r := rnd(rep)
			keys := make([][]byte, n)
			for i := range keys {
				keys[i] = key(r.IntN(sz.entries))
			}
			return measure(c, n, func(i int) error { _, err := db(s).Get(ctx, keys[i]); return err })
		}
	}
	put := func(db func(*stores) *party.DB, c, n int) func(*stores, int) (sample, error) {
		return func(s *stores, rep int) (sample, error) {
			return measure(c, n, func(i int) error { return db(s).Put(ctx, key(i%sz.entries), value) })
		}
	}
	directGet := func(c, n int) func(*stores, int) (sample, error) {
		return func(s *stores, rep int) (sample, error) {
			r := rnd(rep)
			return measure(c, n, func(int) error { _, err := s.direct.Get(key(r.IntN(sz.entries)), nil); return err })
		}
	}
	directPut := func(c, n int) func(*stores, int) (sample, error) {
		return func(s *stores, rep int) (sample, error) {
			return measure(c, n, func(i int) error { return s.direct.Put(key(i%sz.entries), value, nil) })
		}
	}
	iter := func(db func(*stores) *party.DB) func(*stores, int) (sample, error) {
		return func(s *stores, rep int) (sample, error) {
			it := db(s).NewIterator(ctx, nil)
			defer it.Release()
			return measure(1, sz.entries, func(int) error {
				if !it.Next() {
					return fmt.Errorf("iterator ended early: %v", it.Error())
				}
				return nil
			})
		}
	}
	scan10 := func(db func(*stores) *party.DB) func(*stores, int) (sample, error) {
		return func(s *stores, rep int) (sample, error) {
			r := rnd(rep)
			return measure(1, sz.scans, func(int) error {
				it := db(s).NewIterator(ctx, &party.Range{Start: key(r.IntN(sz.entries - 10))})
				defer it.Release()
				for range 10 {
					if !it.Next() {
						return fmt.Errorf("scan ended early: %v", it.Error())
					}
				}
				return nil
			})
		}
	}
	update := func(db func(*stores) *party.DB) func(*stores, int) (sample, error) {
		return func(s *stores, rep int) (sample, error) {
			return measure(4, sz.txOps, func(int) error {
				return db(s).Update(ctx, func(tx *party.Transaction) error {
					n := 0
					v, err := tx.Get(ctx, []byte("counter"))
					if err == nil {
						n, _ = strconv.Atoi(string(v))
					} else if !errors.Is(err, party.ErrNotFound) {
						return err
					}
					return tx.Put(ctx, []byte("counter"), []byte(strconv.Itoa(n+1)))
				})
			})
		}
	}
	directUpdate := func(s *stores, rep int) (sample, error) {
		return measure(4, sz.txOps, func(int) error {
			s.directMu.Lock()
			defer s.directMu.Unlock()
			n := 0
			if v, err := s.direct.Get([]byte("counter"), nil); err == nil {
				n, _ = strconv.Atoi(string(v))
			}
			return s.direct.Put([]byte("counter"), []byte(strconv.Itoa(n+1)), nil)
		})
	}
	watch := func(w, p func(*stores) *party.DB) func(*stores, int) (sample, error) {
		return func(s *stores, rep int) (sample, error) {
			wt, err := w(s).Watch(ctx, party.BytesPrefix([]byte("w/")))
			if err != nil {
				return sample{}, err
			}
			defer wt.Close()
			return measure(1, sz.watchOps, func(i int) error {
				if err := p(s).Put(ctx, []byte("w/k"), value); err != nil {
					return err
				}
				_, err := wt.Next(ctx)
				return err
			})
		}
	}
	clientGet := func(s *stores, rep int) (sample, error) {
		r := rnd(rep)
		return measure(1, sz.seqOps, func(int) error {
			_, err := s.client.Get(ctx, "bench/"+string(key(r.IntN(sz.entries))))
			return err
		})
	}
	directIter := func(s *stores, rep int) (sample, error) {
		it := s.direct.NewIterator(nil, nil)
		defer it.Release()
		return measure(1, sz.entries, func(int) error {
			if !it.Next() {
				return fmt.Errorf("iterator ended early: %v", it.Error())
			}
			return nil
		})
	}
	etcd := func(s *stores) *party.DB { return s.etcd }
	etcd2 := func(s *stores) *party.DB { return s.etcd2 }
	dir := func(s *stores) *party.DB { return s.dir }
	dir2 := func(s *stores) *party.DB { return s.dir2 }
	dirSync := func(s *stores) *party.DB { return s.dirSync }
	return []figure{
		{"client_get_seq", clientGet, nil, nil}, // etcd's own client: the round trip party adds to
		{"get_seq", get(etcd, 1, sz.seqOps), get(dir, 1, sz.seqOps), directGet(1, sz.seqOps)},
		{"put_seq", put(etcd, 1, sz.seqOps), put(dir, 1, sz.seqOps), directPut(1, sz.seqOps)},
		{"put_seq_sync", put(etcd, 1, sz.seqOps/4), put(dirSync, 1, sz.seqOps/4), nil}, // etcd fsyncs every write
		{"get_c64", get(etcd, 64, sz.concOps), get(dir, 64, sz.concOps), directGet(64, sz.concOps)},
		{"put_c64", put(etcd, 64, sz.concOps), put(dir, 64, sz.concOps), directPut(64, sz.concOps)},
		{"iter", iter(etcd), iter(dir), directIter},
		{"scan10_seq", scan10(etcd), scan10(dir), nil},
		{"tx_update_c4", update(etcd), update(dir), directUpdate},
		{"watch_latency", watch(etcd2, etcd), watch(dir2, dir), nil},
	}
}
