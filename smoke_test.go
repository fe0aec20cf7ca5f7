package party

import (
	"context"
	"testing"
)

func TestSmoke(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	a, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !a.IsLeader() || b.IsLeader() {
		t.Fatalf("leader a=%v b=%v", a.IsLeader(), b.IsLeader())
	}
	if err := b.Put(ctx, []byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	v, err := a.Get(ctx, []byte("k"))
	if err != nil || string(v) != "v" {
		t.Fatal(v, err)
	}
	v, err = b.Get(ctx, []byte("k"))
	if err != nil || string(v) != "v" {
		t.Fatal(v, err)
	}
	it := b.NewIterator(ctx, nil)
	for it.Next() {
		t.Logf("%s=%s", it.Key(), it.Value())
	}
	it.Release()
	a.Close()
	if err := b.Put(ctx, []byte("k2"), []byte("v2")); err != nil {
		t.Fatal(err)
	}
	if !b.IsLeader() {
		t.Fatal("b not leader")
	}
	b.Close()
}
