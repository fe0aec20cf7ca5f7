package party

import "github.com/levelparty/party/internal/node"

// Test hooks. Only tests in this package see them.

// openFollowerOnly opens a handle that never becomes leader, so that a test
// can force leader changes under it.
func openFollowerOnly(dir string, o *Options) (*DB, error) { return open(dir, o, true) }

// node returns the participant behind db.
func (db *DB) node() *node.Node { return db.b.(*node.Node) }

// dropConn closes this follower's connection to its leader, as if the
// leader had died, without changing the leader. It reports whether there
// was a connection to drop.
func (db *DB) dropConn() bool { return db.node().DropConn() }

// following reports whether db follows a live connection.
func (db *DB) following() bool { return db.node().Following() }

// entriesReceived returns how many iterator entries the follower's
// connection has received from its leader.
func (db *DB) entriesReceived() uint64 { return db.node().EntriesReceived() }

// clone copies b, keeping nil apart from empty.
func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte{}, b...)
}
