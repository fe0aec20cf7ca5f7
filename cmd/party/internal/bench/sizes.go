package bench

import (
	"encoding/binary"
	"fmt"

	"github.com/levelparty/party"
	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/util"
)

// The value-size figures: puts, gets and iteration of values of 100 B,
// 4 KiB and 256 KiB, in MB/s, party against goleveldb directly.

// valueSizes are the sizes measured, with their names.
var valueSizes = []struct {
	len  int
	name string
}{{100, "100b"}, {4 << 10, "4k"}, {256 << 10, "256k"}}

// sizeInFlight is the number of goroutines of the put and get figures.
const sizeInFlight = 16

func sizeName(op, size string) string { return fmt.Sprintf("follower_%s_%s", op, size) }

// sizeNames lists the value-size figures in order.
func sizeNames() []string {
	var names []string
	for _, v := range valueSizes {
		for _, op := range []string{"put", "get", "iter"} {
			names = append(names, sizeName(op, v.name))
		}
	}
	return names
}

// sizeFigures writes, reads and iterates sizeBytes of values of each size,
// on the follower db and on direct.
func (r *runner) sizeFigures(db *party.DB, direct *leveldb.DB) ([]Figure, error) {
	ctx := r.ctx
	var figs []Figure
	for vi, vs := range valueSizes {
		n := max(64, r.sz.sizeBytes/vs.len)
		prefix := fmt.Sprintf("bench/%d:", vi) // 8 bytes
		key := func(k []byte, i uint64) {
			copy(k, prefix)
			binary.BigEndian.PutUint64(k[8:], i)
		}
		v := make([]byte, vs.len)
		for i := range v {
			v[i] = byte(i)
		}
		partyPut := func(k, val []byte) error { return db.Put(ctx, k, val) }
		directPut := func(k, val []byte) error { return direct.Put(k, val, nil) }
		put := func(p func(k, v []byte) error) side {
			return func(int) (sample, error) {
				return concurrent(ctx, n, sizeInFlight, func(i int, k []byte) error {
					key(k, uint64(i)) // every repetition writes the same keys again
					return p(k, v)
				})
			}
		}
		get := func(g func(k []byte) ([]byte, error)) side {
			return func(rep int) (sample, error) {
				return concurrent(ctx, n, sizeInFlight, func(i int, k []byte) error {
					key(k, scramble(uint64(rep)<<32|uint64(i))%uint64(n))
					got, err := g(k)
					if err == nil && len(got) != vs.len {
						err = fmt.Errorf("bench: get: %d bytes, want %d", len(got), vs.len)
					}
					return err
				})
			}
		}
		start, limit := make([]byte, keyLen), make([]byte, keyLen)
		key(start, 0)
		key(limit, uint64(n))
		specs := []struct {
			op            string
			party, direct side
		}{
			{"put", put(partyPut), put(directPut)},
			{"get", get(func(k []byte) ([]byte, error) { return db.Get(ctx, k) }), get(func(k []byte) ([]byte, error) { return direct.Get(k, nil) })},
			{"iter",
				func(int) (sample, error) {
					return scan(ctx, n, vs.len, func() cursor { return db.NewIterator(ctx, &party.Range{Start: start, Limit: limit}) })
				},
				func(int) (sample, error) {
					return scan(ctx, n, vs.len, func() cursor { return direct.NewIterator(&util.Range{Start: start, Limit: limit}, nil) })
				}},
		}
		for _, s := range specs {
			f, err := r.throughputFigure(sizeName(s.op, vs.name), n, "follower", nil, s.party, s.direct)
			if err != nil {
				return nil, err
			}
			f.ValueLen = vs.len
			f.Note = fmt.Sprintf("%d-byte values", vs.len)
			if s.op != "iter" {
				f.Note += fmt.Sprintf(", %d goroutines", sizeInFlight)
			}
			figs = append(figs, f)
		}
	}
	return figs, nil
}
