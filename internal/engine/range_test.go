package engine

import (
	"testing"

	"github.com/levelparty/party/backend"
)

// TestInvertedRange: a range whose Start is after its Limit is empty, for
// cursors, DeleteRange, SizeOf and CompactRange, also when the database
// has tables below level 0. goleveldb's iterator panics on such a range
// when a table lies between the bounds (tFiles.newIndexIterator slices
// [start:limit] with start > limit): a follower could have crashed the
// leader with one.
func TestInvertedRange(t *testing.T) {
	e, err := Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	for _, k := range []string{"c", "d"} {
		if err := e.db.Put([]byte(k), []byte("v"), nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.CompactRange(backend.Range{}); err != nil { // tables below level 0
		t.Fatal(err)
	}
	inv := backend.Range{Start: []byte("e"), Limit: []byte("a")}
	c := e.NewCursor(inv)
	for _, mode := range []backend.SeekMode{backend.SeekFirst, backend.SeekLast} {
		if c.Seek(mode, nil) {
			t.Errorf("a cursor over an inverted range found %q", c.Key())
		}
	}
	c.Release()
	if err := e.DeleteRange(t.Context(), inv, false); err != nil {
		t.Fatal(err)
	}
	if sizes, err := e.SizeOf([]backend.Range{inv}); err != nil || sizes[0] != 0 {
		t.Errorf("SizeOf of an inverted range: %v, %v", sizes, err)
	}
	if err := e.CompactRange(inv); err != nil {
		t.Errorf("CompactRange of an inverted range: %v", err)
	}
	if v, err := e.db.Get([]byte("c"), nil); err != nil || string(v) != "v" {
		t.Errorf("after DeleteRange of an inverted range, c = %q, %v", v, err)
	}
}
