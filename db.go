package party

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/levelparty/party/backend"
	"github.com/levelparty/party/internal/node"
)

// DB is a handle on a database directory shared by many processes. Every
// method is safe for concurrent use.
//
// Every method that takes a context returns within that context (plus a
// small bound), whatever the leader does, even if it stops answering. Byte
// slices passed to a method are not read once it has returned, whatever
// its outcome.
type DB struct {
	dir       string
	b         backend.Backend
	txTimeout time.Duration // Options.TxTimeout, or its default
	noRetry   bool          // Options.NoRetry: Update does not run fn again
}

// Open joins the participants of the database in dir, creating the
// directory and the database if missing, and returns once this handle is
// leader or follower, or fails after Options.OpenTimeout. It never fails
// because another process has the database open.
func Open(dir string, o *Options) (*DB, error) {
	return open(dir, o, false)
}

func open(dir string, o *Options, followOnly bool) (*DB, error) {
	if dir == "" {
		return nil, errors.New("party: open: empty directory path")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("party: open %s: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("party: open: %w", err)
	}
	var opts Options
	if o != nil {
		opts = *o
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	n, err := node.Open(abs, node.Config{
		NoRetry:     opts.NoRetry,
		BusyPoll:    opts.BusyPoll,
		Sync:        opts.Sync,
		OpenTimeout: opts.openTimeout(),
		LevelDB:     opts.LevelDB,
		AllowRoot:   opts.AllowRoot,
		Logger:      log,
		FollowOnly:  followOnly,
	})
	if err != nil {
		return nil, err
	}
	return &DB{dir: abs, b: n, txTimeout: opts.txTimeout(), noRetry: opts.NoRetry}, nil
}

// OpenBackend returns a handle whose operations run on b: it is how a
// backend in another module (such as partyetcd, for an etcd cluster)
// offers party's API. Of o, only TxTimeout and NoRetry apply; b was
// configured by its maker. Most programs call Open or the backend's own
// Open function instead. Dir returns "" on such a handle.
func OpenBackend(b backend.Backend, o *Options) *DB {
	var opts Options
	if o != nil {
		opts = *o
	}
	return &DB{b: b, txTimeout: opts.txTimeout(), noRetry: opts.NoRetry}
}

// Dir returns the absolute path of the database directory.
func (db *DB) Dir() string { return db.dir }

// IsLeader reports whether this handle is the leader, serving the others.
func (db *DB) IsLeader() bool { return db.b.IsLeader() }

// Elected returns a channel that is closed when this handle becomes the
// leader. A handle stays leader until it is closed.
func (db *DB) Elected() <-chan struct{} { return db.b.Elected() }

// Get returns a copy of the value of key, or ErrNotFound.
func (db *DB) Get(ctx context.Context, key []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return db.b.Get(ctx, key)
}

// Has reports whether key is present.
func (db *DB) Has(ctx context.Context, key []byte) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	return db.b.Has(ctx, key)
}

// Put sets key to value. The arguments may be reused once Put returns.
func (db *DB) Put(ctx context.Context, key, value []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return db.b.Put(ctx, key, value)
}

// Delete removes key; deleting an absent key is not an error.
func (db *DB) Delete(ctx context.Context, key []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return db.b.Delete(ctx, key)
}

// Write applies the batch atomically. The batch may be reused once Write
// returns.
func (db *DB) Write(ctx context.Context, b *Batch) error {
	if err := ctx.Err(); err != nil || b == nil || b.b.Len() == 0 {
		return err
	}
	return db.b.Write(ctx, &b.b)
}

// DeleteRange removes every key in r (every key if r is nil). It is not
// atomic: it deletes in batches of about a thousand keys, and an error or
// a retry after failover may leave a prefix of the range deleted.
func (db *DB) DeleteRange(ctx context.Context, r *Range) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return db.b.DeleteRange(ctx, r.backend())
}

// Close leaves the party. Pending operations fail with ErrClosed; open
// iterators and snapshots are released. A leader first finishes and
// answers the follower requests it has started, then closes the database
// and releases the lock, so that the followers elect a new leader at once.
// Close returns once every resource is released; later calls return nil.
// On a view returned by Sublevel, Close ends the view only.
func (db *DB) Close() error { return db.b.Close() }
