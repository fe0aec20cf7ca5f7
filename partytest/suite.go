package partytest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/iterator"
	"github.com/syndtr/goleveldb/leveldb/opt"
	"github.com/syndtr/goleveldb/leveldb/util"

	"github.com/levelparty/party"
	"github.com/levelparty/party/internal/difftest"
)

func testKeysAndValues(t *testing.T, dbs []*party.DB, _ Features) {
	ctx := ctxFor(t)
	w := dbs[0]
	big := bytes.Repeat([]byte("0123456789abcdef"), 64<<10/16)
	for i, k := range difftest.EdgeKeys {
		v := []byte(fmt.Sprint(i))
		switch i {
		case 1:
			v = []byte{}
		case 2:
			v = big
		}
		must(t, w.Put(ctx, []byte(k), v))
		for _, db := range dbs {
			got, err := db.Get(ctx, []byte(k))
			if err != nil || !bytes.Equal(got, v) {
				t.Fatalf("Get(%q) = %.20q, %v; want %.20q", k, got, err, v)
			}
			if ok, err := db.Has(ctx, []byte(k)); !ok || err != nil {
				t.Fatalf("Has(%q) = %v, %v", k, ok, err)
			}
		}
	}
	must(t, dbs[len(dbs)-1].Delete(ctx, []byte("a")))
	must(t, dbs[len(dbs)-1].Delete(ctx, []byte("never written")))
	for _, db := range dbs {
		if _, err := db.Get(ctx, []byte("a")); !errors.Is(err, party.ErrNotFound) {
			t.Fatalf("Get of a deleted key: %v, want ErrNotFound", err)
		}
		if ok, err := db.Has(ctx, []byte("a")); ok || err != nil {
			t.Fatalf("Has of a deleted key: %v, %v", ok, err)
		}
	}
	hidden := []byte("\xff\xffparty\x00tx\x00x")
	if err := w.Put(ctx, hidden, nil); !errors.Is(err, party.ErrHiddenKey) {
		t.Errorf("Put under party's prefix: %v, want ErrHiddenKey", err)
	}
}

func testBatch(t *testing.T, dbs []*party.DB, _ Features) {
	ctx := ctxFor(t)
	var b party.Batch
	b.Put([]byte("a"), []byte("1"))
	b.Delete([]byte("a")) // the last record of a key wins
	b.Delete([]byte("b"))
	b.Put([]byte("b"), []byte("2"))
	b.Put([]byte("c"), []byte("1"))
	b.Put([]byte("c"), []byte("3"))
	b.Put([]byte("d"), nil)
	must(t, dbs[0].Write(ctx, &b))
	for _, db := range dbs {
		got := scan(t, db, nil)
		if want := "b=2 c=3 d="; got != want {
			t.Fatalf("after a batch: %s, want %s", got, want)
		}
	}
	must(t, dbs[len(dbs)-1].Write(ctx, new(party.Batch))) // empty: nothing
}

// scan lists db's entries in r as "k=v" words.
func scan(t *testing.T, db *party.DB, r *party.Range) string {
	t.Helper()
	it := db.NewIterator(ctxFor(t), r)
	defer it.Release()
	var s []string
	for it.Next() {
		s = append(s, fmt.Sprintf("%s=%s", it.Key(), it.Value()))
	}
	must(t, it.Error())
	return strings.Join(s, " ")
}

// fill writes keys with random values through db and into ref.
func fill(t *testing.T, db *party.DB, ref *leveldb.DB, keys [][]byte, seed uint64) {
	t.Helper()
	r := newRand(seed)
	var b party.Batch
	var rb leveldb.Batch
	for _, k := range keys {
		v := randBytes(r, 5)
		b.Put(k, v)
		rb.Put(k, v)
	}
	must(t, db.Write(ctxFor(t), &b))
	must(t, ref.Write(&rb, nil))
}

func testIterators(t *testing.T, dbs []*party.DB, _ Features) {
	ctx := ctxFor(t)
	for _, seed := range seeds(t) {
		r := newRand(seed)
		keys := randKeys(r, 120)
		ref := refDB(t)
		must(t, dbs[0].DeleteRange(ctx, nil))
		fill(t, dbs[0], ref, keys, seed)
		ranges := 25
		if long() {
			ranges = 150
		}
		for i := range ranges {
			rg := randRange(r, keys)
			if i == 0 {
				rg = all
			}
			for _, db := range dbs {
				compare(t, r, keys, ref, rg, 60, func(pr *party.Range) *party.Iterator { return db.NewIterator(ctx, pr) })
			}
		}
	}
}

func testDeleteRange(t *testing.T, dbs []*party.DB, _ Features) {
	ctx := ctxFor(t)
	r := newRand(3)
	keys := randKeys(r, 60)
	ref := refDB(t)
	for round := range 10 {
		fill(t, dbs[round%len(dbs)], ref, keys[r.IntN(len(keys)):], uint64(round))
		rg := randRange(r, keys)
		must(t, dbs[(round+1)%len(dbs)].DeleteRange(ctx, partyRange(rg)))
		it := ref.NewIterator(rg.Util(), nil)
		var rb leveldb.Batch
		for it.Next() {
			rb.Delete(it.Key())
		}
		it.Release()
		must(t, ref.Write(&rb, nil))
		for _, db := range dbs {
			compare(t, r, keys, ref, all, 30, func(pr *party.Range) *party.Iterator { return db.NewIterator(ctx, pr) })
		}
	}
}

func testSnapshot(t *testing.T, dbs []*party.DB, _ Features) {
	ctx := ctxFor(t)
	r := newRand(4)
	keys := randKeys(r, 40)
	ref := refDB(t)
	fill(t, dbs[0], ref, keys, 4)
	for _, db := range dbs {
		snap, err := db.GetSnapshot(ctx)
		must(t, err)
		refSnap, err := ref.GetSnapshot()
		must(t, err)
		fill(t, dbs[0], ref, keys[:20], 5)
		must(t, dbs[len(dbs)-1].DeleteRange(ctx, &party.Range{Start: keys[20], Limit: keys[30]}))
		must(t, ref.Write(deleteBatch(keys[20:30]), nil))
		for range 4 {
			compare(t, r, keys, refSnap, randRange(r, keys), 30, func(pr *party.Range) *party.Iterator { return snap.NewIterator(ctx, pr) })
		}
		for _, k := range keys[15:35] {
			want, werr := refSnap.Get(k, nil)
			got, gerr := snap.Get(ctx, k)
			if (werr == nil) != (gerr == nil) || !bytes.Equal(got, want) {
				t.Fatalf("snapshot Get(%q) = %q, %v; goleveldb %q, %v", k, got, gerr, want, werr)
			}
		}
		snap.Release()
		refSnap.Release()
		if _, err := snap.Get(ctx, keys[0]); !errors.Is(err, party.ErrSnapshotReleased) {
			t.Fatalf("Get on a released snapshot: %v, want ErrSnapshotReleased", err)
		}
		fill(t, dbs[0], ref, keys, 6) // put the deleted keys back
	}
}

func deleteBatch(keys [][]byte) *leveldb.Batch {
	var b leveldb.Batch
	for _, k := range keys {
		b.Delete(k)
	}
	return &b
}

func testTransaction(t *testing.T, dbs []*party.DB, f Features) {
	ctx := ctxFor(t)
	a, b := dbs[0], dbs[len(dbs)-1]
	must(t, a.Put(ctx, []byte("k1"), []byte("1")))
	tx, err := b.OpenTransaction(ctx)
	must(t, err)
	must(t, tx.Put(ctx, []byte("k2"), []byte("2")))
	must(t, tx.Delete(ctx, []byte("k1")))
	if v, err := tx.Get(ctx, []byte("k2")); err != nil || string(v) != "2" {
		t.Fatalf("a transaction's Get of its own write: %q, %v", v, err)
	}
	it := tx.NewIterator(ctx, nil)
	var keys []string
	for it.Next() {
		keys = append(keys, string(it.Key()))
	}
	it.Release()
	if !slices.Equal(keys, []string{"k2"}) {
		t.Fatalf("a transaction's iterator: %q, want its own writes over the database", keys)
	}
	tx.Discard()
	if got := scan(t, a, nil); got != "k1=1" {
		t.Fatalf("after Discard: %s", got)
	}
	must(t, b.Update(ctx, func(tx *party.Transaction) error {
		if err := tx.Put(ctx, []byte("k2"), []byte("2")); err != nil {
			return err
		}
		return tx.Delete(ctx, []byte("k1"))
	}))
	if got := scan(t, a, nil); got != "k2=2" {
		t.Fatalf("after Update: %s", got)
	}
	if _, err := tx.Get(ctx, []byte("k2")); !errors.Is(err, party.ErrTxAborted) {
		t.Fatalf("Get after Discard: %v, want ErrTxAborted", err)
	}
	if !f.Optimistic {
		return
	}
	// Optimistic: a write to what a transaction read, between its read
	// and its commit, makes the commit fail with nothing applied: a key
	// read, a key inserted into an iterated range, a key deleted from it.
	for _, c := range []struct {
		name  string
		read  func(tx *party.Transaction) error
		write func() error
	}{
		{"key read", func(tx *party.Transaction) error { _, err := tx.Get(ctx, []byte("k2")); return err },
			func() error { return a.Put(ctx, []byte("k2"), []byte("changed")) }},
		{"key read absent", func(tx *party.Transaction) error { _, err := tx.Has(ctx, []byte("k9")); return err },
			func() error { return a.Put(ctx, []byte("k9"), []byte("new")) }},
		{"insert into an iterated range", func(tx *party.Transaction) error {
			it := tx.NewIterator(ctx, party.BytesPrefix([]byte("r/")))
			defer it.Release()
			for it.Next() {
			}
			return it.Error()
		}, func() error { return a.Put(ctx, []byte("r/new"), nil) }},
		{"delete from an iterated range", func(tx *party.Transaction) error {
			it := tx.NewIterator(ctx, party.BytesPrefix([]byte("r/")))
			defer it.Release()
			it.First()
			return it.Error()
		}, func() error { return a.Delete(ctx, []byte("r/new")) }},
	} {
		tx, err := b.OpenTransaction(ctx)
		must(t, err)
		must(t, c.read(tx))
		must(t, c.write())
		must(t, tx.Put(ctx, []byte("out"), []byte(c.name)))
		if err := tx.Commit(ctx); !errors.Is(err, party.ErrTxConflict) || !errors.Is(err, party.ErrTxAborted) {
			t.Fatalf("%s: Commit after a conflicting write: %v, want ErrTxConflict", c.name, err)
		}
		if _, err := a.Get(ctx, []byte("out")); !errors.Is(err, party.ErrNotFound) {
			t.Fatalf("%s: a conflicting commit applied its write", c.name)
		}
	}
	// Writes that change nothing the transaction read do not conflict: a
	// key outside what it read, the delete of an absent key.
	tx, err = b.OpenTransaction(ctx)
	must(t, err)
	it = tx.NewIterator(ctx, party.BytesPrefix([]byte("r/")))
	for it.Next() {
	}
	it.Release()
	_, err = tx.Get(ctx, []byte("k2"))
	must(t, err)
	must(t, a.Put(ctx, []byte("s/other"), nil))
	must(t, a.Delete(ctx, []byte("never there")))
	must(t, tx.Put(ctx, []byte("out"), []byte("no conflict")))
	must(t, tx.Commit(ctx))
}

func testUpdateCounter(t *testing.T, dbs []*party.DB, _ Features) {
	ctx := ctxFor(t)
	const workers, each = 4, 40
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		db := dbs[w%len(dbs)]
		wg.Go(func() {
			for range each {
				err := db.Update(ctx, func(tx *party.Transaction) error {
					n := 0
					v, err := tx.Get(ctx, []byte("counter"))
					if err == nil {
						fmt.Sscan(string(v), &n)
					} else if !errors.Is(err, party.ErrNotFound) {
						return err
					}
					return tx.Put(ctx, []byte("counter"), []byte(fmt.Sprint(n+1)))
				})
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	v, err := dbs[0].Get(ctx, []byte("counter"))
	must(t, err)
	if string(v) != fmt.Sprint(workers*each) {
		t.Fatalf("counter = %s after %d Updates", v, workers*each)
	}
}

func testWatch(t *testing.T, dbs []*party.DB, _ Features) {
	ctx := ctxFor(t)
	w, err := dbs[0].Watch(ctx, party.BytesPrefix([]byte("w/")))
	must(t, err)
	defer w.Close()
	d := dbs[len(dbs)-1]
	must(t, d.Put(ctx, []byte("w/a"), []byte("1")))
	must(t, d.Put(ctx, []byte("x"), []byte("outside")))
	var b party.Batch
	b.Put([]byte("w/b"), []byte("2"))
	b.Delete([]byte("w/a"))
	b.Put([]byte("y"), nil)
	must(t, d.Write(ctx, &b))
	must(t, d.Update(ctx, func(tx *party.Transaction) error { return tx.Put(ctx, []byte("w/c"), nil) }))
	must(t, d.DeleteRange(ctx, &party.Range{Start: []byte("w/b"), Limit: []byte("w/d")}))
	want := []string{"put w/a=1", "put w/b=2 del w/a", "put w/c=", "del w/b del w/c"}
	var got []string
	for len(got) < len(want) {
		cs, err := w.Next(ctx)
		must(t, err)
		var s []string
		for _, c := range cs {
			if c.Deleted {
				s = append(s, "del "+string(c.Key))
			} else {
				s = append(s, fmt.Sprintf("put %s=%s", c.Key, c.Value))
			}
		}
		got = append(got, strings.Join(s, " "))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("watch saw, write by write:\n%q\nwant:\n%q", got, want)
	}
}

// subRef is goleveldb's view of a sublevel: its iterators over the
// prefixed keys, with the prefix taken off.
type subRef struct {
	db     refReader
	prefix []byte
}

func (s subRef) abs(k []byte) []byte { return append(slices.Clone(s.prefix), k...) }

func (s subRef) NewIterator(r *util.Range, ro *opt.ReadOptions) iterator.Iterator {
	out := util.BytesPrefix(s.prefix)
	if r != nil && r.Start != nil {
		out.Start = s.abs(r.Start)
	}
	if r != nil && r.Limit != nil {
		out.Limit = s.abs(r.Limit)
	}
	return subIter{s.db.NewIterator(out, ro), len(s.prefix), s}
}

type subIter struct {
	iterator.Iterator
	n int
	s subRef
}

func (it subIter) Seek(k []byte) bool { return it.Iterator.Seek(it.s.abs(k)) }

func (it subIter) Key() []byte {
	if k := it.Iterator.Key(); k != nil {
		return k[it.n:]
	}
	return nil
}

func testSublevels(t *testing.T, dbs []*party.DB, _ Features) {
	ctx := ctxFor(t)
	r := newRand(7)
	keys := randKeys(r, 30)
	ref := refDB(t)
	views := []struct {
		names  []string
		prefix string
	}{{[]string{"a"}, "!a!"}, {[]string{"a", "b"}, "!a!!b!"}, {[]string{"ab"}, "!ab!"}}
	// Keys at the borders of the sublevels, written through the root.
	var border [][]byte
	for _, v := range views {
		p := v.prefix
		border = append(border, []byte(p[:len(p)-1]), []byte(p[:len(p)-1]+"\""), []byte(p+"\xff"))
	}
	fill(t, dbs[0], ref, border, 8)
	for round := range 12 {
		db := dbs[round%len(dbs)]
		v := views[r.IntN(len(views))]
		view := db
		for _, n := range v.names {
			view = view.Sublevel(n)
		}
		sref := subRef{ref, []byte(v.prefix)}
		switch r.IntN(3) {
		case 0:
			k, val := near(r, keys), randBytes(r, 4)
			must(t, view.Put(ctx, k, val))
			must(t, ref.Put(sref.abs(k), val, nil))
		case 1:
			var b party.Batch
			var rb leveldb.Batch
			for range 5 {
				k := near(r, keys)
				if r.IntN(3) == 0 {
					b.Delete(k)
					rb.Delete(sref.abs(k))
				} else {
					b.Put(k, k)
					rb.Put(sref.abs(k), k)
				}
			}
			must(t, view.Write(ctx, &b))
			must(t, ref.Write(&rb, nil))
		default:
			rg := randRange(r, keys)
			must(t, view.DeleteRange(ctx, partyRange(rg)))
			it := sref.NewIterator(rg.Util(), nil)
			var rb leveldb.Batch
			for it.Next() {
				rb.Delete(sref.abs(it.Key()))
			}
			it.Release()
			must(t, ref.Write(&rb, nil))
		}
		for _, h := range dbs {
			compare(t, r, keys, ref, all, 30, func(pr *party.Range) *party.Iterator { return h.NewIterator(ctx, pr) })
		}
		compare(t, r, keys, sref, randRange(r, keys), 30, func(pr *party.Range) *party.Iterator { return view.NewIterator(ctx, pr) })
	}
}

func testClose(t *testing.T, dbs []*party.DB, _ Features) {
	ctx := ctxFor(t)
	last := dbs[len(dbs)-1]
	must(t, last.Put(ctx, []byte("k"), []byte("v")))
	must(t, last.Close())
	must(t, last.Close()) // again: nil
	if err := last.Put(ctx, []byte("k"), nil); !errors.Is(err, party.ErrClosed) {
		t.Fatalf("Put after Close: %v, want ErrClosed", err)
	}
	if _, err := last.Get(ctx, []byte("k")); !errors.Is(err, party.ErrClosed) {
		t.Fatalf("Get after Close: %v, want ErrClosed", err)
	}
	if len(dbs) > 1 {
		if v, err := dbs[0].Get(ctx, []byte("k")); err != nil || string(v) != "v" {
			t.Fatalf("another handle after one closed: %q, %v", v, err)
		}
	}
}
