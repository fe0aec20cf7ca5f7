// Package sublevel lays namespaces over a Backend the way Node's
// abstract-level lays its sublevels over a database: the keys of sublevel
// "a" are stored with the prefix "!a!", those of its sublevel "b" with
// "!a!!b!". A view is a Backend whose keys are relative to its prefix and
// which never reads or writes a key outside it.
package sublevel

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/levelparty/party/backend"
)

// Separator is abstract-level's default sublevel separator.
const Separator = '!'

// ErrName is wrapped by the error of every call on a view whose name
// abstract-level would refuse.
var ErrName = errors.New("party: invalid sublevel name")

// Prefix returns the key prefix of sublevel name inside a database (or
// view) whose keys carry parent, as abstract-level computes it: the name
// loses its leading and trailing separators, and every byte left must be
// printable ASCII above '"' (the byte after the separator, which bounds
// the sublevel's keys). The empty name is allowed, as in abstract-level.
func Prefix(parent []byte, name string) ([]byte, error) {
	n := trim(name)
	for i := 0; i < len(n); i++ {
		if c := n[i]; c <= Separator+1 || c >= 127 {
			return nil, fmt.Errorf("%w %q: abstract-level allows only the bytes '#' (0x23) to '~' (0x7e)", ErrName, name)
		}
	}
	p := make([]byte, 0, len(parent)+len(n)+2)
	p = append(append(append(append(p, parent...), Separator), n...), Separator)
	return p, nil
}

func trim(s string) string {
	for len(s) > 0 && s[0] == Separator {
		s = s[1:]
	}
	for len(s) > 0 && s[len(s)-1] == Separator {
		s = s[:len(s)-1]
	}
	return s
}

// Name returns the name of the top-level sublevel a key belongs to, and
// whether it belongs to one: the key starts with the separator, a valid
// name and the separator again.
func Name(key []byte) (string, bool) {
	if len(key) < 2 || key[0] != Separator {
		return "", false
	}
	end := bytes.IndexByte(key[1:], Separator)
	if end < 0 {
		return "", false
	}
	name := key[1 : 1+end]
	for _, c := range name {
		if c <= Separator+1 || c >= 127 {
			return "", false
		}
	}
	return string(name), true
}

// View is a Backend over the keys of b under a prefix. Closing it does
// not close b: later calls on the view fail with ErrClosed, and closing b
// ends every view of it.
type View struct {
	b      backend.Backend
	prefix []byte
	limit  []byte // the first key after every key under prefix
	err    error  // the name's error: every call returns it
	closed atomic.Bool
}

// New returns the view of b under prefix. If err is not nil (the name was
// refused), every call on the view returns it.
func New(b backend.Backend, prefix []byte, err error) *View {
	v := &View{b: b, prefix: prefix, err: err}
	if err == nil {
		// prefix ends with the separator, so incrementing it cannot carry.
		v.limit = append(bytes.Clone(prefix[:len(prefix)-1]), Separator+1)
	}
	return v
}

// Root returns the backend the view is laid over.
func (v *View) Root() backend.Backend { return v.b }

// KeyPrefix returns the prefix of the view's keys.
func (v *View) KeyPrefix() []byte { return v.prefix }

// Err returns the error of the view's name, if it was refused.
func (v *View) Err() error { return v.err }

func (v *View) check() error {
	if v.err != nil {
		return v.err
	}
	if v.closed.Load() {
		return backend.ErrClosed
	}
	return nil
}

// key returns the stored form of a relative key.
func (v *View) key(k []byte) []byte {
	out := make([]byte, len(v.prefix)+len(k))
	copy(out, v.prefix)
	copy(out[len(v.prefix):], k)
	return out
}

// rng returns the stored form of a relative range, which never reaches
// outside the prefix.
func (v *View) rng(r backend.Range) backend.Range {
	out := backend.Range{Start: v.prefix, Limit: v.limit}
	if r.Start != nil {
		out.Start = v.key(r.Start)
	}
	if r.Limit != nil {
		out.Limit = v.key(r.Limit)
	}
	return out
}

// batch returns the stored form of a batch of relative keys.
func (v *View) batch(b *backend.Batch) *backend.Batch {
	out := new(backend.Batch)
	b.ForEach(func(put bool, k, val []byte) {
		if put {
			out.Put(v.key(k), val)
		} else {
			out.Delete(v.key(k))
		}
	})
	return out
}

// Get implements backend.Reader.
func (v *View) Get(ctx context.Context, key []byte) ([]byte, error) {
	if err := v.check(); err != nil {
		return nil, err
	}
	return v.b.Get(ctx, v.key(key))
}

// Has implements backend.Reader.
func (v *View) Has(ctx context.Context, key []byte) (bool, error) {
	if err := v.check(); err != nil {
		return false, err
	}
	return v.b.Has(ctx, v.key(key))
}

// NewCursor implements backend.Reader.
func (v *View) NewCursor(ctx context.Context, r backend.Range) (backend.Cursor, error) {
	if err := v.check(); err != nil {
		return nil, err
	}
	return newCursor(ctx, v.b, v, r)
}

func newCursor(ctx context.Context, rd backend.Reader, v *View, r backend.Range) (backend.Cursor, error) {
	c, err := rd.NewCursor(ctx, v.rng(r))
	if err != nil {
		return nil, err
	}
	return &cursor{c: c, n: len(v.prefix), v: v}, nil
}

// cursor strips the prefix off the keys of a cursor over the stored range.
type cursor struct {
	c backend.Cursor
	n int // prefix length
	v *View
}

func (c *cursor) Seek(ctx context.Context, mode backend.SeekMode, key []byte) ([]byte, []byte, bool, error) {
	switch mode {
	case backend.SeekGE, backend.SeekAfter, backend.SeekBefore:
		key = c.v.key(key)
	}
	return c.strip(c.c.Seek(ctx, mode, key))
}

func (c *cursor) Next(ctx context.Context) ([]byte, []byte, bool, error) {
	return c.strip(c.c.Next(ctx))
}

func (c *cursor) strip(k, v []byte, ok bool, err error) ([]byte, []byte, bool, error) {
	if ok {
		k = k[c.n:]
	}
	return k, v, ok, err
}

func (c *cursor) Release() { c.c.Release() }

// Put implements backend.Backend.
func (v *View) Put(ctx context.Context, key, value []byte) error {
	if err := v.check(); err != nil {
		return err
	}
	return v.b.Put(ctx, v.key(key), value)
}

// Delete implements backend.Backend.
func (v *View) Delete(ctx context.Context, key []byte) error {
	if err := v.check(); err != nil {
		return err
	}
	return v.b.Delete(ctx, v.key(key))
}

// Write implements backend.Backend.
func (v *View) Write(ctx context.Context, b *backend.Batch) error {
	if err := v.check(); err != nil {
		return err
	}
	return v.b.Write(ctx, v.batch(b))
}

// DeleteRange implements backend.Backend.
func (v *View) DeleteRange(ctx context.Context, r backend.Range) error {
	if err := v.check(); err != nil {
		return err
	}
	return v.b.DeleteRange(ctx, v.rng(r))
}

// GetSnapshot implements backend.Backend.
func (v *View) GetSnapshot(ctx context.Context) (backend.Snapshot, error) {
	if err := v.check(); err != nil {
		return nil, err
	}
	s, err := v.b.GetSnapshot(ctx)
	if err != nil {
		return nil, err
	}
	return &snapshot{reader{s, v}, s}, nil
}

type snapshot struct {
	reader
	s backend.Snapshot
}

// reader reads a Reader of stored keys with the view's relative keys.
type reader struct {
	rd backend.Reader
	v  *View
}

func (r reader) Get(ctx context.Context, key []byte) ([]byte, error) {
	return r.rd.Get(ctx, r.v.key(key))
}

func (r reader) Has(ctx context.Context, key []byte) (bool, error) {
	return r.rd.Has(ctx, r.v.key(key))
}

func (r reader) NewCursor(ctx context.Context, rg backend.Range) (backend.Cursor, error) {
	return newCursor(ctx, r.rd, r.v, rg)
}

func (s *snapshot) Release() { s.s.Release() }

// Status implements backend.Backend: the handle's status.
func (v *View) Status(ctx context.Context) (backend.Status, error) {
	if err := v.check(); err != nil {
		return backend.Status{}, err
	}
	return v.b.Status(ctx)
}

// CompactRange implements backend.Backend, on the view's keys.
func (v *View) CompactRange(ctx context.Context, r backend.Range) error {
	if err := v.check(); err != nil {
		return err
	}
	return v.b.CompactRange(ctx, v.rng(r))
}

// SizeOf implements backend.Backend, on the view's keys.
func (v *View) SizeOf(ctx context.Context, ranges []backend.Range) ([]int64, error) {
	if err := v.check(); err != nil {
		return nil, err
	}
	abs := make([]backend.Range, len(ranges))
	for i, r := range ranges {
		abs[i] = v.rng(r)
	}
	return v.b.SizeOf(ctx, abs)
}

// Property implements backend.Backend: the whole database's property.
func (v *View) Property(ctx context.Context, name string) (string, error) {
	if err := v.check(); err != nil {
		return "", err
	}
	return v.b.Property(ctx, name)
}

// Lock implements backend.Backend: the database's one lease, whose commit
// stores the batch's relative keys under the prefix.
func (v *View) Lock(ctx context.Context, timeout time.Duration) (backend.Lease, error) {
	if err := v.check(); err != nil {
		return nil, err
	}
	l, err := v.b.Lock(ctx, timeout)
	if err != nil {
		return nil, err
	}
	return lease{reader{l, v}, l}, nil
}

type lease struct {
	reader
	l backend.Lease
}

func (l lease) Err() error { return l.l.Err() }

func (l lease) Commit(ctx context.Context, b *backend.Batch) error {
	return l.l.Commit(ctx, l.v.batch(b))
}

func (l lease) Release() { l.l.Release() }

// Watch implements backend.Backend: the changes under the prefix, with
// relative keys.
func (v *View) Watch(ctx context.Context, r backend.Range) (backend.Watcher, error) {
	if err := v.check(); err != nil {
		return nil, err
	}
	w, err := v.b.Watch(ctx, v.rng(r))
	if err != nil {
		return nil, err
	}
	return watcher{w, len(v.prefix)}, nil
}

type watcher struct {
	backend.Watcher
	n int
}

func (w watcher) Next(ctx context.Context) ([]backend.Change, error) {
	cs, err := w.Watcher.Next(ctx)
	for i := range cs {
		cs[i].Key = cs[i].Key[w.n:]
	}
	return cs, err
}

// IsLeader implements backend.Backend.
func (v *View) IsLeader() bool { return v.b.IsLeader() }

// Elected implements backend.Backend.
func (v *View) Elected() <-chan struct{} { return v.b.Elected() }

// Close ends the view, not the backend: later calls on the view return
// ErrClosed.
func (v *View) Close() error {
	v.closed.Store(true)
	return nil
}
