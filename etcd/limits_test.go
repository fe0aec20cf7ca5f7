package partyetcd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/levelparty/party"
)

// TestLimits checks that etcd's limits surface as clear errors, with
// nothing written: a batch over --max-txn-ops, a value over
// --max-request-bytes, a full database quota; and what a cluster cannot
// do or say.
func TestLimits(t *testing.T) {
	c := newClusterQuota(t, 1, 2<<20)
	db := c.open(t, "limits/", nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	var b party.Batch
	for i := range 200 {
		b.Put(fmt.Appendf(nil, "k%03d", i), nil)
	}
	err := db.Write(ctx, &b)
	if !errors.Is(err, party.ErrTooLarge) || !strings.Contains(err.Error(), "--max-txn-ops") {
		t.Errorf("a batch of 200 keys: %v, want ErrTooLarge naming --max-txn-ops", err)
	}
	for _, size := range []int{1800 << 10, 3 << 20} { // over the server's limit, over the client's
		err = db.Put(ctx, []byte("big"), bytes.Repeat([]byte("x"), size))
		if !errors.Is(err, party.ErrTooLarge) || !strings.Contains(err.Error(), "--max-request-bytes") {
			t.Errorf("a %d-byte value: %v, want ErrTooLarge naming --max-request-bytes", size, err)
		}
	}
	if n := count(t, db); n != 0 {
		t.Errorf("%d keys written by refused requests", n)
	}

	// Fill the 2 MiB quota.
	for i := 0; ; i++ {
		err := db.Put(ctx, fmt.Appendf(nil, "fill%03d", i), bytes.Repeat([]byte("x"), 200<<10))
		if err == nil {
			continue
		}
		if !strings.Contains(err.Error(), "--quota-backend-bytes") {
			t.Errorf("writing past the quota: %v, want an error naming --quota-backend-bytes", err)
		}
		break
	}

	for name, err := range map[string]error{
		"CompactRange": db.CompactRange(ctx, nil),
		"SizeOf":       func() error { _, err := db.SizeOf(ctx, nil); return err }(),
		"Property":     func() error { _, err := db.Property(ctx, "leveldb.stats"); return err }(),
	} {
		if !errors.Is(err, party.ErrNotSupported) {
			t.Errorf("%s: %v, want ErrNotSupported", name, err)
		}
	}
	if db.IsLeader() {
		t.Error("a handle on etcd says it leads")
	}
	st, err := db.Status(ctx)
	if err != nil || st.IsLeader || st.Followers != 0 || st.DiskSize == 0 || st.LeaderID == "" {
		t.Errorf("Status of a 1-member cluster: %+v, %v", st, err)
	}

	if _, err := Open(c.Config(), "", nil); err == nil || !strings.Contains(err.Error(), "empty prefix") {
		t.Errorf("Open with an empty prefix: %v", err)
	}
	start := time.Now()
	_, err = Open(clientv3.Config{Endpoints: []string{"127.0.0.1:1"}, Logger: zap.NewNop()}, "x/", &party.Options{OpenTimeout: 500 * time.Millisecond})
	if err == nil || time.Since(start) > 10*time.Second {
		t.Errorf("Open with no member answering: %v after %v", err, time.Since(start))
	}
}

func count(t *testing.T, db *party.DB) int {
	it := db.NewIterator(context.Background(), nil)
	defer it.Release()
	n := 0
	for it.Next() {
		n++
	}
	must(t, it.Error())
	return n
}
