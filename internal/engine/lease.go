package engine

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"time"

	"github.com/levelparty/party/backend"
	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/util"
)

// A lease is the database's one transaction: while it is held, no other
// write applies, so the holder reads a state nobody else changes, and its
// commit applies its writes as one batch together with a commit record.
// Plain writes run together, as goleveldb lets them; the gate makes them
// wait while a lease is held or wanted, so that a stream of writes never
// starves a transaction.

// gate orders plain writes and leases.
type gate struct {
	mu      sync.Mutex
	writers int           // plain writes applying now
	lease   *Lease        // the lease held, if any
	wanted  int           // leases waiting for the gate
	closed  bool          // the engine is closing
	changed chan struct{} // closed and replaced when any of the above changes
}

func (g *gate) init() { g.changed = make(chan struct{}) }

// broadcast wakes every waiter; g.mu is held.
func (g *gate) broadcast() {
	close(g.changed)
	g.changed = make(chan struct{})
}

// enter waits until a plain write may apply, or ctx ends.
func (e *Engine) enter(ctx context.Context) error {
	g := &e.gate
	for {
		g.mu.Lock()
		if g.closed {
			g.mu.Unlock()
			return backend.ErrClosed
		}
		if g.lease == nil && g.wanted == 0 {
			g.writers++
			g.mu.Unlock()
			return nil
		}
		ch := g.changed
		g.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// TryEnter lets a plain write apply now if no lease is held or wanted; the
// caller must call Leave after it. It never waits.
func (e *Engine) TryEnter() bool {
	g := &e.gate
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed || g.lease != nil || g.wanted > 0 {
		return false
	}
	g.writers++
	return true
}

// Enter waits until a plain write may apply; the caller must call Leave
// after it.
func (e *Engine) Enter(ctx context.Context) error { return e.enter(ctx) }

// Leave ends a plain write let in by Enter or TryEnter.
func (e *Engine) Leave() {
	g := &e.gate
	g.mu.Lock()
	g.writers--
	if g.writers == 0 && g.wanted > 0 {
		g.broadcast()
	}
	g.mu.Unlock()
}

// closeGate ends the lease held, if any, and makes every later write and
// lease fail with ErrClosed.
func (e *Engine) closeGate() {
	g := &e.gate
	g.mu.Lock()
	l := g.lease
	g.closed = true
	g.broadcast()
	g.mu.Unlock()
	if l != nil {
		l.Release(fmt.Errorf("%w: the leader closed", backend.ErrTxAborted))
	}
}

// Holder names the participant that holds a lease, so that it can later
// ask whether its commit was applied.
type Holder [16]byte

// Lease is the transaction lease held by one participant.
type Lease struct {
	e      *Engine
	holder Holder
	timer  *time.Timer

	mu    sync.Mutex
	state leaseState
	why   error // why the lease ended without a commit
}

type leaseState uint8

const (
	leaseOpen leaseState = iota
	leaseCommitting
	leaseEnded
)

// Lock waits for the lease, or for ctx to end. The lease ends by itself
// after timeout, with nothing applied.
func (e *Engine) Lock(ctx context.Context, holder Holder, timeout time.Duration) (*Lease, error) {
	g := &e.gate
	g.mu.Lock()
	g.wanted++
	for g.closed || g.lease != nil || g.writers > 0 {
		if g.closed {
			g.wanted--
			g.broadcast()
			g.mu.Unlock()
			return nil, backend.ErrClosed
		}
		ch := g.changed
		g.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			g.mu.Lock()
			g.wanted--
			g.broadcast() // writers held back for this lease may go
			g.mu.Unlock()
			return nil, ctx.Err()
		}
		g.mu.Lock()
	}
	g.wanted--
	l := &Lease{e: e, holder: holder}
	l.mu.Lock() // until the timer is set
	g.lease = l
	g.mu.Unlock()
	l.timer = time.AfterFunc(timeout, func() {
		l.Release(fmt.Errorf("%w: open longer than its timeout of %v", backend.ErrTxAborted, timeout))
	})
	l.mu.Unlock()
	return l, nil
}

// Err returns why the lease can no longer commit, nil while it can.
func (l *Lease) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch l.state {
	case leaseOpen:
		return nil
	case leaseCommitting:
		return fmt.Errorf("%w: already committing", backend.ErrTxAborted)
	}
	return l.why
}

// Release ends the lease without applying anything, unless it has ended
// already or is committing; why is what later calls report.
func (l *Lease) Release(why error) {
	l.mu.Lock()
	if l.state != leaseOpen {
		l.mu.Unlock()
		return
	}
	l.state, l.why = leaseEnded, why
	l.mu.Unlock()
	l.end()
}

// end gives the gate back; l.state is leaseEnded.
func (l *Lease) end() {
	l.timer.Stop() // set before anyone could end the lease
	g := &l.e.gate
	g.mu.Lock()
	if g.lease == l {
		g.lease = nil
		g.broadcast()
	}
	g.mu.Unlock()
}

// Commit applies records (see backend.ForEachRecord) atomically, with
// the holder's commit record for seq, and ends the lease. The same batch
// deletes the holder's records of the commits in done, whose outcome the
// holder knows. It fails with the reason the lease ended if it has. Its
// outcome is definite: nil means applied, an error not applied.
func (l *Lease) Commit(records []byte, seq uint64, done []uint64, sync bool) error {
	l.mu.Lock()
	if l.state != leaseOpen {
		why := l.why
		if l.state == leaseCommitting {
			why = fmt.Errorf("%w: already committing", backend.ErrTxAborted)
		}
		l.mu.Unlock()
		return why
	}
	l.state = leaseCommitting
	l.mu.Unlock()

	var b leveldb.Batch
	backend.ForEachRecord(records, func(put bool, k, v []byte) {
		if put {
			b.Put(k, v)
		} else {
			b.Delete(k)
		}
	})
	for _, d := range done {
		b.Delete(recordKey(l.holder, d))
	}
	b.Put(recordKey(l.holder, seq), recordValue(time.Now()))
	err := l.e.commit(&b, writeOptions(sync), nil)

	l.mu.Lock()
	l.state = leaseEnded
	l.why = fmt.Errorf("%w: committed", backend.ErrTxAborted)
	if err != nil {
		l.why = fmt.Errorf("%w: commit failed: %w", backend.ErrTxAborted, err)
	}
	l.mu.Unlock()
	l.end()
	if err == nil {
		l.e.trimRecordsSometimes()
	}
	return err
}

// Commit records: a key per commit whose outcome its holder may not know,
// under backend.HiddenPrefix, which party's reads never show: the holder's
// id and the commit's number, holding when it was made. A holder's later
// commit deletes the records of the commits it has learnt the outcome of,
// so a live holder keeps about one record; a crashed one leaves its last
// records until they are trimmed.
var recordPrefix = backend.HiddenPrefix()

// recordAge is how long a holder's commit record is kept after its last
// commit: a holder that lost its leader in the middle of a commit asks the
// next leader within this time, or it has died.
const recordAge = 24 * time.Hour

// trimEvery is how many commits pass between two trims of old records.
const trimEvery = 256

// Hidden reports whether key lies under backend.HiddenPrefix.
func Hidden(key []byte) bool { return backend.Hidden(key) }

func recordKey(h Holder, seq uint64) []byte {
	k := append(bytes.Clone(recordPrefix), h[:]...)
	return binary.BigEndian.AppendUint64(k, seq)
}

func recordValue(at time.Time) []byte {
	return binary.BigEndian.AppendUint64(nil, uint64(at.UnixNano()))
}

// Resolve reports whether the commit numbered seq of holder was applied.
// It first waits until holder holds no lease (a commit may be under way
// on a connection the holder has already lost), or for ctx to end.
func (e *Engine) Resolve(ctx context.Context, holder Holder, seq uint64) (bool, error) {
	g := &e.gate
	for {
		g.mu.Lock()
		if g.closed {
			g.mu.Unlock()
			return false, backend.ErrClosed
		}
		if g.lease == nil || g.lease.holder != holder {
			g.mu.Unlock()
			break
		}
		ch := g.changed
		g.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}
	ok, err := e.db.Has(recordKey(holder, seq), nil)
	return ok, wrap(err)
}

// trimRecordsSometimes trims old records every trimEvery commits.
func (e *Engine) trimRecordsSometimes() {
	if e.commits.Add(1)%trimEvery == 0 {
		e.TrimRecords(time.Now().Add(-recordAge))
	}
}

// TrimOldRecords deletes the commit records older than their keeping
// time: a new leader calls it once.
func (e *Engine) TrimOldRecords() { e.TrimRecords(time.Now().Add(-recordAge)) }

// TrimRecords deletes the commit records last written before t. A failure
// leaves them for the next trim.
func (e *Engine) TrimRecords(t time.Time) {
	it := e.db.NewIterator(util.BytesPrefix(recordPrefix), nil)
	defer it.Release()
	var b leveldb.Batch
	for it.Next() {
		if v := it.Value(); len(v) == 8 && int64(binary.BigEndian.Uint64(v)) < t.UnixNano() {
			b.Delete(it.Key())
		}
	}
	if b.Len() > 0 && it.Error() == nil {
		e.db.Write(&b, nil)
	}
}
