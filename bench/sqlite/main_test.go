package main

import (
	"os"
	"testing"
)

func TestMain(m *testing.M) {
	if os.Getenv(envHold) != "" || os.Getenv(envInc) != "" {
		main() // a child process of run: the holder or an incrementer
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestRun measures every figure on a tiny database, with the holder
// process: each figure is there, with a rate and latencies.
func TestRun(t *testing.T) {
	figs, err := run(sizes{fill: 3000, getKeys: 1000, seqOps: 300, c64Ops: 1000, iterN: 2000, reps: 1})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"sqlite_get_seq", "sqlite_put_seq", "sqlite_get_c64", "sqlite_put_c64", "sqlite_iter", "sqlite_tx_update_c4"}
	if len(figs) != len(want) {
		t.Fatalf("%d figures, want %d", len(figs), len(want))
	}
	for i, f := range figs {
		if f.Name != want[i] || f.OpsPerSec <= 0 || f.P50us <= 0 || f.P99us < f.P50us {
			t.Errorf("figure %d: %+v", i, f)
		}
	}
}
