package party

import (
	"context"
	"errors"
	"fmt"

	"github.com/levelparty/party/backend"
	"github.com/levelparty/party/internal/txn"
)

// Transaction is an atomic read-modify-write across every process that
// shares the database, with the semantics of goleveldb's OpenTransaction:
// one transaction is open at a time across all participants; while it is
// open, every other write (Put, Delete, Write, DeleteRange and other
// transactions, from any process) waits; reads outside it see the last
// committed state; reads inside it see its own writes, iterators too, as
// they were when the iterator was opened. Commit applies all of it
// atomically, or nothing.
//
// A transaction is aborted, with nothing applied, when its process dies
// or its connection to the leader drops, when it stays open longer than
// Options.TxTimeout, or when the leader is lost before Commit. Its later
// calls then return an error wrapping ErrTxAborted (and ErrLeaderLost when
// the leader was lost; Update starts again in that case).
//
// Its writes stay in this process until Commit: Put, Delete and Write
// cost no round trip. A Transaction is not safe for concurrent use.
//
// On a handle of an optimistic backend (partyetcd), nothing waits: a
// transaction reads one consistent state, and Commit applies its writes
// only if nothing it read (keys, and the ranges its iterators covered)
// has changed since, failing otherwise with an error wrapping
// ErrTxConflict and ErrTxAborted, nothing applied. Transactions are
// serializable either way.
type Transaction struct {
	db    *DB
	lease backend.Lease

	ov    *txn.Overlay
	batch backend.Batch
	iters []*Iterator // released by Commit and Discard
	ended error       // why calls fail: committed or discarded
}

// OpenTransaction waits until no other transaction is open and the writes
// under way have applied, then opens one. Writes of other participants
// wait until it ends.
func (db *DB) OpenTransaction(ctx context.Context) (*Transaction, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	l, err := db.b.Lock(ctx, db.txTimeout)
	if err != nil {
		return nil, err
	}
	return &Transaction{db: db, lease: l, ov: txn.NewOverlay()}, nil
}

// usable returns why the transaction can no longer be used, if it cannot.
func (tx *Transaction) usable() error {
	if tx.ended != nil {
		return tx.ended
	}
	return tx.lease.Err()
}

// Get returns a copy of the value of key as this transaction sees it, or
// ErrNotFound.
func (tx *Transaction) Get(ctx context.Context, key []byte) ([]byte, error) {
	if err := tx.usable(); err != nil {
		return nil, err
	}
	if v, deleted, found := tx.ov.Get(key); found {
		if deleted {
			return nil, ErrNotFound
		}
		return v, nil
	}
	v, err := tx.lease.Get(ctx, key)
	if lerr := tx.lease.Err(); lerr != nil {
		// Read after the lease ended: maybe on another leader, with
		// other participants' writes. The transaction cannot use it.
		return nil, lerr
	}
	return v, err
}

// Has reports whether key is present as this transaction sees it.
func (tx *Transaction) Has(ctx context.Context, key []byte) (bool, error) {
	if err := tx.usable(); err != nil {
		return false, err
	}
	if _, deleted, found := tx.ov.Get(key); found {
		return !deleted, nil
	}
	ok, err := tx.lease.Has(ctx, key)
	if lerr := tx.lease.Err(); lerr != nil {
		return false, lerr
	}
	return ok, err
}

// NewIterator returns an iterator over r (every key if r is nil) as this
// transaction sees it now: the database with the transaction's writes made
// so far. Writes made after it is opened do not show in it. Commit and
// Discard release it.
func (tx *Transaction) NewIterator(ctx context.Context, r *Range) *Iterator {
	it := newIterator(ctx, txReader{tx}, r)
	tx.iters = append(tx.iters, it)
	return it
}

// txReader reads the database through a transaction: only NewCursor is
// used, by newIterator.
type txReader struct{ tx *Transaction }

func (t txReader) Get(ctx context.Context, key []byte) ([]byte, error) { return t.tx.Get(ctx, key) }

func (t txReader) Has(ctx context.Context, key []byte) (bool, error) { return t.tx.Has(ctx, key) }

func (t txReader) NewCursor(ctx context.Context, r backend.Range) (backend.Cursor, error) {
	tx := t.tx
	if err := tx.usable(); err != nil {
		return nil, err
	}
	base, err := tx.lease.NewCursor(ctx, r)
	if err != nil {
		return nil, err
	}
	return txn.NewCursor(base, tx.ov, r, tx.lease.Err), nil
}

// Put sets key to value in the transaction. It copies both.
func (tx *Transaction) Put(ctx context.Context, key, value []byte) error {
	if err := tx.checkWrite(ctx, key); err != nil {
		return err
	}
	tx.ov.Put(key, value)
	tx.batch.Put(key, value)
	return nil
}

// Delete removes key in the transaction.
func (tx *Transaction) Delete(ctx context.Context, key []byte) error {
	if err := tx.checkWrite(ctx, key); err != nil {
		return err
	}
	tx.ov.Delete(key)
	tx.batch.Delete(key)
	return nil
}

// Write adds the puts and deletes of b to the transaction, in order.
func (tx *Transaction) Write(ctx context.Context, b *Batch) error {
	if b == nil {
		return nil
	}
	var hidden bool
	if !tx.db.isView() { // a view's keys are stored under its prefix
		backend.ForEachRecord(b.b.Records(), func(_ bool, k, _ []byte) { hidden = hidden || backend.Hidden(k) })
	}
	if err := tx.checkWrite(ctx, nil); err != nil {
		return err
	}
	if hidden {
		return hiddenKeyError()
	}
	backend.ForEachRecord(b.b.Records(), func(put bool, k, v []byte) {
		if put {
			tx.ov.Put(k, v)
			tx.batch.Put(k, v)
		} else {
			tx.ov.Delete(k)
			tx.batch.Delete(k)
		}
	})
	return nil
}

func (tx *Transaction) checkWrite(ctx context.Context, key []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := tx.usable(); err != nil {
		return err
	}
	if backend.Hidden(key) && !tx.db.isView() {
		return hiddenKeyError()
	}
	return nil
}

func hiddenKeyError() error {
	return fmt.Errorf("%w: keys starting with %q are party's own", ErrHiddenKey, backend.HiddenPrefix())
}

// Commit applies the transaction's writes atomically and ends it. Its
// answer is definite: nil means applied, exactly once; an error wrapping
// ErrTxAborted means nothing was applied, even when the leader was lost
// after the commit was sent (the next leader is asked whether it applied).
// Only if ctx ends, or the handle is closed, before that answer is known
// does Commit return an error wrapping ErrCommitUnknown.
func (tx *Transaction) Commit(ctx context.Context) error {
	if err := tx.usable(); err != nil {
		tx.Discard()
		return err
	}
	tx.end(fmt.Errorf("%w: committed", ErrTxAborted))
	if err := ctx.Err(); err != nil {
		tx.lease.Release()
		return fmt.Errorf("%w: not committed: %w", ErrTxAborted, err)
	}
	return tx.lease.Commit(ctx, &tx.batch)
}

// Discard ends the transaction without applying anything. It may be called
// more than once, and after Commit, where it does nothing.
func (tx *Transaction) Discard() {
	if tx.ended == nil {
		tx.end(fmt.Errorf("%w: discarded", ErrTxAborted))
		tx.lease.Release()
	}
}

// end makes later calls fail with why and releases the iterators.
func (tx *Transaction) end(why error) {
	tx.ended = why
	for _, it := range tx.iters {
		it.Release()
	}
	tx.iters = nil
}

// Update runs fn in a transaction and commits it if fn returns nil. An
// error from fn discards the transaction and is returned. When the leader
// is lost before the commit applied, or an optimistic commit met a
// conflict, the transaction was aborted with nothing applied, and Update
// runs fn again (unless Options.NoRetry is set): fn must therefore act only through tx, and may
// run more than once. Update's nil means one run of fn was committed,
// exactly once.
func (db *DB) Update(ctx context.Context, fn func(tx *Transaction) error) error {
	for {
		tx, err := db.OpenTransaction(ctx)
		if err != nil {
			return err
		}
		err = runTx(tx, fn)
		if err == nil {
			err = tx.Commit(ctx)
		} else {
			tx.Discard()
		}
		if err == nil || db.noRetry || ctx.Err() != nil || !retryable(err) {
			return err
		}
	}
}

// runTx runs fn, and discards tx if fn panics.
func runTx(tx *Transaction, fn func(tx *Transaction) error) error {
	done := false
	defer func() {
		if !done {
			tx.Discard()
		}
	}()
	err := fn(tx)
	done = true
	return err
}

// retryable reports whether err means a transaction was aborted, with
// nothing applied, because its leader was lost.
func retryable(err error) bool {
	return errors.Is(err, ErrTxAborted) && (errors.Is(err, ErrLeaderLost) || errors.Is(err, ErrTxConflict)) && !errors.Is(err, ErrCommitUnknown)
}
