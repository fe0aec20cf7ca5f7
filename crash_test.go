//go:build unix

package party

// Item 10 of DESIGN.md section 7: kill -9 of the leader process while
// followers write; every acknowledged write is there afterwards.

import (
	"context"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// cfWriter is a child process in "writer" mode, with what the test learns
// from its lines as they arrive.
type cfWriter struct {
	*cfChild
	id     string
	acks   atomic.Int64           // operations acknowledged so far
	failed atomic.Pointer[string] // the first "E" line, if any
	killed bool                   // killed by the test, so its last operation may be unacknowledged
}

// cfSpawnWriter starts a writer child with a unique id and waits until it
// has joined.
func cfSpawnWriter(t testing.TB, dir, id string) *cfWriter {
	t.Helper()
	w := &cfWriter{id: id}
	w.cfChild = cfSpawnWith(t, func(line string) {
		switch {
		case strings.HasPrefix(line, "A "):
			w.acks.Add(1)
		case strings.HasPrefix(line, "E "):
			w.failed.CompareAndSwap(nil, &line)
		}
	}, "writer", dir, cfEnvID+"="+id)
	w.WaitLine(cfHang, func(l string) bool { return strings.HasPrefix(l, "ready ") })
	return w
}

// waitAcks waits until the writer has had n operations acknowledged. It
// fails the test if the writer reports an error, exits, or makes no
// progress for cfHang: a bound that only detects a stall.
func (w *cfWriter) waitAcks(t testing.TB, n int64, after string) {
	t.Helper()
	deadline := time.Now().Add(cfHang)
	for w.acks.Load() < n {
		if line := w.failed.Load(); line != nil {
			t.Fatalf("writer %v %s: an operation failed: %s", w, after, *line)
		}
		select {
		case <-w.Exited():
			t.Fatalf("writer %v exited %s (%v); stderr:\n%s", w, after, w.waitErr, cfTail(w.Stderr(), 4000))
		case <-time.After(time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("writer %v made no progress for %v %s: %d operations acknowledged, waiting for %d",
				w, cfHang, after, w.acks.Load(), n)
		}
	}
}

// cfKeyState is what a key should hold: absent, or present with a value.
type cfKeyState struct {
	present bool
	value   string
}

func (s cfKeyState) String() string {
	if !s.present {
		return "absent"
	}
	return fmt.Sprintf("%q", s.value)
}

// cfExpectation is what the database must hold after writers ran.
type cfExpectation struct {
	want      map[string]cfKeyState   // after every acknowledged operation
	maybe     map[string][]cfKeyState // other states allowed: operations cut short by a kill
	ops, muts int                     // acknowledged operations, and their mutations
}

// cfExpect replays the lines of writers: acknowledged operations in each
// lane's order, and the last unacknowledged operation of a lane of a
// killed writer, which may or may not have been applied.
func cfExpect(t testing.TB, writers []*cfWriter) *cfExpectation {
	t.Helper()
	e := &cfExpectation{want: make(map[string]cfKeyState), maybe: make(map[string][]cfKeyState)}
	for _, w := range writers {
		pending := make(map[string][]string) // lane: mutations issued, not yet acknowledged
		for _, line := range w.Lines() {
			f := strings.Fields(line)
			switch f[0] {
			case "T":
				if pending[f[1]] != nil {
					t.Fatalf("writer %v lane %s issued an operation before the last one finished", w, f[1])
				}
				pending[f[1]] = f[2:]
				for _, m := range f[2:] {
					k, _, _ := cfParseMut(m)
					if _, ok := e.want[k]; !ok {
						e.want[k] = cfKeyState{} // every key starts absent
					}
				}
			case "A":
				muts := pending[f[1]]
				if muts == nil {
					t.Fatalf("writer %v lane %s acknowledged an operation it never issued", w, f[1])
				}
				for _, m := range muts {
					k, v, put := cfParseMut(m)
					e.want[k] = cfKeyState{put, v}
				}
				delete(pending, f[1])
				e.ops++
				e.muts += len(muts)
			case "E":
				t.Errorf("writer %v: %s", w, line)
			}
		}
		for lane, muts := range pending {
			if !w.killed {
				t.Errorf("writer %v lane %s stopped with an operation neither acknowledged nor failed: %q", w, lane, muts)
				continue
			}
			for _, m := range muts {
				k, v, put := cfParseMut(m)
				e.maybe[k] = append(e.maybe[k], cfKeyState{put, v})
			}
		}
	}
	return e
}

// check compares the database's content with the expectation and returns
// how many keys had two allowed states.
func (e *cfExpectation) check(t testing.TB, got []cfEntry) (ambiguous int) {
	t.Helper()
	have := make(map[string]string, len(got))
	for _, en := range got {
		k := string(en.key)
		have[k] = string(en.value)
		if _, ok := e.want[k]; !ok {
			t.Errorf("key %q = %q is present but no writer ever wrote it", k, en.value)
		}
	}
	bad := 0
	for _, k := range slices.Sorted(maps.Keys(e.want)) {
		v, ok := have[k]
		state := cfKeyState{ok, v}
		if state == e.want[k] {
			continue
		}
		if slices.Contains(e.maybe[k], state) {
			ambiguous++
			continue
		}
		if bad++; bad <= 20 {
			t.Errorf("key %q is %v; acknowledged writes say %v (or one of %v, cut short by a kill)", k, state, e.want[k], e.maybe[k])
		}
	}
	if bad > 20 {
		t.Errorf("... and %d more keys differ", bad-20)
	}
	return ambiguous
}

// TestCrashKillLeader runs a "hold" child, which leads first, and writer
// children, then kills the current leader process with SIGKILL again and
// again, replacing each killed process. The test process watches through
// a handle that never leads, so the leader is always a child. After each
// kill every writer must make progress. At the end every acknowledged
// write and delete must be in the database, and nothing else.
// PARTY_LONG=1 kills 200 times instead of 20.
func TestCrashKillLeader(t *testing.T) {
	const numWriters = 3
	kills := 20
	if os.Getenv("PARTY_LONG") != "" {
		kills = 200
	}
	dir := t.TempDir()

	holds := []*cfChild{cfSpawn(t, "hold", dir)}
	if role := holds[0].WaitRole(cfHang); role != "leader" {
		t.Fatalf("the first child is %s, want leader", role)
	}
	obs, err := openFollowerOnly(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { obs.Close() })

	var all, live []*cfWriter
	nextID := 0
	spawn := func() {
		w := cfSpawnWriter(t, dir, fmt.Sprint(nextID))
		nextID++
		all = append(all, w)
		live = append(live, w)
	}
	for range numWriters {
		spawn()
	}
	progress := func(after string) {
		t.Helper()
		for _, w := range live {
			w.waitAcks(t, w.acks.Load()+5, after)
		}
	}
	progress("before the first kill")

	for k := 1; k <= kills; k++ {
		ctx, cancel := context.WithTimeout(context.Background(), cfHang)
		st, err := obs.Status(ctx)
		cancel()
		if err != nil {
			t.Fatalf("kill %d: status: %v", k, err)
		}
		if st.IsLeader || st.PID == os.Getpid() {
			t.Fatalf("kill %d: the watching handle, which never leads, is the leader: %+v", k, st)
		}
		if i := slices.IndexFunc(holds, func(c *cfChild) bool { return c.PID() == st.PID }); i >= 0 {
			holds[i].Kill()
			holds = slices.Delete(holds, i, i+1)
			c := cfSpawn(t, "hold", dir)
			c.WaitRole(cfHang)
			holds = append(holds, c)
		} else if i := slices.IndexFunc(live, func(w *cfWriter) bool { return w.PID() == st.PID }); i >= 0 {
			live[i].killed = true
			live[i].Kill()
			live = slices.Delete(live, i, i+1)
			spawn()
		} else {
			t.Fatalf("kill %d: the leader is process %d, which is none of the children", k, st.PID)
		}
		progress(fmt.Sprintf("after kill %d (leader was %d)", k, st.PID))
	}

	// Stop everyone gracefully: the writers finish their operation in
	// flight, so only killed writers may leave one unacknowledged.
	for _, w := range live {
		w.stdin.Close()
	}
	for _, w := range live {
		if err := w.Wait(cfHang); err != nil {
			t.Errorf("writer %v failed: %v; stderr:\n%s", w, err, cfTail(w.Stderr(), 4000))
		}
	}
	for _, c := range holds {
		if err := c.Stop(cfHang); err != nil {
			t.Errorf("hold child %v failed: %v", c, err)
		}
	}
	if err := obs.Close(); err != nil {
		t.Fatal(err)
	}
	if t.Failed() {
		return
	}

	exp := cfExpect(t, all)
	db := cfOpen(t, dir, nil)
	if !db.IsLeader() {
		t.Fatal("every child stopped but a new handle does not lead")
	}
	ambiguous := exp.check(t, cfScan(t, cfCtx(t), db, nil))
	t.Logf("%d kills of the leader process (%d writers killed); checked %d acknowledged operations (%d puts and deletes) over %d keys; %d keys were written by an operation cut short by a kill",
		kills, nextID-numWriters, exp.ops, exp.muts, len(exp.want), ambiguous)
	if exp.ops < 10*kills {
		t.Errorf("only %d operations were acknowledged over %d kills; the writers hardly ran", exp.ops, kills)
	}
}
