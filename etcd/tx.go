package partyetcd

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/levelparty/party/backend"
)

// Optimistic transactions. A transaction reads at the revision it began
// at and records what it read: each key with its mod revision, each range
// its iterators covered. Commit is one etcd transaction whose comparisons
// check that none of it changed: each key's mod revision is the one read,
// no key in a range was modified after the revision, and, when it
// iterated, that no delete was made through party since (etcd's range
// comparisons do not see deleted keys, so deletes move a clock key).
//
// A commit is applied exactly once. It writes a record, a key of party's
// named by this handle and the commit's number, and requires the record
// to be absent. When the answer to a commit is lost, the handle writes the
// record itself if it is still absent (a fence): if that succeeds, the
// commit can never apply; if the record is there, the commit applied.
// Records of commits the handle knows applied are deleted by its next
// commits, and at Close; fenced records stay (deleted, the lost commit,
// were it still on its way, could apply after all).

// maxDone bounds the records one commit deletes.
const maxDone = 32

// Record values: a commit writes the first, a fence the second.
const (
	recordApplied = ""
	recordFenced  = "fenced"
)

// Lock implements backend.Backend: an optimistic transaction, which holds
// nothing. Its revision is that of its first read.
func (s *store) Lock(ctx context.Context, timeout time.Duration) (backend.Lease, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	return &txLease{s: s, deadline: time.Now().Add(timeout), reads: map[string]int64{}}, nil
}

type txLease struct {
	s        *store
	deadline time.Time

	mu    sync.Mutex
	rev   int64            // the revision it reads at; 0 before its first read
	reads map[string]int64 // stored key → mod revision read (0: absent)
	spans []span           // ranges iterated
	ended error
}

// Err implements backend.Lease.
func (l *txLease) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ended == nil && time.Now().After(l.deadline) {
		l.ended = fmt.Errorf("%w: open longer than its TxTimeout", backend.ErrTxAborted)
	}
	return l.ended
}

// revision returns the revision to read at (0 before the first read).
func (l *txLease) revision() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.rev
}

// read records a read of key at revision at, which becomes the
// transaction's revision if it had none.
func (l *txLease) read(key string, modRev, at int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.rev == 0 {
		l.rev = at
	}
	l.reads[key] = modRev
}

// txCompacted is the error of a transaction's read whose revision etcd
// compacted: a conflict, which Update retries.
func txCompacted(err error) error {
	return fmt.Errorf("%w: %w: %w", backend.ErrTxAborted, backend.ErrTxConflict, err)
}

// get reads key at the transaction's revision and records the read.
func (l *txLease) get(ctx context.Context, key []byte, keyOnly bool) ([]byte, int64, error) {
	v, modRev, at, err := l.s.getAt(ctx, key, l.revision(), keyOnly)
	if errors.Is(err, backend.ErrSnapshotLost) {
		return nil, 0, txCompacted(err)
	}
	if (err == nil || errors.Is(err, backend.ErrNotFound)) && !backend.Hidden(key) {
		l.read(l.s.key(key), modRev, at)
	}
	return v, modRev, err
}

// Get implements backend.Reader, at the transaction's revision.
func (l *txLease) Get(ctx context.Context, key []byte) ([]byte, error) {
	v, _, err := l.get(ctx, key, false)
	return v, err
}

// Has implements backend.Reader, at the transaction's revision.
func (l *txLease) Has(ctx context.Context, key []byte) (bool, error) {
	_, modRev, err := l.get(ctx, key, true)
	if errors.Is(err, backend.ErrNotFound) {
		return false, nil
	}
	return modRev != 0, err
}

// NewCursor implements backend.Reader, at the transaction's revision.
func (l *txLease) NewCursor(ctx context.Context, r backend.Range) (backend.Cursor, error) {
	var c *cursor
	if rev := l.revision(); rev != 0 {
		c = l.s.cursorAt(r, rev, nil)
	} else {
		bc, err := l.s.NewCursor(ctx, r)
		if err != nil {
			return nil, err
		}
		c = bc.(*cursor)
		l.mu.Lock()
		if l.rev == 0 {
			l.rev = c.rev
		} else {
			c.rev, c.pre = l.rev, nil // another read set it meanwhile
		}
		l.mu.Unlock()
	}
	c.inTx = true
	l.mu.Lock()
	l.spans = append(l.spans, l.s.visible(l.s.span(r))...)
	l.mu.Unlock()
	return c, nil
}

// Release implements backend.Lease.
func (l *txLease) Release() {
	l.mu.Lock()
	if l.ended == nil {
		l.ended = fmt.Errorf("%w: discarded", backend.ErrTxAborted)
	}
	l.mu.Unlock()
}

// Commit implements backend.Lease.
func (l *txLease) Commit(ctx context.Context, b *backend.Batch) error {
	if err := l.Err(); err != nil {
		return err
	}
	l.mu.Lock()
	l.ended = fmt.Errorf("%w: committed", backend.ErrTxAborted)
	reads, spans, rev := l.reads, l.spans, l.rev
	l.mu.Unlock()
	s := l.s
	if err := s.check(); err != nil {
		return fmt.Errorf("%w: %w", backend.ErrTxAborted, err)
	}
	ops, _, err := s.ops(b)
	if err != nil {
		return fmt.Errorf("%w: %w", backend.ErrTxAborted, err)
	}
	var cmps []clientv3.Cmp
	for k, modRev := range reads {
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(k), "=", modRev))
	}
	for _, sp := range spans {
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(sp.start), "<", rev+1).WithRange(sp.etcdEnd()))
	}
	if len(spans) > 0 {
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(s.clock), "<", rev+1))
	}
	record, done := s.nextRecord()
	cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(record), "=", 0))
	ops = append(ops, clientv3.OpPut(record, recordApplied))
	for _, d := range done {
		ops = append(ops, clientv3.OpDelete(d))
	}

	resp, err := s.cli.Txn(ctx).If(cmps...).Then(ops...).Commit()
	switch {
	case err == nil && resp.Succeeded:
		s.learn(record) // done were deleted with it
		return nil
	case err == nil:
		s.learn(done...) // not deleted: still to do
		return fmt.Errorf("%w: %w: what the transaction read changed before its commit", backend.ErrTxAborted, backend.ErrTxConflict)
	case refused(err):
		s.learn(done...)
		return fmt.Errorf("%w: %w", backend.ErrTxAborted, s.convert(ctx, err))
	}
	// The answer was lost (or the error does not say the commit was
	// refused): settle the outcome. done may or may not be deleted;
	// deleting them again is harmless.
	s.learn(done...)
	applied, rerr := s.settle(ctx, record)
	if rerr != nil {
		return fmt.Errorf("%w: %w (commit sent, answer lost: %v)", backend.ErrCommitUnknown, rerr, err)
	}
	if !applied {
		// The fenced record stays: were it deleted, the lost commit, if
		// it were still on its way, could apply after all.
		return fmt.Errorf("%w: %w: the commit's answer was lost and it did not apply: %v", backend.ErrTxAborted, backend.ErrLeaderLost, err)
	}
	s.learn(record)
	return nil
}

// settle decides the outcome of the commit that writes record: it writes
// the record as fenced if it is absent, so that the commit can never
// apply, or reads it.
func (s *store) settle(ctx context.Context, record string) (applied bool, err error) {
	// Settling is idempotent (a second fence reads "fenced"), so it is
	// retried even with NoRetry.
	err = s.retry(ctx, func(ctx context.Context) error {
		resp, err := s.cli.Txn(ctx).
			If(clientv3.Compare(clientv3.CreateRevision(record), "=", 0)).
			Then(clientv3.OpPut(record, recordFenced)).
			Else(clientv3.OpGet(record)).Commit()
		if err != nil {
			return err
		}
		if resp.Succeeded {
			applied = false
			return nil
		}
		kvs := resp.Responses[0].GetResponseRange().Kvs
		applied = len(kvs) == 1 && string(kvs[0].Value) == recordApplied
		return nil
	}, false)
	return applied, err
}

// nextRecord returns the key of the next commit's record, and records of
// earlier commits that it may delete.
func (s *store) nextRecord() (string, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], s.seq)
	n := min(len(s.known), maxDone)
	done := s.known[len(s.known)-n:]
	s.known = s.known[: len(s.known)-n : len(s.known)-n]
	return s.hidden + string(s.holder[:]) + string(b[:]), done
}

// learn adds records whose outcome is known, to be deleted.
func (s *store) learn(records ...string) {
	s.mu.Lock()
	s.known = append(s.known, records...)
	s.mu.Unlock()
}
