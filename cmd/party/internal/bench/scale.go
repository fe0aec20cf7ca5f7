package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/levelparty/party"
	"github.com/levelparty/party/cmd/party/internal/child"
)

// The scaling figures: how total throughput grows with the number of
// follower processes, each with scaleInFlight calls in flight, against
// goleveldb directly with as many goroutines in one process.
const (
	roleLoadFollower = "load-follower"
	scaleInFlight    = 16
)

// scaleCounts are the numbers of follower processes measured.
var scaleCounts = []int{1, 2, 4, 8}

// scaleName names the figure of op (get or put) with k followers.
func scaleName(op string, k int) string {
	return fmt.Sprintf("followers_%s_%dx%d", op, k, scaleInFlight)
}

// scaleNames lists the scaling figures in order.
func scaleNames() []string {
	var names []string
	for _, op := range []string{"get", "put"} {
		for _, k := range scaleCounts {
			names = append(names, scaleName(op, k))
		}
	}
	return names
}

// loadFollowerChild opens dir, which must make it a follower, says "ready
// PID", and runs loads on command until stdin closes: "run get|put N BASE
// KEYS" runs N operations with scaleInFlight goroutines (gets read random
// keys among the first KEYS fill entries; BASE keeps keys apart), "run tx
// N 0 0" N Update increments of the counter, one at a time, and
// answers "done ELAPSED_NS Q0 ... Q100", the latencies at each
// percentile, in nanoseconds.
func loadFollowerChild(dir string, out *child.Lines) (err error) {
	db, err := party.Open(dir, nil)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := db.Close(); err == nil {
			err = cerr
		}
	}()
	if db.IsLeader() {
		return errors.New("the load child leads: the leader child is gone")
	}
	out.Printf("ready %d", os.Getpid())
	ctx := context.Background() // the parent stops a stuck child by killing it
	sc := bufio.NewScanner(os.Stdin)
	var stopWatch func() error // ends the background watch of "watch all"
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && f[0] == "watch" {
			if err := watchCommand(ctx, db, f[1], out, &stopWatch); err != nil {
				return err
			}
			continue
		}
		if len(f) != 5 || f[0] != "run" {
			return fmt.Errorf("unknown command %q", sc.Text())
		}
		n, err1 := strconv.Atoi(f[2])
		base, err2 := strconv.ParseUint(f[3], 10, 64)
		keys, err3 := strconv.Atoi(f[4])
		if err := errors.Join(err1, err2, err3); err != nil {
			return fmt.Errorf("command %q: %w", sc.Text(), err)
		}
		var o op
		inFlight := scaleInFlight
		switch f[1] {
		case "tx":
			o, inFlight = txOp(ctx, db), 1
		case "get":
			o = getOp(func(k []byte) ([]byte, error) { return db.Get(ctx, k) }, keys, base)
		case "put":
			o = putOp(func(k, v []byte) error { return db.Put(ctx, k, v) }, base)
		default:
			return fmt.Errorf("unknown load %q", f[1])
		}
		s, err := concurrent(ctx, n, inFlight, o)
		if err != nil {
			return err
		}
		q := make([]string, 0, 101)
		for _, v := range quantiles(s.lat) {
			q = append(q, strconv.FormatInt(int64(v), 10))
		}
		out.Printf("done %d %s", s.elapsed.Nanoseconds(), strings.Join(q, " "))
	}
	return sc.Err()
}

// quantiles returns the latencies at each percentile, 0 to 100.
func quantiles(lat []time.Duration) []time.Duration {
	l := slices.Clone(lat)
	slices.Sort(l)
	q := make([]time.Duration, 101)
	for p := range q {
		q[p] = l[min(len(l)-1, p*len(l)/100)]
	}
	return q
}

// scaleFigures measures the scaling figures with load children following
// leader, and the same loads on direct in this process.
func (r *runner) scaleFigures(partyDir string, leader *proc, directGet func(k []byte) ([]byte, error), directPut func(k, v []byte) error, getKeys int) ([]Figure, error) {
	n := max(100, r.sz.scaleOps) // operations per follower process and repetition
	var loads []*proc
	defer func() {
		for _, p := range loads {
			p.stop()
		}
	}()
	var figs []Figure
	for i, op := range []string{"get", "put"} {
		for _, k := range scaleCounts {
			for len(loads) < k {
				p, err := r.spawn(roleLoadFollower, partyDir)
				if err != nil {
					return nil, err
				}
				loads = append(loads, p)
			}
			figure := uint64(16 + i*len(scaleCounts) + len(figs))
			party := func(rep int) (sample, error) {
				start := time.Now()
				for c, p := range loads[:k] {
					base := figure<<48 | uint64(rep)<<32 | uint64(c)<<24
					if err := p.send(fmt.Sprintf("run %s %d %d %d", op, n, base, getKeys)); err != nil {
						return sample{}, err
					}
				}
				s := sample{n: n * k}
				for _, p := range loads[:k] {
					line, err := p.expect(r.ctx, time.Minute, "done ")
					if err != nil {
						return sample{}, err
					}
					f := strings.Fields(line)[2:]
					for _, v := range f {
						ns, err := strconv.ParseInt(v, 10, 64)
						if err != nil {
							return sample{}, fmt.Errorf("bench: %s: %q", p, line)
						}
						s.lat = append(s.lat, time.Duration(ns))
					}
				}
				s.elapsed = time.Since(start)
				return s, nil
			}
			direct := func(rep int) (sample, error) {
				base := figure<<48 | uint64(rep)<<32
				o := putOp(directPut, base)
				if op == "get" {
					o = getOp(directGet, getKeys, base)
				}
				return concurrent(r.ctx, n*k, k*scaleInFlight, o)
			}
			f, err := r.throughputFigure(scaleName(op, k), n*k, "follower", nil, party, direct)
			if err != nil {
				return nil, err
			}
			f.Note = fmt.Sprintf("%d follower processes × %d in flight; direct: %d goroutines", k, scaleInFlight, k*scaleInFlight)
			figs = append(figs, f)
		}
	}
	return figs, nil
}
