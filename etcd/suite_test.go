package partyetcd

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/levelparty/party"
	"github.com/levelparty/party/partytest"
)

// TestSuite runs party's conformance suite on a 3-member cluster: two
// handles (two etcd clients) on one prefix per part.
func TestSuite(t *testing.T) {
	c := newCluster(t, 3)
	var n atomic.Int64
	partytest.Run(t, func(t *testing.T) []*party.DB {
		prefix := fmt.Sprintf("suite/%d/", n.Add(1))
		return []*party.DB{c.open(t, prefix, nil), c.open(t, prefix, nil)}
	}, partytest.Features{Optimistic: true, AtomicIteration: true})
}
