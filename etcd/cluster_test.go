package partyetcd

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"

	"github.com/levelparty/party"
)

// The tests run real etcd members, each in a child process (this test
// binary, re-executed), on loopback ports, so that a member can be killed
// with SIGKILL.

const envMember = "PARTYETCD_MEMBER"

func TestMain(m *testing.M) {
	if js := os.Getenv(envMember); js != "" {
		os.Exit(runMember(js))
	}
	os.Exit(m.Run())
}

// memberConfig is what a member child process is told.
type memberConfig struct {
	Name, Dir, Client, Peer, Cluster, State string
	Quota                                   int64 // --quota-backend-bytes; 0: etcd's default
}

// runMember runs one etcd member until its stdin closes (the test ended or
// died) and prints "ready" once it serves.
func runMember(js string) int {
	var mc memberConfig
	if err := json.Unmarshal([]byte(js), &mc); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	cfg := embed.NewConfig()
	cfg.Name, cfg.Dir = mc.Name, mc.Dir
	cu, _ := url.Parse(mc.Client)
	pu, _ := url.Parse(mc.Peer)
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{*cu}, []url.URL{*cu}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{*pu}, []url.URL{*pu}
	cfg.InitialCluster, cfg.ClusterState, cfg.InitialClusterToken = mc.Cluster, mc.State, "party-test"
	cfg.LogLevel = "fatal" // a killed peer's errors are expected
	// A 2-vCPU machine running the race detector: elections must not
	// fire from a busy scheduler, and a killed leader must be replaced
	// within a second or two.
	cfg.TickMs, cfg.ElectionMs = 100, 1000
	cfg.QuotaBackendBytes = mc.Quota
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	select {
	case <-e.Server.ReadyNotify():
		fmt.Println("ready")
	case err := <-e.Err():
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	io.Copy(io.Discard, os.Stdin)
	e.Close()
	return 0
}

// cluster is a set of etcd members run by a test.
type cluster struct {
	t       *testing.T
	members []*member
}

type member struct {
	cfg memberConfig
	cmd *exec.Cmd
	in  io.WriteCloser
}

// freePorts returns n loopback ports free now.
func freePorts(t *testing.T, n int) []int {
	var ls []net.Listener
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}

// newCluster starts n members and waits until they serve.
func newCluster(t *testing.T, n int) *cluster {
	t.Helper()
	return newClusterQuota(t, n, 0)
}

// newClusterQuota starts n members with a database quota and waits until
// they serve.
func newClusterQuota(t *testing.T, n int, quota int64) *cluster {
	t.Helper()
	c := &cluster{t: t}
	ports := freePorts(t, 2*n)
	dir := t.TempDir()
	var initial []string
	for i := range n {
		m := &member{cfg: memberConfig{
			Name:   fmt.Sprintf("m%d", i),
			Dir:    filepath.Join(dir, fmt.Sprintf("m%d", i)),
			Client: fmt.Sprintf("http://127.0.0.1:%d", ports[2*i]),
			Peer:   fmt.Sprintf("http://127.0.0.1:%d", ports[2*i+1]),
			State:  "new",
			Quota:  quota,
		}}
		initial = append(initial, m.cfg.Name+"="+m.cfg.Peer)
		c.members = append(c.members, m)
	}
	for _, m := range c.members {
		m.cfg.Cluster = strings.Join(initial, ",")
	}
	ready := make(chan error, n)
	for _, m := range c.members {
		go func() { ready <- c.start(m) }()
	}
	for range n {
		if err := <-ready; err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(c.stop)
	return c
}

// start runs m's process and waits until it serves.
func (c *cluster) start(m *member) error {
	js, _ := json.Marshal(m.cfg)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envMember+"="+string(js))
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	m.cmd, m.in = cmd, in
	line := make(chan string, 1)
	go func() {
		r := bufio.NewReader(out)
		l, _ := r.ReadString('\n')
		line <- l
		io.Copy(io.Discard, r)
	}()
	select {
	case l := <-line:
		if strings.TrimSpace(l) != "ready" {
			return fmt.Errorf("member %s did not start: %q", m.cfg.Name, l)
		}
	case <-time.After(60 * time.Second):
		return fmt.Errorf("member %s not ready after 60s", m.cfg.Name)
	}
	return nil
}

// endpoints returns the members' client URLs.
func (c *cluster) endpoints() []string {
	var eps []string
	for _, m := range c.members {
		eps = append(eps, m.cfg.Client)
	}
	return eps
}

func (c *cluster) config() clientv3.Config {
	return clientv3.Config{Endpoints: c.endpoints(), DialTimeout: 5 * time.Second, Logger: zap.NewNop()}
}

// open returns a handle on the cluster under prefix, closed at the end.
func (c *cluster) open(t testing.TB, prefix string, o *party.Options) *party.DB {
	t.Helper()
	db, err := Open(c.config(), prefix, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// leader returns the index of the member that leads the cluster.
func (c *cluster) leader() int {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		for i, m := range c.members {
			if m.cmd == nil {
				continue
			}
			cli, err := clientv3.New(clientv3.Config{Endpoints: []string{m.cfg.Client}, DialTimeout: time.Second, Logger: zap.NewNop()})
			if err != nil {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			st, err := cli.Status(ctx, m.cfg.Client)
			cancel()
			cli.Close()
			if err == nil && st.Leader != 0 && st.Leader == st.Header.MemberId {
				return i
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.t.Fatal("no etcd leader after 30s")
	return -1
}

// kill sends SIGKILL to member i.
func (c *cluster) kill(i int) {
	m := c.members[i]
	m.cmd.Process.Signal(syscall.SIGKILL)
	m.cmd.Wait()
	m.cmd = nil
}

// restart starts member i again, on its data directory.
func (c *cluster) restart(i int) {
	c.t.Helper()
	m := c.members[i]
	m.cfg.State = "existing"
	if err := c.start(m); err != nil {
		c.t.Fatal(err)
	}
}

// stop kills every member: their data dies with the test.
func (c *cluster) stop() {
	for i, m := range c.members {
		if m.cmd != nil {
			c.kill(i)
		}
	}
}
