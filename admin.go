package party

import (
	"context"

	"github.com/levelparty/party/backend"
)

// CompactRange compacts the keys in r (every key if r is nil) on the
// leader, wherever it is called, with goleveldb's meaning: it rewrites the
// tables that hold them, dropping deleted and overwritten entries. It
// returns once done.
func (db *DB) CompactRange(ctx context.Context, r *Range) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return db.b.CompactRange(ctx, r.backend())
}

// SizeOf returns the approximate bytes on disk of the keys in each range
// (every key for a nil range; a range without a Limit ends past the last
// key), from the leader, with goleveldb's meaning: data still in the
// journal and memtable is not counted. At most 1024 ranges at once.
func (db *DB) SizeOf(ctx context.Context, ranges ...*Range) ([]int64, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	rs := make([]backend.Range, len(ranges))
	for i, r := range ranges {
		rs[i] = r.backend()
	}
	return db.b.SizeOf(ctx, rs)
}

// Property returns a property of the leader's engine, with the names and
// meanings of goleveldb's GetProperty: "leveldb.num-files-at-level<N>",
// "leveldb.stats", "leveldb.iostats", "leveldb.writedelay",
// "leveldb.sstables", "leveldb.blockpool", "leveldb.cachedblock",
// "leveldb.openedtables", "leveldb.alivesnaps", "leveldb.aliveiters". An
// unknown name is ErrNotFound, as in goleveldb.
func (db *DB) Property(ctx context.Context, name string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	return db.b.Property(ctx, name)
}
