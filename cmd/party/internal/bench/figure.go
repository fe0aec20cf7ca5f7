package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/levelparty/party/cmd/party/internal/child"
)

// Kind says which measures a Figure holds.
type Kind int

const (
	Throughput Kind = iota // rates and latencies, party and goleveldb direct
	Failover               // gaps after kill -9, in milliseconds
	Memory                 // RSS growth while a slow reader iterates
	Bound                  // a rate and latencies that bound party's, without a direct side
)

// Stat is the spread of one measure across repetitions.
type Stat struct {
	Min, Median, Max float64
}

// spread returns the Stat of values (at least one).
func spread(values []float64) Stat {
	v := slices.Clone(values)
	slices.Sort(v)
	n := len(v)
	if n == 0 {
		return Stat{}
	}
	med := v[n/2]
	if n%2 == 0 {
		med = (v[n/2-1] + v[n/2]) / 2
	}
	return Stat{Min: v[0], Median: med, Max: v[n-1]}
}

// Figure is one measured figure. Every Stat is the spread of the measure
// across repetitions; only the fields of the figure's Kind are set.
type Figure struct {
	Name string
	Kind Kind
	Reps int
	// Ops is the number of operations per repetition (entries, for an
	// iteration); for Failover, the gaps measured per repetition (kills
	// times surviving followers); for Memory, the entries of the range.
	Ops int
	// Note says what the operations read or write, when the name does not.
	Note string

	// Throughput: party (the follower, or the leader for local_put_seq).
	OpsPerSec, P50us, P99us Stat
	// Throughput: the same operations on goleveldb directly.
	DirectOpsPerSec, DirectP50us, DirectP99us Stat
	// Ratio is OpsPerSec / DirectOpsPerSec, per repetition.
	Ratio Stat
	// ValueLen, when not zero, is the size of the values: the table and
	// the JSON then also give MB/s (keys and values, 2^20 bytes).
	ValueLen int

	// Failover: per repetition, the median and the largest gap between
	// the kill of the leader and the first acknowledged operation of each
	// follower.
	P50ms, MaxMs Stat
	Kills        int // kills per repetition
	// Failover: per repetition, the median and the largest time goleveldb
	// itself took to open the database in the new leader, from its LOG
	// file: the part of the gap spent recovering the engine. Zero if the
	// LOG could not be read.
	OpenP50ms, OpenMaxMs Stat

	// Memory: the size of the range read (keys and values); the peak RSS
	// of the leader, of the follower, and of a process reading the same
	// range with goleveldb directly at the same pace, minus their RSS
	// before the read; and the peaks themselves. In MB (2^20 bytes).
	RangeMB                                                   float64
	LeaderRSSGrowthMB, FollowerRSSGrowthMB, DirectRSSGrowthMB Stat
	LeaderRSSPeakMB, FollowerRSSPeakMB                        Stat
}

// jsonFigure is the JSON form of a Figure: the fields of the issue, in
// its order, and nothing that does not apply.
type jsonFigure struct {
	Name            string   `json:"name"`
	OpsPerSec       *float64 `json:"ops_per_sec,omitempty"`
	P50us           *float64 `json:"p50_us,omitempty"`
	P99us           *float64 `json:"p99_us,omitempty"`
	DirectOpsPerSec *float64 `json:"direct_ops_per_sec,omitempty"`
	Ratio           *float64 `json:"ratio,omitempty"`
	MBPerSec        *float64 `json:"mb_per_sec,omitempty"`
	DirectMBPerSec  *float64 `json:"direct_mb_per_sec,omitempty"`

	P50ms *float64 `json:"p50_ms,omitempty"`
	MaxMs *float64 `json:"max_ms,omitempty"`

	RangeMB             *float64 `json:"range_mb,omitempty"`
	Entries             *int     `json:"entries,omitempty"`
	LeaderRSSGrowthMB   *float64 `json:"leader_rss_growth_mb,omitempty"`
	FollowerRSSGrowthMB *float64 `json:"follower_rss_growth_mb,omitempty"`
	DirectRSSGrowthMB   *float64 `json:"direct_rss_growth_mb,omitempty"`
}

// MarshalJSON writes the figure as the issue asks: for a throughput
// figure {"name", "ops_per_sec", "p50_us", "p99_us",
// "direct_ops_per_sec", "ratio"}, medians across repetitions (a bound
// has no direct side and ratio); for
// failover_gap_ms {"name", "p50_ms", "max_ms"}, the median of the
// repetitions' medians and the largest gap of all; for the memory figure
// {"name", "range_mb", "entries", "leader_rss_growth_mb",
// "follower_rss_growth_mb", "direct_rss_growth_mb"}, the largest growth
// of all repetitions.
func (f Figure) MarshalJSON() ([]byte, error) {
	j := jsonFigure{Name: f.Name}
	num := func(v float64, digits int) *float64 {
		p := math.Pow(10, float64(digits))
		r := math.Round(v*p) / p
		return &r
	}
	switch f.Kind {
	case Throughput:
		j.OpsPerSec = num(f.OpsPerSec.Median, 0)
		j.P50us = num(f.P50us.Median, 3)
		j.P99us = num(f.P99us.Median, 3)
		j.DirectOpsPerSec = num(f.DirectOpsPerSec.Median, 0)
		j.Ratio = num(f.Ratio.Median, 3)
		if f.ValueLen > 0 {
			j.MBPerSec = num(f.mb(f.OpsPerSec.Median), 1)
			j.DirectMBPerSec = num(f.mb(f.DirectOpsPerSec.Median), 1)
		}
	case Bound:
		j.OpsPerSec = num(f.OpsPerSec.Median, 0)
		j.P50us = num(f.P50us.Median, 3)
		j.P99us = num(f.P99us.Median, 3)
	case Failover:
		j.P50ms = num(f.P50ms.Median, 3)
		j.MaxMs = num(f.MaxMs.Max, 3)
	case Memory:
		j.RangeMB = num(f.RangeMB, 1)
		j.Entries = &f.Ops
		j.LeaderRSSGrowthMB = num(f.LeaderRSSGrowthMB.Max, 1)
		j.FollowerRSSGrowthMB = num(f.FollowerRSSGrowthMB.Max, 1)
		j.DirectRSSGrowthMB = num(f.DirectRSSGrowthMB.Max, 1)
	}
	return json.Marshal(j)
}

// mb converts a rate of entries to MB/s of keys and values.
func (f Figure) mb(ops float64) float64 { return ops * float64(keyLen+f.ValueLen) / (1 << 20) }

// WriteJSON writes one JSON object per figure, one per line.
func WriteJSON(w io.Writer, figs []Figure) error {
	for _, f := range figs {
		b, err := json.Marshal(f)
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(w, "%s\n", b); err != nil {
			return err
		}
	}
	return nil
}

// WriteTable writes the figures as a table for people: min, median and
// max across repetitions of every measure.
func WriteTable(w io.Writer, figs []Figure) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	// Numbers are right-aligned in columns of equal width.
	const width = 12
	row := func(name, measure string, s Stat, digits int) {
		f := func(v float64) string { return formatNum(v, digits) }
		fmt.Fprintf(tw, "%s\t%s\t%*s %*s %*s\n", name, measure, width, f(s.Min), width, f(s.Median), width, f(s.Max))
	}
	fmt.Fprintf(tw, "figure\tmeasure\t%*s %*s %*s\n", width, "min", width, "median", width, "max")
	for _, f := range figs {
		switch f.Kind {
		case Throughput:
			unit := "ops/s"
			if strings.Contains(f.Name, "iter") {
				unit = "entries/s"
			}
			head := fmt.Sprintf("%s (%d reps × %s)", f.Name, f.Reps, child.Thousands(int64(f.Ops)))
			if f.Note != "" {
				head = fmt.Sprintf("%s (%d reps × %s; %s)", f.Name, f.Reps, child.Thousands(int64(f.Ops)), f.Note)
			}
			row(head, "party "+unit, f.OpsPerSec, 0)
			row("", "party p50 µs", f.P50us, 3)
			row("", "party p99 µs", f.P99us, 3)
			row("", "direct "+unit, f.DirectOpsPerSec, 0)
			row("", "direct p50 µs", f.DirectP50us, 3)
			row("", "direct p99 µs", f.DirectP99us, 3)
			row("", "ratio party/direct", f.Ratio, 3)
			if f.ValueLen > 0 {
				row("", "party MB/s", Stat{f.mb(f.OpsPerSec.Min), f.mb(f.OpsPerSec.Median), f.mb(f.OpsPerSec.Max)}, 1)
				row("", "direct MB/s", Stat{f.mb(f.DirectOpsPerSec.Min), f.mb(f.DirectOpsPerSec.Median), f.mb(f.DirectOpsPerSec.Max)}, 1)
			}
		case Bound:
			head := fmt.Sprintf("%s (%d reps × %s)", f.Name, f.Reps, child.Thousands(int64(f.Ops)))
			row(head, "round trips/s", f.OpsPerSec, 0)
			row("", "p50 µs", f.P50us, 3)
			row("", "p99 µs", f.P99us, 3)
		case Failover:
			head := fmt.Sprintf("%s (%d reps × %d kills, %d gaps/rep)", f.Name, f.Reps, f.Kills, f.Ops)
			row(head, "p50 ms", f.P50ms, 2)
			row("", "max ms", f.MaxMs, 2)
			if f.OpenMaxMs.Max > 0 {
				row("", "goleveldb open p50 ms", f.OpenP50ms, 2)
				row("", "goleveldb open max ms", f.OpenMaxMs, 2)
			}
		case Memory:
			head := fmt.Sprintf("%s (%d reps, %.0f MB range, %s entries)", f.Name, f.Reps, f.RangeMB, child.Thousands(int64(f.Ops)))
			row(head, "leader RSS growth MB", f.LeaderRSSGrowthMB, 1)
			row("", "follower RSS growth MB", f.FollowerRSSGrowthMB, 1)
			row("", "goleveldb direct reader RSS growth MB", f.DirectRSSGrowthMB, 1)
			row("", "leader RSS peak MB", f.LeaderRSSPeakMB, 1)
			row("", "follower RSS peak MB", f.FollowerRSSPeakMB, 1)
		}
	}
	return tw.Flush()
}

// formatNum writes v with digits decimals, and thousands separated for
// large whole numbers.
func formatNum(v float64, digits int) string {
	if digits > 0 {
		return fmt.Sprintf("%.*f", digits, v)
	}
	return child.Thousands(int64(math.Round(v)))
}

// sample is what one side of one repetition measured.
type sample struct {
	n       int           // operations
	elapsed time.Duration // for all of them
	lat     []time.Duration
}

func (s sample) opsPerSec() float64 {
	if s.elapsed <= 0 {
		return 0
	}
	return float64(s.n) / s.elapsed.Seconds()
}

// percentiles returns the p-th percentiles (0 < p < 100) of the latencies
// in microseconds, sorting them in place.
func percentiles(lat []time.Duration, ps ...float64) []float64 {
	slices.Sort(lat)
	out := make([]float64, len(ps))
	if len(lat) == 0 {
		return out
	}
	for i, p := range ps {
		idx := int(math.Ceil(p/100*float64(len(lat)))) - 1
		idx = max(0, min(idx, len(lat)-1))
		out[i] = float64(lat[idx]) / float64(time.Microsecond)
	}
	return out
}
