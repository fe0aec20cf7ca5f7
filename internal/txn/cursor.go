package txn

import (
	"bytes"
	"context"

	"github.com/levelparty/party/backend"
)

// Cursor merges a cursor of the database with a transaction's writes in
// the same range: an overlay write of a key hides the database's entry of
// that key, and an overlay delete hides the key altogether. It moves as
// backend.Cursor says: Next steps in the direction of the last Seek.
type Cursor struct {
	base  backend.Cursor
	view  []entry
	check func() error // called after each move of base: the lease still holds

	backward bool
	bk, bv   []byte // base's entry, valid while bok
	bok      bool
	i        int // the view's entry, valid while 0 <= i < len(view)
	at       at  // where the entry last returned came from
}

type at uint8

const (
	atNone at = iota // no entry: before the first seek, or past the end
	atBase           // base's entry
	atView           // the view's entry, and base is at another key
	atBoth           // the view's entry, and base is at the same key
)

// NewCursor returns a cursor of base merged with the writes of o in r, as
// o is now. check is called after each move that reads the database; its
// error ends the move.
func NewCursor(base backend.Cursor, o *Overlay, r backend.Range, check func() error) *Cursor {
	return &Cursor{base: base, view: o.view(r), check: check}
}

var _ backend.Cursor = (*Cursor)(nil)

// Seek positions the cursor as mode says and returns the entry there.
func (c *Cursor) Seek(ctx context.Context, mode backend.SeekMode, key []byte) ([]byte, []byte, bool, error) {
	c.backward = mode.Backward()
	c.at = atNone
	c.i = seekView(c.view, mode, key)
	var err error
	c.bk, c.bv, c.bok, err = c.base.Seek(ctx, mode, key)
	if err == nil {
		err = c.check()
	}
	if err != nil {
		return nil, nil, false, err
	}
	return c.settle(ctx)
}

// Next returns the entry after the current one in the direction of the
// last Seek.
func (c *Cursor) Next(ctx context.Context) ([]byte, []byte, bool, error) {
	switch c.at {
	case atNone:
		return nil, nil, false, nil
	case atBase:
		if err := c.stepBase(ctx); err != nil {
			return nil, nil, false, err
		}
	case atView:
		c.stepView()
	case atBoth:
		c.stepView()
		if err := c.stepBase(ctx); err != nil {
			return nil, nil, false, err
		}
	}
	return c.settle(ctx)
}

// Release frees the database's cursor.
func (c *Cursor) Release() { c.base.Release() }

func (c *Cursor) stepView() {
	if c.backward {
		c.i--
	} else {
		c.i++
	}
}

func (c *Cursor) stepBase(ctx context.Context) error {
	var err error
	c.bk, c.bv, c.bok, err = c.base.Next(ctx)
	if err == nil {
		err = c.check()
	}
	if err != nil {
		c.at = atNone
	}
	return err
}

// settle returns the nearer of the two sources' entries in the cursor's
// direction, the view's on a tie, stepping over the view's deletes and
// the database entries they hide.
func (c *Cursor) settle(ctx context.Context) ([]byte, []byte, bool, error) {
	for {
		vok := c.i >= 0 && c.i < len(c.view)
		if !vok && !c.bok {
			c.at = atNone
			return nil, nil, false, nil
		}
		cmp := -1 // the view's entry first
		switch {
		case !vok:
			cmp = 1
		case c.bok:
			cmp = bytes.Compare(c.view[c.i].key, c.bk)
			if c.backward {
				cmp = -cmp
			}
		}
		if cmp > 0 {
			c.at = atBase
			return c.bk, c.bv, true, nil
		}
		e := c.view[c.i]
		if !e.deleted {
			c.at = atView
			if cmp == 0 {
				c.at = atBoth
			}
			return e.key, e.value, true, nil
		}
		c.stepView()
		if cmp == 0 {
			if err := c.stepBase(ctx); err != nil {
				return nil, nil, false, err
			}
		}
	}
}
