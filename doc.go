// Package party lets many processes use one LevelDB database directory at
// the same time.
//
// A LevelDB directory can be opened by one process only. With party, every
// Open of a directory joins its participants instead of failing on the
// lock: the first participant to take the lock becomes the leader, owns the
// goleveldb handle and serves the others, the followers, over a unix socket
// in the directory (party.sock). When the leader closes or dies, the
// followers elect a new leader among themselves and carry on: operations in
// flight are sent again, and open iterators continue exactly where they
// were.
//
//	db, err := party.Open("/var/lib/app/data", nil)
//	if err != nil { ... }
//	defer db.Close()
//	err = db.Put(ctx, []byte("a"), []byte("1"))
//	v, err := db.Get(ctx, []byte("a"))
//
// Two handles opened in one process are two participants, exactly like two
// processes.
//
// # Election
//
// A participant that has no leader tries, in a loop, to connect to the
// socket (success: it follows), then to take the lock (success: it leads),
// then waits a short, growing, jittered delay (1 to 25 ms). A follower learns
// that its leader is gone the moment the socket closes, which the kernel
// does even when the leader is killed, and elects at once. If the lock stays
// held and nothing ever answers on the socket, a program that is not party
// holds the database: Open fails after Options.OpenTimeout with an error
// wrapping ErrLockedByOther.
//
// # Locks
//
// goleveldb locks the LOCK file with flock(2), which on Linux does not
// conflict with the fcntl(2) locks of C++ LevelDB (Node's level, for
// instance). On Linux party therefore also takes an open-file-description
// lock on LOCK, which does conflict with them, so party and C++ LevelDB
// programs never open one directory together. On other platforms party
// relies on goleveldb's own lock: on macOS and the BSDs, flock and fcntl
// locks conflict anyway. Windows is not supported: Open says so.
//
// # The socket
//
// The socket is <dir>/party.sock, mode 0600, and the leader checks each
// peer's credentials, accepting only its own user (and root with
// Options.AllowRoot). A directory path too long for a socket address is
// reached through /proc/self/fd on Linux. The wire protocol is party's own,
// versioned, pipelined and flow-controlled; internal/wire/spec.md
// describes it.
//
// # Failover
//
// By default, operations in flight when the leader is lost are sent again to
// the next leader, in the order they were issued, which makes writes
// at-least-once: a write the dead leader applied but did not acknowledge is
// applied again, possibly over a write another process made in between.
// Transactions are exactly once. With Options.NoRetry they fail with ErrLeaderLost instead.
// Iterators resume strictly after (or before, moving backward) the last key
// they returned, on the new leader's data. A Snapshot lives on the leader
// that took it; once that leader is lost, its operations fail with
// ErrSnapshotLost.
//
// A write acknowledged by the leader is in its journal: it survives the
// leader process dying, even by kill -9. With Options.Sync it is also
// fsynced, and survives the machine.
//
// # Transactions
//
// OpenTransaction and Update give atomic read-modify-write across
// processes, with goleveldb's semantics: one transaction at a time among
// all participants, every other write waiting while it is open. Commit is
// exactly once: its nil means applied once, its ErrTxAborted means not
// applied, even when the leader is lost after the commit was sent (the
// next leader is asked, through a record written with the commit, under a
// key prefix party's reads never show). See Transaction.
//
// # Watch
//
// DB.Watch gives every participant the changes any participant commits,
// as they happen, in the leader's commit order; a Watcher reports
// ErrWatchGap, never silence, when changes may have been missed. See
// Watcher.
//
// # Sublevels
//
// DB.Sublevel gives a namespace inside the database, stored with Node's
// abstract-level layout ("!name!" + key), so Go and Node programs sharing
// a directory see the same sublevels. A view's methods take and return
// relative keys and never reach outside it.
//
// # Contexts
//
// Every method that takes a context returns within that context, plus a
// small bound, whatever the leader does: a leader that stops reading (a
// stopped or hung process) makes calls wait, never block past their
// deadline. A call whose context ends is abandoned: its answer, if one
// comes, is dropped; an abandoned write may or may not have been applied.
// The handle works again as soon as the leader answers, or is replaced.
// An Iterator's moves are bounded by the context given to NewIterator.
//
// # Byte slices
//
// Get returns a copy that belongs to the caller. Keys, values, batches and
// ranges passed to a method are never read once it has returned, whatever
// its outcome, even when it was abandoned and is being resent to a new
// leader: they may be reused at once. Iterator keys and values are valid
// until the iterator moves.
package party
