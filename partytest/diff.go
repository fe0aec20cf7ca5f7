package partytest

import (
	"math/rand/v2"
	"testing"

	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/storage"

	"github.com/levelparty/party"
	"github.com/levelparty/party/internal/difftest"
)

// The differential machinery is difftest's, the one the root package's
// own tests use; these adapt it to party's types.

func long() bool { return difftest.Long() }

// seeds returns the suite's random seeds (more with PARTY_LONG=1, and one
// from the clock), logged.
func seeds(t *testing.T) []uint64 { return difftest.Seeds(t, 1, 2) }

func newRand(seed uint64) *rand.Rand { return difftest.Rand(seed) }

func randBytes(r *rand.Rand, maxLen int) []byte { return difftest.RandBytes(r, maxLen) }

func randKeys(r *rand.Rand, n int) [][]byte { return difftest.Keys(r, n) }

func near(r *rand.Rand, keys [][]byte) []byte { return difftest.Near(r, keys) }

type rng = difftest.Range

var all = difftest.All

func randRange(r *rand.Rand, keys [][]byte) rng { return difftest.RandRange(r, keys) }

// partyRange returns rg in party's terms (BytesPrefix for a prefix).
func partyRange(rg rng) *party.Range {
	switch {
	case rg.All:
		return nil
	case rg.Prefix != nil:
		return party.BytesPrefix(difftest.Clone(rg.Prefix))
	}
	return &party.Range{Start: difftest.Clone(rg.Start), Limit: difftest.Clone(rg.Limit)}
}

type refReader = difftest.RefReader

// refDB is an in-memory goleveldb: the reference.
func refDB(t *testing.T) *leveldb.DB {
	t.Helper()
	db, err := leveldb.Open(storage.NewMemStorage(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// compare runs random moves on a party iterator and a goleveldb iterator
// over the same range, failing at the first difference.
func compare(t *testing.T, r *rand.Rand, keys [][]byte, ref refReader, rg rng, moves int, newIt func(*party.Range) *party.Iterator) {
	t.Helper()
	difftest.Compare(t, r, keys, ref, rg, moves,
		func(rg difftest.Range) difftest.Iter { return newIt(partyRange(rg)) }, func(int) {})
}
