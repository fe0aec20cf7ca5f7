package bench

import (
	"bytes"
	"encoding/xml"
	"io"
	"strconv"
	"strings"
	"testing"
)

// TestWriteSVG draws a chart from results as the JSON lines give them, and
// checks that it is well-formed XML with every panel, the SQLite bars
// included; without SQLite results, it still draws.
func TestWriteSVG(t *testing.T) {
	var lines strings.Builder
	add := func(name string, ops, p50, p99, direct float64) {
		lines.WriteString(`{"name":"` + name + `","ops_per_sec":` + ftoa(ops) + `,"p50_us":` + ftoa(p50) +
			`,"p99_us":` + ftoa(p99) + `,"direct_ops_per_sec":` + ftoa(direct) + "}\n")
	}
	add(FollowerGetSeq, 20000, 44, 110, 230000)
	add(FollowerPutSeq, 18000, 47, 140, 190000)
	add(FollowerGetSeqPoll, 25000, 20, 280, 230000)
	add(FollowerPutSeqPoll, 24000, 21, 300, 190000)
	add(FollowerGetC64, 115000, 500, 1500, 287000)
	add(FollowerPutC64, 90000, 500, 4000, 141000)
	add(FollowerIter, 2200000, 0.1, 0.2, 4200000)
	add(SocketRoundtripSeq, 26000, 35, 97, 0)
	for _, op := range []string{"get", "put"} {
		for i, k := range scaleCounts {
			add(scaleName(op, k), 60000+float64(i)*1000, 500, 2000, 240000)
		}
	}
	party, err := ReadResults(strings.NewReader(lines.String()))
	if err != nil {
		t.Fatal(err)
	}
	sqlite, err := ReadResults(strings.NewReader(`{"name":"sqlite_get_seq","ops_per_sec":83000,"p50_us":9.6,"p99_us":62}
{"name":"sqlite_put_c64","ops_per_sec":17000,"p50_us":26,"p99_us":80000}
`))
	if err != nil {
		t.Fatal(err)
	}
	for _, withSQLite := range []bool{true, false} {
		var out bytes.Buffer
		q := sqlite
		if !withSQLite {
			q = nil
		}
		if err := WriteSVG(&out, party, q); err != nil {
			t.Fatal(err)
		}
		d := xml.NewDecoder(bytes.NewReader(out.Bytes()))
		for {
			if _, err := d.Token(); err == io.EOF {
				break
			} else if err != nil {
				t.Fatalf("sqlite %v: not well-formed: %v", withSQLite, err)
			}
		}
		svg := out.String()
		for _, want := range []string{"Throughput against goleveldb", "follower processes are added", "Sequential latency",
			"sequential Get", "8 followers", "bare socket round trip", "BusyPoll"} {
			if !strings.Contains(svg, want) {
				t.Errorf("sqlite %v: the chart lacks %q", withSQLite, want)
			}
		}
		if got := strings.Contains(svg, `height="15" fill="`+colSQLite); got != withSQLite {
			t.Errorf("SQLite bars drawn: %v, want %v", got, withSQLite)
		}
	}
}

func ftoa(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
