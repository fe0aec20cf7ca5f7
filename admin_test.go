package party

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/util"
)

// TestAdminFromFollower checks CompactRange, SizeOf and Property called on
// a follower against goleveldb: the leader's own handle (goleveldb in its
// process) and goleveldb opening the directory afterwards report the
// same; a compaction from the follower after deletes shrinks the range.
func TestAdminFromFollower(t *testing.T) {
	dir := t.TempDir()
	l := txOpen(t, dir, nil, false)
	f := txOpen(t, dir, nil, true)
	ctx := itxCtx(t)
	var b Batch
	for i := range 20000 {
		b.Put(fmt.Appendf(nil, "k%05d", i), make([]byte, 100))
		if b.Len() == 1000 {
			if err := f.Write(ctx, &b); err != nil {
				t.Fatal(err)
			}
			b.Reset()
		}
	}
	if err := f.CompactRange(ctx, nil); err != nil {
		t.Fatal(err)
	}
	ranges := []*Range{nil, {Start: []byte("k05000"), Limit: []byte("k10000")}, {Start: []byte("z")}, BytesPrefix([]byte("k1"))}
	got, err := f.SizeOf(ctx, ranges...)
	if err != nil {
		t.Fatal(err)
	}
	want, err := l.SizeOf(ctx, ranges...)
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("SizeOf: follower %v, leader %v, %v", got, want, err)
	}
	if got[0] < got[1]+got[3] || got[1] == 0 || got[2] != 0 {
		t.Fatalf("SizeOf: %v: want everything to hold both ranges, and 0 past the keys", got)
	}
	for _, name := range []string{"leveldb.num-files-at-level0", "leveldb.num-files-at-level1", "leveldb.sstables"} {
		fv, err := f.Property(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		lv, _ := l.Property(ctx, name)
		if fv != lv {
			t.Fatalf("Property(%s): follower %q, leader %q", name, fv, lv)
		}
	}
	if _, err := f.Property(ctx, "leveldb.no-such-thing"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown property: %v, want ErrNotFound, as goleveldb", err)
	}

	// Deletes, then a compaction from the follower: the range shrinks.
	if err := f.DeleteRange(ctx, ranges[1]); err != nil {
		t.Fatal(err)
	}
	if err := f.CompactRange(ctx, ranges[1]); err != nil {
		t.Fatal(err)
	}
	after, err := f.SizeOf(ctx, ranges...)
	if err != nil {
		t.Fatal(err)
	}
	if after[1] >= got[1]/2 {
		t.Fatalf("SizeOf of the deleted range after CompactRange: %d, before %d", after[1], got[1])
	}
	f.Close()
	l.Close()

	// goleveldb opening the directory reports what the follower did.
	db, err := leveldb.OpenFile(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// As party does: an unbounded range ends just past the last key.
	it := db.NewIterator(nil, nil)
	it.Last()
	end := append(append([]byte{}, it.Key()...), 0)
	it.Release()
	urs := make([]util.Range, len(ranges))
	for i, r := range ranges {
		urs[i].Limit = end
		if r != nil {
			urs[i].Start = r.Start
			if r.Limit != nil {
				urs[i].Limit = r.Limit
			}
		}
	}
	direct, err := db.SizeOf(urs)
	if err != nil || !slices.Equal([]int64(direct), after) {
		t.Fatalf("goleveldb's SizeOf %v, %v; the follower's %v", direct, err, after)
	}
}

// TestInvertedRangeFromFollower: a follower's iterator, DeleteRange,
// SizeOf and CompactRange over a range whose Start is after its Limit,
// with the leader's data in tables below level 0, are empty and leave the
// leader running. goleveldb's iterator panics on such a range
// (tFiles.newIndexIterator), which took the leader process down.
func TestInvertedRangeFromFollower(t *testing.T) {
	dir := t.TempDir()
	leader := itxOpen(t, dir, false)
	f := itxOpen(t, dir, true)
	ctx := itxCtx(t)
	for _, k := range []string{"c", "d"} {
		must(t, leader.Put(ctx, []byte(k), []byte("v")))
	}
	must(t, leader.CompactRange(ctx, nil))
	inv := &Range{Start: []byte("e"), Limit: []byte("a")}
	for _, h := range []*DB{f, leader} {
		it := h.NewIterator(ctx, inv)
		if it.First() || it.Last() || it.Error() != nil {
			t.Errorf("an iterator over an inverted range: %q, %v", it.Key(), it.Error())
		}
		it.Release()
		must(t, h.DeleteRange(ctx, inv))
		if sizes, err := h.SizeOf(ctx, inv); err != nil || sizes[0] != 0 {
			t.Errorf("SizeOf of an inverted range: %v, %v", sizes, err)
		}
		must(t, h.CompactRange(ctx, inv))
	}
	if got := cfScan(t, ctx, f, nil); len(got) != 2 {
		t.Errorf("%d keys left, want 2", len(got))
	}
}
