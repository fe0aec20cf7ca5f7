//go:build unix

package party

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/levelparty/party/backend"
	"github.com/levelparty/party/internal/wire"
)

// fzWait bounds each wait of FuzzLeaderConn; reaching it means a hang.
const fzWait = 10 * time.Second

// fzRequests returns frames of valid requests of every kind, for seeds.
func fzRequests() []byte {
	var b Batch
	b.Put([]byte("b1"), []byte("v"))
	b.Delete([]byte("b0"))
	reqs := []wire.Request{
		{Type: wire.TPut, ID: 1, Key: []byte("k"), Value: []byte("v")},
		{Type: wire.TGet, ID: 2, Key: []byte("k")},
		{Type: wire.THas, ID: 3, Key: []byte("nope")},
		{Type: wire.TBatch, ID: 4, Records: b.b.Records()},
		{Type: wire.TSnapshot, ID: 5},
		{Type: wire.TGet, ID: 6, Snap: 1, Key: []byte("k")},
		{Type: wire.TIterOpen, ID: 11, Iter: 1, Snap: 1},
		{Type: wire.TIterSeek, ID: 1, Gen: 1, Mode: backend.SeekFirst, Credit: 2},
		{Type: wire.TIterCredit, ID: 1, Gen: 1, Credit: 1},
		{Type: wire.TIterSeek, ID: 1, Gen: 2, Mode: backend.SeekBefore, Credit: 1, Key: []byte("z")},
		{Type: wire.TIterClose, ID: 1},
		{Type: wire.TSnapshotRelease, ID: 12, Snap: 1},
		{Type: wire.TDelete, ID: 8, Flags: wire.FlagSync, Key: []byte("k")},
		{Type: wire.TDeleteRange, ID: 9, Range: backend.Range{Start: []byte("b"), Limit: []byte("c")}},
		{Type: wire.TStatus, ID: 10},
	}
	var out []byte
	for i := range reqs {
		out = wire.AppendRequest(out, &reqs[i])
	}
	return out
}

// FuzzLeaderConn sends arbitrary bytes to a live leader on a fresh
// connection, prefixed by a valid hello when bit 0 of the first byte is
// set. Whatever arrives, the leader must answer or close, never hang or
// crash, and its well-behaved follower must still put and get.
func FuzzLeaderConn(f *testing.F) {
	reqs := fzRequests()
	f.Add(append([]byte{1}, reqs...))
	f.Add(append([]byte{1}, reqs[:len(reqs)-3]...))
	f.Add(append([]byte{0}, wire.AppendHello(nil, wire.Hello{Version: wire.Version, Flags: wire.HelloNoRetry})...))
	f.Add(append([]byte{0}, wire.AppendHello(nil, wire.Hello{Version: 99})...))
	f.Add([]byte("\x00GET / HTTP/1.1\r\n\r\n"))
	f.Add([]byte{1, 0xff, 0xff, 0xff, 0xff, 1, 0, 0, 0, 1})
	f.Add([]byte{1, 0, 0, 0, 6, 200, 0, 0, 0, 1, 0})
	f.Add([]byte{1, 0, 0, 0, 8, byte(wire.TPut), 0, 0, 0, 1, 0, 9, 'k'})
	f.Add([]byte{})

	dir := f.TempDir()
	leader, err := Open(dir, nil)
	if err != nil {
		f.Fatal(err)
	}
	follower, err := Open(dir, nil)
	if err != nil {
		leader.Close()
		f.Fatal(err)
	}
	f.Cleanup(func() {
		follower.Close()
		leader.Close()
	})
	if !leader.IsLeader() || follower.IsLeader() {
		f.Fatalf("setup: leader %v, follower %v", leader.IsLeader(), follower.IsLeader())
	}
	sock := filepath.Join(dir, "party.sock")
	hello := wire.AppendHello(nil, wire.Hello{Version: wire.Version})
	n := 0

	f.Fuzz(func(t *testing.T, data []byte) {
		var payload []byte
		if len(data) > 0 {
			if data[0]&1 != 0 {
				payload = append(payload, hello...)
			}
			payload = append(payload, data[1:]...)
		}
		c, err := net.DialTimeout("unix", sock, fzWait)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		defer c.Close()
		uc := c.(*net.UnixConn)
		uc.SetDeadline(time.Now().Add(fzWait))
		// Write from another goroutine, so that answers the leader writes
		// meanwhile are read and cannot fill the socket and stall both.
		wrote := make(chan error, 1)
		go func() {
			_, err := uc.Write(payload)
			uc.CloseWrite()
			wrote <- err
		}()
		_, err = io.Copy(io.Discard, uc)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("the leader neither finished with nor closed the connection within %v", fzWait)
		}
		if err != nil && !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("reading: %v", err)
		}
		// The leader may close before reading everything; the write then
		// fails, which is fine.
		<-wrote

		if !leader.IsLeader() {
			t.Fatal("the leader is no longer leader")
		}
		ctx, cancel := context.WithTimeout(context.Background(), fzWait)
		defer cancel()
		n++
		key := fmt.Appendf(nil, "fz-follower-%d", n)
		if err := follower.Put(ctx, key, []byte("ok")); err != nil {
			t.Fatalf("follower put: %v", err)
		}
		if v, err := follower.Get(ctx, key); err != nil || string(v) != "ok" {
			t.Fatalf("follower get: %q, %v", v, err)
		}
		// The leader has dropped the fuzzed connection and everything it
		// held: only the follower is left.
		for {
			st, err := leader.Status(ctx)
			if err != nil {
				t.Fatalf("leader status: %v", err)
			}
			if st.Followers == 1 {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("the leader still counts %d followers, want 1", st.Followers)
			}
			time.Sleep(100 * time.Microsecond)
		}
	})
}
