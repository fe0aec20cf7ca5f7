package partytest

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/iterator"
	"github.com/syndtr/goleveldb/leveldb/opt"
	"github.com/syndtr/goleveldb/leveldb/storage"
	"github.com/syndtr/goleveldb/leveldb/util"

	"github.com/levelparty/party"
)

// The differential machinery: random keys that collide, extend one
// another and sit at the edges of the byte range; random ranges; random
// iterator moves, done on party and on goleveldb and compared after each.

// edgeKeys trip up range ends and resumption: the empty key, 0x00 and
// 0xff bytes, keys that extend one another.
var edgeKeys = []string{
	"", "\x00", "\x00\x00", "\x00\xff", "\x01",
	"a", "a\x00", "a\x00\x00", "a\x00\xff", "a\x01", "a\xff", "a\xff\xff",
	"ab", "ab\x00", "ab\xff", "abc", "abd", "b", "b\x00", "ba",
	"\x7f", "\x80", "\xfe", "\xfe\xff", "\xff", "\xff\x00", "\xff\xff", "\xff\xff\x00", "\xff\xff\xff",
}

// alphabet makes random keys collide, extend one another and sit next to
// the edges of the byte range; one byte in eight is any byte.
var alphabet = []byte{0x00, 0x01, 'a', 'b', 'c', 0x7f, 0x80, 0xfe, 0xff}

func randBytes(r *rand.Rand, maxLen int) []byte {
	b := make([]byte, r.IntN(maxLen+1))
	for i := range b {
		if r.IntN(8) == 0 {
			b[i] = byte(r.IntN(256))
		} else {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
	}
	return b
}

// randKeys returns the edge keys and n random ones, sorted and distinct.
func randKeys(r *rand.Rand, n int) [][]byte {
	seen := map[string]bool{}
	var keys [][]byte
	add := func(k []byte) {
		if !seen[string(k)] {
			seen[string(k)] = true
			keys = append(keys, k)
		}
	}
	for _, k := range edgeKeys {
		add([]byte(k))
	}
	for range n {
		add(randBytes(r, 4))
	}
	slices.SortFunc(keys, bytes.Compare)
	return keys
}

// near returns a key near one of keys: itself, extended, cut, or bumped.
func near(r *rand.Rand, keys [][]byte) []byte {
	k := slices.Clone(keys[r.IntN(len(keys))])
	switch r.IntN(6) {
	case 0, 1:
		return k
	case 2:
		return append(k, alphabet[r.IntN(len(alphabet))])
	case 3:
		if len(k) > 0 {
			return k[:len(k)-1]
		}
	case 4:
		if len(k) > 0 && k[len(k)-1] < 0xff {
			k[len(k)-1]++
		}
		return k
	}
	return randBytes(r, 3)
}

// rng is a range in party's and goleveldb's terms, built apart.
type rng struct {
	name  string
	party *party.Range
	ref   *util.Range
}

func makeRange(start, limit []byte) rng {
	ref := &util.Range{Start: clone(start), Limit: clone(limit)}
	if start != nil && limit != nil && bytes.Compare(start, limit) > 0 {
		// The same empty range: goleveldb's iterators panic on an
		// inverted one when tables lie between its bounds.
		ref.Limit = clone(start)
	}
	return rng{
		name:  fmt.Sprintf("Range{%s, %s}", q(start), q(limit)),
		party: &party.Range{Start: clone(start), Limit: clone(limit)},
		ref:   ref,
	}
}

var all = rng{name: "nil range"}

// randRange picks nil, one or two bounds, an empty bound, Start >= Limit,
// or a prefix.
func randRange(r *rand.Rand, keys [][]byte) rng {
	switch r.IntN(8) {
	case 0:
		return all
	case 1, 2:
		return makeRange(near(r, keys), near(r, keys))
	case 3:
		return makeRange(nil, near(r, keys))
	case 4:
		return makeRange(near(r, keys), nil)
	case 5:
		if r.IntN(2) == 0 {
			return makeRange(nil, []byte{}) // an empty Limit is not unbounded
		}
		return makeRange([]byte{}, near(r, keys))
	default:
		p := near(r, keys)
		return rng{name: fmt.Sprintf("BytesPrefix(%s)", q(p)), party: party.BytesPrefix(clone(p)), ref: util.BytesPrefix(clone(p))}
	}
}

func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte{}, b...)
}

func q(b []byte) string {
	if b == nil {
		return "nil"
	}
	return fmt.Sprintf("%q", b)
}

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

// mover is what both iterators can do.
type mover interface {
	First() bool
	Last() bool
	Seek([]byte) bool
	Next() bool
	Prev() bool
}

type move struct {
	kind int // 0 First, 1 Last, 2 Seek, 3 Next, 4 Prev
	key  []byte
}

func (m move) String() string {
	return [...]string{"First", "Last", "Seek(" + q(m.key) + ")", "Next", "Prev"}[m.kind]
}

func randMove(r *rand.Rand, keys [][]byte) move {
	switch n := r.IntN(100); {
	case n < 8:
		return move{kind: 0}
	case n < 16:
		return move{kind: 1}
	case n < 30:
		return move{kind: 2, key: near(r, keys)}
	case n < 65:
		return move{kind: 3}
	}
	return move{kind: 4}
}

func (m move) apply(it mover) bool {
	switch m.kind {
	case 0:
		return it.First()
	case 1:
		return it.Last()
	case 2:
		return it.Seek(clone(m.key))
	case 3:
		return it.Next()
	}
	return it.Prev()
}

// refReader is what reference iterators come from: a goleveldb database,
// snapshot or transaction, or a sublevel of one.
type refReader interface {
	NewIterator(*util.Range, *opt.ReadOptions) iterator.Iterator
}

// diff describes how got differs from ref after a move, or returns "".
func diff(ref iterator.Iterator, got *party.Iterator, refOK, gotOK bool) string {
	var d []string
	if err := got.Error(); err != nil {
		d = append(d, fmt.Sprintf("Error() = %v", err))
	}
	if refOK != gotOK {
		d = append(d, fmt.Sprintf("move returned %v, goleveldb %v", gotOK, refOK))
	}
	if rv, gv := ref.Valid(), got.Valid(); rv != gv {
		d = append(d, fmt.Sprintf("Valid() = %v, goleveldb %v", gv, rv))
	}
	if ref.Valid() {
		if rk, gk := ref.Key(), got.Key(); !bytes.Equal(rk, gk) {
			d = append(d, fmt.Sprintf("Key() = %s, goleveldb %s", q(gk), q(rk)))
		}
		if rv, gv := ref.Value(), got.Value(); !bytes.Equal(rv, gv) {
			d = append(d, fmt.Sprintf("Value() = %s, goleveldb %s", q(gv), q(rv)))
		}
	}
	return strings.Join(d, "; ")
}

// compare runs random moves on a party iterator and a goleveldb iterator
// over the same range, failing at the first difference.
func compare(t *testing.T, r *rand.Rand, keys [][]byte, ref refReader, rg rng, moves int, newIt func(*party.Range) *party.Iterator) {
	t.Helper()
	refIt := ref.NewIterator(rg.ref, nil)
	defer refIt.Release()
	got := newIt(rg.party)
	defer got.Release()
	var hist []string
	for i := range moves {
		m := randMove(r, keys)
		refOK, gotOK := m.apply(refIt), m.apply(got)
		hist = append(hist, fmt.Sprintf("%v -> %v %s", m, refOK, q(refIt.Key())))
		if d := diff(refIt, got, refOK, gotOK); d != "" {
			t.Fatalf("%s: move %d: %v: %s; moves:\n\t%s", rg.name, i, m, d, strings.Join(hist[max(0, len(hist)-12):], "\n\t"))
		}
	}
}

// long reports whether PARTY_LONG=1 asks for more seeds and moves.
func long() bool { return os.Getenv("PARTY_LONG") == "1" }

// seeds returns the suite's fixed random seeds (twenty more with
// PARTY_LONG=1) and one from the clock, logged so that a failure can be
// replayed.
func seeds(t *testing.T) []uint64 {
	s := []uint64{1, 2}
	if long() {
		for i := uint64(100); i < 120; i++ {
			s = append(s, i)
		}
	}
	s = append(s, uint64(time.Now().UnixNano()))
	t.Logf("seeds %v", s)
	return s
}

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)) }
