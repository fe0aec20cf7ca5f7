// Package cluster runs real etcd members for partyetcd's tests and
// benchmark, each in a child process (the calling program, re-executed)
// on loopback ports, so that a member can be killed with SIGKILL.
//
// A program that uses it calls MaybeMember first thing in main or
// TestMain: in a member's process it runs the member and exits.
package cluster

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

const envMember = "PARTYETCD_MEMBER"

// MaybeMember runs an etcd member and exits if this process was started as
// one; otherwise it returns at once.
func MaybeMember() {
	if js := os.Getenv(envMember); js != "" {
		os.Exit(runMember(js))
	}
}

// config is what a member's process is told.
type config struct {
	Name, Dir, Client, Peer, Cluster, State string
	Quota                                   int64 // --quota-backend-bytes; 0: etcd's default
}

// runMember runs one etcd member until its stdin closes (its parent ended
// or died) and prints "ready" once it serves.
func runMember(js string) int {
	var mc config
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

// Cluster is a set of etcd members.
type Cluster struct {
	members []*member
}

type member struct {
	cfg config
	cmd *exec.Cmd
	in  io.WriteCloser // the member's stdin: it ends when this closes
}

// freePorts returns n loopback ports free now.
func freePorts(n int) ([]int, error) {
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// Start starts n members with their data under dir (quota: their
// database quota, 0 for etcd's default) and returns once they serve.
func Start(n int, dir string, quota int64) (*Cluster, error) {
	ports, err := freePorts(2 * n)
	if err != nil {
		return nil, err
	}
	c := &Cluster{}
	var initial []string
	for i := range n {
		m := &member{cfg: config{
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
	ready := make(chan error, n)
	for _, m := range c.members {
		m.cfg.Cluster = strings.Join(initial, ",")
		go func() { ready <- m.start() }()
	}
	var errs []error
	for range n {
		errs = append(errs, <-ready)
	}
	if err := errors.Join(errs...); err != nil {
		c.Stop()
		return nil, err
	}
	return c, nil
}

// start runs m's process and waits until it serves.
func (m *member) start() error {
	js, _ := json.Marshal(m.cfg)
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), envMember+"="+string(js))
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe() // closed when this process dies
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
			return fmt.Errorf("etcd member %s did not start: %q", m.cfg.Name, l)
		}
	case <-time.After(60 * time.Second):
		return fmt.Errorf("etcd member %s not ready after 60s", m.cfg.Name)
	}
	return nil
}

// Endpoints returns the members' client URLs.
func (c *Cluster) Endpoints() []string {
	var eps []string
	for _, m := range c.members {
		eps = append(eps, m.cfg.Client)
	}
	return eps
}

// Config returns a client configuration for every member.
func (c *Cluster) Config() clientv3.Config {
	return clientv3.Config{Endpoints: c.Endpoints(), DialTimeout: 5 * time.Second, Logger: zap.NewNop()}
}

// Leader returns the index of the member that leads, waiting up to 30 s
// for one.
func (c *Cluster) Leader() (int, error) {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		for i, m := range c.members {
			if m.cmd != nil && m.leads() {
				return i, nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return -1, errors.New("no etcd leader after 30s")
}

func (m *member) leads() bool {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{m.cfg.Client}, DialTimeout: time.Second, Logger: zap.NewNop()})
	if err != nil {
		return false
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	st, err := cli.Status(ctx, m.cfg.Client)
	return err == nil && st.Leader != 0 && st.Leader == st.Header.MemberId
}

// Kill sends SIGKILL to member i and waits for its end.
func (c *Cluster) Kill(i int) {
	m := c.members[i]
	if m.cmd == nil {
		return
	}
	m.cmd.Process.Kill()
	m.cmd.Wait()
	m.cmd = nil
}

// Signal sends sig to member i (SIGSTOP and SIGCONT, for instance).
func (c *Cluster) Signal(i int, sig os.Signal) error {
	m := c.members[i]
	if m.cmd == nil {
		return fmt.Errorf("member %s is not running", m.cfg.Name)
	}
	return m.cmd.Process.Signal(sig)
}

// Restart starts member i again, on its data directory.
func (c *Cluster) Restart(i int) error {
	m := c.members[i]
	m.cfg.State = "existing"
	return m.start()
}

// Stop kills every member.
func (c *Cluster) Stop() {
	for i := range c.members {
		c.Kill(i)
	}
}
