package party

// Test hooks. Only tests in this package see them.

// openFollowerOnly opens a handle that never becomes leader, so that a test
// can force leader changes under it.
func openFollowerOnly(dir string, o *Options) (*DB, error) { return open(dir, o, true) }

// dropConn closes this follower's connection to its leader, as if the
// leader had died, without changing the leader. It reports whether there
// was a connection to drop.
func (db *DB) dropConn() bool {
	db.mu.Lock()
	c := db.conn
	db.mu.Unlock()
	if c == nil {
		return false
	}
	c.Close()
	return true
}
