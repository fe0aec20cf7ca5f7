package party

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/util"
)

// Benchmarks compare each follower path with goleveldb used directly, in
// the same run: compare the "direct" and "follower" sub-benchmarks (e.g.
// with benchstat). The follower talks to a leader in the same process, over
// the real socket. Keys are 16 bytes and values 100 bytes.

const (
	benchKeys     = 10000
	benchValueLen = 100
)

func benchKey(i int) []byte {
	k := make([]byte, 16)
	copy(k, "key:")
	binary.BigEndian.PutUint64(k[8:], uint64(i))
	return k
}

var benchValue = make([]byte, benchValueLen)

// benchTargets opens a database filled with benchKeys entries and returns,
// by name, functions to reach it directly and through a follower.
type benchTarget struct {
	get  func(ctx context.Context, k []byte) error
	put  func(ctx context.Context, k, v []byte) error
	scan func(ctx context.Context, start []byte, n int) error // reads n entries from start
}

func benchSetup(b *testing.B, fill int) map[string]benchTarget {
	b.Helper()
	ctx := context.Background()
	direct, err := leveldb.OpenFile(b.TempDir(), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { direct.Close() })
	dir := b.TempDir()
	leader, err := Open(dir, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { leader.Close() })
	follower, err := Open(dir, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { follower.Close() })
	var batch leveldb.Batch
	var pb Batch
	for i := 0; i < fill; i++ {
		batch.Put(benchKey(i), benchValue)
		pb.Put(benchKey(i), benchValue)
	}
	if err := direct.Write(&batch, nil); err != nil {
		b.Fatal(err)
	}
	if err := leader.Write(ctx, &pb); err != nil {
		b.Fatal(err)
	}
	return map[string]benchTarget{
		"direct": {
			get: func(_ context.Context, k []byte) error { _, err := direct.Get(k, nil); return err },
			put: func(_ context.Context, k, v []byte) error { return direct.Put(k, v, nil) },
			scan: func(_ context.Context, start []byte, n int) error {
				return benchScan(direct.NewIterator(&util.Range{Start: start}, nil), n)
			},
		},
		"leader": {
			get: func(ctx context.Context, k []byte) error { _, err := leader.Get(ctx, k); return err },
			put: leader.Put,
			scan: func(ctx context.Context, start []byte, n int) error {
				return benchScan(leader.NewIterator(ctx, &Range{Start: start}), n)
			},
		},
		"follower": {
			get: func(ctx context.Context, k []byte) error { _, err := follower.Get(ctx, k); return err },
			put: follower.Put,
			scan: func(ctx context.Context, start []byte, n int) error {
				return benchScan(follower.NewIterator(ctx, &Range{Start: start}), n)
			},
		},
	}
}

var benchOrder = []string{"direct", "leader", "follower"}

func BenchmarkGet(b *testing.B) {
	targets := benchSetup(b, benchKeys)
	ctx := context.Background()
	for _, name := range benchOrder {
		t := targets[name]
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if err := t.get(ctx, benchKey(i%benchKeys)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// benchScan reads n entries of it and releases it.
func benchScan(it interface {
	Next() bool
	Error() error
	Release()
}, n int) error {
	defer it.Release()
	for range n {
		if !it.Next() {
			return fmt.Errorf("scan ended early: %v", it.Error())
		}
	}
	return it.Error()
}

// BenchmarkScan10 opens an iterator, reads 10 entries and releases it: a
// short range read, where opening costs as much as reading.
func BenchmarkScan10(b *testing.B) {
	targets := benchSetup(b, benchKeys)
	ctx := context.Background()
	for _, name := range benchOrder {
		t := targets[name]
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if err := t.scan(ctx, benchKey(i%(benchKeys-10)), 10); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkPut(b *testing.B) {
	targets := benchSetup(b, 0)
	ctx := context.Background()
	for _, name := range benchOrder {
		t := targets[name]
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if err := t.put(ctx, benchKey(i), benchValue); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkPutParallel64 keeps 64 goroutines putting at once.
func BenchmarkPutParallel64(b *testing.B) { benchParallel(b, 64, true) }

// BenchmarkGetParallel64 keeps 64 goroutines getting at once.
func BenchmarkGetParallel64(b *testing.B) { benchParallel(b, 64, false) }

func benchParallel(b *testing.B, goroutines int, put bool) {
	fill := benchKeys
	if put {
		fill = 0
	}
	targets := benchSetup(b, fill)
	ctx := context.Background()
	for _, name := range benchOrder {
		t := targets[name]
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			var n atomic.Int64
			b.SetParallelism((goroutines + 1) / 2) // 2 cores: GOMAXPROCS × this
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := int(n.Add(1))
					var err error
					if put {
						err = t.put(ctx, benchKey(i), benchValue)
					} else {
						err = t.get(ctx, benchKey(i%benchKeys))
					}
					if err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkIterate reads every entry of a 100,000-entry database; one op
// is one entry.
func BenchmarkIterate(b *testing.B) {
	const n = 100000
	ctx := context.Background()
	direct, err := leveldb.OpenFile(b.TempDir(), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer direct.Close()
	dir := b.TempDir()
	leader, err := Open(dir, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer leader.Close()
	follower, err := Open(dir, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer follower.Close()
	var lb leveldb.Batch
	var pb Batch
	for i := 0; i < n; i++ {
		lb.Put(benchKey(i), benchValue)
		pb.Put(benchKey(i), benchValue)
		if pb.Len() == 1000 {
			direct.Write(&lb, nil)
			leader.Write(ctx, &pb)
			lb.Reset()
			pb.Reset()
		}
	}
	scan := func(b *testing.B, next func() bool, check func() error) {
		b.ReportAllocs()
		for b.Loop() {
			if !next() {
				if err := check(); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				b.StartTimer()
			}
		}
	}
	b.Run("direct", func(b *testing.B) {
		it := direct.NewIterator(nil, nil)
		defer it.Release()
		scan(b, func() bool {
			if it.Next() {
				return true
			}
			it.Release()
			it = direct.NewIterator(nil, nil)
			return false
		}, func() error { return nil })
	})
	for _, h := range []struct {
		name string
		db   *DB
	}{{"leader", leader}, {"follower", follower}} {
		b.Run(h.name, func(b *testing.B) {
			it := h.db.NewIterator(ctx, nil)
			defer func() { it.Release() }()
			scan(b, func() bool {
				if it.Next() {
					return true
				}
				if err := it.Error(); err != nil {
					b.Fatal(err)
				}
				it.Release()
				it = h.db.NewIterator(ctx, nil)
				return false
			}, func() error { return nil })
		})
	}
	_ = fmt.Sprint
}
