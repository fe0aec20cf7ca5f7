//go:build unix

package party

// Crash torture (issue 4). Worker processes share one database: each
// writes its own keys (puts, overwrites, deletes and batches) and iterates,
// slowly, over a range of keys it wrote before iterating and never touches
// again. The test kills the current leader with SIGKILL, over and over,
// replacing every killed worker, and after every kill checks that every
// worker makes progress, that every acknowledged write is present and every
// acknowledged delete absent, and that every iteration returned exactly the
// keys of its range, in order.

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func init() { cfChildModes["tt-worker"] = ttWorkerMain }

const (
	ttEnvKills   = "PARTY_TORTURE_KILLS" // kills of a long run
	ttKills      = 50                    // kills in a normal run
	ttWorkers    = 4                     // worker processes alive at any time
	ttLanes      = 2                     // writing goroutines of a worker
	ttWindow     = 12                    // keys a lane keeps before it deletes
	ttRangeBases = 128                   // base keys of a worker's iteration range
)

// ttWriterPrefix begins the keys of writing lanes; iteration ranges begin
// with "r/".
const ttWriterPrefix = "w/"

// ttRange returns the iteration range of worker id: its prefix, and its
// keys, sorted, with their values. The keys include the prefix itself,
// keys that extend one another, and 0x00 and 0xff bytes.
func ttRange(id string) (prefix []byte, keys, values [][]byte) {
	prefix = []byte("r/" + id + "/")
	add := func(suffix string) { keys = append(keys, append(bytes.Clone(prefix), suffix...)) }
	add("")
	for i := range ttRangeBases {
		b := fmt.Sprintf("%03d", i)
		add(b)
		if i%3 == 0 {
			add(b + "\x00")
		}
		if i%7 == 0 {
			add(b + "\x00\x00")
		}
		if i%4 == 1 {
			add(b + "\xff")
			add(b + "\xff\xff")
		}
		if i%5 == 2 {
			add(b + "a")
			add(b + "ab")
		}
	}
	slices.SortFunc(keys, bytes.Compare)
	for i, k := range keys {
		values = append(values, fmt.Appendf(nil, "%s%x", strings.Repeat("v", i%13), k))
	}
	return prefix, keys, values
}

// ttWorkerMain is the "tt-worker" child mode. It joins the party, prints
// "ready <role>", writes its iteration range in one batch and prints "P"
// once that is acknowledged. Then, until stdin closes, ttLanes goroutines
// write, each printing "T <lane> <mutations>" before an operation and
// "A <lane>" once it is acknowledged (or "E <lane> <error>" and stop), and
// one goroutine iterates, printing for each iteration
// "I <mode> <exact 1|0> <moves> <start ns> <end ns> <leader id before> <leader id after> <quoted detail>".
// It prints "bye" after Close.
func ttWorkerMain(dir string) int {
	id := os.Getenv(cfEnvID)
	db, err := cfChildOpen(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		return 1
	}
	cfPrintln("ready", cfRoleName(db))
	prefix, keys, values := ttRange(id)
	var b Batch
	for i := range keys {
		b.Put(keys[i], values[i])
	}
	ctx, cancel := context.WithTimeout(context.Background(), cfChildOpTimeout)
	err = db.Write(ctx, &b)
	cancel()
	if err != nil {
		cfPrintln("E", "P", strconv.Quote(err.Error()))
		db.Close()
		return 1
	}
	cfPrintln("P")

	seed := uint64(os.Getpid())
	var mu sync.Mutex
	failed := false
	fail := func() {
		mu.Lock()
		failed = true
		mu.Unlock()
	}
	var wg sync.WaitGroup
	for lane := range ttLanes {
		wg.Go(func() {
			if !ttWriteLane(db, id, lane, rand.New(rand.NewPCG(seed, uint64(lane)))) {
				fail()
			}
		})
	}
	wg.Go(func() {
		if !ttIterLane(db, prefix, keys, values, rand.New(rand.NewPCG(seed, 1000))) {
			fail()
		}
	})
	wg.Wait()
	if err := db.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "close:", err)
		return 1
	}
	cfPrintln("bye")
	if failed {
		return 1
	}
	return 0
}

// ttStopping reports whether the parent asked the child to stop.
func ttStopping() bool {
	select {
	case <-cfStdinClosed:
		return true
	default:
		return false
	}
}

// ttWriteLane writes until stdin closes; it reports false if an operation
// failed.
func ttWriteLane(db *DB, id string, lane int, rng *rand.Rand) bool {
	var live []string // keys this lane has put and not deleted
	seq := 0
	for op := 0; !ttStopping(); op++ {
		muts := ttNextOp(rng, id, lane, op, &seq, &live)
		cfPrintln(append([]any{"T", lane}, cfAnys(muts)...)...)
		if err := cfApply(db, muts); err != nil {
			cfPrintln("E", lane, strconv.Quote(err.Error()))
			return false
		}
		cfPrintln("A", lane)
		// Leave the processor to the iterators, the elections and the
		// test now and then.
		if rng.IntN(2) == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	return true
}

// ttNextOp returns the mutations of a lane's next operation: a put of a new
// key, an overwrite of a live key, a delete of a live key, or a batch of
// one or two new keys, an overwrite and a delete. A deleted key is never
// written again, and no operation touches a key twice. The lane keeps
// about ttWindow live keys.
func ttNextOp(rng *rand.Rand, id string, lane, op int, seq *int, live *[]string) []string {
	value := "v" + strconv.Itoa(op)
	newKey := func() string {
		*seq++
		k := fmt.Sprintf("%s%s/%d/%06d", ttWriterPrefix, id, lane, *seq)
		*live = append(*live, k)
		return "+" + k + "=" + value
	}
	r := rng.IntN(100)
	if len(*live) > ttWindow {
		r = 55 + rng.IntN(45) // a delete or a batch, which deletes
	}
	switch {
	case len(*live) == 0 || r < 40:
		return []string{newKey()}
	case r < 55:
		return []string{"+" + (*live)[rng.IntN(len(*live))] + "=" + value}
	case r < 75 || len(*live) < 2:
		i := rng.IntN(len(*live))
		k := (*live)[i]
		*live = slices.Delete(*live, i, i+1)
		return []string{"-" + k}
	}
	i := rng.IntN(len(*live))
	j := (i + 1 + rng.IntN(len(*live)-1)) % len(*live)
	over, del := (*live)[i], (*live)[j]
	*live = slices.DeleteFunc(*live, func(k string) bool { return k == del })
	muts := []string{newKey(), "+" + over + "=" + value, "-" + del}
	if rng.IntN(2) == 0 {
		muts = append(muts, newKey())
	}
	return muts
}

// ttIterLane iterates over the worker's range until stdin closes, cycling
// through the iteration modes, with small pauses so that kills land in the
// middle of iterations. It reports false if an iteration went wrong.
func ttIterLane(db *DB, prefix []byte, keys, values [][]byte, rng *rand.Rand) bool {
	pause := func() {
		if rng.IntN(10) == 0 && !ttStopping() {
			time.Sleep(time.Millisecond)
		}
	}
	ok := true
	for n := rng.IntN(ttIterModes); !ttStopping(); n++ {
		mode := n % ttIterModes
		ctx, cancel := context.WithTimeout(context.Background(), cfChildOpTimeout)
		before, err := db.Status(ctx)
		if err != nil {
			cancel()
			cfPrintln("E", "I", strconv.Quote("status: "+err.Error()))
			return false
		}
		start := time.Now()
		moves, bad := ttIterate(ctx, db, rng, mode, prefix, keys, values, pause)
		end := time.Now()
		after, err := db.Status(ctx)
		cancel()
		if err != nil {
			cfPrintln("E", "I", strconv.Quote("status: "+err.Error()))
			return false
		}
		exact := 1
		if bad != "" {
			exact, ok = 0, false
		}
		cfPrintln("I", mode, exact, moves, start.UnixNano(), end.UnixNano(), before.LeaderID, after.LeaderID, strconv.Quote(bad))
		if !ok {
			return false
		}
	}
	return ok
}

// Iteration modes.
const (
	ttIterForward  = iota // Next from the start to the end of the range
	ttIterBackward        // Last, then Prev to the start
	ttIterBounded         // a sub-range: Next to its end, then Prev back to its start
	ttIterWalk            // Seek, then a random walk of Next, Prev, Seek, First, Last
	ttIterModes
)

// ttIterate runs one iteration of mode over the worker's range and returns
// the number of moves and, if a move did not return exactly what the range
// holds, a description of the first that did not.
func ttIterate(ctx context.Context, db *DB, rng *rand.Rand, mode int, prefix []byte, keys, values [][]byte, pause func()) (int, string) {
	r := BytesPrefix(prefix)
	if mode == ttIterBounded {
		a := rng.IntN(len(keys) / 2)
		b := a + 1 + rng.IntN(len(keys)-a)
		limit := r.Limit
		if b < len(keys) {
			limit = keys[b]
		}
		r = &Range{Start: keys[a], Limit: limit}
		keys, values = keys[a:b], values[a:b]
	}
	it := db.NewIterator(ctx, r)
	defer it.Release()
	c := &ttCursor{it: it, keys: keys, values: values, idx: -1}
	switch mode {
	case ttIterForward:
		for c.next() {
			pause()
		}
	case ttIterBackward:
		for ok := c.last(); ok; ok = c.prev() {
			pause()
		}
	case ttIterBounded:
		for c.next() {
			pause()
		}
		for c.bad == "" && c.prev() {
			pause()
		}
	case ttIterWalk:
		c.seek(ttSeekTarget(rng, keys))
		for c.bad == "" && c.moves < 150 {
			switch x := rng.IntN(100); {
			case x < 55:
				c.next()
			case x < 95:
				c.prev()
			case x < 97:
				c.seek(ttSeekTarget(rng, keys))
			case x < 98:
				c.first()
			default:
				c.last()
			}
			pause()
		}
	}
	if c.bad == "" {
		if err := it.Error(); err != nil {
			c.bad = fmt.Sprintf("after %d moves: iterator error: %v", c.moves, err)
		}
	}
	return c.moves, c.bad
}

// ttSeekTarget returns a key of the range, or one just after it that is
// not in the range's keys, or one before every key.
func ttSeekTarget(rng *rand.Rand, keys [][]byte) []byte {
	k := keys[rng.IntN(len(keys))]
	switch rng.IntN(4) {
	case 0:
		return append(bytes.Clone(k), 0x01)
	case 1:
		return k[:len(k)-min(len(k), 1)]
	}
	return k
}

// ttCursor moves an iterator and checks every move against the keys the
// range holds; idx is the expected position, -1 before the first key and
// len(keys) after the last.
type ttCursor struct {
	it     *Iterator
	keys   [][]byte
	values [][]byte
	idx    int
	moves  int
	bad    string // the first wrong move
}

func (c *ttCursor) next() bool {
	if c.idx < len(c.keys) {
		c.idx++
	}
	return c.check("Next", c.it.Next())
}

func (c *ttCursor) prev() bool {
	if c.idx >= 0 {
		c.idx--
	}
	return c.check("Prev", c.it.Prev())
}

func (c *ttCursor) first() bool {
	c.idx = 0
	return c.check("First", c.it.First())
}

func (c *ttCursor) last() bool {
	c.idx = len(c.keys) - 1
	return c.check("Last", c.it.Last())
}

func (c *ttCursor) seek(k []byte) bool {
	c.idx = sort.Search(len(c.keys), func(i int) bool { return bytes.Compare(c.keys[i], k) >= 0 })
	return c.check(fmt.Sprintf("Seek(%q)", k), c.it.Seek(k))
}

// check compares the outcome of a move with the expected position.
func (c *ttCursor) check(move string, ok bool) bool {
	c.moves++
	if c.bad != "" {
		return false
	}
	want := "the end"
	valid := c.idx >= 0 && c.idx < len(c.keys)
	if valid {
		want = fmt.Sprintf("key %q", c.keys[c.idx])
	}
	switch {
	case ok != valid:
		got := "the end"
		if ok {
			got = fmt.Sprintf("key %q", c.it.Key())
		}
		c.bad = fmt.Sprintf("move %d (%s) returned %s (error %v), want %s", c.moves, move, got, c.it.Error(), want)
	case ok && !bytes.Equal(c.it.Key(), c.keys[c.idx]):
		c.bad = fmt.Sprintf("move %d (%s) returned key %q, want %s", c.moves, move, c.it.Key(), want)
	case ok && !bytes.Equal(c.it.Value(), c.values[c.idx]):
		c.bad = fmt.Sprintf("move %d (%s) returned key %q with value %q, want %q", c.moves, move, c.it.Key(), c.it.Value(), c.values[c.idx])
	}
	return ok && c.bad == ""
}

// ttState is what a key holds: absent, or present with a value.
type ttState struct {
	present bool
	value   string
}

func (s ttState) String() string {
	if !s.present {
		return "absent"
	}
	return strconv.Quote(s.value)
}

// ttKey is the history of a writer key: the state after each operation
// issued on it, in order (its lane issues them one at a time), and how
// many of those operations are acknowledged. The key may hold the state
// after any operation from the last acknowledged one on (state 0 is
// absent): later ones may have been applied, earlier ones are overwritten.
type ttKey struct {
	states []ttState
	acked  int
}

func (k *ttKey) state(i int) ttState {
	if i == 0 {
		return ttState{}
	}
	return k.states[i-1]
}

// allows reports whether the key may hold s, given that the first lo
// operations were acknowledged when the check began.
func (k *ttKey) allows(lo int, s ttState) bool {
	for i := lo; i <= len(k.states); i++ {
		if k.state(i) == s {
			return true
		}
	}
	return false
}

func (k *ttKey) describe(lo int) string {
	return fmt.Sprintf("acknowledged %v after %d operations; issued since: %v", k.state(lo), lo, k.states[lo:])
}

// ttRef is a key touched by an operation and the number of the state that
// operation gives it.
type ttRef struct {
	key string
	k   *ttKey
	n   int
}

// ttModel is what the writer keys must hold, from the lines of all
// workers. A key whose acknowledged delete ended its life is retired: it
// must be absent from then on.
type ttModel struct {
	mu         sync.Mutex
	keys       map[string]*ttKey   // keys not retired
	retiredNew map[string]*ttKey   // retired since the last check began
	retiredOld map[string]struct{} // retired before the last check began
	bad        string              // a key written again after its delete
	ops        int                 // acknowledged operations
	batches    int                 // acknowledged operations of several mutations
	puts, dels int                 // mutations of acknowledged operations
}

func newTTModel() *ttModel {
	return &ttModel{keys: make(map[string]*ttKey), retiredNew: make(map[string]*ttKey), retiredOld: make(map[string]struct{})}
}

// issue records an operation printed in a "T" line.
func (m *ttModel) issue(muts []string) []ttRef {
	m.mu.Lock()
	defer m.mu.Unlock()
	refs := make([]ttRef, 0, len(muts))
	for _, mut := range muts {
		key, value, put := cfParseMut(mut)
		k := m.keys[key]
		if k == nil {
			_, old := m.retiredOld[key]
			if m.retiredNew[key] != nil || old {
				m.bad = fmt.Sprintf("the workload wrote key %q after its acknowledged delete", key)
			}
			k = &ttKey{}
			m.keys[key] = k
		}
		k.states = append(k.states, ttState{put, value})
		refs = append(refs, ttRef{key, k, len(k.states)})
	}
	return refs
}

// ack records the acknowledgement of an operation.
func (m *ttModel) ack(refs []ttRef) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.ops++
	if len(refs) > 1 {
		m.batches++
	}
	for _, r := range refs {
		r.k.acked = max(r.k.acked, r.n)
		s := r.k.state(r.n)
		if s.present {
			m.puts++
			continue
		}
		m.dels++
		if r.k.acked == len(r.k.states) && m.keys[r.key] == r.k {
			delete(m.keys, r.key)
			m.retiredNew[r.key] = r.k
		}
	}
}

// ttSnap is a key's history and its acknowledged operations when a check
// began.
type ttSnap struct {
	k  *ttKey
	lo int
}

// check scans the writer keys through db and compares them with the
// model, while workers may still be writing. It returns how many
// acknowledged writes (the key's last acknowledged state is a value) and
// acknowledged deletes (retired keys) it verified.
func (m *ttModel) check(t testing.TB, db *DB, when string) (writes, deletes int) {
	t.Helper()
	m.mu.Lock()
	if m.bad != "" {
		m.mu.Unlock()
		t.Fatal(m.bad)
	}
	for key := range m.retiredNew {
		m.retiredOld[key] = struct{}{}
	}
	clear(m.retiredNew)
	snap := make(map[string]ttSnap, len(m.keys))
	for key, k := range m.keys {
		snap[key] = ttSnap{k, k.acked}
		if k.acked > 0 && k.state(k.acked).present {
			writes++
		}
	}
	deletes = len(m.retiredOld)
	m.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), cfHang)
	defer cancel()
	got := cfScan(t, ctx, db, BytesPrefix([]byte(ttWriterPrefix)))

	// A worker prints an operation before it issues it, but the test may
	// not have read that line yet: a mismatch is final only once the
	// lines had time to arrive.
	eval := func() []string {
		m.mu.Lock()
		defer m.mu.Unlock()
		var problems []string
		seen := make(map[string]bool, len(got))
		for _, e := range got {
			key := string(e.key)
			seen[key] = true
			s := ttState{true, string(e.value)}
			if sn, ok := snap[key]; ok {
				if !sn.k.allows(sn.lo, s) {
					problems = append(problems, fmt.Sprintf("key %q is %v; %s", key, s, sn.k.describe(sn.lo)))
				}
				continue
			}
			if _, ok := m.retiredOld[key]; ok {
				problems = append(problems, fmt.Sprintf("key %q is %v, but its delete was acknowledged", key, s))
				continue
			}
			k := m.keys[key]
			if k == nil {
				k = m.retiredNew[key]
			}
			if k == nil {
				problems = append(problems, fmt.Sprintf("key %q is %v, but no worker wrote it", key, s))
			} else if !k.allows(0, s) {
				problems = append(problems, fmt.Sprintf("key %q is %v; %s", key, s, k.describe(0)))
			}
		}
		for key, sn := range snap {
			if !seen[key] && !sn.k.allows(sn.lo, ttState{}) {
				problems = append(problems, fmt.Sprintf("key %q is absent; %s", key, sn.k.describe(sn.lo)))
			}
		}
		return problems
	}
	deadline := time.Now().Add(cfHang)
	for {
		problems := eval()
		if len(problems) == 0 {
			return writes, deletes
		}
		if time.Now().After(deadline) {
			slices.Sort(problems)
			for i, p := range problems {
				if i == 20 {
					t.Errorf("... and %d more", len(problems)-20)
					break
				}
				t.Errorf("%s: %s", when, p)
			}
			t.FailNow()
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// ttIterRec is an iteration a worker reported.
type ttIterRec struct {
	start, end int64 // wall clock, ns
	changed    bool  // the leader id differed before and after
}

// ttProc is a worker process, with what the test learns from its lines.
type ttProc struct {
	*cfChild
	id     string
	m      *ttModel
	prefix []byte
	keys   [][]byte
	values [][]byte

	mu       sync.Mutex // guards the fields below
	acks     [ttLanes]int
	pending  [ttLanes][]ttRef // the operation in flight of each lane
	prepared bool             // its range is written and acknowledged
	iters    []ttIterRec
	lastEnd  int64  // end of the last iteration reported
	failure  string // the first line reporting a failure
	armed    bool   // measuring the gap from killAt to the first acknowledgement
	killAt   time.Time
	gap      time.Duration // the measured gap, once an acknowledgement arrived
}

// ttSpawn starts worker id.
func ttSpawn(t testing.TB, dir string, m *ttModel, id string) *ttProc {
	t.Helper()
	p := &ttProc{id: id, m: m}
	p.prefix, p.keys, p.values = ttRange(id)
	p.cfChild = cfSpawnWith(t, p.onLine, "tt-worker", dir, cfEnvID+"="+id)
	return p
}

func (p *ttProc) fail(format string, a ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.failure == "" {
		p.failure = fmt.Sprintf(format, a...)
	}
}

// onLine parses a line of the worker, on its reader goroutine.
func (p *ttProc) onLine(line string) {
	f := strings.SplitN(line, " ", 9)
	lane := -1
	if len(f) > 1 {
		if n, err := strconv.Atoi(f[1]); err == nil && n >= 0 && n < ttLanes {
			lane = n
		}
	}
	switch f[0] {
	case "T":
		if lane < 0 || len(f) < 3 {
			p.fail("bad line %q", line)
			return
		}
		refs := p.m.issue(strings.Fields(line)[2:])
		p.mu.Lock()
		if p.pending[lane] != nil {
			p.mu.Unlock()
			p.fail("lane %d issued an operation before the last one finished: %q", lane, line)
			return
		}
		p.pending[lane] = refs
		p.mu.Unlock()
	case "A":
		if lane < 0 {
			p.fail("bad line %q", line)
			return
		}
		p.mu.Lock()
		refs := p.pending[lane]
		p.pending[lane] = nil
		p.acks[lane]++
		if p.armed {
			p.armed = false
			p.gap = time.Since(p.killAt)
		}
		p.mu.Unlock()
		if refs == nil {
			p.fail("lane %d acknowledged an operation it never issued", lane)
			return
		}
		p.m.ack(refs)
	case "P":
		p.mu.Lock()
		p.prepared = true
		p.mu.Unlock()
	case "I":
		if len(f) != 9 {
			p.fail("bad line %q", line)
			return
		}
		start, err1 := strconv.ParseInt(f[4], 10, 64)
		end, err2 := strconv.ParseInt(f[5], 10, 64)
		if err1 != nil || err2 != nil {
			p.fail("bad line %q", line)
			return
		}
		if f[2] != "1" {
			detail, _ := strconv.Unquote(f[8])
			p.fail("iteration mode %s over range %q was not exact: %s (leader id before %s, after %s)", f[1], p.prefix, detail, f[6], f[7])
		}
		p.mu.Lock()
		p.iters = append(p.iters, ttIterRec{start, end, f[6] != f[7]})
		p.lastEnd = end
		p.mu.Unlock()
	case "E":
		p.fail("%s", line)
	}
}

// ttKillRec is a kill: when SIGKILL was sent, and when the process was
// known dead.
type ttKillRec struct{ sent, dead int64 }

// TestTortureKillLeader runs ttWorkers worker processes and kills the
// current leader with SIGKILL ttKills times (PARTY_TORTURE_KILLS=N for a
// long run), at random moments, replacing each killed worker. After every
// kill: every worker makes progress (both writing lanes, and the iterator
// of a worker that was iterating finishes an iteration), every
// acknowledged write is present and every acknowledged delete absent, and
// every iteration reported so far returned exactly the keys of its range.
// Iterations that were open across a kill are counted, and there must be
// some.
func TestTortureKillLeader(t *testing.T) {
	kills := ttKills
	if s := os.Getenv(ttEnvKills); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("%s=%q: want a positive number of kills", ttEnvKills, s)
		}
		kills = n
	}
	dir := t.TempDir()
	m := newTTModel()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0))

	var all, live []*ttProc
	spawn := func() *ttProc {
		p := ttSpawn(t, dir, m, fmt.Sprintf("%04d", len(all)))
		all = append(all, p)
		live = append(live, p)
		return p
	}
	first := spawn()
	if role := first.WaitLine(cfHang, func(l string) bool { return strings.HasPrefix(l, "ready ") }); role != "ready leader" {
		t.Fatalf("the first worker is %q, want leader", role)
	}
	obs, err := openFollowerOnly(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { obs.Close() })
	for len(live) < ttWorkers {
		spawn()
	}

	var (
		killRecs               []ttKillRec
		writesChecked, delsChk int
		rangesChecked          int
		gaps                   []time.Duration
	)

	// progress waits until every live worker has had two more operations
	// acknowledged on every lane than in base, and, if iterating is true
	// for it, has finished an iteration after since (ns).
	progress := func(base map[*ttProc][ttLanes]int, iterating map[*ttProc]bool, since int64, after string) {
		t.Helper()
		deadline := time.Now().Add(cfHang)
		for _, p := range live {
			for {
				p.mu.Lock()
				acks, lastEnd, failure, gap := p.acks, p.lastEnd, p.failure, p.gap
				p.mu.Unlock()
				if failure != "" {
					t.Fatalf("worker %v %s: %s", p, after, failure)
				}
				done := !iterating[p] || lastEnd > since
				for lane := range ttLanes {
					done = done && acks[lane] >= base[p][lane]+2
				}
				if done {
					if gap > 0 {
						gaps = append(gaps, gap)
						p.mu.Lock()
						p.gap = 0
						p.mu.Unlock()
					}
					break
				}
				select {
				case <-p.Exited():
					t.Fatalf("worker %v exited %s (%v); stderr:\n%s", p, after, p.waitErr, cfTail(p.Stderr(), 4000))
				case <-time.After(time.Millisecond):
				}
				if time.Now().After(deadline) {
					t.Fatalf("worker %v made no progress for %v %s: acknowledged operations per lane %v, wanted %v plus 2; iterating %v, last iteration ended %v after the kill",
						p, cfHang, after, acks, base[p], iterating[p], time.Duration(lastEnd-since))
				}
			}
		}
	}
	// checkAll checks the writer keys and the ranges of live workers.
	checkAll := func(when string) {
		t.Helper()
		w, d := m.check(t, obs, when)
		writesChecked += w
		delsChk += d
		for _, p := range live {
			p.mu.Lock()
			prepared := p.prepared
			p.mu.Unlock()
			if prepared {
				ttCheckRange(t, obs, p, true, when)
				rangesChecked++
			}
		}
	}

	progress(nil, nil, 0, "before the first kill")
	checkAll("before the first kill")
	for k := 1; k <= kills; k++ {
		time.Sleep(time.Duration(rng.IntN(30)) * time.Millisecond)
		ctx, cancel := context.WithTimeout(context.Background(), cfHang)
		st, err := obs.Status(ctx)
		cancel()
		if err != nil {
			t.Fatalf("kill %d: status: %v", k, err)
		}
		i := slices.IndexFunc(live, func(p *ttProc) bool { return p.PID() == st.PID })
		if st.IsLeader || i < 0 {
			t.Fatalf("kill %d: the leader is process %d, which is none of the live workers: %+v", k, st.PID, st)
		}
		victim := live[i]
		live = slices.Delete(live, i, i+1)
		iterating := make(map[*ttProc]bool)
		for _, p := range live {
			p.mu.Lock()
			iterating[p] = p.prepared
			p.mu.Unlock()
		}
		sent := time.Now()
		victim.Kill()
		dead := time.Now()
		killRecs = append(killRecs, ttKillRec{sent.UnixNano(), dead.UnixNano()})
		// Measure from the signal to the first acknowledgement that
		// arrives once the leader is known dead.
		base := make(map[*ttProc][ttLanes]int)
		for _, p := range live {
			p.mu.Lock()
			p.armed, p.killAt, p.gap = true, sent, 0
			base[p] = p.acks
			p.mu.Unlock()
		}
		spawn()
		after := fmt.Sprintf("after kill %d (leader %v)", k, victim)
		progress(base, iterating, dead.UnixNano(), after)
		checkAll(after)
	}

	// Stop gracefully: each worker finishes its operations in flight, so
	// only killed workers may leave one unacknowledged.
	for _, p := range live {
		p.stdin.Close()
	}
	for _, p := range live {
		if err := p.Wait(cfHang); err != nil {
			t.Errorf("worker %v failed: %v; stderr:\n%s", p, err, cfTail(p.Stderr(), 4000))
		}
		if p.failure != "" {
			t.Errorf("worker %v: %s", p, p.failure)
		}
		for lane, refs := range p.pending {
			if refs != nil {
				t.Errorf("worker %v lane %d stopped with an operation neither acknowledged nor failed", p, lane)
			}
		}
	}
	if err := obs.Close(); err != nil {
		t.Fatal(err)
	}
	if t.Failed() {
		return
	}

	db := cfOpen(t, dir, nil)
	if !db.IsLeader() {
		t.Fatal("every worker stopped but a new handle does not lead")
	}
	finalWrites, finalDels := m.check(t, db, "at the end")
	ttCheckAllRanges(t, db, all)

	iters, spanned, changed := 0, 0, 0
	for _, p := range all {
		for _, it := range p.iters {
			iters++
			if it.changed {
				changed++
			}
			for _, kr := range killRecs {
				if it.start < kr.sent && it.end > kr.dead {
					spanned++
					break
				}
			}
		}
	}
	slices.Sort(gaps)
	var p50, gmax time.Duration
	if len(gaps) > 0 {
		p50, gmax = gaps[len(gaps)/2], gaps[len(gaps)-1]
	}
	t.Logf("%d kills of the leader process, %d worker processes in all", kills, len(all))
	t.Logf("acknowledged: %d operations (%d batches), %d puts and %d deletes", m.ops, m.batches, m.puts, m.dels)
	t.Logf("checked after every kill: %d acknowledged writes present, %d acknowledged deletes absent (summed over checks); %d iteration ranges exact; at the end: %d writes, %d deletes, %d ranges",
		writesChecked, delsChk, rangesChecked, finalWrites, finalDels, len(all))
	t.Logf("iterations: %d checked exact, %d open across a kill, %d saw the leader id change", iters, spanned, changed)
	t.Logf("kill to the first acknowledged operation of each surviving worker (%d samples, reported only): p50 %v, max %v", len(gaps), p50, gmax)

	if m.ops < 10*kills {
		t.Errorf("only %d operations were acknowledged over %d kills; the workers hardly ran", m.ops, kills)
	}
	if spanned == 0 {
		t.Errorf("no iteration was open across a kill among %d iterations; the test did not test resuming", iters)
	}
}

// ttCheckRange checks that worker p's range holds exactly its keys, or,
// if !written, nothing at all.
func ttCheckRange(t testing.TB, db *DB, p *ttProc, written bool, when string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cfHang)
	defer cancel()
	ttCompareRange(t, p, cfScan(t, ctx, db, BytesPrefix(p.prefix)), written, when)
}

func ttCompareRange(t testing.TB, p *ttProc, got []cfEntry, written bool, when string) {
	t.Helper()
	if !written && len(got) == 0 {
		return
	}
	if len(got) != len(p.keys) {
		t.Fatalf("%s: range %q of worker %v holds %d keys, want %d", when, p.prefix, p, len(got), len(p.keys))
	}
	for i, e := range got {
		if !bytes.Equal(e.key, p.keys[i]) || !bytes.Equal(e.value, p.values[i]) {
			t.Fatalf("%s: range %q of worker %v: entry %d is %q = %q, want %q = %q", when, p.prefix, p, i, e.key, e.value, p.keys[i], p.values[i])
		}
	}
}

// ttCheckAllRanges checks the iteration ranges of every worker that ever
// ran: written in full, or, for a worker killed before its batch was
// acknowledged, written in full or not at all; and nothing else.
func ttCheckAllRanges(t testing.TB, db *DB, all []*ttProc) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cfHang)
	defer cancel()
	byID := make(map[string][]cfEntry)
	for _, e := range cfScan(t, ctx, db, BytesPrefix([]byte("r/"))) {
		id, _, ok := bytes.Cut(e.key[2:], []byte("/"))
		if !ok {
			t.Fatalf("key %q is in no worker's range", e.key)
		}
		byID[string(id)] = append(byID[string(id)], e)
	}
	for _, p := range all {
		ttCompareRange(t, p, byID[p.id], p.prepared, "at the end")
		delete(byID, p.id)
	}
	for id, es := range byID {
		t.Errorf("%d keys in range of unknown worker %q", len(es), id)
	}
}
