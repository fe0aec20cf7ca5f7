package party

import (
	"log/slog"
	"time"

	"github.com/syndtr/goleveldb/leveldb/opt"
)

// Options configure a handle. A nil *Options means the zero value, whose
// every field is a sensible default.
type Options struct {
	// NoRetry makes operations that are in flight when the leader is lost
	// (sent, not yet answered) fail with ErrLeaderLost instead of being sent
	// again to the next leader; so do the moves of open iterators. An
	// operation sent an instant before the loss can therefore fail too, even
	// though the handle had not noticed yet. Operations that were never sent
	// (issued while the handle had no leader, or meeting a connection
	// already dead) wait for the next leader. The zero value retries, which
	// makes writes at-least-once: a write the lost leader applied but did
	// not acknowledge is applied again.
	NoRetry bool

	// Sync makes the leader fsync each of this handle's writes before
	// acknowledging it. The zero value acknowledges once the write is in the
	// leader's journal, which survives the leader's process dying but not
	// the machine.
	Sync bool

	// BusyPoll makes a follower's call that waits for its answer poll the
	// socket for up to this long before it sleeps, and makes the leader
	// poll this follower's connection for up to this long for its next
	// request after each answer. It trades CPU for latency: a sequential
	// follower call then costs about a quarter of a sleeping round trip (it
	// needs no wake-up of a sleeping thread on either side), while each
	// waiting call keeps a core busy until its answer (or BusyPoll) and the
	// leader spins up to BusyPoll after every answer to this follower. A
	// handle that makes no call never spins. Use it for latency-bound
	// sequential work on a machine with cores to spare, with a value a
	// little above the round trip you see (50 µs is a good start); the
	// leader caps it at 1 ms. The zero value never polls.
	BusyPoll time.Duration

	// TxTimeout bounds how long a transaction of this handle may stay
	// open: the leader aborts it then, with nothing applied, so that a
	// stopped or stuck process does not hold every writer. Zero means
	// DefaultTxTimeout (5 seconds).
	TxTimeout time.Duration

	// OpenTimeout bounds how long Open waits to join as leader or
	// follower. Zero means 10 seconds.
	OpenTimeout time.Duration

	// LevelDB are the goleveldb options used when this handle becomes
	// leader. Nil means goleveldb's defaults.
	LevelDB *opt.Options

	// AllowRoot lets processes run by root join a leader run by another
	// user. The zero value accepts only the leader's own user.
	AllowRoot bool

	// Logger receives rare events: elections, refused or broken
	// connections. Nil means silent.
	Logger *slog.Logger
}

// DefaultTxTimeout is how long a transaction may stay open when
// Options.TxTimeout is zero: long enough for a read-modify-write of many
// keys, short enough that a stopped process does not hold every writer
// for long.
const DefaultTxTimeout = 5 * time.Second

const defaultOpenTimeout = 10 * time.Second

func (o *Options) txTimeout() time.Duration {
	if o.TxTimeout > 0 {
		return o.TxTimeout
	}
	return DefaultTxTimeout
}

func (o *Options) openTimeout() time.Duration {
	if o.OpenTimeout > 0 {
		return o.OpenTimeout
	}
	return defaultOpenTimeout
}
