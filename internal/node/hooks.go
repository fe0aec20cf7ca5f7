package node

// Hooks for the tests of the root package.

// DropConn closes this follower's connection to its leader, as if the
// leader had died, without changing the leader. It reports whether there
// was a connection to drop.
func (n *Node) DropConn() bool {
	r := n.via.Load()
	if r == nil || r.conn == nil {
		return false
	}
	r.conn.Close()
	return true
}

// Queued returns how many calls wait for a leader.
func (n *Node) Queued() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.queue)
}

// Issued returns how many calls have been dispatched so far.
func (n *Node) Issued() uint64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.seq
}

// Following reports whether this handle follows a live connection.
func (n *Node) Following() bool {
	r := n.via.Load()
	return r != nil && r.conn != nil && r.conn.Err() == nil
}

// EntriesReceived returns how many iterator entries this follower's
// current connection has received, 0 without one.
func (n *Node) EntriesReceived() uint64 {
	r := n.via.Load()
	if r == nil || r.conn == nil {
		return 0
	}
	return r.conn.EntriesReceived()
}
