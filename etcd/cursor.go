package partyetcd

import (
	"context"
	"errors"
	"slices"
	"sync"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/levelparty/party/backend"
)

// Page sizes of a cursor: a short scan reads a short page; a long one
// doubles its pages up to the largest.
const (
	firstPage = 16
	lastPage  = 1024
)

// NewCursor implements backend.Reader: a cursor at the current revision.
// The read that learns the revision also reads the range's first page,
// which a first move to First uses: a short scan costs one round trip.
func (s *store) NewCursor(ctx context.Context, r backend.Range) (backend.Cursor, error) {
	c := s.cursorAt(r, 0, nil)
	parts := s.visible(c.sp)
	if len(parts) == 0 {
		rev, err := s.revision(ctx)
		if err != nil {
			return nil, err
		}
		c.rev = rev
		return c, nil
	}
	c.size = firstPage
	resp, err := c.get(ctx, parts[0])
	if err != nil {
		return nil, err
	}
	c.rev, c.pre = resp.Header.Revision, resp
	return c, nil
}

// cursorAt returns a cursor over r at rev. seen, if not nil, is told every
// key the cursor returns (a transaction's read set).
func (s *store) cursorAt(r backend.Range, rev int64, seen func(key string, modRev int64)) *cursor {
	return &cursor{s: s, sp: s.span(r), rev: rev, seen: seen}
}

// cursor reads a range at one revision, a page at a time.
type cursor struct {
	s    *store
	sp   span
	rev  int64
	seen func(key string, modRev int64)

	inTx     bool                  // a transaction's: a compacted revision is a conflict
	pre      *clientv3.GetResponse // the first page forward, read by NewCursor
	page     []*mvccpb.KeyValue
	i        int
	more     bool // keys past the page in the direction
	backward bool
	size     int64 // the next page's size
}

// Seek implements backend.Cursor.
func (c *cursor) Seek(ctx context.Context, mode backend.SeekMode, key []byte) ([]byte, []byte, bool, error) {
	sp := c.sp
	switch mode {
	case backend.SeekGE:
		sp.start = max(sp.start, c.s.key(key))
	case backend.SeekAfter:
		sp.start = max(sp.start, c.s.key(key)+"\x00")
	case backend.SeekBefore:
		sp.end = minEnd(sp.end, c.s.key(key))
	}
	c.backward = mode.Backward()
	c.size = firstPage
	if c.backward {
		// etcd reads the whole range for a descending read whatever its
		// limit: fewer, larger pages.
		c.size = lastPage / 4
	}
	if pre := c.pre; pre != nil {
		c.pre = nil
		if mode == backend.SeekFirst {
			c.size = min(2*c.size, lastPage)
			return c.fetch(ctx, sp, pre)
		}
	}
	return c.fetch(ctx, sp, nil)
}

// Next implements backend.Cursor.
func (c *cursor) Next(ctx context.Context) ([]byte, []byte, bool, error) {
	if c.i < len(c.page) {
		c.i++
	}
	if c.i < len(c.page) {
		return c.at()
	}
	if !c.more || len(c.page) == 0 {
		return nil, nil, false, nil
	}
	last := string(c.page[len(c.page)-1].Key)
	sp := c.sp
	if c.backward {
		sp.end = last
	} else {
		sp.start = last + "\x00"
	}
	return c.fetch(ctx, sp, nil)
}

// get reads a page of sp in the cursor's direction, at its revision (at
// the latest while it has none).
func (c *cursor) get(ctx context.Context, sp span) (resp *clientv3.GetResponse, err error) {
	order := clientv3.SortAscend
	if c.backward {
		order = clientv3.SortDescend
	}
	err = c.s.do(ctx, func(ctx context.Context) (err error) {
		resp, err = c.s.cli.Get(ctx, sp.start, clientv3.WithRange(sp.etcdEnd()), clientv3.WithRev(c.rev),
			clientv3.WithLimit(c.size), clientv3.WithSort(clientv3.SortByKey, order))
		return err
	})
	if err != nil && c.inTx && errors.Is(err, backend.ErrSnapshotLost) {
		err = txCompacted(err)
	}
	return resp, err
}

// fetch reads the first page of sp's keys in the cursor's direction, in
// the parts of sp that are not party's own keys, and returns its first
// entry. pre, if not nil, is the first part's page, already read.
func (c *cursor) fetch(ctx context.Context, sp span, pre *clientv3.GetResponse) ([]byte, []byte, bool, error) {
	c.page, c.i, c.more = nil, 0, false
	parts := c.s.visible(sp)
	if c.backward {
		slices.Reverse(parts)
	}
	for i, part := range parts {
		resp := pre
		pre = nil
		if resp == nil {
			var err error
			if resp, err = c.get(ctx, part); err != nil {
				return nil, nil, false, err
			}
			c.size = min(2*c.size, lastPage)
		}
		if len(resp.Kvs) > 0 {
			c.page = resp.Kvs
			c.more = resp.More || i < len(parts)-1
			return c.at()
		}
	}
	return nil, nil, false, nil
}

// at returns the entry at the cursor.
func (c *cursor) at() ([]byte, []byte, bool, error) {
	if c.i >= len(c.page) {
		return nil, nil, false, nil
	}
	kv := c.page[c.i]
	if c.seen != nil {
		c.seen(string(kv.Key), kv.ModRevision)
	}
	v := kv.Value
	if v == nil {
		v = []byte{}
	}
	return kv.Key[len(c.s.prefix):], v, true, nil
}

// Release implements backend.Cursor.
func (c *cursor) Release() {}

// GetSnapshot implements backend.Backend: a revision.
func (s *store) GetSnapshot(ctx context.Context) (backend.Snapshot, error) {
	rev, err := s.revision(ctx)
	if err != nil {
		return nil, err
	}
	return &snapshot{s: s, rev: rev}, nil
}

// snapshot reads at one revision.
type snapshot struct {
	s   *store
	rev int64

	mu       sync.Mutex
	released bool
}

func (sn *snapshot) check() error {
	sn.mu.Lock()
	defer sn.mu.Unlock()
	if sn.released {
		return backend.ErrSnapshotReleased
	}
	return nil
}

func (sn *snapshot) Get(ctx context.Context, key []byte) ([]byte, error) {
	if err := sn.check(); err != nil {
		return nil, err
	}
	v, _, _, err := sn.s.getAt(ctx, key, sn.rev, false)
	return v, err
}

func (sn *snapshot) Has(ctx context.Context, key []byte) (bool, error) {
	if err := sn.check(); err != nil {
		return false, err
	}
	_, modRev, _, err := sn.s.getAt(ctx, key, sn.rev, true)
	if errors.Is(err, backend.ErrNotFound) {
		return false, nil
	}
	return modRev != 0, err
}

func (sn *snapshot) NewCursor(_ context.Context, r backend.Range) (backend.Cursor, error) {
	if err := sn.check(); err != nil {
		return nil, err
	}
	return sn.s.cursorAt(r, sn.rev, nil), nil
}

func (sn *snapshot) Release() {
	sn.mu.Lock()
	sn.released = true
	sn.mu.Unlock()
}
