package party

// Differential tests of iterators: every test runs the same moves on a
// party iterator and on a goleveldb iterator (in memory) over the same data,
// and compares them after every move, while leaders change, connections
// drop and handles become leader under the party iterator.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/iterator"
	"github.com/syndtr/goleveldb/leveldb/storage"

	"github.com/levelparty/party/internal/difftest"
)

// itxWait bounds every wait of these tests, to report a hang clearly
// instead of running into the test binary's timeout.
const itxWait = 60 * time.Second

// itxLong reports whether PARTY_LONG=1 asks for more seeds and steps.
func itxLong() bool { return difftest.Long() }

// itxSeeds returns the fixed seeds plus one derived from the time, logged
// so that a failure can be replayed.
func itxSeeds(t *testing.T, fixed ...uint64) []uint64 { return difftest.Seeds(t, fixed...) }

func itxRand(seed uint64) *rand.Rand { return difftest.Rand(seed) }

// itxCtx returns a context that ends with the test, or after itxWait.
func itxCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), itxWait)
	t.Cleanup(cancel)
	return ctx
}

// itxKV is one entry.
type itxKV struct{ k, v []byte }

// itxRandBytes returns up to maxLen random bytes (difftest's alphabet).
func itxRandBytes(r *rand.Rand, maxLen int) []byte { return difftest.RandBytes(r, maxLen) }

// itxData returns difftest's keys (the edge keys and n random ones,
// sorted) with random values (some empty).
func itxData(r *rand.Rand, n int) []itxKV {
	keys := difftest.Keys(r, n)
	data := make([]itxKV, len(keys))
	for i, k := range keys {
		data[i] = itxKV{k: k, v: itxRandBytes(r, 6)}
	}
	return data
}

// itxKeys returns the keys of data.
func itxKeys(data []itxKV) [][]byte {
	keys := make([][]byte, len(data))
	for i, e := range data {
		keys[i] = e.k
	}
	return keys
}

// itxRef opens an in-memory goleveldb holding data: the reference.
func itxRef(t *testing.T, data []itxKV) *leveldb.DB {
	t.Helper()
	db, err := leveldb.Open(storage.NewMemStorage(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	var b leveldb.Batch
	for _, e := range data {
		b.Put(e.k, e.v)
	}
	if err := db.Write(&b, nil); err != nil {
		t.Fatal(err)
	}
	return db
}

// itxPut writes data through db in batches.
func itxPut(t *testing.T, db *DB, data []itxKV) {
	t.Helper()
	ctx := itxCtx(t)
	var b Batch
	for i, e := range data {
		b.Put(e.k, e.v)
		if b.Len() == 1000 || i == len(data)-1 {
			if err := db.Write(ctx, &b); err != nil {
				t.Fatal(err)
			}
			b.Reset()
		}
	}
}

// itxOpen opens a handle on dir with default options, closed when the
// test ends.
func itxOpen(t *testing.T, dir string, followOnly bool) *DB {
	t.Helper()
	return txOpen(t, dir, nil, followOnly)
}

// itxCluster is a directory whose leader is a handle of this test, which
// the test can replace at will.
type itxCluster struct {
	t       *testing.T
	dir     string
	leader  *DB
	changes int
}

// itxNewCluster opens a leader on a new directory and writes data.
func itxNewCluster(t *testing.T, data []itxKV) *itxCluster {
	t.Helper()
	c := &itxCluster{t: t, dir: t.TempDir()}
	c.leader = itxOpen(t, c.dir, false)
	if !c.leader.IsLeader() {
		t.Fatal("first handle is not the leader")
	}
	itxPut(t, c.leader, data)
	return c
}

// change replaces the leader: a new handle joins as follower, the leader
// closes, and the new handle, the only one that may lead, is elected.
func (c *itxCluster) change() {
	t := c.t
	t.Helper()
	next := itxOpen(t, c.dir, false)
	if next.IsLeader() {
		t.Fatal("new handle leads while the leader is open")
	}
	if err := c.leader.Close(); err != nil {
		t.Fatalf("closing the leader: %v", err)
	}
	select {
	case <-next.Elected():
	case <-time.After(itxWait):
		t.Fatal("no new leader elected after the leader closed")
	}
	c.leader = next
	c.changes++
}

// itxDrop waits until f follows a leader over a live connection, then
// drops that connection, as if the leader had died. With settle, it then
// waits until f follows again, so that the next move meets a handle with a
// live connection; without, the next move races the handle's reconnection.
func itxDrop(t *testing.T, f *DB, settle bool) {
	t.Helper()
	itxFollowing(t, f)
	if !f.dropConn() {
		t.Fatal("dropConn: no connection to drop")
	}
	if settle {
		itxFollowing(t, f)
	}
}

// itxFollowing waits until f is a follower with a live connection.
func itxFollowing(t *testing.T, f *DB) {
	t.Helper()
	deadline := time.Now().Add(itxWait)
	for {
		if f.following() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("handle not following a leader after %v", itxWait)
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// The differential machinery is difftest's, shared with partytest; these
// adapt it to the data and the types of this package.

type itxRange = difftest.Range

var itxAll = difftest.All

// itxPartyRange returns rg in party's terms (BytesPrefix for a prefix).
func itxPartyRange(rg itxRange) *Range {
	switch {
	case rg.All:
		return nil
	case rg.Prefix != nil:
		return BytesPrefix(clone(rg.Prefix))
	}
	return &Range{Start: clone(rg.Start), Limit: clone(rg.Limit)}
}

func itxQ(b []byte) string { return difftest.Q(b) }

// itxBound picks a range bound or seek key near the data.
func itxBound(r *rand.Rand, data []itxKV) []byte { return difftest.Near(r, itxKeys(data)) }

// itxRandRange picks a range near the data.
func itxRandRange(r *rand.Rand, data []itxKV) itxRange { return difftest.RandRange(r, itxKeys(data)) }

type itxRefDB = difftest.RefReader

type itxHistory = difftest.History

// itxDiff describes how got differs from the reference, or returns "".
func itxDiff(ref iterator.Iterator, got *Iterator, refOK, gotOK bool) string {
	return difftest.Diff(ref, got, refOK, gotOK)
}

// itxCompare runs steps random moves on the party iterator newIt returns
// and on a goleveldb iterator over the same range of ref, calling before
// ahead of every move, and fails at the first difference.
func itxCompare(t *testing.T, r *rand.Rand, data []itxKV, ref itxRefDB, rng itxRange, steps int,
	newIt func(*Range) *Iterator, before func(step int)) {
	t.Helper()
	difftest.Compare(t, r, itxKeys(data), ref, rng, steps,
		func(rg difftest.Range) difftest.Iter { return newIt(itxPartyRange(rg)) }, before)
}

// Random moves over random ranges without failover, on a leader and a
// follower, are partytest's IteratorMatchesGoleveldb, which every backend
// runs (suite_test.go). The tests below add what only a directory has:
// leaders that change under the iterator.

// TestIteratorLeaderChangeEveryStep is checklist item 9: the iterating
// handle never leads, and before every move (including the first) the
// leader is replaced by another handle; the moves still return exactly what
// goleveldb returns.
func TestIteratorLeaderChangeEveryStep(t *testing.T) {
	for _, seed := range itxSeeds(t, 11, 12) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			r := itxRand(seed)
			data := itxData(r, 60)
			ref := itxRef(t, data)
			c := itxNewCluster(t, data)
			f := itxOpen(t, c.dir, true)
			ctx := itxCtx(t)
			newIt := func(rg *Range) *Iterator { return f.NewIterator(ctx, rg) }
			ranges, steps := 5, 14
			if itxLong() {
				ranges, steps = 8, 20
			}
			for i := range ranges {
				rng := itxRandRange(r, data)
				if i == 0 {
					rng = itxAll
				}
				itxCompare(t, r, data, ref, rng, steps, newIt, func(int) { c.change() })
			}
			t.Logf("%d leader changes", c.changes)
		})
	}
}

// TestIteratorDropConnEveryStep drops the follower's connection before
// every move: it reconnects to the same leader and every iterator resumes
// exactly. "settled" waits for the handle to rejoin before the move;
// "immediate" moves at once, racing the handle's own reconnection, which
// must make no difference.
func TestIteratorDropConnEveryStep(t *testing.T) {
	for _, settle := range []bool{true, false} {
		name := "immediate"
		if settle {
			name = "settled"
		}
		t.Run(name, func(t *testing.T) {
			for _, seed := range itxSeeds(t, 21, 22, 23) {
				t.Run(fmt.Sprint(seed), func(t *testing.T) {
					r := itxRand(seed)
					data := itxData(r, 150)
					ref := itxRef(t, data)
					c := itxNewCluster(t, data)
					f := itxOpen(t, c.dir, true)
					ctx := itxCtx(t)
					newIt := func(rg *Range) *Iterator { return f.NewIterator(ctx, rg) }
					ranges := 8
					if itxLong() {
						ranges = 30
					}
					for i := range ranges {
						rng := itxRandRange(r, data)
						if i == 0 {
							rng = itxAll
						}
						itxCompare(t, r, data, ref, rng, 40, newIt, func(int) { itxDrop(t, f, settle) })
					}
				})
			}
		})
	}
}

// TestIteratorBecomesLeader iterates on a follower that becomes the leader
// part way: its iterator moves from the leader's stream to its own engine
// and carries on exactly. Each round the new leader's place as follower is
// taken by a fresh handle, on the same directory.
func TestIteratorBecomesLeader(t *testing.T) {
	for _, seed := range itxSeeds(t, 31, 32) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			r := itxRand(seed)
			data := itxData(r, 100)
			ref := itxRef(t, data)
			c := itxNewCluster(t, data)
			ctx := itxCtx(t)
			rounds := 8
			if itxLong() {
				rounds = 20
			}
			for i := range rounds {
				rng := itxRandRange(r, data)
				if i == 0 {
					rng = itxAll
				}
				h := itxOpen(t, c.dir, false)
				if h.IsLeader() {
					t.Fatal("new handle leads while the leader is open")
				}
				newIt := func(rg *Range) *Iterator { return h.NewIterator(ctx, rg) }
				switchAt := r.IntN(30)
				itxCompare(t, r, data, ref, rng, 40, newIt, func(step int) {
					switch {
					case step < switchAt && step%3 == 1:
						itxDrop(t, h, true)
					case step == switchAt:
						if err := c.leader.Close(); err != nil {
							t.Fatal(err)
						}
						select {
						case <-h.Elected():
						case <-time.After(itxWait):
							t.Fatal("follower not elected after the leader closed")
						}
						c.leader = h
					}
				})
				if c.leader != h {
					t.Fatal("the iterating handle did not become leader")
				}
			}
		})
	}
}

// itxWalk checks that moving it with move (Next or Prev) from its current
// entry yields want, calling between ahead of every move, then the end.
func itxWalk(t *testing.T, it *Iterator, move func() bool, want []string, between func()) {
	t.Helper()
	for i, w := range want {
		between()
		if !move() {
			t.Fatalf("move %d: ended (Error %v), want %q", i, it.Error(), w)
		}
		if string(it.Key()) != w {
			t.Fatalf("move %d: key %q, want %q", i, it.Key(), w)
		}
	}
	between()
	if move() {
		t.Fatalf("after %d moves: got extra key %q", len(want), it.Key())
	}
	if err := it.Error(); err != nil {
		t.Fatal(err)
	}
}

// TestIteratorResumeExtendingKeys is the Node original's defect (DESIGN.md
// section 6): reading a, ab, b in reverse with the leader lost after b must
// give b, ab, a, not b, a. Forward, entries buffered before a disconnect
// must not come back twice.
func TestIteratorResumeExtendingKeys(t *testing.T) {
	ctx := itxCtx(t)
	t.Run("reverse", func(t *testing.T) {
		keys := []string{"a", "a\x00", "a\x00\x00", "a\x01", "ab", "ab\x00", "ab\xff", "a\xff", "a\xff\xff", "b", "b\x00"}
		if !slices.IsSorted(keys) {
			t.Fatal("keys not sorted")
		}
		var data []itxKV
		for _, k := range keys {
			data = append(data, itxKV{[]byte(k), []byte("v" + k)})
		}
		c := itxNewCluster(t, data[:1])
		itxPut(t, c.leader, []itxKV{{[]byte("ab"), []byte("vab")}, {[]byte("b"), []byte("vb")}})
		f := itxOpen(t, c.dir, true)
		// Exactly a, ab, b first.
		it := f.NewIterator(ctx, nil)
		if !it.Last() || string(it.Key()) != "b" {
			t.Fatalf("Last: %q, %v", it.Key(), it.Error())
		}
		itxWalk(t, it, it.Prev, []string{"ab", "a"}, c.change)
		it.Release()
		// Then all the keys that extend one another: in reverse with a
		// leader change before every move, forward with a dropped
		// connection before every move.
		itxPut(t, c.leader, data)
		for _, r := range []itxRange{itxAll, difftest.PrefixRange([]byte("a")), difftest.MakeRange([]byte("a\x00"), []byte("ab\xff"))} {
			rev := slices.Clone(keys)
			slices.Reverse(rev)
			var want []string
			u := r.Util()
			for _, k := range rev {
				if (u == nil || bytes.Compare([]byte(k), u.Start) >= 0) && (u == nil || u.Limit == nil || bytes.Compare([]byte(k), u.Limit) < 0) {
					want = append(want, k)
				}
			}
			it := f.NewIterator(ctx, itxPartyRange(r))
			c.change()
			if !it.Last() || string(it.Key()) != want[0] {
				t.Fatalf("%s: Last: %q, %v", r.Name, it.Key(), it.Error())
			}
			itxWalk(t, it, it.Prev, want[1:], c.change)
			slices.Reverse(want)
			c.change()
			if !it.First() || string(it.Key()) != want[0] {
				t.Fatalf("%s: First: %q, %v", r.Name, it.Key(), it.Error())
			}
			itxWalk(t, it, it.Next, want[1:], func() { itxDrop(t, f, true) })
			it.Release()
		}
	})
	t.Run("forward-buffered", func(t *testing.T) {
		// The first batch after a seek holds several entries, so after
		// First the follower holds entries it has not returned yet.
		var data []itxKV
		var want []string
		for i := range 300 {
			k := fmt.Sprintf("k%03d", i)
			data = append(data, itxKV{[]byte(k), []byte{byte(i)}})
			want = append(want, k)
		}
		c := itxNewCluster(t, data)
		f := itxOpen(t, c.dir, true)
		for _, lose := range []struct {
			name string
			fn   func()
		}{{"dropConn", func() { itxDrop(t, f, true) }}, {"leader change", c.change}} {
			everies := []int{1, 7, 40}
			if lose.name == "leader change" && !itxLong() {
				everies = []int{5, 40} // a change takes a few milliseconds
			}
			for _, every := range everies {
				it := f.NewIterator(ctx, nil)
				if !it.First() || string(it.Key()) != want[0] {
					t.Fatalf("First: %q, %v", it.Key(), it.Error())
				}
				n := 0
				itxWalk(t, it, it.Next, want[1:], func() {
					if n++; n%every == 0 {
						lose.fn()
					}
				})
				// And back, from the end.
				if !it.Prev() || string(it.Key()) != want[len(want)-1] {
					t.Fatalf("%s every %d: Prev after the end: %q, %v", lose.name, every, it.Key(), it.Error())
				}
				rev := slices.Clone(want[:len(want)-1])
				slices.Reverse(rev)
				n = 0
				itxWalk(t, it, it.Prev, rev, func() {
					if n++; n%every == 0 {
						lose.fn()
					}
				})
				it.Release()
			}
		}
	})
}

// TestIteratorLargeRangeFailover reads 20,000 entries forward and backward
// through a follower whose leader changes every thousand moves or so: the
// batches and credit in flight at each change must neither lose nor repeat
// an entry.
func TestIteratorLargeRangeFailover(t *testing.T) {
	n := 20000
	if itxLong() {
		n = 100000
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := itxRand(seed)
	seen := map[string]bool{}
	var data []itxKV
	for len(data) < n {
		k := make([]byte, 2+r.IntN(6))
		for i := range k {
			k[i] = byte(r.IntN(256))
		}
		if !seen[string(k)] {
			seen[string(k)] = true
			data = append(data, itxKV{k, itxRandBytes(r, 8)})
		}
	}
	data = append(data, itxKV{[]byte{}, []byte("empty key")}, itxKV{[]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, nil})
	ref := itxRef(t, data)
	c := itxNewCluster(t, data)
	f := itxOpen(t, c.dir, true)
	ctx := itxCtx(t)
	for _, rng := range []itxRange{itxAll, difftest.MakeRange(data[10].k, data[n/2].k)} {
		for _, backward := range []bool{false, true} {
			refIt := ref.NewIterator(rng.Util(), nil)
			it := f.NewIterator(ctx, itxPartyRange(rng))
			refStart, start, refMove, move := refIt.First, it.First, refIt.Next, it.Next
			if backward {
				refStart, start, refMove, move = refIt.Last, it.Last, refIt.Prev, it.Prev
			}
			nextChange := 500 + r.IntN(1000)
			count := 0
			for step := 0; ; step++ {
				if step == nextChange {
					c.change()
					nextChange += 500 + r.IntN(1000)
				}
				var refOK, ok bool
				if step == 0 {
					refOK, ok = refStart(), start()
				} else {
					refOK, ok = refMove(), move()
				}
				if d := itxDiff(refIt, it, refOK, ok); d != "" {
					t.Fatalf("%s backward=%v: step %d (after %d leader changes): %s", rng.Name, backward, step, c.changes, d)
				}
				if !ok {
					break
				}
				count++
			}
			refIt.Release()
			it.Release()
			if rng.All && count != len(data) {
				t.Fatalf("read %d entries, want %d", count, len(data))
			}
			t.Logf("%s backward=%v: %d entries, %d leader changes so far", rng.Name, backward, count, c.changes)
		}
	}
}

// TestIteratorSnapshot checks a follower's snapshot: its Get and iterators
// see the data as it was, whatever is written later; once the leader that
// holds it is lost, every operation on it fails with ErrSnapshotLost, even
// after a new leader is elected, and Release still works.
func TestIteratorSnapshot(t *testing.T) {
	for _, lose := range []string{"leader closed", "dropConn"} {
		t.Run(lose, func(t *testing.T) {
			seed := uint64(time.Now().UnixNano())
			t.Logf("seed %d", seed)
			r := itxRand(seed)
			old := itxData(r, 100)
			ref := itxRef(t, old)
			c := itxNewCluster(t, old)
			f := itxOpen(t, c.dir, true)
			ctx := itxCtx(t)
			snap, err := f.GetSnapshot(ctx)
			if err != nil {
				t.Fatal(err)
			}
			// Change every key, delete some, add others.
			var b Batch
			for i, e := range old {
				if i%3 == 0 {
					b.Delete(e.k)
				} else {
					b.Put(e.k, append(clone(e.v), "new"...))
				}
				b.Put(append(clone(e.k), "\x00new"...), []byte("new"))
			}
			if err := c.leader.Write(ctx, &b); err != nil {
				t.Fatal(err)
			}
			for _, e := range old[:20] {
				v, err := snap.Get(ctx, e.k)
				if err != nil || !bytes.Equal(v, e.v) {
					t.Fatalf("snapshot Get(%q) = %q, %v; want the old %q", e.k, v, err, e.v)
				}
			}
			if ok, err := snap.Has(ctx, append(clone(old[0].k), "\x00new"...)); ok || err != nil {
				t.Fatalf("snapshot Has(a key written later) = %v, %v", ok, err)
			}
			if v, err := f.Get(ctx, old[0].k); !errors.Is(err, ErrNotFound) {
				t.Fatalf("handle Get of a deleted key = %q, %v", v, err)
			}
			for range 6 {
				itxCompare(t, r, old, ref, itxRandRange(r, old), 60, func(rg *Range) *Iterator { return snap.NewIterator(ctx, rg) }, func(int) {})
			}

			// Two iterators stand at the first entry when the leader is lost.
			drain, seek := snap.NewIterator(ctx, nil), snap.NewIterator(ctx, nil)
			refIt := ref.NewIterator(nil, nil)
			if !drain.First() || !seek.First() || !refIt.First() || !bytes.Equal(drain.Key(), old[0].k) {
				t.Fatalf("snapshot iterator First: %q, %v", drain.Key(), drain.Error())
			}
			if lose == "dropConn" {
				itxDrop(t, f, false)
			} else {
				if err := c.leader.Close(); err != nil {
					t.Fatal(err)
				}
			}
			// A move that needs the leader fails.
			if seek.Seek(old[5].k) || seek.Valid() || seek.Key() != nil || seek.Value() != nil {
				t.Fatalf("snapshot iterator Seek moved to %q after its leader was lost", seek.Key())
			}
			if err := seek.Error(); !errors.Is(err, ErrSnapshotLost) {
				t.Fatalf("snapshot iterator Error() = %v after Seek, want ErrSnapshotLost", err)
			}
			if seek.First() || seek.Last() || seek.Next() || seek.Prev() {
				t.Fatal("snapshot iterator moved after it failed")
			}
			seek.Release()
			// Stepping on may return entries that had already arrived: they
			// are the snapshot's, never newer data; then it fails with
			// ErrSnapshotLost, or ends if the end had arrived too. Either
			// way, going back needs the leader and fails.
			served := 0
			for {
				refOK, ok := refIt.Next(), drain.Next()
				if !ok {
					break
				}
				served++
				if d := itxDiff(refIt, drain, refOK, ok); d != "" {
					t.Fatalf("snapshot iterator after its leader was lost: entry %d: %s", served, d)
				}
			}
			refIt.Release()
			if drain.Valid() || drain.Key() != nil {
				t.Fatalf("ended snapshot iterator Valid at %q", drain.Key())
			}
			if err := drain.Error(); err != nil && !errors.Is(err, ErrSnapshotLost) {
				t.Fatalf("snapshot iterator Error() = %v, want ErrSnapshotLost or nil", err)
			}
			t.Logf("%d buffered entries served after the leader was lost; then Error() = %v", served, drain.Error())
			if drain.Prev() || !errors.Is(drain.Error(), ErrSnapshotLost) {
				t.Fatalf("snapshot iterator Prev after the end: %q, %v; want ErrSnapshotLost", drain.Key(), drain.Error())
			}
			drain.Release()
			if lose != "dropConn" {
				c.leader = itxOpen(t, c.dir, false) // a new leader, with newer data
			}
			check := func(when string) {
				t.Helper()
				if v, err := snap.Get(ctx, old[1].k); !errors.Is(err, ErrSnapshotLost) {
					t.Fatalf("%s: snapshot Get = %q, %v; want ErrSnapshotLost", when, v, err)
				}
				if ok, err := snap.Has(ctx, old[1].k); !errors.Is(err, ErrSnapshotLost) {
					t.Fatalf("%s: snapshot Has = %v, %v; want ErrSnapshotLost", when, ok, err)
				}
				it := snap.NewIterator(ctx, nil)
				if it.First() || it.Key() != nil {
					t.Fatalf("%s: new snapshot iterator First moved to %q", when, it.Key())
				}
				if err := it.Error(); !errors.Is(err, ErrSnapshotLost) {
					t.Fatalf("%s: new snapshot iterator Error() = %v, want ErrSnapshotLost", when, err)
				}
				it.Release()
			}
			check("right after")
			// The handle itself carries on with the new leader's data.
			if v, err := f.Get(ctx, old[1].k); err != nil || !bytes.Equal(v, append(clone(old[1].v), "new"...)) {
				t.Fatalf("handle Get after failover = %q, %v", v, err)
			}
			check("after the handle rejoined")
			snap.Release()
			snap.Release()
			if _, err := snap.Get(ctx, old[1].k); !errors.Is(err, ErrSnapshotReleased) {
				t.Fatalf("Get on a released snapshot: %v, want ErrSnapshotReleased", err)
			}
		})
	}
}

// TestIteratorReleased checks moves after Release, on the leader and on a
// follower, against goleveldb: every move returns false, Error is
// ErrIteratorReleased, and Release may be called again.
func TestIteratorReleased(t *testing.T) {
	data := itxData(itxRand(41), 20)
	ref := itxRef(t, data)
	c := itxNewCluster(t, data)
	f := itxOpen(t, c.dir, true)
	ctx := itxCtx(t)
	for name, h := range map[string]*DB{"leader": c.leader, "follower": f} {
		for _, moved := range []bool{false, true} {
			refIt := ref.NewIterator(nil, nil)
			it := h.NewIterator(ctx, nil)
			if moved {
				if !it.Seek([]byte("a")) || !refIt.Seek([]byte("a")) {
					t.Fatal("Seek failed")
				}
			}
			it.Release()
			refIt.Release()
			it.Release()
			refIt.Release()
			for _, op := range []difftest.Move{{Kind: difftest.Next}, {Kind: difftest.First}, {Kind: difftest.Last}, {Kind: difftest.Seek, Key: []byte("a")}, {Kind: difftest.Prev}} {
				if op.Apply(it) || it.Valid() || it.Key() != nil || it.Value() != nil {
					t.Fatalf("%s: %v after Release moved to %q", name, op, it.Key())
				}
				if err := it.Error(); !errors.Is(err, ErrIteratorReleased) {
					t.Fatalf("%s: Error() after Release and %v = %v, want ErrIteratorReleased", name, op, err)
				}
				if op.Apply(refIt) || refIt.Error() == nil {
					t.Fatalf("reference: %v after Release: %v", op, refIt.Error())
				}
			}
			it.Release()
		}
	}
	// A released iterator also survives its handle closing.
	it := f.NewIterator(ctx, nil)
	it.Release()
	f.Close()
	it.Release()
	if it.Next() || !errors.Is(it.Error(), ErrIteratorReleased) {
		t.Fatalf("after Close: %v", it.Error())
	}
}

// TestIteratorViewAtCreation checks that an iterator reads the data as it
// was when NewIterator returned, as goleveldb's does, on a follower of a
// live leader and on the leader: writes made afterwards, by this handle,
// by the leader or by another follower, are not seen.
func TestIteratorViewAtCreation(t *testing.T) {
	rounds := 100
	if itxLong() {
		rounds = 1000
	}
	data := itxData(itxRand(51), 40)
	ref := itxRef(t, data)
	c := itxNewCluster(t, data)
	f := itxOpen(t, c.dir, false)
	g := itxOpen(t, c.dir, true)
	for _, cs := range []struct {
		name   string
		reader *DB
		writer *DB
	}{
		{"follower/leader writes", f, c.leader},
		{"follower/itself writes", f, f},
		{"follower/other follower writes", f, g},
		{"leader/follower writes", c.leader, f},
		{"leader/itself writes", c.leader, c.leader},
	} {
		t.Run(cs.name, func(t *testing.T) {
			for round := range rounds {
				itxViewRound(t, round, cs.reader, cs.writer, c.leader, data, ref)
			}
		})
	}
}

// itxViewRound makes an iterator on reader, changes the data through
// writer, and checks that the iterator reads the data as it was (ref). It
// restores the data through leader, even if the check fails.
func itxViewRound(t *testing.T, round int, reader, writer, leader *DB, data []itxKV, ref *leveldb.DB) {
	t.Helper()
	ctx := itxCtx(t)
	newer := []itxKV{{[]byte("a\x00\x00new"), []byte("new")}, {[]byte("zz"), []byte("new")}}
	del, chg := data[round%len(data)], data[(round+1)%len(data)]
	iter := reader.NewIterator(ctx, nil)
	defer iter.Release()
	var b Batch
	for _, e := range newer {
		b.Put(e.k, e.v)
	}
	b.Delete(del.k)
	b.Put(chg.k, []byte("changed"))
	defer func() {
		var b Batch
		for _, e := range newer {
			b.Delete(e.k)
		}
		b.Put(del.k, del.v)
		b.Put(chg.k, chg.v)
		if err := leader.Write(ctx, &b); err != nil {
			t.Fatalf("restoring the data: %v", err)
		}
	}()
	if err := writer.Write(ctx, &b); err != nil {
		t.Fatal(err)
	}
	refIt := ref.NewIterator(nil, nil)
	defer refIt.Release()
	for step := 0; ; step++ {
		refOK, ok := refIt.Next(), iter.Next()
		if d := itxDiff(refIt, iter, refOK, ok); d != "" {
			t.Fatalf("round %d (deleted %q, changed %q after NewIterator): entry %d: %s", round, del.k, chg.k, step, d)
		}
		if !ok {
			return
		}
	}
}
