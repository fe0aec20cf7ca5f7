package party

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestCompatGoleveldbV100 opens a database that goleveldb v1.0.0 (party's
// engine before it moved to the revision go-ethereum ships) wrote: a
// compacted table and a journal with later deletes and a put. Every key
// reads as written, and the database can be written and reopened.
func TestCompatGoleveldbV100(t *testing.T) {
	src := filepath.Join("testdata", "goleveldb-v1.0.0")
	dir := t.TempDir()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	check := func(db *DB) {
		t.Helper()
		for i := range 3000 {
			k := fmt.Sprintf("k%05d", i)
			v, err := db.Get(ctx, []byte(k))
			switch {
			case i%3 == 0 && err != ErrNotFound:
				t.Fatalf("%s: %q, %v; deleted in the journal", k, v, err)
			case i%3 != 0 && (err != nil || string(v) != fmt.Sprintf("value-%d-%0100d", i, i)):
				t.Fatalf("%s: %q, %v", k, v, err)
			}
		}
		if v, err := db.Get(ctx, []byte("journal")); err != nil || string(v) != "only in the journal" {
			t.Fatalf("journal: %q, %v", v, err)
		}
	}
	db, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	check(db)
	if err := db.Put(ctx, []byte("new"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	check(db)
	if v, err := db.Get(ctx, []byte("new")); err != nil || string(v) != "v" {
		t.Fatalf("new: %q, %v", v, err)
	}
}
