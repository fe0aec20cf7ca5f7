// Package difftest is the machinery of party's differential tests: random
// keys that collide, extend one another and sit at the edges of the byte
// range; random ranges; random iterator moves, done on party and on
// goleveldb and compared after each. It imports neither party nor its
// tests, so that both the root package's own tests and partytest (the
// suite every backend runs) use this one copy.
package difftest

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/syndtr/goleveldb/leveldb/iterator"
	"github.com/syndtr/goleveldb/leveldb/opt"
	"github.com/syndtr/goleveldb/leveldb/util"
)

// Long reports whether PARTY_LONG=1 asks for more seeds and steps.
func Long() bool { return os.Getenv("PARTY_LONG") == "1" }

// Seeds returns the fixed seeds (twenty more with PARTY_LONG=1) and one
// derived from the clock, logged so that a failure can be replayed.
func Seeds(t testing.TB, fixed ...uint64) []uint64 {
	t.Helper()
	seeds := slices.Clone(fixed)
	if Long() {
		for i := uint64(100); i < 120; i++ {
			seeds = append(seeds, i)
		}
	}
	ts := uint64(time.Now().UnixNano())
	t.Logf("time seed %d (fixed seeds %v)", ts, seeds)
	return append(seeds, ts)
}

// Rand returns the generator of a seed.
func Rand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)) }

// EdgeKeys trip up range ends and resumption: the empty key, 0x00 and
// 0xff bytes, keys that extend one another.
var EdgeKeys = []string{
	"", "\x00", "\x00\x00", "\x00\xff", "\x01",
	"a", "a\x00", "a\x00\x00", "a\x00\xff", "a\x01", "a\xff", "a\xff\xff",
	"ab", "ab\x00", "ab\xff", "abc", "abd", "b", "b\x00", "ba",
	"\x7f", "\x80", "\xfe", "\xfe\xff", "\xff", "\xff\x00", "\xff\xff", "\xff\xff\x00", "\xff\xff\xff",
}

// alphabet makes random keys collide, extend one another and sit next to
// the edges of the byte range; one byte in eight is any byte.
var alphabet = []byte{0x00, 0x01, 'a', 'b', 'c', 0x7f, 0x80, 0xfe, 0xff}

// RandBytes returns up to maxLen random bytes.
func RandBytes(r *rand.Rand, maxLen int) []byte {
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

// Keys returns the edge keys and n random keys of up to 5 bytes, sorted
// and distinct.
func Keys(r *rand.Rand, n int) [][]byte {
	seen := map[string]bool{}
	var keys [][]byte
	add := func(k []byte) {
		if !seen[string(k)] {
			seen[string(k)] = true
			keys = append(keys, k)
		}
	}
	for _, k := range EdgeKeys {
		add([]byte(k))
	}
	for range n {
		add(RandBytes(r, 5))
	}
	slices.SortFunc(keys, bytes.Compare)
	return keys
}

// Near picks a range bound or seek key near keys: a present key, one
// extending or cut from one, one next to one, or random bytes.
func Near(r *rand.Rand, keys [][]byte) []byte {
	k := Clone(keys[r.IntN(len(keys))])
	switch r.IntN(7) {
	case 0, 1:
		return k
	case 2:
		return append(k, []byte{0x00, 0xff, 'a'}[r.IntN(3)])
	case 3:
		if len(k) > 0 {
			return k[:len(k)-1]
		}
		return k
	case 4:
		if len(k) > 0 {
			if r.IntN(2) == 0 && k[len(k)-1] < 0xff {
				k[len(k)-1]++
			} else if k[len(k)-1] > 0 {
				k[len(k)-1]--
			}
		}
		return k
	default:
		return RandBytes(r, 4)
	}
}

// Range is a range of a test: nil (All), bounds, or a prefix, which each
// side turns into its own type (Util for goleveldb).
type Range struct {
	Name         string
	All          bool   // the nil range
	Start, Limit []byte // when not a prefix
	Prefix       []byte // non-nil for a prefix range
}

// All is the nil range.
var All = Range{Name: "nil range", All: true}

// MakeRange returns the range [start, limit).
func MakeRange(start, limit []byte) Range {
	return Range{Name: fmt.Sprintf("Range{%s, %s}", Q(start), Q(limit)), Start: Clone(start), Limit: Clone(limit)}
}

// PrefixRange returns the range of the keys with prefix p.
func PrefixRange(p []byte) Range {
	return Range{Name: fmt.Sprintf("BytesPrefix(%q)", p), Prefix: append([]byte{}, p...)}
}

// Util returns the range in goleveldb's terms, a copy. An inverted range
// becomes the empty range at Start: goleveldb's iterators panic on an
// inverted one when a table lies between its bounds.
func (rg Range) Util() *util.Range {
	switch {
	case rg.All:
		return nil
	case rg.Prefix != nil:
		return util.BytesPrefix(Clone(rg.Prefix))
	}
	u := &util.Range{Start: Clone(rg.Start), Limit: Clone(rg.Limit)}
	if u.Start != nil && u.Limit != nil && bytes.Compare(u.Start, u.Limit) > 0 {
		u.Limit = Clone(u.Start)
	}
	return u
}

// RandRange picks a range: nil, bounded either side or both, an empty
// Start, Start >= Limit, an empty Limit, or a prefix (some ending in 0xff).
func RandRange(r *rand.Rand, keys [][]byte) Range {
	switch r.IntN(10) {
	case 0:
		return All
	case 1, 2:
		return MakeRange(Near(r, keys), Near(r, keys))
	case 3:
		return MakeRange(nil, Near(r, keys))
	case 4:
		return MakeRange(Near(r, keys), nil)
	case 5:
		return MakeRange([]byte{}, Near(r, keys))
	case 6:
		s, l := Near(r, keys), Near(r, keys)
		if bytes.Compare(s, l) < 0 {
			s, l = l, s
		}
		if r.IntN(3) == 0 {
			l = s
		}
		return MakeRange(s, l) // Start >= Limit: empty
	case 7:
		if r.IntN(2) == 0 {
			return MakeRange(nil, []byte{}) // an empty Limit is not unbounded
		}
		return MakeRange([]byte{}, nil)
	default:
		p := keys[r.IntN(len(keys))]
		p = Clone(p[:r.IntN(len(p)+1)])
		switch r.IntN(4) {
		case 0:
			p = append(p, 0xff)
		case 1:
			p = []byte([]string{"a", "\xff", "\xff\xff", "a\xff", "\x00", ""}[r.IntN(6)])
		}
		return PrefixRange(p)
	}
}

// Moves.
const (
	First = iota
	Last
	Seek
	Next
	Prev
)

// Move is one iterator move.
type Move struct {
	Kind int
	Key  []byte // of a Seek
}

func (m Move) String() string {
	return [...]string{"First", "Last", "Seek(" + Q(m.Key) + ")", "Next", "Prev"}[m.Kind]
}

// RandMove picks a move, mostly Next and Prev.
func RandMove(r *rand.Rand, keys [][]byte) Move {
	switch n := r.IntN(100); {
	case n < 8:
		return Move{Kind: First}
	case n < 16:
		return Move{Kind: Last}
	case n < 30:
		switch r.IntN(10) {
		case 0:
			return Move{Kind: Seek} // nil key
		case 1:
			return Move{Kind: Seek, Key: []byte{}}
		}
		return Move{Kind: Seek, Key: Near(r, keys)}
	case n < 65:
		return Move{Kind: Next}
	default:
		return Move{Kind: Prev}
	}
}

// Mover is what both iterators can do.
type Mover interface {
	First() bool
	Last() bool
	Seek([]byte) bool
	Next() bool
	Prev() bool
}

// Apply makes the move on it.
func (m Move) Apply(it Mover) bool {
	switch m.Kind {
	case First:
		return it.First()
	case Last:
		return it.Last()
	case Seek:
		return it.Seek(Clone(m.Key))
	case Next:
		return it.Next()
	default:
		return it.Prev()
	}
}

// Iter is a party iterator, as the comparison sees it.
type Iter interface {
	Mover
	Valid() bool
	Key() []byte
	Value() []byte
	Error() error
	Release()
}

// Diff describes how got differs from the reference after a move that
// returned refOK and gotOK, or returns "".
func Diff(ref iterator.Iterator, got Iter, refOK, gotOK bool) string {
	var d []string
	if err := ref.Error(); err != nil {
		d = append(d, fmt.Sprintf("reference error %v", err))
	}
	if err := got.Error(); err != nil {
		d = append(d, fmt.Sprintf("Error() = %v", err))
	}
	if refOK != gotOK {
		d = append(d, fmt.Sprintf("move returned %v, goleveldb %v", gotOK, refOK))
	}
	if rv, gv := ref.Valid(), got.Valid(); rv != gv {
		d = append(d, fmt.Sprintf("Valid() = %v, goleveldb %v", gv, rv))
	}
	rk, gk := ref.Key(), got.Key()
	rv, gv := ref.Value(), got.Value()
	if ref.Valid() {
		if !bytes.Equal(rk, gk) {
			d = append(d, fmt.Sprintf("Key() = %s, goleveldb %s", Q(gk), Q(rk)))
		}
		if !bytes.Equal(rv, gv) {
			d = append(d, fmt.Sprintf("Value() = %s, goleveldb %s", Q(gv), Q(rv)))
		}
	} else if gk != nil || gv != nil {
		d = append(d, fmt.Sprintf("not at an entry but Key() = %s, Value() = %s", Q(gk), Q(gv)))
	}
	return strings.Join(d, "; ")
}

// RefReader is what reference iterators come from: a goleveldb database,
// snapshot or transaction, or a view of one.
type RefReader interface {
	NewIterator(*util.Range, *opt.ReadOptions) iterator.Iterator
}

// History keeps the last moves for failure messages.
type History []string

// Add records s, keeping the last 16.
func (h *History) Add(s string) {
	*h = append(*h, s)
	if len(*h) > 16 {
		*h = (*h)[1:]
	}
}

func (h History) String() string { return "\n\t" + strings.Join(h, "\n\t") }

// Compare runs steps random moves on the iterator newIt returns and on a
// goleveldb iterator over the same range of ref, calling before ahead of
// every move (and before the first, after the iterators are made), and
// fails at the first difference.
func Compare(t testing.TB, r *rand.Rand, keys [][]byte, ref RefReader, rg Range, steps int,
	newIt func(Range) Iter, before func(step int)) {
	t.Helper()
	refIt := ref.NewIterator(rg.Util(), nil)
	defer refIt.Release()
	got := newIt(rg)
	defer got.Release()
	if d := Diff(refIt, got, false, false); d != "" {
		t.Fatalf("%s: new iterator: %s", rg.Name, d)
	}
	var h History
	for step := range steps {
		before(step)
		m := RandMove(r, keys)
		refOK := m.Apply(refIt)
		gotOK := m.Apply(got)
		h.Add(fmt.Sprintf("%d: %v -> %v %s", step, m, refOK, Q(refIt.Key())))
		if d := Diff(refIt, got, refOK, gotOK); d != "" {
			t.Fatalf("%s: step %d: %v: %s; moves (goleveldb results):%v", rg.Name, step, m, d, h)
		}
	}
}

// Q quotes b, telling nil apart.
func Q(b []byte) string {
	if b == nil {
		return "nil"
	}
	return fmt.Sprintf("%q", b)
}

// Clone copies b, keeping nil apart from empty.
func Clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte{}, b...)
}
