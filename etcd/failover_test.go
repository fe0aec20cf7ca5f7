package partyetcd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/levelparty/party"
)

// killLeaders kills the etcd leader member, lets the cluster elect
// another, restarts the killed member, and does it again: times kills in
// all, every pause apart, while the test's load runs.
func (c *testCluster) killLeaders(t *testing.T, times int, pause time.Duration) {
	t.Helper()
	for range times {
		time.Sleep(pause)
		l, err := c.Leader()
		must(t, err)
		t.Logf("killing leader member m%d", l)
		c.Kill(l)
		time.Sleep(pause)
		must(t, c.Restart(l))
	}
}

// TestKillLeaderUnderWrites kills the etcd leader member (SIGKILL) twice
// while three goroutines write: every write acknowledged is present
// afterwards; an iterator opened before the kills reads its range whole
// and in order after them; a watcher opened before sees every
// acknowledged write, without a gap.
func TestKillLeaderUnderWrites(t *testing.T) {
	c := newCluster(t, 3)
	db := c.open(t, "kill/", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	const entries = 300
	for i := 0; i < entries; i += 100 {
		var b party.Batch
		for j := i; j < i+100; j++ {
			b.Put(fmt.Appendf(nil, "it/%04d", j), []byte("v"))
		}
		must(t, db.Write(ctx, &b))
	}
	it := db.NewIterator(ctx, party.BytesPrefix([]byte("it/")))
	defer it.Release()
	read := 0
	for read < 20 && it.Next() {
		read++
	}
	w, err := db.Watch(ctx, party.BytesPrefix([]byte("w/")))
	must(t, err)
	defer w.Close()

	stop := make(chan struct{})
	var mu sync.Mutex
	acked := map[string]bool{}
	var wg sync.WaitGroup
	for g := range 3 {
		wg.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				k := fmt.Sprintf("w/%d/%06d", g, n)
				if err := db.Put(ctx, []byte(k), []byte(k)); err != nil {
					t.Errorf("Put %s: %v", k, err)
					return
				}
				mu.Lock()
				acked[k] = true
				mu.Unlock()
			}
		})
	}
	c.killLeaders(t, 2, time.Second)
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()
	t.Logf("%d writes acknowledged", len(acked))

	for k := range acked {
		if v, err := db.Get(ctx, []byte(k)); err != nil || string(v) != k {
			t.Fatalf("acknowledged write %s: %q, %v", k, v, err)
		}
	}
	for it.Next() {
		if want := fmt.Sprintf("it/%04d", read); string(it.Key()) != want {
			t.Fatalf("iterator after the kills: %q, want %q", it.Key(), want)
		}
		read++
	}
	if err := it.Error(); err != nil || read != entries {
		t.Fatalf("iterator read %d of %d entries: %v", read, entries, err)
	}
	seen := map[string]bool{}
	for len(seen) < len(acked) {
		cs, err := w.Next(ctx)
		if errors.Is(err, party.ErrWatchGap) {
			t.Fatal("the watcher reported a gap: etcd's revisions were not compacted")
		}
		must(t, err)
		for _, c := range cs {
			seen[string(c.Key)] = true
		}
	}
	for k := range acked {
		if !seen[k] {
			t.Fatalf("the watcher missed %s", k)
		}
	}
}

// TestTxCounterKillLeader is the counter test of transactions on etcd:
// four goroutines on two handles run Update increments of one counter
// while the etcd leader member is killed (3 times; PARTYETCD_KILLS=N for
// more); the counter ends equal to the number of Updates that returned
// nil, and every Update did. Each kill leaves a commit or two whose answer
// is lost, which the handle settles; with "not applied" assumed instead,
// the counter ends ahead (seen: 305 after 304).
func TestTxCounterKillLeader(t *testing.T) {
	c := newCluster(t, 3)
	dbs := []*party.DB{c.open(t, "counter/", nil), c.open(t, "counter/", nil)}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	const workers = 4
	stop := make(chan struct{})
	var mu sync.Mutex
	done := 0
	var wg sync.WaitGroup
	for g := range workers {
		db := dbs[g%len(dbs)]
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				err := db.Update(ctx, func(tx *party.Transaction) error {
					n := 0
					v, err := tx.Get(ctx, []byte("n"))
					if err == nil {
						fmt.Sscan(string(v), &n)
					} else if !errors.Is(err, party.ErrNotFound) {
						return err
					}
					return tx.Put(ctx, []byte("n"), []byte(fmt.Sprint(n+1)))
				})
				if err != nil {
					t.Errorf("Update: %v", err)
					return
				}
				mu.Lock()
				done++
				mu.Unlock()
			}
		})
	}
	kills := 3
	if n, err := strconv.Atoi(os.Getenv("PARTYETCD_KILLS")); err == nil {
		kills = n
	}
	c.killLeaders(t, kills, time.Second)
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()
	v, err := dbs[0].Get(ctx, []byte("n"))
	must(t, err)
	t.Logf("%d Updates", done)
	if string(v) != fmt.Sprint(done) {
		t.Fatalf("counter = %s after %d Updates that returned nil", v, done)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
