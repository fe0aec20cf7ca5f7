package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	MaybeChild()
	os.Exit(m.Run())
}

// tinySizes keep a run well under 20 seconds under -race.
var tinySizes = sizes{
	reps:       2,
	seqOps:     300,
	c64Ops:     2000,
	iterN:      3000,
	getKeys:    2000,
	memBytes:   1 << 20,
	sizeBytes:  1 << 20,
	scaleOps:   300,
	slowBatch:  1000,
	slowSleep:  time.Millisecond,
	followers:  2,
	kills:      2,
	settle:     20 * time.Millisecond,
	childStart: 60 * time.Second,
}

// TestRunTiny runs every figure at a tiny size, with real child
// processes and real kills, and checks that every figure is measured,
// positive, and written with the fields the issue names, and that Run
// leaves no child process and no file behind.
func TestRunTiny(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var progress bytes.Buffer
	dir := t.TempDir()
	// The database-size figures too, on tiny databases.
	saved := dbSizes
	defer func() { dbSizes = saved }()
	dbSizes = []dbSize{{2000, "1m"}, {5000, "10m"}}
	all := append(slices.Clone(Names), LargeNames...)
	figs, err := Run(ctx, Options{Quick: true, Large: true, Dir: dir, Progress: &progress, sizes: &tinySizes})
	if err != nil {
		t.Fatalf("Run: %v\nprogress:\n%s", err, progress.String())
	}
	var names []string
	for _, f := range figs {
		names = append(names, f.Name)
		if f.Reps != tinySizes.reps {
			t.Errorf("%s: %d reps, want %d", f.Name, f.Reps, tinySizes.reps)
		}
		var measures map[string]Stat
		switch f.Kind {
		case Throughput:
			measures = map[string]Stat{"ops/s": f.OpsPerSec, "p50": f.P50us, "p99": f.P99us,
				"direct ops/s": f.DirectOpsPerSec, "direct p50": f.DirectP50us, "direct p99": f.DirectP99us, "ratio": f.Ratio}
		case Bound:
			measures = map[string]Stat{"ops/s": f.OpsPerSec, "p50": f.P50us, "p99": f.P99us}
		case Failover:
			measures = map[string]Stat{"p50 ms": f.P50ms, "max ms": f.MaxMs}
		case Memory:
			// Growth may be zero; peaks may not.
			measures = map[string]Stat{"leader peak": f.LeaderRSSPeakMB, "follower peak": f.FollowerRSSPeakMB}
			if f.RangeMB <= 0 {
				t.Errorf("%s: range %v MB", f.Name, f.RangeMB)
			}
		}
		for m, s := range measures {
			if !(s.Min > 0 && s.Min <= s.Median && s.Median <= s.Max) {
				t.Errorf("%s: %s = %+v: want 0 < min <= median <= max", f.Name, m, s)
			}
		}
	}
	if !slices.Equal(names, all) {
		t.Errorf("figures %v, want %v", names, all)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatal(err)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("Run left %d entries in its directory", len(left))
	}
	if runtime.GOOS == "linux" {
		if kids := children(t); len(kids) != 0 {
			t.Errorf("children left running: %v", kids)
		}
	}

	var out bytes.Buffer
	if err := WriteJSON(&out, figs); err != nil {
		t.Fatal(err)
	}
	t.Logf("JSON:\n%s", out.String())
	want := map[string][]string{
		FailoverGapMs:       {"name", "p50_ms", "max_ms"},
		FollowerIterSlowMem: {"name", "range_mb", "entries", "leader_rss_growth_mb", "follower_rss_growth_mb", "direct_rss_growth_mb"},
		SocketRoundtripSeq:  {"name", "ops_per_sec", "p50_us", "p99_us"},
		WatchLatency:        {"name", "ops_per_sec", "p50_us", "p99_us"},
	}
	throughput := []string{"name", "ops_per_sec", "p50_us", "p99_us", "direct_ops_per_sec", "ratio"}
	sc := bufio.NewScanner(&out)
	i := 0
	for ; sc.Scan(); i++ {
		line := sc.Bytes()
		keys := jsonKeys(t, line)
		var obj map[string]any
		if err := json.Unmarshal(line, &obj); err != nil {
			t.Fatalf("line %d: %v: %s", i+1, err, line)
		}
		name, _ := obj["name"].(string)
		wantKeys, ok := want[name]
		if !ok {
			wantKeys = throughput
			if slices.Contains(sizeNames(), name) {
				wantKeys = append(slices.Clone(throughput), "mb_per_sec", "direct_mb_per_sec")
			}
		}
		if !slices.Equal(keys, wantKeys) {
			t.Errorf("%s: JSON keys %v, want %v", name, keys, wantKeys)
		}
		for _, k := range keys[1:] {
			v, ok := obj[k].(float64)
			growth := strings.HasSuffix(k, "_growth_mb")
			if !ok || v < 0 || (v == 0 && !growth) {
				t.Errorf("%s: %s = %v, want a positive number", name, k, obj[k])
			}
		}
	}
	if i != len(all) {
		t.Errorf("%d JSON lines, want %d", i, len(all))
	}

	var table bytes.Buffer
	if err := WriteTable(&table, figs); err != nil {
		t.Fatal(err)
	}
	for _, n := range all {
		if !strings.Contains(table.String(), n) {
			t.Errorf("table lacks %s", n)
		}
	}
	t.Logf("table:\n%s", table.String())
}

// jsonKeys returns the keys of a JSON object in their order.
func jsonKeys(t *testing.T, b []byte) []string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("not a JSON object: %s", b)
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, tok.(string))
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
	}
	return keys
}

// TestSpread checks the min, median and max of odd and even counts.
func TestSpread(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want Stat
	}{
		{[]float64{3}, Stat{3, 3, 3}},
		{[]float64{5, 1, 3}, Stat{1, 3, 5}},
		{[]float64{4, 1, 3, 2}, Stat{1, 2.5, 4}},
	} {
		if got := spread(c.in); got != c.want {
			t.Errorf("spread(%v) = %+v, want %+v", c.in, got, c.want)
		}
	}
	lat := []time.Duration{5 * time.Microsecond, time.Microsecond, 3 * time.Microsecond, 2 * time.Microsecond}
	if got := percentiles(lat, 50, 99); got[0] != 2 || got[1] != 5 {
		t.Errorf("percentiles = %v, want [2 5]", got)
	}
}

// TestFull runs the full benchmark (or the quick one with
// PARTY_BENCH=quick; PARTY_BENCH_REPS=N sets the repetitions) and prints
// its table and JSON. It is not a test of speed: it only runs when
// PARTY_BENCH is set, e.g.
//
//	PARTY_BENCH=full go test -run TestFull -v -timeout 30m ./internal/bench
func TestFull(t *testing.T) {
	mode := os.Getenv("PARTY_BENCH")
	if mode == "" {
		t.Skip("set PARTY_BENCH=full or PARTY_BENCH=quick to run the benchmark")
	}
	o := Options{Quick: mode == "quick", Progress: os.Stderr}
	if n, err := strconv.Atoi(os.Getenv("PARTY_BENCH_REPS")); err == nil {
		o.Reps = n
	}
	figs, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	WriteTable(&out, figs)
	out.WriteString("\n")
	WriteJSON(&out, figs)
	os.Stdout.Write(out.Bytes())
}
