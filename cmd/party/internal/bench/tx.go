package bench

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/levelparty/party"
	"github.com/syndtr/goleveldb/leveldb"
)

// TxUpdateC4 is the transactions figure: 4 follower processes, each
// running Update increments of one shared counter one after another.
// Direct is the best one process can do: 4 goroutines incrementing the
// same counter with a Get and a Put under a mutex.
const (
	TxUpdateC4 = "tx_update_c4"
	txProcs    = 4
)

// txCounter is the key every increment reads and writes.
var txCounter = []byte("bench-tx-counter")

// increment reads the counter with get and writes it back plus one.
func increment(get func([]byte) ([]byte, error), put func(k, v []byte) error) error {
	v, err := get(txCounter)
	n := 0
	switch {
	case err == nil:
		if n, err = strconv.Atoi(string(v)); err != nil {
			return fmt.Errorf("bench: counter %q: %w", v, err)
		}
	case !errors.Is(err, party.ErrNotFound) && !errors.Is(err, leveldb.ErrNotFound):
		return err
	}
	return put(txCounter, []byte(strconv.Itoa(n+1)))
}

// txOp is one Update increment on db.
func txOp(ctx context.Context, db *party.DB) op {
	return func(int, []byte) error {
		return db.Update(ctx, func(tx *party.Transaction) error {
			return increment(
				func(k []byte) ([]byte, error) { return tx.Get(ctx, k) },
				func(k, v []byte) error { return tx.Put(ctx, k, v) })
		})
	}
}

// txFigure measures TxUpdateC4 with txProcs load children following the
// leader of partyDir, and checks that the counter counted every increment.
func (r *runner) txFigure(partyDir string, db *party.DB, direct *leveldb.DB) (Figure, error) {
	n := max(50, r.sz.seqOps/20) // increments per process and repetition
	var loads []*proc
	defer func() {
		for _, p := range loads {
			p.stop()
		}
	}()
	for range txProcs {
		p, err := r.spawn(roleLoadFollower, partyDir)
		if err != nil {
			return Figure{}, err
		}
		loads = append(loads, p)
	}
	count := func(get func([]byte) ([]byte, error)) (int, error) {
		v, err := get(txCounter)
		if errors.Is(err, party.ErrNotFound) || errors.Is(err, leveldb.ErrNotFound) {
			return 0, nil
		}
		if err != nil {
			return 0, err
		}
		return strconv.Atoi(string(v))
	}
	partyGet := func(k []byte) ([]byte, error) { return db.Get(r.ctx, k) }
	directGet := func(k []byte) ([]byte, error) { return direct.Get(k, nil) }
	party := func(rep int) (sample, error) {
		before, err := count(partyGet)
		if err != nil {
			return sample{}, err
		}
		start := time.Now()
		for _, p := range loads {
			if err := p.send(fmt.Sprintf("run tx %d 0 0", n)); err != nil {
				return sample{}, err
			}
		}
		s := sample{n: n * txProcs}
		for _, p := range loads {
			line, err := p.expect(r.ctx, 2*time.Minute, "done ")
			if err != nil {
				return sample{}, err
			}
			for _, v := range strings.Fields(line)[2:] {
				ns, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					return sample{}, fmt.Errorf("bench: %s: %q", p, line)
				}
				s.lat = append(s.lat, time.Duration(ns))
			}
		}
		s.elapsed = time.Since(start)
		after, err := count(partyGet)
		if err != nil {
			return sample{}, err
		}
		if after-before != n*txProcs {
			return sample{}, fmt.Errorf("bench: %s: the counter moved by %d for %d increments", TxUpdateC4, after-before, n*txProcs)
		}
		return s, nil
	}
	var mu sync.Mutex
	directOp := func(int, []byte) error {
		mu.Lock()
		defer mu.Unlock()
		return increment(directGet, func(k, v []byte) error { return direct.Put(k, v, nil) })
	}
	directSide := func(rep int) (sample, error) { return concurrent(r.ctx, n*txProcs, txProcs, directOp) }
	f, err := r.throughputFigure(TxUpdateC4, n*txProcs, "follower", nil, party, directSide)
	if err != nil {
		return f, err
	}
	f.Note = fmt.Sprintf("%d follower processes, one Update at a time each, on one counter; direct: %d goroutines, Get and Put under a mutex", txProcs, txProcs)
	return f, nil
}
