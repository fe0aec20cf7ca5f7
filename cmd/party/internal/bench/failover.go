package bench

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// failoverWait bounds how long a follower may take to report its first
// operation after a kill; it only detects a hang.
const failoverWait = 30 * time.Second

// failoverFigure measures the gap between kill -9 of the leader and the
// first acknowledged operation of every other participant. A leader child
// and sz.followers failover-follower children share a fresh directory;
// the followers put one key after another. Each round kills the leader at
// a random moment; every survivor reports the wall-clock time of its
// first put acknowledged by the next leader, which is one of them; a new
// follower replaces the one that now leads, and the next round kills it.
func (r *runner) failoverFigure() ([]Figure, error) {
	sz := r.sz
	f := Figure{Name: FailoverGapMs, Kind: Failover, Reps: sz.reps, Kills: sz.kills, Ops: sz.kills * sz.followers}
	if sz.followers < 1 || sz.kills < 1 {
		return nil, fmt.Errorf("bench: %s needs followers and kills", FailoverGapMs)
	}
	dir := r.dir("failover")
	leader, err := r.spawn(roleLeader, dir)
	if err != nil {
		return nil, err
	}
	followers := make([]*proc, 0, sz.followers)
	defer func() { stopProcs(append(followers, leader)...) }()
	for range sz.followers {
		p, err := r.spawn(roleFailoverFollower, dir)
		if err != nil {
			return nil, err
		}
		followers = append(followers, p)
	}
	var p50s, maxs, openP50s, openMaxs []float64
	for rep := range sz.reps {
		var gaps, opens []float64
		for kill := range sz.kills {
			// A random moment: the survivors' operations may be anywhere
			// on their way.
			select {
			case <-time.After(sz.settle/2 + rand.N(sz.settle+1)):
			case <-r.ctx.Done():
				return nil, r.ctx.Err()
			}
			g, next, err := r.killLeader(leader, followers)
			if err != nil {
				return nil, fmt.Errorf("%s: rep %d, kill %d: %w", FailoverGapMs, rep+1, kill+1, err)
			}
			gaps = append(gaps, g...)
			open, ok := lastOpenMs(dir)
			if ok {
				opens = append(opens, open)
			}
			r.logf("%s rep %d/%d, kill %d/%d: gaps (ms) %.1f; goleveldb open %.1f ms",
				FailoverGapMs, rep+1, sz.reps, kill+1, sz.kills, g, open)
			followers = slices.DeleteFunc(followers, func(p *proc) bool { return p == next })
			leader = next
			p, err := r.spawn(roleFailoverFollower, dir)
			if err != nil {
				return nil, err
			}
			followers = append(followers, p)
		}
		g, o := spread(gaps), spread(opens)
		p50s, maxs = append(p50s, g.Median), append(maxs, g.Max)
		if len(opens) > 0 {
			openP50s, openMaxs = append(openP50s, o.Median), append(openMaxs, o.Max)
		}
		r.logf("%s rep %d/%d: %d kills, %d gaps: p50 %.2f ms, max %.2f ms; goleveldb open p50 %.2f ms, max %.2f ms",
			FailoverGapMs, rep+1, sz.reps, sz.kills, len(gaps), g.Median, g.Max, o.Median, o.Max)
	}
	f.P50ms, f.MaxMs = spread(p50s), spread(maxs)
	f.OpenP50ms, f.OpenMaxMs = spread(openP50s), spread(openMaxs)
	return []Figure{f}, nil
}

// lastOpenMs returns how long goleveldb took to open dir the last time,
// in milliseconds, from the line "db@open done T·DURATION" it writes in
// its LOG file (or LOG.old, where it moves a LOG over 1 MiB).
func lastOpenMs(dir string) (float64, bool) {
	for _, name := range []string{"LOG", "LOG.old"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			continue
		}
		const mark = "db@open done T·"
		i := bytes.LastIndex(b, []byte(mark))
		if i < 0 {
			continue
		}
		rest := b[i+len(mark):]
		if j := bytes.IndexAny(rest, " \n"); j >= 0 {
			rest = rest[:j]
		}
		d, err := time.ParseDuration(string(rest))
		if err != nil {
			return 0, false
		}
		return float64(d) / float64(time.Millisecond), true
	}
	return 0, false
}

// killLeader kills leader with SIGKILL and returns each follower's gap in
// milliseconds, and the follower that leads now.
func (r *runner) killLeader(leader *proc, followers []*proc) ([]float64, *proc, error) {
	killed := time.Now().UnixNano()
	if err := leader.kill(); err != nil {
		return nil, nil, fmt.Errorf("kill %v: %w", leader, err)
	}
	var gaps []float64
	var next *proc
	for _, p := range followers {
		line, err := p.expect(r.ctx, failoverWait, "gap ")
		if err != nil {
			return nil, nil, err
		}
		fields := strings.Fields(line)
		if len(fields) != 3 {
			return nil, nil, fmt.Errorf("%v: bad line %q", p, line)
		}
		acked, err := strconv.ParseInt(fields[1], 10, 64)
		if err != nil {
			return nil, nil, fmt.Errorf("%v: bad line %q", p, line)
		}
		if acked < killed {
			return nil, nil, fmt.Errorf("%v saw a new leader at %d, before the kill at %d", p, acked, killed)
		}
		gaps = append(gaps, float64(acked-killed)/float64(time.Millisecond))
		if fields[2] == "leader" {
			if next != nil {
				return nil, nil, fmt.Errorf("both %v and %v say they lead", next, p)
			}
			next = p
		}
	}
	select {
	case <-leader.exited:
	case <-time.After(failoverWait):
		return nil, nil, fmt.Errorf("%v still runs after SIGKILL", leader)
	}
	if next == nil {
		return nil, nil, fmt.Errorf("no follower says it leads after the kill of %v", leader)
	}
	return gaps, next, nil
}
