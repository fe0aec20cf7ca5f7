package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestBenchJSON runs the real benchmark, quick and once, and checks that
// every figure of the issue is reported with the fields it names.
func TestBenchJSON(t *testing.T) {
	r := cli(t, "", "bench", "--quick", "--reps", "1", "--json")
	if r.code != 0 {
		t.Fatalf("party bench: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	got := map[string]map[string]any{}
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("not a JSON object: %q: %v", line, err)
		}
		got[m["name"].(string)] = m
	}
	throughput := []string{"follower_get_seq", "follower_put_seq", "follower_put_c64", "follower_iter", "follower_get_c64", "local_put_seq"}
	for _, name := range throughput {
		m, ok := got[name]
		if !ok {
			t.Errorf("figure %s missing", name)
			continue
		}
		for _, field := range []string{"ops_per_sec", "p50_us", "p99_us", "direct_ops_per_sec", "ratio"} {
			if v, ok := m[field].(float64); !ok || v <= 0 {
				t.Errorf("%s.%s = %v, want a positive number", name, field, m[field])
			}
		}
	}
	f, ok := got["failover_gap_ms"]
	if !ok {
		t.Fatal("figure failover_gap_ms missing")
	}
	if _, ok := f["ops_per_sec"]; ok {
		t.Error("failover_gap_ms reports ops_per_sec")
	}
	for _, field := range []string{"p50_ms", "max_ms"} {
		if v, ok := f[field].(float64); !ok || v <= 0 {
			t.Errorf("failover_gap_ms.%s = %v, want a positive number", field, f[field])
		}
	}
}
