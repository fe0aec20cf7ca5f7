package party

import "github.com/levelparty/party/internal/sublevel"

// Sublevel returns a view of the handle in which every key is relative to
// the sublevel name: it is stored with the prefix "!name!", and a view's
// sublevel b with "!name!!b!", exactly as Node's abstract-level stores
// db.sublevel('name') and db.sublevel('name').sublevel('b'), so Go and
// Node programs sharing a directory see the same namespaces.
//
// Every method of the view works on its keys only: Get, Put, Write's
// batches, DeleteRange, iterators (a nil range is the whole sublevel),
// snapshots, transactions and watches take and return relative keys and
// never reach a key outside the sublevel. CompactRange and SizeOf take
// relative ranges; Property, Status, IsLeader and Elected are the
// handle's. A transaction or Update on a view holds the database's one
// lease, as on the handle.
//
// Names follow abstract-level's rules: leading and trailing '!' are
// dropped and the bytes left must be printable ASCII from '#' to '~'
// (letters, digits and most punctuation; no space, '!' or '"'). For a
// name abstract-level refuses, every method of the view returns an error
// wrapping ErrSublevelName.
//
// Closing a view does not close the handle (later calls on that view
// return ErrClosed); closing the handle ends all its views.
func (db *DB) Sublevel(name string) *DB {
	root, parent, err := db.b, []byte(nil), error(nil)
	if v, ok := db.b.(*sublevel.View); ok {
		root, parent, err = v.Root(), v.KeyPrefix(), v.Err()
	}
	prefix, perr := sublevel.Prefix(parent, name)
	if err == nil {
		err = perr
	}
	return &DB{dir: db.dir, b: sublevel.New(root, prefix, err), txTimeout: db.txTimeout, noRetry: db.noRetry}
}

// isView reports whether db is a sublevel's view.
func (db *DB) isView() bool {
	_, ok := db.b.(*sublevel.View)
	return ok
}
