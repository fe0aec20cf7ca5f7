// Package partytest is the conformance suite of party's API, which every
// backend runs: the local one (a directory shared by processes, from the
// root package's tests) and partyetcd. It checks each method against
// goleveldb used directly on the same operations (differential tests),
// and the promises of batches, snapshots, transactions, watches and
// sublevels, through several handles on one database.
package partytest

import (
	"context"
	"testing"
	"time"

	"github.com/levelparty/party"
)

// Opener returns handles on one new, empty database: what one writes, the
// others read. The handles are closed when the test ends.
type Opener func(t *testing.T) []*party.DB

// Features says what the backend promises beyond the common API.
type Features struct {
	// Optimistic: transactions do not make other writers wait; a commit
	// after a conflicting write fails with party.ErrTxConflict.
	Optimistic bool
	// AtomicIteration: an iterator sees one state of its whole range, not
	// only of the entries it has read.
	AtomicIteration bool
}

// Run runs the suite, each part a subtest.
func Run(t *testing.T, open Opener, f Features) {
	parts := []struct {
		name string
		run  func(t *testing.T, dbs []*party.DB, f Features)
	}{
		{"KeysAndValues", testKeysAndValues},
		{"Batch", testBatch},
		{"IteratorMatchesGoleveldb", testIterators},
		{"DeleteRangeMatchesGoleveldb", testDeleteRange},
		{"Snapshot", testSnapshot},
		{"Transaction", testTransaction},
		{"UpdateCounter", testUpdateCounter},
		{"Watch", testWatch},
		{"SublevelsNeverLeak", testSublevels},
		{"Close", testClose},
	}
	for _, p := range parts {
		t.Run(p.name, func(t *testing.T) { p.run(t, open(t), f) })
	}
}

// wait bounds each part of the suite, to report a hang clearly; with
// PARTY_LONG=1 a part runs many more moves.
const wait = time.Minute

func ctxFor(t *testing.T) context.Context {
	d := wait
	if long() {
		d = 20 * wait
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
