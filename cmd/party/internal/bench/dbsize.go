package bench

import (
	"fmt"
	"os"
	"time"

	"github.com/levelparty/party"
	"github.com/levelparty/party/cmd/party/internal/child"
	"github.com/syndtr/goleveldb/leveldb/util"
)

// The database-size figures (Options.Large): sequential and random gets
// and a full iteration on databases of 1 M and 10 M entries, party against
// goleveldb directly, to show how cost grows with the data.

// dbSize is a database size measured, and its name in the figures.
type dbSize struct {
	entries int
	name    string
}

// dbSizes are the sizes measured; the tests make them tiny.
var dbSizes = []dbSize{{1000000, "1m"}, {10000000, "10m"}}

func dbSizeName(size, op string) string { return fmt.Sprintf("db_%s_%s", size, op) }

// LargeNames lists the database-size figures, which Run measures after
// Names when Options.Large is set.
var LargeNames = func() []string {
	var names []string
	for _, s := range dbSizes {
		for _, op := range []string{"get_seq", "get_random", "iter"} {
			names = append(names, dbSizeName(s.name, op))
		}
	}
	return names
}()

// dbSizeFigures fills each database, serves it from a leader child to a
// follower in this process, measures, and removes it before the next.
func (r *runner) dbSizeFigures() ([]Figure, error) {
	ctx := r.ctx
	var figs []Figure
	for _, s := range dbSizes {
		directDir, partyDir := r.dir("direct-"+s.name), r.dir("party-"+s.name)
		r.logf("filling goleveldb with %s entries for the database-size figures...", child.Thousands(int64(s.entries)))
		t0 := time.Now()
		if err := fillDirect(directDir, s.entries); err != nil {
			return nil, err
		}
		if err := copyDB(directDir, partyDir); err != nil {
			return nil, err
		}
		r.logf("filled in %v", time.Since(t0).Round(time.Millisecond))
		got, err := func() ([]Figure, error) {
			direct, leader, db, done, err := r.sides(partyDir, directDir)
			if err != nil {
				return nil, err
			}
			defer done()
			partyGet := func(k []byte) ([]byte, error) { return db.Get(ctx, k) }
			directGet := func(k []byte) ([]byte, error) { return direct.Get(k, nil) }
			// Sequential gets read consecutive keys, as a scan by keys
			// would; random gets read keys spread over the whole database,
			// most of them outside any cache.
			inOrder := func(g func(k []byte) ([]byte, error), rep int) op {
				return func(i int, k []byte) error {
					fillKey(k, uint64(rep*r.sz.seqOps+i)%uint64(s.entries))
					_, err := g(k)
					return err
				}
			}
			seqSide := func(g func(k []byte) ([]byte, error)) side {
				return func(rep int) (sample, error) { return sequential(ctx, r.sz.seqOps, inOrder(g, rep)) }
			}
			randSide := func(g func(k []byte) ([]byte, error)) side {
				return func(rep int) (sample, error) {
					return sequential(ctx, r.sz.seqOps, getOp(g, s.entries, uint64(7)<<48|uint64(rep)<<32))
				}
			}
			iterSide := func(open func() cursor) side {
				return func(int) (sample, error) { return scan(ctx, s.entries, valueLen, open) }
			}
			specs := []struct {
				op            string
				ops           int
				party, direct side
			}{
				{"get_seq", r.sz.seqOps, seqSide(partyGet), seqSide(directGet)},
				{"get_random", r.sz.seqOps, randSide(partyGet), randSide(directGet)},
				{"iter", s.entries,
					iterSide(func() cursor { return db.NewIterator(ctx, (*party.Range)(nil)) }),
					iterSide(func() cursor { return direct.NewIterator((*util.Range)(nil), nil) })},
			}
			var out []Figure
			for _, sp := range specs {
				f, err := r.throughputFigure(dbSizeName(s.name, sp.op), sp.ops, "follower", leader, sp.party, sp.direct)
				if err != nil {
					return nil, err
				}
				f.Note = fmt.Sprintf("a database of %s entries", child.Thousands(int64(s.entries)))
				out = append(out, f)
			}
			return out, nil
		}()
		os.RemoveAll(directDir)
		os.RemoveAll(partyDir)
		if err != nil {
			return nil, err
		}
		figs = append(figs, got...)
	}
	return figs, nil
}
