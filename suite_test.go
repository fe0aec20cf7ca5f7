package party_test

import (
	"testing"

	"github.com/levelparty/party"
	"github.com/levelparty/party/partytest"
)

// TestSuite runs the conformance suite that every backend runs (partyetcd
// too) on a directory: a leader handle and a follower handle, whose calls
// cross the socket.
func TestSuite(t *testing.T) {
	partytest.Run(t, func(t *testing.T) []*party.DB {
		dir := t.TempDir()
		var dbs []*party.DB
		for range 2 {
			db, err := party.Open(dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			dbs = append(dbs, db)
		}
		if !dbs[0].IsLeader() || dbs[1].IsLeader() {
			t.Fatal("the first handle should lead and the second follow")
		}
		return dbs
	}, partytest.Features{})
}
