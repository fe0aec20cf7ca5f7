package partyetcd

import (
	"os"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/levelparty/party"
	"github.com/levelparty/party/etcd/internal/cluster"
)

// The tests run real etcd members, each in a child process (this test
// binary, re-executed), on loopback ports.

func TestMain(m *testing.M) {
	cluster.MaybeMember()
	os.Exit(m.Run())
}

// testCluster is a cluster that ends with its test.
type testCluster struct {
	*cluster.Cluster
	t *testing.T
}

// newCluster starts n members, stopped when the test ends.
func newCluster(t *testing.T, n int) *testCluster {
	t.Helper()
	return newClusterQuota(t, n, 0)
}

// newClusterQuota starts n members with a database quota.
func newClusterQuota(t *testing.T, n int, quota int64) *testCluster {
	t.Helper()
	c, err := cluster.Start(n, t.TempDir(), quota)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	return &testCluster{c, t}
}

// open returns a handle on the cluster under prefix, closed at the end.
func (c *testCluster) open(t testing.TB, prefix string, o *party.Options) *party.DB {
	t.Helper()
	db, err := Open(c.Config(), prefix, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// store returns the Backend of a handle under prefix, for tests that
// look inside it (a watcher's buffer, revisions), closed at the end, and
// the etcd client it uses.
func (c *testCluster) store(t *testing.T, prefix string) (*store, *clientv3.Client) {
	t.Helper()
	cli, err := clientv3.New(c.Config())
	if err != nil {
		t.Fatal(err)
	}
	s, err := newStore(cli, prefix, party.Options{})
	if err != nil {
		cli.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, cli
}
