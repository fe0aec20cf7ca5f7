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

const defaultOpenTimeout = 10 * time.Second

func (o *Options) openTimeout() time.Duration {
	if o.OpenTimeout > 0 {
		return o.OpenTimeout
	}
	return defaultOpenTimeout
}
