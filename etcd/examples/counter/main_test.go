package main

import (
	"strings"
	"testing"
)

// TestRun runs the example as the README shows it, with its own etcd.
func TestRun(t *testing.T) {
	var out strings.Builder
	if err := run(&out, ""); err != nil {
		t.Fatal(err)
	}
	if want := "hits = 1\nhits = 2\nhits = 3\n"; out.String() != want {
		t.Fatalf("printed %q, want %q", out.String(), want)
	}
}
