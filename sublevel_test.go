package party

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/iterator"
	"github.com/syndtr/goleveldb/leveldb/opt"
	"github.com/syndtr/goleveldb/leveldb/util"
)

// subView is a sublevel path and the prefix abstract-level gives it.
type subView struct {
	names  []string
	prefix string
}

// subViews are views whose prefixes extend one another ("!a!" and
// "!a!!b!"), sit next to one another ("!a!" and "!ab!"), include the empty
// name's "!!" and a name given with the separators abstract-level trims.
var subViews = []subView{
	{[]string{"a"}, "!a!"},
	{[]string{"a", "b"}, "!a!!b!"},
	{[]string{"ab"}, "!ab!"},
	{[]string{""}, "!!"},
	{[]string{"!b!"}, "!b!"},
	{[]string{"a", "b", "~#"}, "!a!!b!!~#!"},
}

func (v subView) of(db *DB) *DB {
	for _, n := range v.names {
		db = db.Sublevel(n)
	}
	return db
}

func (v subView) String() string { return fmt.Sprintf("%q", v.names) }

// subRef is the reference for a view: goleveldb's iterators over the
// prefixed keys, with the prefix taken off.
type subRef struct {
	db     itxRefDB
	prefix []byte
}

func (s subRef) abs(k []byte) []byte { return append(append([]byte{}, s.prefix...), k...) }

func (s subRef) rng(r *util.Range) *util.Range {
	out := util.BytesPrefix(s.prefix)
	if r != nil && r.Start != nil {
		out.Start = s.abs(r.Start)
	}
	if r != nil && r.Limit != nil {
		out.Limit = s.abs(r.Limit)
	}
	return out
}

func (s subRef) NewIterator(r *util.Range, ro *opt.ReadOptions) iterator.Iterator {
	return subRefIter{s.db.NewIterator(s.rng(r), ro), s}
}

type subRefIter struct {
	iterator.Iterator
	s subRef
}

func (it subRefIter) Seek(k []byte) bool { return it.Iterator.Seek(it.s.abs(k)) }

func (it subRefIter) Key() []byte {
	if k := it.Iterator.Key(); k != nil {
		return k[len(it.s.prefix):]
	}
	return nil
}

// subData returns itxData's keys (the relative keys views use) and, for
// every view, the same keys under its prefix and the keys at its borders.
func subData(r *rand.Rand) (base, all []itxKV) {
	base = itxData(r, 40)
	seen := map[string]bool{}
	add := func(k string) {
		if !seen[k] {
			seen[k] = true
			all = append(all, itxKV{k: []byte(k), v: itxRandBytes(r, 6)})
		}
	}
	for _, e := range base {
		add(string(e.k))
	}
	for _, v := range subViews {
		p := v.prefix
		for _, e := range base {
			add(p + string(e.k))
		}
		add(p[:len(p)-1])            // "!a"
		add(p[:len(p)-1] + "\"")     // "!a\"": the sublevel's upper bound
		add(p[:len(p)-1] + "\"\x00") // just after it
		add(p[:len(p)-1] + " ")      // just before the separator
		add(p + "\xff\xff")          // the last keys inside
	}
	slices.SortFunc(all, func(a, b itxKV) int { return bytes.Compare(a.k, b.k) })
	return base, all
}

// subWrite is one random write through a view, done on party and, with
// the prefix, on goleveldb.
func subWrite(t *testing.T, ctx context.Context, r *rand.Rand, base []itxKV, v *DB, ref *leveldb.DB, p []byte) string {
	t.Helper()
	abs := func(k []byte) []byte { return append(append([]byte{}, p...), k...) }
	key := func() []byte { return itxBound(r, base) }
	switch r.IntN(6) {
	case 0:
		k, val := key(), itxRandBytes(r, 5)
		must(t, v.Put(ctx, k, val))
		must(t, ref.Put(abs(k), val, nil))
		return "Put " + itxQ(k)
	case 1:
		k := key()
		must(t, v.Delete(ctx, k))
		must(t, ref.Delete(abs(k), nil))
		return "Delete " + itxQ(k)
	case 2, 3:
		var b Batch
		var rb leveldb.Batch
		for range 1 + r.IntN(6) {
			k := key()
			if r.IntN(3) == 0 {
				b.Delete(k)
				rb.Delete(abs(k))
			} else {
				val := itxRandBytes(r, 4)
				b.Put(k, val)
				rb.Put(abs(k), val)
			}
		}
		must(t, v.Write(ctx, &b))
		must(t, ref.Write(&rb, nil))
		return fmt.Sprintf("Write %d", b.Len())
	case 4:
		rng := itxRandRange(r, base)
		must(t, v.DeleteRange(ctx, itxPartyRange(rng)))
		it := ref.NewIterator(subRef{ref, p}.rng(rng.Util()), nil)
		var rb leveldb.Batch
		for it.Next() {
			rb.Delete(it.Key())
		}
		it.Release()
		must(t, ref.Write(&rb, nil))
		return "DeleteRange " + rng.Name
	default:
		k, val := key(), itxRandBytes(r, 5)
		d := key()
		must(t, v.Update(ctx, func(tx *Transaction) error {
			if err := tx.Put(ctx, k, val); err != nil {
				return err
			}
			return tx.Delete(ctx, d)
		}))
		must(t, ref.Put(abs(k), val, nil))
		must(t, ref.Delete(abs(d), nil))
		return "Update put " + itxQ(k) + " delete " + itxQ(d)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestSublevelNeverLeaks is the differential test of views: random writes,
// batches, range deletes and transactions through views of the leader and
// of a follower, and random iterator moves, snapshot reads and Gets on
// views, against goleveldb doing the same on the prefixed keys. After every
// write the whole database, read through the root handle, equals
// goleveldb's: nothing outside the view was touched.
func TestSublevelNeverLeaks(t *testing.T) {
	for _, seed := range itxSeeds(t, 1, 2) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			r := itxRand(seed)
			base, all := subData(r)
			ref := itxRef(t, all)
			c := itxNewCluster(t, all)
			f := itxOpen(t, c.dir, true)
			ctx := itxCtx(t)
			rounds := 25
			if itxLong() {
				rounds = 150
			}
			var h itxHistory
			for round := range rounds {
				for _, root := range []*DB{c.leader, f} {
					who := map[bool]string{true: "leader", false: "follower"}[root == c.leader]
					sv := subViews[r.IntN(len(subViews))]
					v, p := sv.of(root), []byte(sv.prefix)
					sref := subRef{ref, p}

					refSnap, err := ref.GetSnapshot()
					must(t, err)
					snap, err := v.GetSnapshot(ctx)
					must(t, err)

					h.Add(fmt.Sprintf("round %d %s %v: %s", round, who, sv, subWrite(t, ctx, r, base, v, ref, p)))
					// The whole database, through the root handle.
					itxCompare(t, r, all, ref, itxAll, 10, func(rg *Range) *Iterator { return root.NewIterator(ctx, rg) }, func(int) {})
					if d := subDiffAll(ctx, root, ref); d != "" {
						t.Fatalf("after%v\n%s", h, d)
					}
					// The view, its Gets, and its snapshot from before the write.
					for i := range 2 {
						rng := itxRandRange(r, base)
						if i == 0 {
							rng = itxAll
						}
						itxCompare(t, r, base, sref, rng, 30, func(rg *Range) *Iterator { return v.NewIterator(ctx, rg) }, func(int) {})
					}
					itxCompare(t, r, base, subRef{refSnap, p}, itxRandRange(r, base), 30, func(rg *Range) *Iterator { return snap.NewIterator(ctx, rg) }, func(int) {})
					for range 10 {
						k := itxBound(r, base)
						want, werr := ref.Get(sref.abs(k), nil)
						got, gerr := v.Get(ctx, k)
						if (werr == nil) != (gerr == nil) || !bytes.Equal(want, got) {
							t.Fatalf("%s %v: Get(%s) = %s, %v; goleveldb %s, %v", who, sv, itxQ(k), itxQ(got), gerr, itxQ(want), werr)
						}
						wantS, _ := refSnap.Has(sref.abs(k), nil)
						if gotS, err := snap.Has(ctx, k); err != nil || gotS != wantS {
							t.Fatalf("%s %v: snapshot Has(%s) = %v, %v; goleveldb %v", who, sv, itxQ(k), gotS, err, wantS)
						}
					}
					snap.Release()
					refSnap.Release()
				}
			}
		})
	}
}

// subDiffAll compares every entry of db with ref's.
func subDiffAll(ctx context.Context, db *DB, ref *leveldb.DB) string {
	it := db.NewIterator(ctx, nil)
	defer it.Release()
	rit := ref.NewIterator(nil, nil)
	defer rit.Release()
	for {
		ok, rok := it.Next(), rit.Next()
		if !ok || !rok {
			if ok != rok || it.Error() != nil {
				return fmt.Sprintf("entries differ at the end: party %v %s (%v), goleveldb %v %s", ok, itxQ(it.Key()), it.Error(), rok, itxQ(rit.Key()))
			}
			return ""
		}
		if !bytes.Equal(it.Key(), rit.Key()) || !bytes.Equal(it.Value(), rit.Value()) {
			return fmt.Sprintf("party has %s=%s where goleveldb has %s=%s", itxQ(it.Key()), itxQ(it.Value()), itxQ(rit.Key()), itxQ(rit.Value()))
		}
	}
}

// TestSublevelNames checks the prefixes of abstract-level's rules, and that
// a refused name fails every call with ErrSublevelName, its sublevels too.
func TestSublevelNames(t *testing.T) {
	db := itxOpen(t, t.TempDir(), false)
	ctx := itxCtx(t)
	for _, tc := range []struct {
		names []string
		key   string
	}{
		{[]string{"users"}, "!users!k"},
		{[]string{"users", "x"}, "!users!!x!k"},
		{[]string{"!users!"}, "!users!k"},
		{[]string{"!!users"}, "!users!k"},
		{[]string{""}, "!!k"},
		{[]string{"!"}, "!!k"},
		{[]string{"#~"}, "!#~!k"},
		{[]string{"a.b-c_d/e:f"}, "!a.b-c_d/e:f!k"},
	} {
		v := subView{names: tc.names}.of(db)
		must(t, v.Put(ctx, []byte("k"), []byte(tc.key)))
		got, err := db.Get(ctx, []byte(tc.key))
		if err != nil || string(got) != tc.key {
			t.Errorf("Sublevel%q: Put(k) stored at %q: %q, %v", tc.names, tc.key, got, err)
		}
	}
	for _, name := range []string{"a b", "a!b", `"`, "é", "a\x00", "a\x7f", "tab\t"} {
		v := db.Sublevel(name)
		for what, err := range map[string]error{
			"Put":        v.Put(ctx, []byte("k"), nil),
			"Get":        func() error { _, err := v.Get(ctx, []byte("k")); return err }(),
			"iterator":   func() error { it := v.NewIterator(ctx, nil); defer it.Release(); it.First(); return it.Error() }(),
			"nested Put": v.Sublevel("ok").Put(ctx, []byte("k"), nil),
			"Update":     v.Update(ctx, func(*Transaction) error { return nil }),
		} {
			if !errors.Is(err, ErrSublevelName) || !strings.Contains(err.Error(), fmt.Sprintf("%q", name)) {
				t.Errorf("Sublevel(%q): %s: %v, want ErrSublevelName naming it", name, what, err)
			}
		}
	}
	if n := len(cfScan(t, ctx, db, nil)); n != 5 {
		t.Errorf("%d keys in the database, want the 5 distinct keys written through valid views", n)
	}
}

// TestSublevelWatchTxClose covers what the differential test does not: a
// view's watcher sees the changes under its prefix only, nested sublevels
// included, with relative keys; a transaction on a view reads and iterates
// its own writes with relative keys; Close ends a view, not the handle, and
// closing the handle ends its views.
func TestSublevelWatchTxClose(t *testing.T) {
	dir := t.TempDir()
	leader := itxOpen(t, dir, false)
	f, err := openFollowerOnly(dir, nil)
	must(t, err)
	ctx := itxCtx(t)
	for _, h := range []*DB{leader, f} {
		who := map[bool]string{true: "leader", false: "follower"}[h == leader]
		a := h.Sublevel("a")
		w, err := a.Watch(ctx, nil)
		must(t, err)
		must(t, h.Put(ctx, []byte("!a"), []byte("outside")))
		must(t, h.Sublevel("ab").Put(ctx, []byte("x"), []byte("next door")))
		must(t, a.Put(ctx, []byte("x"), []byte("1")))
		var b Batch
		b.Put([]byte("y"), []byte("2"))
		b.Delete([]byte("z"))
		must(t, a.Sublevel("b").Write(ctx, &b))
		var got []string
		for len(got) < 3 {
			cs, err := w.Next(ctx)
			must(t, err)
			for _, c := range cs {
				got = append(got, fmt.Sprintf("%q=%q del=%v", c.Key, c.Value, c.Deleted))
			}
		}
		want := []string{`"x"="1" del=false`, `"!b!y"="2" del=false`, `"!b!z"="" del=true`}
		if !slices.Equal(got, want) {
			t.Errorf("%s: view watcher got %q, want %q", who, got, want)
		}
		w.Close()

		// A transaction on a view: relative keys, its own writes, and a
		// key under party's hidden prefix, which in a view is an ordinary
		// key stored under "!a!".
		hidden := []byte("\xff\xffparty\x00tx\x00mine")
		must(t, a.Update(ctx, func(tx *Transaction) error {
			if v, err := tx.Get(ctx, []byte("x")); err != nil || string(v) != "1" {
				return fmt.Errorf("tx Get(x) = %q, %v", v, err)
			}
			must(t, tx.Put(ctx, []byte("w"), []byte("3")))
			must(t, tx.Put(ctx, hidden, []byte("4")))
			it := tx.NewIterator(ctx, nil)
			defer it.Release()
			var keys []string
			for it.Next() {
				keys = append(keys, string(it.Key()))
			}
			if want := []string{"!b!y", "w", "x", string(hidden)}; !slices.Equal(keys, want) {
				return fmt.Errorf("tx iterator: %q, want %q", keys, want)
			}
			return it.Error()
		}))
		if v, err := h.Get(ctx, []byte("!a!w")); err != nil || string(v) != "3" {
			t.Errorf("%s: committed !a!w = %q, %v", who, v, err)
		}
		if v, err := a.Get(ctx, hidden); err != nil || string(v) != "4" {
			t.Errorf("%s: view's key under the hidden prefix = %q, %v", who, v, err)
		}
		// SizeOf and CompactRange take relative ranges: nil is the sublevel.
		vs, err := a.SizeOf(ctx, nil)
		must(t, err)
		hs, err := h.SizeOf(ctx, BytesPrefix([]byte("!a!")))
		must(t, err)
		if vs[0] != hs[0] {
			t.Errorf("%s: view SizeOf(nil) = %d, handle SizeOf(!a!) = %d", who, vs[0], hs[0])
		}
		must(t, a.CompactRange(ctx, nil))
		must(t, h.DeleteRange(ctx, nil))

		// Close ends the view only.
		must(t, a.Close())
		if err := a.Put(ctx, []byte("k"), nil); !errors.Is(err, ErrClosed) {
			t.Errorf("%s: Put on a closed view: %v, want ErrClosed", who, err)
		}
		must(t, h.Put(ctx, []byte("k"), nil))
		must(t, h.Sublevel("a").Put(ctx, []byte("k"), nil))
		must(t, h.DeleteRange(ctx, nil))
	}
	other := f.Sublevel("c")
	must(t, f.Close())
	if err := other.Put(ctx, []byte("k"), nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Put on a view of a closed handle: %v, want ErrClosed", err)
	}
}
