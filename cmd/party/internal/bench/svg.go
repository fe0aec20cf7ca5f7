package bench

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"
)

// The chart: the figures people would rather look at than read, drawn by
// hand as SVG (a few rectangles, lines and labels need no library).
// Three panels: party, goleveldb direct and SQLite side by side for the
// main figures (relative to direct); total throughput as follower
// processes are added; sequential latency with and without BusyPoll.

// Result is one figure as the JSON lines of party bench (and of
// bench/sqlite) give it: the medians.
type Result struct {
	Name            string  `json:"name"`
	OpsPerSec       float64 `json:"ops_per_sec"`
	P50us           float64 `json:"p50_us"`
	P99us           float64 `json:"p99_us"`
	DirectOpsPerSec float64 `json:"direct_ops_per_sec"`
}

// ReadResults reads JSON lines of figures.
func ReadResults(r io.Reader) ([]Result, error) {
	var out []Result
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var res Result
		if err := json.Unmarshal(sc.Bytes(), &res); err != nil {
			return nil, fmt.Errorf("bench: reading figures: %w", err)
		}
		out = append(out, res)
	}
	return out, sc.Err()
}

// Results converts measured figures to results.
func Results(figs []Figure) []Result {
	out := make([]Result, 0, len(figs))
	for _, f := range figs {
		out = append(out, Result{Name: f.Name, OpsPerSec: f.OpsPerSec.Median, P50us: f.P50us.Median,
			P99us: f.P99us.Median, DirectOpsPerSec: f.DirectOpsPerSec.Median})
	}
	return out
}

// svg accumulates the elements of a drawing.
type svg struct{ b strings.Builder }

func (s *svg) printf(format string, args ...any) { fmt.Fprintf(&s.b, format, args...) }

func (s *svg) text(x, y float64, anchor, style, format string, args ...any) {
	s.printf(`<text x="%.1f" y="%.1f" text-anchor="%s" %s>%s</text>`+"\n", x, y, anchor, style, escape(fmt.Sprintf(format, args...)))
}

func escape(t string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(t)
}

// Colours of the three stores.
const (
	colParty  = "#2b6cb0"
	colDirect = "#a0aec0"
	colSQLite = "#dd6b20"
	colPoll   = "#38a169"
)

// WriteSVG draws the chart of party's results, with SQLite's results
// (bench/sqlite) if any.
func WriteSVG(w io.Writer, party, sqlite []Result) error {
	by := func(rs []Result) map[string]Result {
		m := make(map[string]Result, len(rs))
		for _, r := range rs {
			m[r.Name] = r
		}
		return m
	}
	p, q := by(party), by(sqlite)
	const width, height = 960, 900
	s := &svg{}
	s.printf(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	s.printf(`<rect width="100%%" height="100%%" fill="white"/>` + "\n")

	// Panel 1: throughput of each store, as a share of goleveldb direct.
	rows := []struct{ label, party, sqlite string }{
		{"sequential Get", FollowerGetSeq, "sqlite_get_seq"},
		{"sequential Put", FollowerPutSeq, "sqlite_put_seq"},
		{"Get, 64 in flight", FollowerGetC64, "sqlite_get_c64"},
		{"Put, 64 in flight", FollowerPutC64, "sqlite_put_c64"},
		{"full iteration", FollowerIter, "sqlite_iter"},
	}
	top := 40.0
	s.text(20, top, "start", `font-size="16" font-weight="bold"`, "Throughput against goleveldb used directly (= 100 %%)")
	legend(s, 20, top+20, []key{{colParty, ""}, {colSQLite, ""}}, []string{"party follower (another process leads)", "SQLite WAL, second process"})
	top += 20
	x0, barMax := 170.0, 700.0
	maxShare := 1.0
	for _, r := range rows {
		if d := p[r.party].DirectOpsPerSec; d > 0 {
			maxShare = max(maxShare, p[r.party].OpsPerSec/d, q[r.sqlite].OpsPerSec/d)
		}
	}
	y := top + 20
	for _, r := range rows {
		d := p[r.party].DirectOpsPerSec
		if d <= 0 {
			continue
		}
		s.text(x0-10, y+22, "end", "", "%s", r.label)
		for i, v := range []struct {
			ops float64
			col string
		}{{p[r.party].OpsPerSec, colParty}, {q[r.sqlite].OpsPerSec, colSQLite}} {
			if v.ops <= 0 {
				continue
			}
			bw := barMax * v.ops / d / maxShare
			by := y + float64(i)*18
			s.printf(`<rect x="%.1f" y="%.1f" width="%.1f" height="15" fill="%s"/>`+"\n", x0, by, bw, v.col)
			s.text(x0+bw+5, by+12, "start", "", "%.0f %% (%s/s)", 100*v.ops/d, si(v.ops))
		}
		y += 48
	}
	hundred := x0 + barMax/maxShare
	s.printf(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#4a5568" stroke-dasharray="4 3"/>`+"\n", hundred, top+14, hundred, y-8)
	s.text(hundred, y+6, "middle", `fill="#4a5568"`, "goleveldb direct")

	// Panel 2: total throughput as follower processes are added.
	top = y + 50
	s.text(20, top, "start", `font-size="16" font-weight="bold"`, "Total throughput as follower processes are added (16 calls in flight each)")
	legend(s, 20, top+20, []key{{colParty, "line"}, {colParty, "dash"}, {colDirect, "line"}, {colDirect, "dash"}},
		[]string{"party Get", "party Put", "goleveldb direct Get", "direct Put (as many goroutines)"})
	chartTop, chartH, chartL, chartW := top+45, 220.0, 120.0, 760.0
	var series []struct {
		label, col string
		dash       bool
		pts        []float64
	}
	maxY := 0.0
	for _, op := range []string{"get", "put"} {
		var party, direct []float64
		for _, k := range scaleCounts {
			r := p[scaleName(op, k)]
			party, direct = append(party, r.OpsPerSec), append(direct, r.DirectOpsPerSec)
			maxY = max(maxY, r.OpsPerSec, r.DirectOpsPerSec)
		}
		series = append(series,
			struct {
				label, col string
				dash       bool
				pts        []float64
			}{"party " + op, colParty, op == "put", party},
			struct {
				label, col string
				dash       bool
				pts        []float64
			}{"direct " + op, colDirect, op == "put", direct})
	}
	if maxY > 0 {
		maxY = niceCeil(maxY)
		for i := 0; i <= 4; i++ {
			v := maxY * float64(i) / 4
			gy := chartTop + chartH - chartH*v/maxY
			s.printf(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#e2e8f0"/>`+"\n", chartL, gy, chartL+chartW, gy)
			s.text(chartL-8, gy+4, "end", "", "%s/s", si(v))
		}
		px := func(i int) float64 { return chartL + chartW*float64(i)/float64(len(scaleCounts)-1) }
		for i, k := range scaleCounts {
			s.text(px(i), chartTop+chartH+18, "middle", "", "%d follower%s", k, map[bool]string{true: "", false: "s"}[k == 1])
		}
		for _, se := range series {
			var pts []string
			for i, v := range se.pts {
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(i), chartTop+chartH-chartH*v/maxY))
			}
			dash := ""
			if se.dash {
				dash = ` stroke-dasharray="6 4"`
			}
			s.printf(`<polyline points="%s" fill="none" stroke="%s" stroke-width="2.5"%s/>`+"\n", strings.Join(pts, " "), se.col, dash)
		}
	}

	// Panel 3: sequential latency, p50 and p99, with and without BusyPoll.
	top = chartTop + chartH + 60
	s.text(20, top, "start", `font-size="16" font-weight="bold"`, "Sequential latency: p50 (bar) and p99 (tick), microseconds")
	legend(s, 20, top+20, []key{{colParty, ""}, {colPoll, ""}, {colSQLite, ""}}, []string{"party", "party, BusyPoll 50 µs", "SQLite WAL"})
	top += 20
	lat := []struct {
		label string
		rs    []Result
		cols  []string
	}{
		{"Get", []Result{p[FollowerGetSeq], p[FollowerGetSeqPoll], q["sqlite_get_seq"]}, []string{colParty, colPoll, colSQLite}},
		{"Put", []Result{p[FollowerPutSeq], p[FollowerPutSeqPoll], q["sqlite_put_seq"]}, []string{colParty, colPoll, colSQLite}},
	}
	maxLat := 1.0
	for _, l := range lat {
		for _, r := range l.rs {
			maxLat = max(maxLat, r.P99us)
		}
	}
	maxLat = niceCeil(maxLat)
	y = top + 20
	for _, l := range lat {
		s.text(x0-10, y+28, "end", "", "sequential %s", l.label)
		for i, r := range l.rs {
			if r.P50us <= 0 {
				continue
			}
			by := y + float64(i)*18
			bw := barMax * r.P50us / maxLat
			s.printf(`<rect x="%.1f" y="%.1f" width="%.1f" height="15" fill="%s"/>`+"\n", x0, by, bw, l.cols[i])
			tx := x0 + barMax*r.P99us/maxLat
			s.printf(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="2"/>`+"\n", tx, by-2, tx, by+17, l.cols[i])
			s.text(max(x0+bw, tx)+6, by+12, "start", "", "p50 %.1f, p99 %.0f", r.P50us, r.P99us)
		}
		y += 66
	}
	if rt := p[SocketRoundtripSeq]; rt.P50us > 0 {
		rx := x0 + barMax*rt.P50us/maxLat
		s.printf(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#4a5568" stroke-dasharray="4 3"/>`+"\n", rx, top+14, rx, y-10)
		s.text(rx, y+4, "middle", `fill="#4a5568"`, "bare socket round trip p50 %.1f µs", rt.P50us)
	}
	s.printf("</svg>\n")
	_, err := io.WriteString(w, s.b.String())
	return err
}

// key is one entry of a legend: a colour, drawn as a square, or as a
// line ("line") or a dashed line ("dash").
type key struct{ col, mark string }

// legend draws keys with labels in a row.
func legend(s *svg, x, y float64, keys []key, labels []string) {
	for i, k := range keys {
		switch k.mark {
		case "line", "dash":
			dash := ""
			if k.mark == "dash" {
				dash = ` stroke-dasharray="6 4"`
			}
			s.printf(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="2.5"%s/>`+"\n", x, y-4, x+22, y-4, k.col, dash)
			x += 27
		default:
			s.printf(`<rect x="%.1f" y="%.1f" width="10" height="10" fill="%s"/>`+"\n", x, y-9, k.col)
			x += 15
		}
		s.text(x, y, "start", "", "%s", labels[i])
		x += 7.2*float64(len([]rune(labels[i]))) + 20
	}
}

// si writes a rate with a k or M suffix.
func si(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.0fk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}
