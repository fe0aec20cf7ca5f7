// Command sqlite measures, on SQLite in WAL mode, the figures that party
// bench measures on a follower, so that the README compares party with
// what Go programs use today to share one store between processes. It
// lives in its own module so that party's go.mod does not need a cgo
// driver.
//
// Like party bench, it fills a fresh database, starts a second process
// that holds the database open (as a party leader holds its directory),
// and measures from this process: 16-byte keys, 100-byte values, the
// same operation counts, repetitions and percentiles. Table:
// CREATE TABLE kv(k BLOB PRIMARY KEY, v BLOB) WITHOUT ROWID; connections
// with journal_mode=WAL, synchronous=NORMAL (each commit is in the WAL,
// fsynced at checkpoints: what party without Options.Sync promises) and
// busy_timeout=10000.
//
//	go run . [--quick] [--reps N] [--json]
package main

import (
	"context"
	"database/sql"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "github.com/mattn/go-sqlite3"
)

const (
	keyLen      = 16
	valueLen    = 100
	concurrency = 64
)

// sizes are party bench's: full and --quick.
type sizes struct {
	fill, getKeys, seqOps, c64Ops, iterN, reps int
}

var (
	full  = sizes{fill: 1807889, getKeys: 50000, seqOps: 50000, c64Ops: 200000, iterN: 1000000, reps: 5}
	quick = sizes{fill: 200000, getKeys: 50000, seqOps: 20000, c64Ops: 50000, iterN: 200000, reps: 3}
)

// Figure is one figure: medians over repetitions, as in party bench.
type Figure struct {
	Name      string  `json:"name"`
	OpsPerSec float64 `json:"ops_per_sec"`
	P50us     float64 `json:"p50_us"`
	P99us     float64 `json:"p99_us"`
}

// envHold, set to a database path, makes the program the process that
// holds the database open; envInc, set to a database path, one of the
// processes of sqlite_tx_update_c4, which runs the number of increments
// given on stdin and prints their latencies, in nanoseconds, as JSON.
const (
	envHold = "PARTY_SQLITE_HOLD"
	envInc  = "PARTY_SQLITE_INC"
)

// txProcs is the number of processes of sqlite_tx_update_c4.
const txProcs = 4

func main() {
	if path := os.Getenv(envHold); path != "" {
		hold(path)
		return
	}
	if path := os.Getenv(envInc); path != "" {
		if err := incrementer(path); err != nil {
			fmt.Fprintln(os.Stderr, "incrementer:", err)
			os.Exit(1)
		}
		return
	}
	q := flag.Bool("quick", false, "party bench --quick sizes")
	reps := flag.Int("reps", 0, "repetitions (0: 5, or 3 with --quick)")
	asJSON := flag.Bool("json", false, "one JSON object per figure")
	flag.Parse()
	sz := full
	if *q {
		sz = quick
	}
	if *reps > 0 {
		sz.reps = *reps
	}
	figs, err := run(sz)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sqlite bench:", err)
		os.Exit(1)
	}
	for _, f := range figs {
		if *asJSON {
			b, _ := json.Marshal(f)
			fmt.Println(string(b))
		} else {
			fmt.Printf("%-18s %12.0f ops/s   p50 %8.2f µs   p99 %8.2f µs\n", f.Name, f.OpsPerSec, f.P50us, f.P99us)
		}
	}
}

func dsn(path string) string {
	return "file:" + path + "?_journal_mode=WAL&_synchronous=NORMAL&_busy_timeout=10000"
}

// hold opens the database in a second process and keeps a connection
// open, reading now and then, until stdin closes.
func hold(path string) {
	db, err := sql.Open("sqlite3", dsn(path))
	if err != nil {
		fmt.Println("error", err)
		return
	}
	defer db.Close()
	var n int
	if err := db.QueryRow("SELECT count(*) FROM kv").Scan(&n); err != nil {
		fmt.Println("error", err)
		return
	}
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
}

func key(k []byte, prefix string, i uint64) {
	copy(k, prefix)
	binary.BigEndian.PutUint64(k[8:], i)
}

// scramble spreads consecutive numbers, as party bench does.
func scramble(i uint64) uint64 { return i * 0x9e3779b97f4a7c15 }

func run(sz sizes) ([]Figure, error) {
	dir, err := os.MkdirTemp("", "party-sqlite-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "kv.db")
	db, err := sql.Open("sqlite3", dsn(path))
	if err != nil {
		return nil, err
	}
	defer db.Close()
	db.SetMaxOpenConns(concurrency)
	db.SetMaxIdleConns(concurrency)
	if _, err := db.Exec("CREATE TABLE kv(k BLOB PRIMARY KEY, v BLOB) WITHOUT ROWID"); err != nil {
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "filling %d rows...\n", sz.fill)
	if err := fill(db, sz.fill); err != nil {
		return nil, err
	}
	holder := exec.Command(os.Args[0])
	holder.Env = append(os.Environ(), envHold+"="+path)
	holder.Stderr = os.Stderr
	in, _ := holder.StdinPipe()
	out, _ := holder.StdoutPipe()
	if err := holder.Start(); err != nil {
		return nil, err
	}
	defer func() { in.Close(); holder.Wait() }()
	line := make([]byte, 64)
	n, _ := out.Read(line)
	if string(line[:n]) != "ready\n" {
		return nil, fmt.Errorf("holder: %q", line[:n])
	}

	get, err := db.Prepare("SELECT v FROM kv WHERE k = ?")
	if err != nil {
		return nil, err
	}
	put, err := db.Prepare("INSERT OR REPLACE INTO kv(k, v) VALUES(?, ?)")
	if err != nil {
		return nil, err
	}
	value := make([]byte, valueLen)
	getOp := func(base uint64) func(i int, k []byte) error {
		return func(i int, k []byte) error {
			key(k, "fill:\x00\x00\x00", scramble(base+uint64(i))%uint64(sz.getKeys))
			var v []byte
			if err := get.QueryRow(k).Scan(&v); err != nil {
				return err
			}
			if len(v) != valueLen {
				return fmt.Errorf("value of %d bytes", len(v))
			}
			return nil
		}
	}
	putOp := func(base uint64) func(i int, k []byte) error {
		return func(i int, k []byte) error {
			key(k, "put:\x00\x00\x00\x00", scramble(base+uint64(i)))
			_, err := put.Exec(k, value)
			return err
		}
	}
	// Warm the page cache as party bench warms goleveldb's.
	if err := seq(sz.getKeys, func(i int, k []byte) error {
		key(k, "fill:\x00\x00\x00", uint64(i))
		var v []byte
		return get.QueryRow(k).Scan(&v)
	}, nil); err != nil {
		return nil, err
	}
	specs := []struct {
		name string
		run  func(rep int) ([]time.Duration, time.Duration, error)
	}{
		{"sqlite_get_seq", func(rep int) ([]time.Duration, time.Duration, error) {
			return timed(sz.seqOps, 1, getOp(uint64(1)<<48|uint64(rep)<<32))
		}},
		{"sqlite_put_seq", func(rep int) ([]time.Duration, time.Duration, error) {
			return timed(sz.seqOps, 1, putOp(uint64(3)<<48|uint64(rep)<<32))
		}},
		{"sqlite_get_c64", func(rep int) ([]time.Duration, time.Duration, error) {
			return timed(sz.c64Ops, concurrency, getOp(uint64(2)<<48|uint64(rep)<<32))
		}},
		{"sqlite_put_c64", func(rep int) ([]time.Duration, time.Duration, error) {
			return timed(sz.c64Ops, concurrency, putOp(uint64(4)<<48|uint64(rep)<<32))
		}},
		{"sqlite_iter", func(int) ([]time.Duration, time.Duration, error) { return iterate(db, sz.iterN) }},
		{"sqlite_tx_update_c4", func(int) ([]time.Duration, time.Duration, error) {
			return increments(path, max(50, sz.seqOps/20))
		}},
	}
	var figs []Figure
	for _, s := range specs {
		var rate, p50, p99 []float64
		for rep := range sz.reps {
			lat, total, err := s.run(rep)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", s.name, err)
			}
			rate = append(rate, float64(len(lat))/total.Seconds())
			p := percentiles(lat, 50, 99)
			p50, p99 = append(p50, p[0]), append(p99, p[1])
			fmt.Fprintf(os.Stderr, "%s rep %d/%d: %.0f/s p50 %.2f µs\n", s.name, rep+1, sz.reps, rate[len(rate)-1], p[0])
		}
		figs = append(figs, Figure{Name: s.name, OpsPerSec: median(rate), P50us: median(p50), P99us: median(p99)})
	}
	return figs, nil
}

func fill(db *sql.DB, n int) error {
	tx, err := db.BeginTx(context.Background(), nil)
	if err != nil {
		return err
	}
	st, err := tx.Prepare("INSERT INTO kv(k, v) VALUES(?, ?)")
	if err != nil {
		return err
	}
	k, v := make([]byte, keyLen), make([]byte, valueLen)
	for i := range n {
		key(k, "fill:\x00\x00\x00", uint64(i))
		if _, err := st.Exec(k, v); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// seq runs n operations in sequence; lat, if not nil, gets each latency.
func seq(n int, op func(i int, k []byte) error, lat []time.Duration) error {
	k := make([]byte, keyLen)
	prev := time.Now()
	for i := range n {
		if err := op(i, k); err != nil {
			return err
		}
		if lat != nil {
			now := time.Now()
			lat[i] = now.Sub(prev)
			prev = now
		}
	}
	return nil
}

// timed runs n operations on g goroutines and returns their latencies and
// the elapsed time.
func timed(n, g int, op func(i int, k []byte) error) ([]time.Duration, time.Duration, error) {
	lat := make([]time.Duration, n)
	start := time.Now()
	if g == 1 {
		err := seq(n, op, lat)
		return lat, time.Since(start), err
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	var once sync.Once
	var firstErr error
	for range g {
		wg.Go(func() {
			k := make([]byte, keyLen)
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				t := time.Now()
				if err := op(i, k); err != nil {
					once.Do(func() { firstErr = err })
					return
				}
				lat[i] = time.Since(t)
			}
		})
	}
	wg.Wait()
	return lat, time.Since(start), firstErr
}

// iterate reads n rows in key order, timing each.
func iterate(db *sql.DB, n int) ([]time.Duration, time.Duration, error) {
	start, limit := make([]byte, keyLen), make([]byte, keyLen)
	key(start, "fill:\x00\x00\x00", 0)
	key(limit, "fill:\x00\x00\x00", uint64(n))
	lat := make([]time.Duration, 0, n)
	t0 := time.Now()
	rows, err := db.Query("SELECT k, v FROM kv WHERE k >= ? AND k < ? ORDER BY k", start, limit)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	var k, v sql.RawBytes
	prev := t0
	for rows.Next() {
		if err := rows.Scan(&k, &v); err != nil {
			return nil, 0, err
		}
		now := time.Now()
		lat = append(lat, now.Sub(prev))
		prev = now
	}
	if len(lat) != n {
		return nil, 0, fmt.Errorf("iterated %d rows, want %d", len(lat), n)
	}
	return lat, time.Since(t0), rows.Err()
}

func percentiles(lat []time.Duration, ps ...float64) []float64 {
	l := slices.Clone(lat)
	slices.Sort(l)
	out := make([]float64, len(ps))
	for i, p := range ps {
		idx := max(0, min(int(math.Ceil(p/100*float64(len(l))))-1, len(l)-1))
		out[i] = float64(l[idx]) / float64(time.Microsecond)
	}
	return out
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 0 {
		return (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return s[len(s)/2]
}

// counterKey is the row every increment reads and writes.
var counterKey = []byte("bench-tx-counter")

// incrementer runs the increments of one process of sqlite_tx_update_c4:
// BEGIN IMMEDIATE, read the counter, write it back plus one, COMMIT.
func incrementer(path string) error {
	var n int
	if _, err := fmt.Fscan(os.Stdin, &n); err != nil {
		return err
	}
	db, err := sql.Open("sqlite3", dsn(path))
	if err != nil {
		return err
	}
	defer db.Close()
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	lat := make([]int64, n)
	for i := range n {
		t0 := time.Now()
		if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
			return err
		}
		var v int
		err := conn.QueryRowContext(ctx, "SELECT CAST(v AS INTEGER) FROM kv WHERE k = ?", counterKey).Scan(&v)
		if err != nil && err != sql.ErrNoRows {
			conn.ExecContext(ctx, "ROLLBACK")
			return err
		}
		if _, err := conn.ExecContext(ctx, "INSERT OR REPLACE INTO kv(k, v) VALUES(?, ?)", counterKey, v+1); err != nil {
			conn.ExecContext(ctx, "ROLLBACK")
			return err
		}
		if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
			return err
		}
		lat[i] = int64(time.Since(t0))
	}
	return json.NewEncoder(os.Stdout).Encode(lat)
}

// increments runs txProcs incrementer processes of n increments each at
// once, checks that the counter counted them all, and returns their
// latencies and the time they took together.
func increments(path string, n int) ([]time.Duration, time.Duration, error) {
	db, err := sql.Open("sqlite3", dsn(path))
	if err != nil {
		return nil, 0, err
	}
	defer db.Close()
	count := func() (int, error) {
		var v int
		err := db.QueryRow("SELECT CAST(v AS INTEGER) FROM kv WHERE k = ?", counterKey).Scan(&v)
		if err == sql.ErrNoRows {
			return 0, nil
		}
		return v, err
	}
	before, err := count()
	if err != nil {
		return nil, 0, err
	}
	type result struct {
		lat []int64
		err error
	}
	results := make(chan result, txProcs)
	start := time.Now()
	for range txProcs {
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), envInc+"="+path)
		cmd.Stdin = strings.NewReader(fmt.Sprintln(n))
		cmd.Stderr = os.Stderr
		go func() {
			out, err := cmd.Output()
			var r result
			if err == nil {
				err = json.Unmarshal(out, &r.lat)
			}
			r.err = err
			results <- r
		}()
	}
	var lat []time.Duration
	var firstErr error
	for range txProcs {
		r := <-results
		if r.err != nil && firstErr == nil {
			firstErr = r.err
		}
		for _, ns := range r.lat {
			lat = append(lat, time.Duration(ns))
		}
	}
	elapsed := time.Since(start)
	if firstErr != nil {
		return nil, 0, firstErr
	}
	after, err := count()
	if err != nil {
		return nil, 0, err
	}
	if after-before != n*txProcs {
		return nil, 0, fmt.Errorf("the counter moved by %d for %d increments", after-before, n*txProcs)
	}
	return lat, elapsed, nil
}
