//go:build unix

package party

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// cfFDs returns this process's open file descriptors and what each refers
// to.
func cfFDs(t testing.TB) map[string]string {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	fds := make(map[string]string, len(entries))
	for _, e := range entries {
		link, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if err != nil {
			continue // the descriptor ReadDir itself used, now closed
		}
		fds[e.Name()] = link
	}
	return fds
}

// cfLeakExercise uses the database the ways that start goroutines and open
// files: a leader and followers, reads and writes of every kind, iterators
// (finished, abandoned, reversed, left open), snapshots (released and not),
// a dropped connection, a failover, and Close of everything.
func cfLeakExercise(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cfHang)
	defer cancel()
	dir := t.TempDir()
	open := func(o *Options) *DB {
		db, err := Open(dir, o)
		if err != nil {
			t.Fatal(err)
		}
		return db
	}
	a := open(nil)
	b := open(nil)
	c := open(&Options{NoRetry: true})
	dbs := []*DB{a, b, c}
	for i, db := range dbs {
		for j := range 50 {
			cfMustPut(t, ctx, db, fmt.Sprintf("k%d-%02d", i, j), "v")
		}
		var batch Batch
		batch.Put([]byte(fmt.Sprintf("batch%d", i)), []byte("v"))
		batch.Delete([]byte(fmt.Sprintf("k%d-00", i)))
		if err := db.Write(ctx, &batch); err != nil {
			t.Fatal(err)
		}
		if err := db.DeleteRange(ctx, &Range{Start: []byte(fmt.Sprintf("k%d-40", i)), Limit: []byte(fmt.Sprintf("k%d-45", i))}); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Get(ctx, []byte("absent")); !errors.Is(err, ErrNotFound) {
			t.Fatal(err)
		}
		if _, err := db.Status(ctx); err != nil {
			t.Fatal(err)
		}
	}
	var leftOpen []*Iterator
	for _, db := range dbs {
		all := cfScan(t, ctx, db, nil)
		if len(all) != 3*(50-1-5+1) {
			t.Fatalf("%d keys, want %d", len(all), 3*(50-1-5+1))
		}
		it := db.NewIterator(ctx, BytesPrefix([]byte("k1")))
		for ok := it.Last(); ok; ok = it.Prev() {
		}
		it.Release()
		it = db.NewIterator(ctx, nil)
		it.Seek([]byte("k2"))
		it.Next()
		it.Release() // abandoned midway
		it = db.NewIterator(ctx, nil)
		it.First()
		leftOpen = append(leftOpen, it) // released by Close

		s, err := db.GetSnapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Get(ctx, []byte("k0-01")); err != nil {
			t.Fatal(err)
		}
		sit := s.NewIterator(ctx, nil)
		sit.Next()
		sit.Release()
		s.Release()
		if _, err := db.GetSnapshot(ctx); err != nil { // left for Close
			t.Fatal(err)
		}
	}
	if !b.dropConn() {
		t.Fatal("follower had no connection to drop")
	}
	cfMustGet(t, ctx, b, "k0-01", "v")
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	for _, it := range leftOpen[1:] {
		it.Next() // carries on with the next leader, or fails with NoRetry
	}
	cfMustPut(t, ctx, b, "after", "v")
	// c uses NoRetry and may not have noticed yet that its leader closed:
	// a put it sends to the closed connection fails with ErrLeaderLost.
	for {
		err := c.Put(ctx, []byte("after"), []byte("v"))
		if err == nil {
			break
		}
		if !errors.Is(err, ErrLeaderLost) {
			t.Fatalf("put through the NoRetry handle after the leader closed: %v", err)
		}
	}
	it := c.NewIterator(ctx, nil)
	it.Next()
	for _, db := range dbs {
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if it.Next() || !errors.Is(it.Error(), ErrIteratorReleased) && !errors.Is(it.Error(), ErrClosed) {
		t.Fatalf("iterator after Close: error %v", it.Error())
	}
	// An Open that fails releases what it took.
	if db, err := Open(filepath.Join(dir, "LOCK"), nil); err == nil {
		db.Close()
		t.Fatal("open of a file as a directory succeeded")
	}
}

// TestLeakGoroutinesAndFiles checks that once every handle is closed, the
// goroutines and file descriptors return to what they were before.
func TestLeakGoroutinesAndFiles(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("counts descriptors in /proc/self/fd")
	}
	// A first round, so that whatever the runtime or a package starts once
	// and keeps is in the baseline.
	cfLeakExercise(t)
	runtime.GC()
	baseG := runtime.NumGoroutine()
	baseFDs := cfFDs(t)

	for range 3 {
		cfLeakExercise(t)
	}

	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > baseG && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > baseG {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		t.Errorf("%d goroutines remain after every handle closed, %d before; all goroutines:\n%s", n, baseG, buf)
	}

	var extra []string
	for {
		now := cfFDs(t)
		extra = extra[:0]
		for fd, link := range now {
			if baseFDs[fd] != link {
				extra = append(extra, fd+" -> "+link)
			}
		}
		if len(now) <= len(baseFDs) || time.Now().After(deadline.Add(time.Second)) {
			if len(now) > len(baseFDs) {
				slices.Sort(extra)
				t.Errorf("%d file descriptors open after every handle closed, %d before; new ones:\n%s",
					len(now), len(baseFDs), strings.Join(extra, "\n"))
			}
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
}
