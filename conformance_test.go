//go:build unix

package party

// Conformance tests: DESIGN.md section 7, items 1-8 and 11. Item 9
// (iterators) has its own tests; item 10 is in crash_test.go.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// cfHang bounds every wait in these tests. It only detects hangs: a test
// that reaches it has failed, however slow the machine.
const cfHang = 30 * time.Second

// cfCtx returns a context that ends after cfHang or with the test.
func cfCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), cfHang)
	t.Cleanup(cancel)
	return ctx
}

// cfOpen opens a handle that is closed when the test ends.
func cfOpen(t testing.TB, dir string, o *Options) *DB {
	t.Helper()
	db, err := Open(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// cfMustPut puts key = value through db.
func cfMustPut(t testing.TB, ctx context.Context, db *DB, key, value string) {
	t.Helper()
	if err := db.Put(ctx, []byte(key), []byte(value)); err != nil {
		t.Fatalf("put %q: %v", key, err)
	}
}

// cfMustGet checks that key has value through db.
func cfMustGet(t testing.TB, ctx context.Context, db *DB, key, want string) {
	t.Helper()
	v, err := db.Get(ctx, []byte(key))
	if err != nil {
		t.Fatalf("get %q: %v", key, err)
	}
	if string(v) != want {
		t.Fatalf("get %q = %q, want %q", key, v, want)
	}
}

// cfEntry is a key and its value.
type cfEntry struct{ key, value []byte }

// cfScan reads every entry of r through db with a forward iterator.
func cfScan(t testing.TB, ctx context.Context, db *DB, r *Range) []cfEntry {
	t.Helper()
	it := db.NewIterator(ctx, r)
	defer it.Release()
	var out []cfEntry
	for it.Next() {
		out = append(out, cfEntry{bytes.Clone(it.Key()), bytes.Clone(it.Value())})
	}
	if err := it.Error(); err != nil {
		t.Fatalf("iterating: %v", err)
	}
	return out
}

// cfLeaders counts the handles that say they lead.
func cfLeaders(dbs []*DB) int {
	n := 0
	for _, db := range dbs {
		if db.IsLeader() {
			n++
		}
	}
	return n
}

// cfWaitElected waits until db leads.
func cfWaitElected(t testing.TB, db *DB) {
	t.Helper()
	select {
	case <-db.Elected():
	case <-time.After(cfHang):
		t.Fatalf("handle not elected within %v", cfHang)
	}
}

// cfQueued returns how many calls db holds while it has no leader.
func cfQueued(db *DB) int { return db.node().Queued() }

// cfIssued returns how many calls db has dispatched so far.
func cfIssued(db *DB) uint64 { return db.node().Issued() }

// cfPoll calls cond until it is true; it fails the test with what if that
// takes longer than cfHang.
func cfPoll(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(cfHang)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up after %v waiting for %s", cfHang, what)
		}
		time.Sleep(time.Millisecond)
	}
}

// cfWaitStopped waits until process pid is stopped by SIGSTOP, so that
// nothing sent to it afterwards can have been read before it stopped.
func cfWaitStopped(t testing.TB, pid int) {
	t.Helper()
	if runtime.GOOS != "linux" {
		time.Sleep(100 * time.Millisecond) // no /proc to ask; a stop is prompt
		return
	}
	cfPoll(t, fmt.Sprintf("process %d to stop", pid), func() bool {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			t.Fatal(err)
		}
		// The state follows the command name, which is in parentheses.
		i := bytes.LastIndexByte(b, ')')
		return i >= 0 && i+2 < len(b) && (b[i+2] == 'T' || b[i+2] == 't')
	})
}

// cfHoldLock keeps the database lock held after the leader that holds it
// in this process closes, until release is called.
//
// Open returns only once a handle has a role, so the one way for a handle
// to issue operations while it has no role is to lose its leader and find
// no one to follow and the lock taken. To make that state last as long as
// the test needs, cfHoldLock duplicates the leader's descriptors of
// <dir>/LOCK (found in /proc/self/fd). party's lock is an OFD lock, owned
// by the open file description, which lives as long as any descriptor of
// it is open: when the leader closes its descriptor the lock stays held by
// the duplicate, exactly as if another program held it, and it is released
// when the test closes the duplicate. The goleveldb flock, which goleveldb
// releases explicitly on close, does not matter here.
func cfHoldLock(t testing.TB, dir string) (release func()) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("needs /proc/self/fd and OFD locks")
	}
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(real, "LOCK")
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	var dups []int
	for _, e := range entries {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if link, err := os.Readlink("/proc/self/fd/" + e.Name()); err != nil || link != target {
			continue
		}
		nfd, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			t.Fatalf("dup of the lock's descriptor %d: %v", fd, err)
		}
		dups = append(dups, nfd)
	}
	if len(dups) == 0 {
		t.Fatalf("test setup: no descriptor of %s in this process; is the leader in this process?", target)
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			for _, fd := range dups {
				syscall.Close(fd)
			}
		})
	}
	t.Cleanup(release)
	return release
}

// cfOFDGetLk is F_OFD_GETLK on Linux, the only system where it is used
// here; golang.org/x/sys/unix defines it on Linux only.
const cfOFDGetLk = 36

// cfLockHeld reports whether an OFD lock conflicting with a write lock is
// held on <dir>/LOCK, asked through a new open file description.
func cfLockHeld(t testing.TB, dir string) bool {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, "LOCK"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lk := unix.Flock_t{Type: unix.F_WRLCK}
	if err := unix.FcntlFlock(f.Fd(), cfOFDGetLk, &lk); err != nil {
		t.Fatal(err)
	}
	return lk.Type != unix.F_UNLCK
}

// cfLoseLeaderKeepLock closes leader while the lock stays held, so that
// the followers of leader lose it and cannot elect anyone. It returns the
// function that releases the lock.
func cfLoseLeaderKeepLock(t testing.TB, dir string, leader *DB) (release func()) {
	t.Helper()
	release = cfHoldLock(t, dir)
	if err := leader.Close(); err != nil {
		t.Fatal(err)
	}
	if !cfLockHeld(t, dir) {
		t.Fatal("test setup: the lock was released with the leader's descriptor still duplicated; " +
			"the lock is no longer an OFD lock released on close, and this test must hold it another way")
	}
	return release
}

// 1. Two handles in one process: a put through one is read through the
// other, both ways.
func TestConformanceTwoHandles(t *testing.T) {
	ctx := cfCtx(t)
	dir := t.TempDir()
	a := cfOpen(t, dir, nil)
	b := cfOpen(t, dir, nil)
	if !a.IsLeader() || b.IsLeader() {
		t.Fatalf("IsLeader: first handle %v, second %v; want true, false", a.IsLeader(), b.IsLeader())
	}
	cfMustPut(t, ctx, b, "from-b", "1")
	cfMustGet(t, ctx, a, "from-b", "1")
	cfMustPut(t, ctx, a, "from-a", "2")
	cfMustGet(t, ctx, b, "from-a", "2")
	if err := a.Delete(ctx, []byte("from-b")); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(ctx, []byte("from-b")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get of a key deleted through the other handle: %v, want ErrNotFound", err)
	}
	sa, err := a.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sb, err := b.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !sa.IsLeader || sb.IsLeader || sa.LeaderID != sb.LeaderID || sb.PID != os.Getpid() || sa.Followers != 1 {
		t.Fatalf("status: leader %+v, follower %+v", sa, sb)
	}
}

// 2. Two directories do not interfere: each has its own leader and data.
func TestConformanceTwoDirectories(t *testing.T) {
	ctx := cfCtx(t)
	dir1, dir2 := t.TempDir(), t.TempDir()
	a1 := cfOpen(t, dir1, nil)
	a2 := cfOpen(t, dir2, nil)
	b1 := cfOpen(t, dir1, nil)
	b2 := cfOpen(t, dir2, nil)
	if !a1.IsLeader() || !a2.IsLeader() || b1.IsLeader() || b2.IsLeader() {
		t.Fatalf("the first handle of each directory must lead, and only it")
	}
	cfMustPut(t, ctx, b1, "k", "one")
	cfMustPut(t, ctx, b2, "k", "two")
	cfMustPut(t, ctx, b1, "only1", "x")
	cfMustGet(t, ctx, a1, "k", "one")
	cfMustGet(t, ctx, a2, "k", "two")
	if ok, err := b2.Has(ctx, []byte("only1")); err != nil || ok {
		t.Fatalf("Has(only1) in the other directory = %v, %v; want false", ok, err)
	}
	s1, err := b1.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := b2.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s1.LeaderID == s2.LeaderID || s1.Followers != 1 || s2.Followers != 1 {
		t.Fatalf("statuses of the two directories: %+v and %+v", s1, s2)
	}
	// Losing the leader of one directory changes nothing in the other.
	if err := a1.Close(); err != nil {
		t.Fatal(err)
	}
	cfMustGet(t, ctx, b1, "k", "one")
	if !b1.IsLeader() || !a2.IsLeader() || b2.IsLeader() {
		t.Fatal("after the first directory's leader closed, the second directory's roles changed")
	}
	cfMustGet(t, ctx, b2, "k", "two")
	if s, err := b2.Status(ctx); err != nil || s.LeaderID != s2.LeaderID {
		t.Fatalf("second directory's leader changed: %+v, %v", s, err)
	}
}

// 3. Election party: six handles; the leader closes, one at a time; after
// each close every survivor puts a key and its neighbour reads it back.
func TestConformanceElectionParty(t *testing.T) {
	ctx := cfCtx(t)
	dir := t.TempDir()
	var dbs []*DB
	for range 6 {
		dbs = append(dbs, cfOpen(t, dir, nil))
	}
	for round := 0; len(dbs) > 1; round++ {
		if n := cfLeaders(dbs); n != 1 {
			t.Fatalf("round %d: %d handles say they lead, want 1", round, n)
		}
		i := slices.IndexFunc(dbs, (*DB).IsLeader)
		if err := dbs[i].Close(); err != nil {
			t.Fatalf("round %d: closing the leader: %v", round, err)
		}
		dbs = slices.Delete(dbs, i, i+1)
		// Every survivor writes at once, while the election runs.
		errs := make(chan error, len(dbs))
		for j, db := range dbs {
			go func() {
				errs <- db.Put(ctx, fmt.Appendf(nil, "r%d-h%d", round, j), fmt.Appendf(nil, "v%d", j))
			}()
		}
		for range dbs {
			if err := <-errs; err != nil {
				t.Fatalf("round %d: put after the leader closed: %v", round, err)
			}
		}
		for j := range dbs {
			cfMustGet(t, ctx, dbs[(j+1)%len(dbs)], fmt.Sprintf("r%d-h%d", round, j), fmt.Sprintf("v%d", j))
		}
	}
	if !dbs[0].IsLeader() {
		t.Fatal("the last handle does not lead")
	}
	if got := len(cfScan(t, ctx, dbs[0], nil)); got != 5+4+3+2+1 {
		t.Fatalf("%d keys at the end, want 15", got)
	}
}

// 4. Multi-process: ten child processes each put one key and exit; a final
// open sees all ten. Twenty rounds on the same directory; the ten children
// of a round run at once, so they elect among themselves while others put.
func TestMultiProcessPutAndExit(t *testing.T) {
	const children = 10
	rounds := 20
	if testing.Short() {
		rounds = 3
	}
	dir := t.TempDir()
	for r := range rounds {
		ctx := cfCtx(t)
		var cs []*cfChild
		for i := range children {
			cs = append(cs, cfSpawn(t, "put", dir,
				fmt.Sprintf("%s=r%02d-c%02d", cfEnvKey, r, i),
				fmt.Sprintf("%s=pid-of-round-%d-child-%d", cfEnvValue, r, i)))
		}
		for _, c := range cs {
			if err := c.Wait(2 * cfHang); err != nil {
				t.Fatalf("round %d: child %v failed: %v\nstderr:\n%s", r, c, err, cfTail(c.Stderr(), 4000))
			}
		}
		db, err := Open(dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !db.IsLeader() {
			t.Fatalf("round %d: the children exited but the final open is not leader", r)
		}
		got := cfScan(t, ctx, db, nil)
		if len(got) != children*(r+1) {
			t.Errorf("round %d: %d keys, want %d", r, len(got), children*(r+1))
		}
		for i := range children {
			want := fmt.Sprintf("pid-of-round-%d-child-%d", r, i)
			if v, err := db.Get(ctx, fmt.Appendf(nil, "r%02d-c%02d", r, i)); err != nil || string(v) != want {
				t.Errorf("round %d: key of child %d = %q, %v; want %q", r, i, v, err, want)
			}
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		if t.Failed() {
			return
		}
	}
}

// 5. Basic failover: the leader closes while its follower has 100 puts
// pending; all succeed, and all 100 are there, in key order, once the
// follower leads. In odd rounds every put is sent before the leader
// begins to close; in even rounds the leader closes at once. Meanwhile one goroutine of the follower puts a key again
// and again, each put after the previous one returned, and reads it back:
// a retried operation never overtakes one issued after it completed, and
// the follower reads its own writes across the change of leader. Five
// rounds: each new leader is then closed under a new follower.
func TestConformanceFailover(t *testing.T) {
	const n = 100
	ctx := cfCtx(t)
	dir := t.TempDir()
	leader := cfOpen(t, dir, nil)
	for round := range 5 {
		follower := cfOpen(t, dir, nil)
		if follower.IsLeader() {
			t.Fatalf("round %d: the new handle leads", round)
		}
		seqKey := fmt.Appendf(nil, "r%d-seq", round)
		stop := make(chan struct{})
		seqDone := make(chan error, 1)
		last := 0
		var iterations atomic.Int64
		go func() {
			for i := 1; ; i++ {
				select {
				case <-stop:
					seqDone <- nil
					return
				default:
				}
				v := strconv.Itoa(i)
				if err := follower.Put(ctx, seqKey, []byte(v)); err != nil {
					seqDone <- fmt.Errorf("put %d: %w", i, err)
					return
				}
				last = i
				got, err := follower.Get(ctx, seqKey)
				if err != nil || string(got) != v {
					seqDone <- fmt.Errorf("get right after put %d = %q, %v", i, got, err)
					return
				}
				iterations.Add(1)
			}
		}()

		errs := make(chan error, n)
		start := cfIssued(follower)
		for i := range n {
			go func() {
				errs <- follower.Put(ctx, fmt.Appendf(nil, "r%d-k%03d", round, i), fmt.Appendf(nil, "v%d", i))
			}()
		}
		if round%2 == 1 {
			// Every put sent before the leader closes, rather than some
			// sent while it closes and some while there is no leader.
			cfPoll(t, "the puts to be sent", func() bool { return cfIssued(follower) >= start+n })
		}
		early := len(errs)
		if err := leader.Close(); err != nil {
			t.Fatalf("round %d: closing the leader: %v", round, err)
		}
		t.Logf("round %d: %d of %d puts had finished when the leader began to close", round, early, n)
		for range n {
			if err := <-errs; err != nil {
				t.Fatalf("round %d: pending put failed: %v", round, err)
			}
		}
		cfWaitElected(t, follower)
		// A few more sequential puts on the new leader, then stop.
		done := iterations.Load()
		cfPoll(t, "sequential puts on the new leader", func() bool {
			return iterations.Load() > done+10 || len(seqDone) > 0
		})
		close(stop)
		if err := <-seqDone; err != nil {
			t.Fatalf("round %d: sequential writer: %v", round, err)
		}
		cfMustGet(t, ctx, follower, string(seqKey), strconv.Itoa(last))

		got := cfScan(t, ctx, follower, BytesPrefix(fmt.Appendf(nil, "r%d-k", round)))
		if len(got) != n {
			t.Fatalf("round %d: %d keys present, want %d", round, len(got), n)
		}
		for i, e := range got {
			if k, v := fmt.Sprintf("r%d-k%03d", round, i), fmt.Sprintf("v%d", i); string(e.key) != k || string(e.value) != v {
				t.Fatalf("round %d: entry %d is %q=%q, want %q=%q", round, i, e.key, e.value, k, v)
			}
		}
		leader = follower
	}
}

// 6. Self-flush: operations issued while the handle has no role complete,
// in the order they were issued, once it is elected. The follower loses
// its leader while the lock stays held (see cfHoldLock), so it can neither
// follow nor lead; operations issued then wait. Each is issued only once
// the previous one waits in the queue, so the issue order is known, and
// the expected results (reads between writes) hold only if they run in
// that order. Meanwhile a new Open gives up with ErrLockedByOther.
func TestConformanceSelfFlush(t *testing.T) {
	ctx := cfCtx(t)
	dir := t.TempDir()
	a := cfOpen(t, dir, nil)
	b := cfOpen(t, dir, nil)
	cfMustPut(t, ctx, b, "x", "0")
	release := cfLoseLeaderKeepLock(t, dir, a)

	type result struct {
		value string
		err   error
	}
	var batch Batch
	batch.Put([]byte("z"), []byte("zz"))
	batch.Delete([]byte("x"))
	str := func(v []byte, err error) result { return result{string(v), err} }
	boolean := func(ok bool, err error) result { return result{strconv.FormatBool(ok), err} }
	ops := []struct {
		name string
		run  func() result
		want result
	}{
		{"get x", func() result { return str(b.Get(ctx, []byte("x"))) }, result{"0", nil}},
		{"put x=1", func() result { return result{"", b.Put(ctx, []byte("x"), []byte("1"))} }, result{}},
		{"get x", func() result { return str(b.Get(ctx, []byte("x"))) }, result{"1", nil}},
		{"put x=2", func() result { return result{"", b.Put(ctx, []byte("x"), []byte("2"))} }, result{}},
		{"put y", func() result { return result{"", b.Put(ctx, []byte("y"), []byte("y"))} }, result{}},
		{"has y", func() result { return boolean(b.Has(ctx, []byte("y"))) }, result{"true", nil}},
		{"delete y", func() result { return result{"", b.Delete(ctx, []byte("y"))} }, result{}},
		{"has y", func() result { return boolean(b.Has(ctx, []byte("y"))) }, result{"false", nil}},
		{"get x", func() result { return str(b.Get(ctx, []byte("x"))) }, result{"2", nil}},
		{"batch z, -x", func() result { return result{"", b.Write(ctx, &batch)} }, result{}},
		{"get x", func() result { return str(b.Get(ctx, []byte("x"))) }, result{"", ErrNotFound}},
		{"get z", func() result { return str(b.Get(ctx, []byte("z"))) }, result{"zz", nil}},
		{"delete range", func() result { return result{"", b.DeleteRange(ctx, &Range{Start: []byte("z")})} }, result{}},
		{"has z", func() result { return boolean(b.Has(ctx, []byte("z"))) }, result{"false", nil}},
	}
	results := make([]chan result, len(ops))
	for i, op := range ops {
		results[i] = make(chan result, 1)
		go func() { results[i] <- op.run() }()
		cfPoll(t, fmt.Sprintf("operation %d (%s) to wait for a leader", i, op.name), func() bool {
			return cfQueued(b) == i+1 || len(results[i]) > 0
		})
	}
	for i := range ops {
		if len(results[i]) > 0 {
			t.Fatalf("operation %d (%s) finished while no participant could lead: %+v", i, ops[i].name, <-results[i])
		}
	}
	if b.IsLeader() {
		t.Fatal("the follower leads while the lock is held")
	}

	// Someone holds the lock and no one serves: Open gives up, saying so.
	if db, err := Open(dir, &Options{OpenTimeout: 200 * time.Millisecond}); !errors.Is(err, ErrLockedByOther) {
		if db != nil {
			db.Close()
		}
		t.Fatalf("open while the lock is held and no one serves: %v; want ErrLockedByOther", err)
	}

	release()
	cfWaitElected(t, b)
	for i, op := range ops {
		var r result
		select {
		case r = <-results[i]:
		case <-time.After(cfHang):
			t.Fatalf("operation %d (%s) still pending %v after the handle was elected", i, op.name, cfHang)
		}
		if r.value != op.want.value || !errors.Is(r.err, op.want.err) || (op.want.err == nil && r.err != nil) {
			t.Errorf("operation %d (%s) = %q, %v; want %q, %v", i, op.name, r.value, r.err, op.want.value, op.want.err)
		}
	}
}

// 7. Close fails pending operations with ErrClosed, whether they wait for
// a leader or are in flight on the connection to one; Close right after
// Open works, and so does a second Close.
func TestConformanceClose(t *testing.T) {
	t.Run("queued", func(t *testing.T) {
		ctx := cfCtx(t)
		dir := t.TempDir()
		a := cfOpen(t, dir, nil)
		b := cfOpen(t, dir, nil)
		release := cfLoseLeaderKeepLock(t, dir, a)
		const n = 20
		errs := make(chan error, n)
		for i := range n {
			go func() { errs <- b.Put(ctx, fmt.Appendf(nil, "k%d", i), []byte("v")) }()
		}
		cfPoll(t, "the puts to wait for a leader", func() bool { return cfQueued(b) == n || len(errs) > 0 })
		if len(errs) > 0 {
			t.Fatalf("a put finished while no participant could lead: %v", <-errs)
		}
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		for range n {
			if err := <-errs; !errors.Is(err, ErrClosed) {
				t.Fatalf("pending put after Close: %v, want ErrClosed", err)
			}
		}
		release()
		c := cfOpen(t, dir, nil)
		if !c.IsLeader() {
			t.Fatal("a new handle does not lead once the lock is free")
		}
	})

	t.Run("in-flight", func(t *testing.T) {
		ctx := cfCtx(t)
		dir := t.TempDir()
		child := cfSpawn(t, "hold", dir)
		if role := child.WaitRole(cfHang); role != "leader" {
			t.Fatalf("child is %s, want leader", role)
		}
		b := cfOpen(t, dir, nil)
		cfMustPut(t, ctx, b, "before", "v")
		// A stopped leader reads nothing: the puts stay in flight.
		child.Signal(syscall.SIGSTOP)
		cfWaitStopped(t, child.PID())
		const n = 20
		start := cfIssued(b)
		errs := make(chan error, n)
		for i := range n {
			go func() { errs <- b.Put(ctx, fmt.Appendf(nil, "k%d", i), []byte("v")) }()
		}
		cfPoll(t, "the puts to be sent", func() bool { return cfIssued(b) == start+n })
		time.Sleep(10 * time.Millisecond) // let the last ones be written to the socket
		if len(errs) > 0 {
			t.Fatalf("a put finished while the leader was stopped: %v", <-errs)
		}
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		for range n {
			if err := <-errs; !errors.Is(err, ErrClosed) {
				t.Fatalf("in-flight put after Close: %v, want ErrClosed", err)
			}
		}
		child.Signal(syscall.SIGCONT)
		if err := child.Stop(cfHang); err != nil {
			t.Fatalf("the leader child failed after its follower closed: %v", err)
		}
	})

	t.Run("right-after-open", func(t *testing.T) {
		ctx := cfCtx(t)
		dir := t.TempDir()
		for range 3 {
			a, err := Open(dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			b, err := Open(dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := b.Close(); err != nil {
				t.Fatalf("close of a follower right after open: %v", err)
			}
			if err := a.Close(); err != nil {
				t.Fatalf("close of a leader right after open: %v", err)
			}
			if err := a.Close(); err != nil {
				t.Fatalf("second close of a leader: %v", err)
			}
			if err := b.Close(); err != nil {
				t.Fatalf("second close of a follower: %v", err)
			}
			if err := a.Put(ctx, []byte("k"), []byte("v")); !errors.Is(err, ErrClosed) {
				t.Fatalf("put on a closed leader: %v, want ErrClosed", err)
			}
			if _, err := b.Get(ctx, []byte("k")); !errors.Is(err, ErrClosed) {
				t.Fatalf("get on a closed follower: %v, want ErrClosed", err)
			}
		}
		// The lock was released: a new handle leads at once.
		c := cfOpen(t, dir, nil)
		if !c.IsLeader() {
			t.Fatal("a new handle does not lead after every handle closed")
		}
	})

	t.Run("concurrent", func(t *testing.T) {
		dir := t.TempDir()
		a := cfOpen(t, dir, nil)
		b := cfOpen(t, dir, nil)
		var wg sync.WaitGroup
		for _, db := range []*DB{a, b, a, b} {
			wg.Go(func() {
				if err := db.Close(); err != nil {
					t.Errorf("concurrent close: %v", err)
				}
			})
		}
		wg.Wait()
	})
}

// 8. NoRetry: operations in flight when the leader dies fail with
// ErrLeaderLost, and the handle stays usable. The leader is a child
// process, stopped (SIGSTOP) before the operations are sent, so it reads
// none of them, then killed (SIGKILL). A follower with the default policy
// sends its own in-flight operations again to the next leader.
func TestConformanceNoRetry(t *testing.T) {
	ctx := cfCtx(t)
	dir := t.TempDir()
	child := cfSpawn(t, "hold", dir)
	if role := child.WaitRole(cfHang); role != "leader" {
		t.Fatalf("child is %s, want leader", role)
	}
	noRetry := cfOpen(t, dir, &Options{NoRetry: true})
	retry := cfOpen(t, dir, nil)
	cfMustPut(t, ctx, noRetry, "before", "v")

	child.Signal(syscall.SIGSTOP)
	cfWaitStopped(t, child.PID())
	const n = 50
	type result struct {
		key []byte
		err error
	}
	put := func(db *DB, prefix string, out chan<- result) uint64 {
		start := cfIssued(db)
		for i := range n {
			go func() {
				k := fmt.Appendf(nil, "%s%02d", prefix, i)
				out <- result{k, db.Put(ctx, k, []byte("v"))}
			}()
		}
		return start
	}
	nr := make(chan result, n)
	rr := make(chan result, n)
	nrStart := put(noRetry, "noretry-", nr)
	rrStart := put(retry, "retry-", rr)
	cfPoll(t, "the puts to be sent", func() bool {
		return cfIssued(noRetry) == nrStart+n && cfIssued(retry) == rrStart+n
	})
	time.Sleep(10 * time.Millisecond) // let the last ones be written to the socket
	if len(nr)+len(rr) > 0 {
		t.Fatal("a put finished while the leader was stopped")
	}
	child.Kill()

	var lost, ok int
	for range n {
		r := <-nr
		switch {
		case r.err == nil:
			ok++ // sent after the connection died: it waited for the next leader
		case errors.Is(r.err, ErrLeaderLost):
			lost++
			// The stopped leader read nothing, so nothing applied it.
			if has, err := retry.Has(ctx, r.key); err != nil || has {
				t.Errorf("%s failed with ErrLeaderLost but is present (%v, %v): it was sent again", r.key, has, err)
			}
		default:
			t.Errorf("in-flight put with NoRetry: %v, want ErrLeaderLost or success", r.err)
		}
	}
	if lost == 0 {
		t.Errorf("no put failed with ErrLeaderLost; %d succeeded", ok)
	}
	t.Logf("NoRetry: %d in-flight puts failed with ErrLeaderLost, %d succeeded", lost, ok)
	for range n {
		if r := <-rr; r.err != nil {
			t.Errorf("in-flight put with retry failed: %v", r.err)
		} else {
			cfMustGet(t, ctx, noRetry, string(r.key), "v")
		}
	}
	// The handle stays usable.
	cfMustPut(t, ctx, noRetry, "after", "w")
	cfMustGet(t, ctx, noRetry, "after", "w")
	cfMustGet(t, ctx, retry, "after", "w")
	cfMustGet(t, ctx, noRetry, "before", "v")
	if cfLeaders([]*DB{noRetry, retry}) != 1 {
		t.Fatal("no handle of this process leads after the leader process died")
	}
}

// 11. Prefixed keys, as sublevels make them, and binary keys and values
// round-trip unchanged through a follower, before and after a reconnect,
// and after the follower becomes leader.
func TestConformanceBinaryKeys(t *testing.T) {
	ctx := cfCtx(t)
	dir := t.TempDir()
	a := cfOpen(t, dir, nil)
	b := cfOpen(t, dir, nil)
	entries := []cfEntry{
		{[]byte("!sub!key"), []byte("value")},
		{[]byte("!sub!"), []byte("empty suffix")},
		{[]byte("!sub!!nested!key"), []byte("nested")},
		{[]byte("!sub!\x00"), []byte{}},
		{[]byte("!sub!\xff"), []byte{0xff, 0x00, 0xff}},
		{[]byte("!sub"), []byte("not in the sublevel")},
		{[]byte("!sua!key"), []byte("sibling before")},
		{[]byte("!suc!key"), []byte("sibling after")},
		{[]byte{}, []byte("empty key")},
		{[]byte{0x00}, []byte{0x00}},
		{[]byte{0x00, 0x00}, []byte{}},
		{[]byte{0x00, 0xff, 0x00}, []byte("mixed")},
		{[]byte("a\x00b"), []byte("a\x00b")},
		{[]byte{0xff}, []byte{0xff}},
		{[]byte{0xff, 0x00}, []byte{0x01}},
		{[]byte{0xff, 0xff}, bytes.Repeat([]byte{0xff}, 1000)},
		{[]byte("\xc3\x28invalid utf-8"), []byte("\xe2\x82")},
	}
	for i, e := range entries {
		if i%2 == 0 {
			if err := b.Put(ctx, e.key, e.value); err != nil {
				t.Fatalf("put %q: %v", e.key, err)
			}
		} else {
			var batch Batch
			batch.Put(e.key, e.value)
			if err := b.Write(ctx, &batch); err != nil {
				t.Fatalf("batch put %q: %v", e.key, err)
			}
		}
	}
	sorted := slices.Clone(entries)
	slices.SortFunc(sorted, func(x, y cfEntry) int { return bytes.Compare(x.key, y.key) })
	inRange := func(r *Range) []cfEntry {
		var out []cfEntry
		for _, e := range sorted {
			if bytes.Compare(e.key, r.Start) >= 0 && (r.Limit == nil || bytes.Compare(e.key, r.Limit) < 0) {
				out = append(out, e)
			}
		}
		return out
	}
	check := func(when string, db *DB) {
		t.Helper()
		for _, e := range entries {
			v, err := db.Get(ctx, e.key)
			if err != nil || !bytes.Equal(v, e.value) {
				t.Fatalf("%s: get %q = %q, %v; want %q", when, e.key, v, err, e.value)
			}
			if ok, err := db.Has(ctx, e.key); err != nil || !ok {
				t.Fatalf("%s: has %q = %v, %v", when, e.key, ok, err)
			}
		}
		for _, r := range []*Range{nil, BytesPrefix([]byte("!sub!")), BytesPrefix([]byte{0xff}), BytesPrefix([]byte{0x00}), BytesPrefix(nil)} {
			want := sorted
			if r != nil {
				want = inRange(r)
			}
			got := cfScan(t, ctx, db, r)
			if !slices.EqualFunc(got, want, func(x, y cfEntry) bool {
				return bytes.Equal(x.key, y.key) && bytes.Equal(x.value, y.value)
			}) {
				t.Fatalf("%s: range %+v gave %q, want %q", when, r, got, want)
			}
		}
		if got := len(cfScan(t, ctx, db, BytesPrefix([]byte("!sub!")))); got != 5 {
			t.Fatalf("%s: %d keys in the sublevel, want 5", when, got)
		}
	}
	check("through the follower", b)
	check("through the leader", a)
	if !b.dropConn() {
		t.Fatal("the follower had no connection to drop")
	}
	check("through the follower after a reconnect", b)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	check("through the former follower, now leader", b)
	if !b.IsLeader() {
		t.Fatal("the follower does not lead after the leader closed")
	}

	// Deletes of binary keys, through a follower again.
	c := cfOpen(t, dir, nil)
	var batch Batch
	batch.Delete([]byte{})
	batch.Delete([]byte{0xff, 0xff})
	if err := c.Write(ctx, &batch); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, []byte{0x00}); err != nil {
		t.Fatal(err)
	}
	for _, k := range [][]byte{{}, {0xff, 0xff}, {0x00}} {
		if _, err := c.Get(ctx, k); !errors.Is(err, ErrNotFound) {
			t.Fatalf("get of deleted %q: %v, want ErrNotFound", k, err)
		}
	}
	if got := len(cfScan(t, ctx, c, nil)); got != len(entries)-3 {
		t.Fatalf("%d keys after deleting 3, want %d", got, len(entries)-3)
	}
	if !strings.HasPrefix(string(cfScan(t, ctx, c, nil)[0].key), "\x00\x00") {
		t.Fatal("the first key is not 0x00 0x00 after deleting the empty key and 0x00")
	}
}
