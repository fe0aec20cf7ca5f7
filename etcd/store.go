package partyetcd

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/levelparty/party"
	"github.com/levelparty/party/backend"
)

// Open connects to the etcd cluster cfg names and returns a handle whose
// keys are stored under prefix, which must not be empty (etcd has no empty
// key; party's keys may be empty). End it with a separator, such as "/":
// a prefix "app" also holds the keys of a database under "app2". It fails if no member answers within
// o.OpenTimeout (10 s by default). Of o, NoRetry, TxTimeout and
// OpenTimeout apply. A nil cfg.Logger is replaced by one that discards.
// Closing the handle closes the etcd client.
func Open(cfg clientv3.Config, prefix string, o *party.Options) (*party.DB, error) {
	if prefix == "" {
		return nil, errors.New("partyetcd: open: empty prefix: give the key prefix under which the database lives")
	}
	var opts party.Options
	if o != nil {
		opts = *o
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	cli, err := clientv3.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("partyetcd: open: %w", err)
	}
	s, err := newStore(cli, prefix, opts)
	if err != nil {
		cli.Close()
		return nil, err
	}
	return party.OpenBackend(s, &opts), nil
}

// store is the Backend of a handle on etcd.
type store struct {
	cli     *clientv3.Client
	prefix  string // every key of the database is under it
	end     string // the first key after every key under prefix ("\x00": none)
	hidden  string // prefix + backend.HiddenPrefix(): party's own keys
	clock   string // the clock of deletes, under hidden
	noRetry bool
	holder  [16]byte // random: names this handle's commit records
	elected chan struct{}

	mu     sync.Mutex
	seq    uint64   // number of the last commit
	known  []string // commit records whose outcome this handle knows
	closed bool
	done   chan struct{} // closed by Close
}

func newStore(cli *clientv3.Client, prefix string, o party.Options) (*store, error) {
	s := &store{
		cli:     cli,
		prefix:  prefix,
		end:     clientv3.GetPrefixRangeEnd(prefix),
		hidden:  prefix + string(backend.HiddenPrefix()),
		noRetry: o.NoRetry,
		elected: make(chan struct{}),
		done:    make(chan struct{}),
	}
	s.clock = s.hidden + "deletes"
	rand.Read(s.holder[:])
	timeout := o.OpenTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if _, err := cli.Get(ctx, prefix, clientv3.WithCountOnly()); err != nil {
		return nil, fmt.Errorf("partyetcd: open: no etcd member answered within %v: %w", timeout, err)
	}
	return s, nil
}

// key returns the stored form of key.
func (s *store) key(k []byte) string { return s.prefix + string(k) }

// check returns ErrClosed once the handle is closed.
func (s *store) check() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return backend.ErrClosed
	}
	return nil
}

// transient reports whether err means the member or the connection failed,
// so that the operation may be sent again.
func transient(err error) bool {
	var ee rpctypes.EtcdError
	if errors.As(err, &ee) {
		return ee.Code() == codes.Unavailable
	}
	return status.Code(err) == codes.Unavailable
}

// do runs op, again after transient failures until ctx ends (or at once
// with NoRetry, as party.ErrLeaderLost), and turns etcd's errors into
// party's.
func (s *store) do(ctx context.Context, op func(ctx context.Context) error) error {
	return s.retry(ctx, op, s.noRetry)
}

// retry runs op, again after transient failures until ctx ends, unless
// once, and turns etcd's errors into party's.
func (s *store) retry(ctx context.Context, op func(ctx context.Context) error, once bool) error {
	if err := s.check(); err != nil {
		return err
	}
	wait := 10 * time.Millisecond
	for {
		err := op(ctx)
		if err == nil || !transient(err) || ctx.Err() != nil {
			return s.convert(ctx, err)
		}
		if once {
			return fmt.Errorf("%w: %w", backend.ErrLeaderLost, err)
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return ctx.Err()
		case <-s.done:
			return backend.ErrClosed
		}
		wait = min(2*wait, 500*time.Millisecond)
	}
}

// refused reports whether err means the cluster (or the client, before
// sending) refused a request, so that it was not applied.
func refused(err error) bool {
	for _, e := range []error{rpctypes.ErrTooManyOps, rpctypes.ErrRequestTooLarge, rpctypes.ErrNoSpace, rpctypes.ErrDuplicateKey, rpctypes.ErrCompacted} {
		if errors.Is(err, e) {
			return true
		}
	}
	var ee rpctypes.EtcdError
	if errors.As(err, &ee) {
		return ee.Code() == codes.InvalidArgument
	}
	st, _ := status.FromError(err)
	return st.Code() == codes.InvalidArgument || (st.Code() == codes.ResourceExhausted && strings.Contains(st.Message(), "larger than max"))
}

// convert turns an error of etcd's client into one that says what to do.
func (s *store) convert(ctx context.Context, err error) error {
	switch {
	case err == nil:
		return nil
	case s.check() != nil:
		return backend.ErrClosed
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.Is(err, rpctypes.ErrTooManyOps):
		return fmt.Errorf("%w: %w: the batch has more distinct keys (or the transaction read more) than the cluster allows in one transaction (etcd server flag --max-txn-ops, 128 by default); nothing was written", backend.ErrTooLarge, err)
	case errors.Is(err, rpctypes.ErrRequestTooLarge):
		return fmt.Errorf("%w: %w: the request is larger than the cluster accepts (etcd server flag --max-request-bytes, 1.5 MiB by default); nothing was written", backend.ErrTooLarge, err)
	case errors.Is(err, rpctypes.ErrNoSpace):
		return fmt.Errorf("partyetcd: %w: the cluster's database is full (etcd server flag --quota-backend-bytes): compact and defragment it (etcdctl compact, defrag, alarm disarm) or raise the quota", err)
	case status.Code(err) == codes.ResourceExhausted && strings.Contains(err.Error(), "larger than max"):
		return fmt.Errorf("%w: %w: the request is larger than etcd's client sends (clientv3.Config.MaxCallSendMsgSize, 2 MiB by default; the server's --max-request-bytes bounds it too); nothing was written", backend.ErrTooLarge, err)
	case errors.Is(err, rpctypes.ErrCompacted):
		return fmt.Errorf("%w: %w: etcd compacted the revision this read needed", backend.ErrSnapshotLost, err)
	}
	return fmt.Errorf("partyetcd: %w", err)
}

// Get implements backend.Reader.
func (s *store) Get(ctx context.Context, key []byte) ([]byte, error) {
	v, _, _, err := s.getAt(ctx, key, 0, false)
	return v, err
}

// Has implements backend.Reader.
func (s *store) Has(ctx context.Context, key []byte) (bool, error) {
	_, modRev, _, err := s.getAt(ctx, key, 0, true)
	if errors.Is(err, backend.ErrNotFound) {
		return false, nil
	}
	return modRev != 0, err
}

// getAt reads key at rev (0: the latest; without its value if keyOnly)
// and returns its value, its mod revision and the revision read at. An
// absent key is ErrNotFound, with the revision read at.
func (s *store) getAt(ctx context.Context, key []byte, rev int64, keyOnly bool) (v []byte, modRev, at int64, err error) {
	if backend.Hidden(key) {
		return nil, 0, rev, backend.ErrNotFound
	}
	opts := []clientv3.OpOption{clientv3.WithRev(rev)}
	if keyOnly {
		opts = append(opts, clientv3.WithKeysOnly())
	}
	var resp *clientv3.GetResponse
	err = s.do(ctx, func(ctx context.Context) (err error) {
		resp, err = s.cli.Get(ctx, s.key(key), opts...)
		return err
	})
	if err != nil {
		return nil, 0, 0, err
	}
	at = resp.Header.Revision
	if rev != 0 {
		at = rev
	}
	if len(resp.Kvs) == 0 {
		return nil, 0, at, backend.ErrNotFound
	}
	kv := resp.Kvs[0]
	v = kv.Value
	if v == nil {
		v = []byte{}
	}
	return v, kv.ModRevision, at, nil
}

// checkWrite refuses party's own keys.
func checkWrite(keys ...[]byte) error {
	for _, k := range keys {
		if backend.Hidden(k) {
			return fmt.Errorf("%w: keys starting with %q are party's own", backend.ErrHiddenKey, backend.HiddenPrefix())
		}
	}
	return nil
}

// Put implements backend.Backend.
func (s *store) Put(ctx context.Context, key, value []byte) error {
	if err := checkWrite(key); err != nil {
		return err
	}
	k, v := s.key(key), string(value)
	return s.do(ctx, func(ctx context.Context) error {
		_, err := s.cli.Put(ctx, k, v)
		return err
	})
}

// Delete implements backend.Backend. Deleting a present key also moves
// the clock of deletes, which optimistic transactions that iterated check:
// etcd's range comparisons see no deleted key.
func (s *store) Delete(ctx context.Context, key []byte) error {
	if err := checkWrite(key); err != nil {
		return err
	}
	k := s.key(key)
	return s.do(ctx, func(ctx context.Context) error {
		// Deleting an absent key changes nothing: no conflict either.
		_, err := s.cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(k), ">", 0)).
			Then(clientv3.OpDelete(k), clientv3.OpPut(s.clock, "")).Commit()
		return err
	})
}

// ops returns the etcd operations of a batch: one per distinct key (etcd
// refuses a key twice in a transaction), the last for each, which is what
// applying the batch in order leaves; and whether any deletes.
func (s *store) ops(b *backend.Batch) (ops []clientv3.Op, deletes bool, err error) {
	last := map[string]int{}
	b.ForEach(func(put bool, k, v []byte) {
		if err == nil {
			err = checkWrite(k)
		}
		op := clientv3.OpDelete(s.key(k))
		if put {
			op = clientv3.OpPut(s.key(k), string(v))
		} else {
			deletes = true
		}
		if i, ok := last[string(k)]; ok {
			ops[i] = op
			return
		}
		last[string(k)] = len(ops)
		ops = append(ops, op)
	})
	if deletes {
		ops = append(ops, clientv3.OpPut(s.clock, ""))
	}
	return ops, deletes, err
}

// Write implements backend.Backend: one etcd transaction.
func (s *store) Write(ctx context.Context, b *backend.Batch) error {
	ops, _, err := s.ops(b)
	if err != nil || len(ops) == 0 {
		return err
	}
	return s.do(ctx, func(ctx context.Context) error {
		_, err := s.cli.Txn(ctx).Then(ops...).Commit()
		return err
	})
}

// span is a range of stored keys; end "" is unbounded (etcd's "\x00").
type span struct{ start, end string }

// span returns the stored keys of r, which stay under the prefix.
func (s *store) span(r backend.Range) span {
	sp := span{start: s.prefix, end: s.end}
	if sp.end == "\x00" {
		sp.end = ""
	}
	if r.Start != nil {
		sp.start = s.key(r.Start)
	}
	if r.Limit != nil {
		sp.end = s.key(r.Limit)
	}
	return sp
}

func (sp span) empty() bool { return sp.end != "" && sp.start >= sp.end }

// etcdEnd returns the end as etcd's range_end.
func (sp span) etcdEnd() string {
	if sp.end == "" {
		return "\x00"
	}
	return sp.end
}

// visible splits sp around party's own keys.
func (s *store) visible(sp span) []span {
	hidEnd := clientv3.GetPrefixRangeEnd(s.hidden)
	var out []span
	if a := (span{sp.start, minEnd(sp.end, s.hidden)}); !a.empty() {
		out = append(out, a)
	}
	if b := (span{max(sp.start, hidEnd), sp.end}); !b.empty() {
		out = append(out, b)
	}
	return out
}

// minEnd returns the smaller end, "" being unbounded.
func minEnd(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return min(a, b)
}

// DeleteRange implements backend.Backend: one etcd transaction, atomic,
// which leaves party's own keys alone.
func (s *store) DeleteRange(ctx context.Context, r backend.Range) error {
	var ops []clientv3.Op
	for _, sp := range s.visible(s.span(r)) {
		ops = append(ops, clientv3.OpDelete(sp.start, clientv3.WithRange(sp.etcdEnd())))
	}
	if len(ops) == 0 {
		return nil
	}
	ops = append(ops, clientv3.OpPut(s.clock, ""))
	return s.do(ctx, func(ctx context.Context) error {
		_, err := s.cli.Txn(ctx).Then(ops...).Commit()
		return err
	})
}

// revision returns the cluster's current revision.
func (s *store) revision(ctx context.Context) (int64, error) {
	var resp *clientv3.GetResponse
	err := s.do(ctx, func(ctx context.Context) (err error) {
		resp, err = s.cli.Get(ctx, s.prefix, clientv3.WithCountOnly())
		return err
	})
	if err != nil {
		return 0, err
	}
	return resp.Header.Revision, nil
}

// CompactRange implements backend.Backend: not on etcd.
func (s *store) CompactRange(context.Context, backend.Range) error {
	return fmt.Errorf("partyetcd: CompactRange: %w: etcd compacts by revision for the whole cluster (etcdctl compact, defrag)", backend.ErrNotSupported)
}

// SizeOf implements backend.Backend: not on etcd.
func (s *store) SizeOf(context.Context, []backend.Range) ([]int64, error) {
	return nil, fmt.Errorf("partyetcd: SizeOf: %w: etcd keeps no sizes per key range (Status gives the database's size)", backend.ErrNotSupported)
}

// Property implements backend.Backend: not on etcd.
func (s *store) Property(_ context.Context, name string) (string, error) {
	return "", fmt.Errorf("partyetcd: Property(%q): %w: properties are goleveldb's", name, backend.ErrNotSupported)
}

// IsLeader implements backend.Backend: a handle on etcd serves no one.
func (s *store) IsLeader() bool { return false }

// Elected implements backend.Backend: never closed.
func (s *store) Elected() <-chan struct{} { return s.elected }

// Close implements backend.Backend.
func (s *store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.done)
	known := s.known
	s.known = nil
	s.mu.Unlock()
	// The records of commits known to have applied are not needed by
	// anyone: delete them, if the cluster answers at once.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	for len(known) > 0 {
		n := min(len(known), 100)
		var ops []clientv3.Op
		for _, r := range known[:n] {
			ops = append(ops, clientv3.OpDelete(r))
		}
		known = known[n:]
		if _, err := s.cli.Txn(ctx).Then(ops...).Commit(); err != nil {
			break
		}
	}
	cancel()
	if err := s.cli.Close(); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("partyetcd: close: %w", err)
	}
	return nil
}
