// Package partyetcd gives party's API on an etcd cluster, for programs that
// outgrow one machine: Open returns a *party.DB on which every method
// works, with every key stored under a prefix in the cluster, so a program
// moves from a directory to a cluster by changing its Open line.
//
// What differs from a directory, and why:
//
//   - Write is one etcd transaction, atomic; a batch with more distinct
//     keys than the server's --max-txn-ops (128 by default) or larger than
//     its --max-request-bytes (1.5 MiB by default) fails whole, nothing
//     written, with an error naming the flag. DeleteRange is atomic.
//   - An iterator reads pages at one revision: it sees one consistent
//     state of the whole range (stronger than LevelDB). A snapshot is a
//     revision. Both fail with an error wrapping party.ErrSnapshotLost
//     once etcd has compacted that revision. Iterate forward over large
//     ranges: etcd serves a descending read by reading the whole range
//     below the cursor, whatever the page size, so each backward page
//     (Last, Prev, SeekBefore) costs the server the size of that range.
//   - Transactions are optimistic and serializable: nothing waits, and
//     Commit applies the writes only if nothing the transaction read has
//     changed; otherwise it fails with party.ErrTxConflict and Update runs
//     the function again. OpenTransaction's exclusivity (other writers
//     wait) does not apply. A commit is applied exactly once even when
//     its answer is lost: the handle then settles the outcome with etcd.
//   - A watch is etcd's watch, resumed by revision across reconnects and
//     member failures: it reports party.ErrWatchGap only when the
//     revision it needs was compacted. A watcher holds at most 4 MiB of
//     changes not yet read; past that it stops etcd's watch and resumes
//     it from the next revision once read, so a slow reader costs
//     neither memory nor a gap.
//   - IsLeader is false and Elected never fires: no handle serves the
//     others, the cluster does. Status reports the cluster: the etcd
//     leader's member id as LeaderID, the members besides it as
//     Followers, the answering member's database size as DiskSize.
//   - CompactRange, SizeOf and Property fail with party.ErrNotSupported:
//     etcd compacts by revision, for the whole cluster (etcdctl compact,
//     defrag).
//   - Operations in flight when a member fails are retried on another
//     (writes are at-least-once, as on a directory), unless
//     Options.NoRetry, when they fail with an error wrapping
//     party.ErrLeaderLost. A write abandoned because its context ended
//     may still apply, and, unlike on a directory, after a later write of
//     the same handle (the two may reach different members).
//
// party keeps a few keys of its own under prefix + "\xff\xffparty\x00tx\x00"
// (commit records, and a clock of deletes that optimistic transactions
// check); reads never show them. Writes made to the prefix by other etcd
// clients are seen, but transactions only detect the deletes made
// through party.
package partyetcd
