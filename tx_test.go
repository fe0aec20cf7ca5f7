package party

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/util"
)

// txWrite is a random write of a transaction test, applied to party's
// transaction and goleveldb's alike.
type txWrite struct {
	del   bool
	batch bool // through Write, with a second key
	k, v  []byte
	k2    []byte
}

func txRandWrite(r *rand.Rand, data []itxKV) txWrite {
	w := txWrite{del: r.IntN(3) == 0, batch: r.IntN(5) == 0, v: itxRandBytes(r, 6)}
	key := func() []byte {
		if r.IntN(2) == 0 {
			return clone(data[r.IntN(len(data))].k)
		}
		return itxRandBytes(r, 4)
	}
	w.k, w.k2 = key(), key()
	return w
}

func (w txWrite) String() string {
	op := "put"
	if w.del {
		op = "delete"
	}
	if w.batch {
		return fmt.Sprintf("write(%s %s, put %s)", op, itxQ(w.k), itxQ(w.k2))
	}
	return fmt.Sprintf("%s %s", op, itxQ(w.k))
}

func (w txWrite) apply(t *testing.T, ctx context.Context, tx *Transaction, ref *leveldb.Transaction) {
	t.Helper()
	if w.batch {
		var b Batch
		var rb leveldb.Batch
		if w.del {
			b.Delete(w.k)
			rb.Delete(w.k)
		} else {
			b.Put(w.k, w.v)
			rb.Put(w.k, w.v)
		}
		b.Put(w.k2, w.v)
		rb.Put(w.k2, w.v)
		if err := tx.Write(ctx, &b); err != nil {
			t.Fatalf("%v: %v", w, err)
		}
		if err := ref.Write(&rb, nil); err != nil {
			t.Fatal(err)
		}
		return
	}
	var err error
	if w.del {
		err = tx.Delete(ctx, w.k)
		ref.Delete(w.k, nil)
	} else {
		err = tx.Put(ctx, w.k, w.v)
		ref.Put(w.k, w.v, nil)
	}
	if err != nil {
		t.Fatalf("%v: %v", w, err)
	}
}

// TestTxMatchesGoleveldb is the differential test of transactions: on the
// leader's own handle and on a follower, a transaction's reads and
// iterators, with its own uncommitted writes, return exactly what
// goleveldb's Transaction returns for the same writes on the same data,
// including writes made between the moves of an open iterator (which it
// must not see). Commit and Discard leave the database as goleveldb's.
func TestTxMatchesGoleveldb(t *testing.T) {
	for _, seed := range itxSeeds(t, 1, 2) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			r := itxRand(seed)
			data := itxData(r, 100)
			ref := itxRef(t, data)
			c := itxNewCluster(t, data)
			f := itxOpen(t, c.dir, true)
			ctx := itxCtx(t)
			rounds := 12
			if itxLong() {
				rounds = 60
			}
			for round := range rounds {
				for _, h := range []*DB{c.leader, f} {
					who := map[bool]string{true: "leader", false: "follower"}[h == c.leader]
					refTx, err := ref.OpenTransaction()
					if err != nil {
						t.Fatal(err)
					}
					tx, err := h.OpenTransaction(ctx)
					if err != nil {
						t.Fatal(err)
					}
					var h2 itxHistory
					for range r.IntN(25) {
						w := txRandWrite(r, data)
						h2.Add(w.String())
						w.apply(t, ctx, tx, refTx)
					}
					for range 30 {
						k := itxBound(r, data)
						if k == nil {
							k = []byte{}
						}
						want, werr := refTx.Get(k, nil)
						got, gerr := tx.Get(ctx, k)
						if (werr == nil) != (gerr == nil) || !bytes.Equal(want, got) || (gerr != nil && !errors.Is(gerr, ErrNotFound)) {
							t.Fatalf("round %d %s: Get(%s) = %s, %v; goleveldb %s, %v; writes:%v", round, who, itxQ(k), itxQ(got), gerr, itxQ(want), werr, h2)
						}
						wantHas, _ := refTx.Has(k, nil)
						if gotHas, err := tx.Has(ctx, k); err != nil || gotHas != wantHas {
							t.Fatalf("round %d %s: Has(%s) = %v, %v; goleveldb %v", round, who, itxQ(k), gotHas, err, wantHas)
						}
					}
					for i := range 3 {
						rng := itxRandRange(r, data)
						if i == 0 {
							rng = itxAll
						}
						newIt := func(rg *Range) *Iterator { return tx.NewIterator(ctx, rg) }
						itxCompare(t, r, data, refTx, rng, 60, newIt, func(step int) {
							if step > 0 && r.IntN(6) == 0 {
								txRandWrite(r, data).apply(t, ctx, tx, refTx)
							}
						})
					}
					if r.IntN(3) == 0 {
						tx.Discard()
						refTx.Discard()
					} else {
						if err := tx.Commit(ctx); err != nil {
							t.Fatalf("round %d %s: commit: %v", round, who, err)
						}
						if err := refTx.Commit(); err != nil {
							t.Fatal(err)
						}
					}
					if _, err := tx.Get(ctx, []byte("a")); !errors.Is(err, ErrTxAborted) {
						t.Fatalf("Get after the end of the transaction: %v, want ErrTxAborted", err)
					}
					// Both databases hold the same entries, and no record
					// of party's shows.
					itxCompare(t, r, data, ref, itxAll, 40, func(rg *Range) *Iterator { return h.NewIterator(ctx, rg) }, func(int) {})
				}
			}
		})
	}
}

// txOpen opens a handle on dir with o, closed when the test ends.
func txOpen(t *testing.T, dir string, o *Options, followOnly bool) *DB {
	t.Helper()
	var db *DB
	var err error
	if followOnly {
		db, err = openFollowerOnly(dir, o)
	} else {
		db, err = Open(dir, o)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// txAsync runs f in a goroutine and returns a channel of its error.
func txAsync(f func() error) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- f() }()
	return ch
}

// txBlocked fails the test if ch delivers within d: what it waits for must
// still be blocked.
func txBlocked(t *testing.T, what string, ch <-chan error, d time.Duration) {
	t.Helper()
	select {
	case err := <-ch:
		t.Fatalf("%s returned (%v) while a transaction was open", what, err)
	case <-time.After(d):
	}
}

// txDone waits for ch and returns its error.
func txDone(t *testing.T, what string, ch <-chan error) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(itxWait):
		t.Fatalf("%s still blocked %v after the transaction ended", what, itxWait)
		return nil
	}
}

// TestTxIsolation checks, for a transaction held by a follower and one
// held by the leader's handle: writes of every other handle (Put, Delete,
// Write, DeleteRange, another transaction) wait until it ends, including
// the holder's own plain writes; reads outside it see the last committed
// state and do not wait; the transaction reads its own writes; Commit
// applies them and releases the writers, whose writes then apply on top.
func TestTxIsolation(t *testing.T) {
	dir := t.TempDir()
	l := txOpen(t, dir, nil, false)
	f := txOpen(t, dir, nil, true)
	g := txOpen(t, dir, nil, true)
	ctx := itxCtx(t)
	for _, holder := range []*DB{f, l} {
		others := []*DB{l, g}
		if holder == l {
			others = []*DB{f, g}
		}
		for _, k := range []string{"x", "zz0", "zz1"} {
			if err := l.Put(ctx, []byte(k), []byte("0")); err != nil {
				t.Fatal(err)
			}
		}
		tx, err := holder.OpenTransaction(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := tx.Put(ctx, []byte("x"), []byte("tx")); err != nil {
			t.Fatal(err)
		}
		var waiting []<-chan error
		var names []string
		for i, o := range others {
			o := o
			k := []byte(fmt.Sprintf("o%d", i))
			names = append(names, fmt.Sprintf("other %d: Put", i), fmt.Sprintf("other %d: Write", i),
				fmt.Sprintf("other %d: Delete", i), fmt.Sprintf("other %d: DeleteRange", i), fmt.Sprintf("other %d: Update", i))
			waiting = append(waiting,
				txAsync(func() error { return o.Put(ctx, []byte("x"), []byte("other")) }),
				txAsync(func() error { var b Batch; b.Put(k, []byte("w")); return o.Write(ctx, &b) }),
				txAsync(func() error { return o.Delete(ctx, []byte("gone")) }),
				txAsync(func() error { return o.DeleteRange(ctx, &Range{Start: []byte(fmt.Sprint("zz", i))}) }),
				txAsync(func() error {
					return o.Update(ctx, func(tx *Transaction) error { return tx.Put(ctx, []byte("u"), []byte("u")) })
				}))
		}
		names = append(names, "the holder's own Put")
		waiting = append(waiting, txAsync(func() error { return holder.Put(ctx, []byte("own"), []byte("own")) }))
		for i, ch := range waiting {
			txBlocked(t, names[i], ch, 10*time.Millisecond)
		}
		time.Sleep(100 * time.Millisecond)
		// Reads outside see the committed state and do not wait; the
		// transaction sees its write.
		for _, o := range append(others, holder) {
			rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			v, err := o.Get(rctx, []byte("x"))
			cancel()
			if err != nil || string(v) != "0" {
				t.Fatalf("read outside the transaction: %q, %v; want \"0\"", v, err)
			}
		}
		if v, err := tx.Get(ctx, []byte("x")); err != nil || string(v) != "tx" {
			t.Fatalf("transaction reads %q, %v; want its own write", v, err)
		}
		for i, ch := range waiting {
			txBlocked(t, names[i], ch, 0)
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		for i, ch := range waiting {
			if err := txDone(t, names[i], ch); err != nil {
				t.Fatalf("%s: %v", names[i], err)
			}
		}
		// The other writes applied after the commit.
		if v, err := g.Get(ctx, []byte("x")); err != nil || string(v) != "other" {
			t.Fatalf("after commit: x = %q, %v; want the waiting Put's value", v, err)
		}
	}
}

// TestTxHolderConnectionDrops checks that a transaction whose holder's
// connection drops is aborted at once: the writer it blocked goes on, the
// holder's calls fail with ErrTxAborted and ErrLeaderLost, and nothing it
// wrote applies.
func TestTxHolderConnectionDrops(t *testing.T) {
	dir := t.TempDir()
	l := txOpen(t, dir, nil, false)
	f := txOpen(t, dir, nil, true)
	ctx := itxCtx(t)
	tx, err := f.OpenTransaction(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Put(ctx, []byte("k"), []byte("tx")); err != nil {
		t.Fatal(err)
	}
	put := txAsync(func() error { return l.Put(ctx, []byte("w"), []byte("w")) })
	txBlocked(t, "leader's Put", put, 50*time.Millisecond)
	if !f.dropConn() {
		t.Fatal("no connection to drop")
	}
	if err := txDone(t, "leader's Put", put); err != nil {
		t.Fatal(err)
	}
	err = tx.Commit(ctx)
	if !errors.Is(err, ErrTxAborted) || !errors.Is(err, ErrLeaderLost) {
		t.Fatalf("commit after the connection dropped: %v, want ErrTxAborted and ErrLeaderLost", err)
	}
	if _, err := l.Get(ctx, []byte("k")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the aborted transaction's write: %v, want ErrNotFound", err)
	}
}

// TestTxTimeout checks that a transaction open longer than TxTimeout is
// aborted by the leader: the writer it blocked goes on, and its Commit
// fails with ErrTxAborted, nothing applied.
func TestTxTimeout(t *testing.T) {
	dir := t.TempDir()
	l := txOpen(t, dir, nil, false)
	f := txOpen(t, dir, &Options{TxTimeout: 200 * time.Millisecond}, true)
	ctx := itxCtx(t)
	for _, h := range []*DB{f} {
		tx, err := h.OpenTransaction(ctx)
		if err != nil {
			t.Fatal(err)
		}
		tx.Put(ctx, []byte("k"), []byte("tx"))
		start := time.Now()
		if err := l.Put(ctx, []byte("w"), []byte("w")); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d < 150*time.Millisecond {
			t.Fatalf("the writer waited %v, less than the transaction's timeout", d)
		}
		if err := tx.Commit(ctx); !errors.Is(err, ErrTxAborted) {
			t.Fatalf("commit after the timeout: %v, want ErrTxAborted", err)
		}
		if _, err := l.Get(ctx, []byte("k")); !errors.Is(err, ErrNotFound) {
			t.Fatalf("the timed-out transaction's write: %v, want ErrNotFound", err)
		}
	}
}

// TestTxHiddenRecords checks that commit records never show in party's
// reads, that writes of such keys are refused, and what a plain goleveldb
// reader of the directory sees: one record per handle that committed.
func TestTxHiddenRecords(t *testing.T) {
	dir := t.TempDir()
	l := txOpen(t, dir, nil, false)
	f := txOpen(t, dir, nil, true)
	ctx := itxCtx(t)
	for i, h := range []*DB{l, f, f} {
		if err := h.Update(ctx, func(tx *Transaction) error {
			return tx.Put(ctx, []byte(fmt.Sprint("k", i)), []byte("v"))
		}); err != nil {
			t.Fatal(err)
		}
	}
	hidden := []byte("\xff\xffparty\x00tx\x00")
	for _, h := range []*DB{l, f} {
		it := h.NewIterator(ctx, nil)
		var keys []string
		for it.Next() {
			keys = append(keys, string(it.Key()))
		}
		it.Release()
		if fmt.Sprint(keys) != "[k0 k1 k2]" {
			t.Fatalf("iteration shows %q, want the three keys", keys)
		}
		it = h.NewIterator(ctx, &Range{Start: hidden})
		if it.Last() || it.Error() != nil {
			t.Fatalf("a range over the records shows %q, %v", it.Key(), it.Error())
		}
		it.Release()
		if err := h.Put(ctx, append(clone(hidden), 'x'), nil); !errors.Is(err, ErrHiddenKey) {
			t.Fatalf("Put of a hidden key: %v, want ErrHiddenKey", err)
		}
		var b Batch
		b.Put([]byte("fine"), nil)
		b.Delete(append(clone(hidden), 'y'))
		if err := h.Write(ctx, &b); !errors.Is(err, ErrHiddenKey) {
			t.Fatalf("Write of a hidden key: %v, want ErrHiddenKey", err)
		}
	}
	if err := f.DeleteRange(ctx, nil); err != nil {
		t.Fatal(err)
	}
	f.Close()
	l.Close()
	ref, err := leveldb.OpenFile(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	it := ref.NewIterator(util.BytesPrefix(hidden), nil)
	n := 0
	for it.Next() {
		n++
	}
	it.Release()
	if n != 2 {
		t.Fatalf("a plain goleveldb reader sees %d commit records, want 2 (one per handle that committed); DeleteRange must keep them", n)
	}
}

// TestTxUpdateDropConnCounter increments one counter with Update from
// goroutines of a follower while its connection is dropped every few
// milliseconds: commits are lost in flight, and resolved by asking the
// leader. The final value equals the number of Updates that returned nil,
// exactly: none applied twice, none lost.
func TestTxUpdateDropConnCounter(t *testing.T) {
	dir := t.TempDir()
	l := txOpen(t, dir, nil, false)
	f := txOpen(t, dir, nil, true)
	ctx := itxCtx(t)
	key := []byte("counter")
	var ok, failed atomic.Int64
	stop := make(chan struct{})
	var dropper sync.WaitGroup
	dropper.Add(1)
	go func() {
		defer dropper.Done()
		r := rand.New(rand.NewPCG(1, 2))
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Duration(500+r.IntN(2500)) * time.Microsecond):
				f.dropConn()
			}
		}
	}()
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 150 {
				err := f.Update(ctx, func(tx *Transaction) error {
					v, err := tx.Get(ctx, key)
					if err != nil && !errors.Is(err, ErrNotFound) {
						return err
					}
					n := 0
					if err == nil {
						fmt.Sscan(string(v), &n)
					}
					return tx.Put(ctx, key, []byte(fmt.Sprint(n+1)))
				})
				if err != nil {
					failed.Add(1)
					t.Errorf("Update: %v", err)
					return
				}
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	close(stop)
	dropper.Wait()
	v, err := l.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if string(v) != fmt.Sprint(ok.Load()) {
		t.Fatalf("counter = %s after %d successful Updates (%d failed)", v, ok.Load(), failed.Load())
	}
	t.Logf("%d increments with the connection dropped under them", ok.Load())
}
