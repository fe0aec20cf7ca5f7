package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/levelparty/party/backend"
	"github.com/levelparty/party/internal/call"
	"github.com/levelparty/party/internal/client"
	"github.com/levelparty/party/internal/engine"
	"github.com/levelparty/party/internal/wire"
)

// Transactions. The lease lives on the leader's engine; this handle holds
// it either there (it leads) or through its connection (it follows). A
// commit carries this handle's holder id and a number that grows with each
// commit; the leader writes them as a record in the commit's batch. When
// the connection dies after a commit was sent, the handle asks the next
// leader for its record, which says whether that commit was applied: it is
// never sent twice.

// errLeaseLost is why a lease ends when its leader is lost.
var errLeaseLost = fmt.Errorf("%w: %w", backend.ErrTxAborted, backend.ErrLeaderLost)

// Lock waits for the transaction lease.
func (n *Node) Lock(ctx context.Context, timeout time.Duration) (backend.Lease, error) {
	for {
		r, err := n.routeNow(ctx)
		if err != nil {
			return nil, err
		}
		if r.lead != nil {
			l, err := r.lead.eng.Lock(ctx, n.holder, timeout)
			if err != nil {
				return nil, err
			}
			return &localLease{Reader: n, n: n, l: l}, nil
		}
		start := time.Now()
		cl := call.New(call.TxBegin)
		cl.Holder, cl.Timeout, cl.Bound = n.holder, timeout, true
		err = r.conn.Do(ctx, cl)
		switch {
		case err == nil:
			return &remoteLease{Reader: n, n: n, conn: r.conn, id: cl.LeaseID, deadline: start.Add(timeout), timeout: timeout}, nil
		case errors.Is(err, client.ErrConnLost):
			if err := n.afterLoss(false); err != nil {
				return nil, err
			}
			continue // nothing was held: ask the next leader
		case ctx.Err() != nil:
			// The lease may be granted after this wait ended: the
			// leader drops the request, or releases the lease.
			if id := cl.ID.Load(); id != 0 {
				r.conn.DiscardTx(id)
			}
		}
		return nil, err
	}
}

// localLease is the lease on this handle's own engine. Its reads are
// the handle's plain reads, which the lease keeps still.
type localLease struct {
	backend.Reader
	n *Node
	l *engine.Lease
}

func (x *localLease) Err() error { return x.l.Err() }

func (x *localLease) Commit(ctx context.Context, b *backend.Batch) error {
	if err := checkWrite(nil, nil, b.Records()); err != nil {
		x.Release()
		return err
	}
	seq, done := x.n.txSeq.Add(1), x.n.takeKnown()
	err := x.l.Commit(b.Records(), seq, done, x.n.cfg.Sync)
	x.n.known(done, seq, err == nil)
	return err
}

func (x *localLease) Release() { x.l.Release(fmt.Errorf("%w: discarded", backend.ErrTxAborted)) }

// remoteLease is the lease held on the leader through a connection. Its
// reads are the handle's plain reads, which the lease keeps still.
type remoteLease struct {
	backend.Reader
	n        *Node
	conn     *client.Conn
	id       uint32
	deadline time.Time // when the leader ends it, at the latest
	timeout  time.Duration

	mu    sync.Mutex
	ended error // why it ended, once it has
}

func (x *remoteLease) Err() error {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.errLocked()
}

func (x *remoteLease) errLocked() error {
	switch {
	case x.ended != nil:
		return x.ended
	case x.conn.Err() != nil:
		return errLeaseLost
	case !time.Now().Before(x.deadline):
		// The leader's timer started after this handle asked, so the
		// leader ends the lease at this deadline or later.
		return fmt.Errorf("%w: open longer than its timeout of %v", backend.ErrTxAborted, x.timeout)
	}
	return nil
}

func (x *remoteLease) Release() {
	x.mu.Lock()
	held := x.ended == nil
	if held {
		x.ended = fmt.Errorf("%w: discarded", backend.ErrTxAborted)
	}
	x.mu.Unlock()
	if held {
		x.conn.DiscardTx(x.id)
	}
}

func (x *remoteLease) Commit(ctx context.Context, b *backend.Batch) error {
	x.mu.Lock()
	if err := x.errLocked(); err != nil {
		x.mu.Unlock()
		x.Release()
		return err
	}
	x.ended = fmt.Errorf("%w: committed", backend.ErrTxAborted)
	x.mu.Unlock()
	if err := checkWrite(nil, nil, b.Records()); err != nil {
		x.conn.DiscardTx(x.id)
		return err
	}
	seq, done := x.n.txSeq.Add(1), x.n.takeKnown()
	cl := call.New(call.TxCommit)
	cl.Lease, cl.TxSeq, cl.TxDone, cl.Batch, cl.Sync, cl.Bound = x.id, seq, done, b, x.n.cfg.Sync, true
	err := x.conn.Do(ctx, cl)
	switch {
	case errors.Is(err, client.ErrConnLost):
		err = x.n.resolve(ctx, seq)
	case err != nil && ctx.Err() != nil && errors.Is(err, ctx.Err()):
		err = fmt.Errorf("%w: %w", backend.ErrCommitUnknown, err)
	}
	x.n.known(done, seq, err == nil)
	return err
}

// takeKnown returns the commits whose outcome this handle knows, for a
// commit to delete their records; known gives them back if that commit did
// not apply.
func (n *Node) takeKnown() []uint64 {
	n.txMu.Lock()
	defer n.txMu.Unlock()
	k := min(len(n.txKnown), wire.MaxTxDone)
	done := slices.Clone(n.txKnown[:k])
	n.txKnown = n.txKnown[k:]
	return done
}

// known records the outcome of commit seq, which carried the deletes of
// the records of done: if it applied, seq's record is there to delete
// later; if not, done's records are still there (an unknown outcome counts
// as not applied: deleting an absent record is harmless).
func (n *Node) known(done []uint64, seq uint64, applied bool) {
	n.txMu.Lock()
	defer n.txMu.Unlock()
	if applied {
		n.txKnown = append(n.txKnown, seq)
	} else {
		n.txKnown = append(n.txKnown, done...)
	}
}

// resolve asks the next leader whether this handle's commit seq was
// applied, after the connection it was sent on died.
func (n *Node) resolve(ctx context.Context, seq uint64) error {
	for {
		r, err := n.routeNow(ctx)
		if err != nil {
			return fmt.Errorf("%w: the leader was lost after the commit was sent, and %w", backend.ErrCommitUnknown, err)
		}
		var applied bool
		if r.lead != nil {
			applied, err = r.lead.eng.Resolve(ctx, n.holder, seq)
		} else {
			cl := call.New(call.TxResolve)
			cl.Holder, cl.TxSeq, cl.Bound = n.holder, seq, true
			err = r.conn.Do(ctx, cl)
			if errors.Is(err, client.ErrConnLost) {
				continue
			}
			applied = cl.Found
		}
		switch {
		case err != nil:
			return fmt.Errorf("%w: the leader was lost after the commit was sent, and %w", backend.ErrCommitUnknown, err)
		case applied:
			return nil
		}
		return fmt.Errorf("%w: the leader was lost before the commit applied: %w", backend.ErrTxAborted, backend.ErrLeaderLost)
	}
}
