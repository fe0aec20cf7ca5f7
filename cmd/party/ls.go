package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/levelparty/party"
)

// rangeFlags select a range of keys: --prefix, --start and --end.
type rangeFlags struct {
	prefix, start, end string
}

func (r *rangeFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&r.prefix, "prefix", "", "only keys that begin with this prefix")
	fs.StringVar(&r.start, "start", "", "only keys >= this key (inclusive)")
	fs.StringVar(&r.end, "end", "", "only keys < this key (exclusive)")
}

// keyRange decodes the flags into the range they select together: the
// keys with the prefix that are also in [start, end).
func (r *rangeFlags) keyRange(fs *pflag.FlagSet, f format) (*party.Range, error) {
	rg := &party.Range{}
	if fs.Changed("prefix") {
		p, err := f.decode("--prefix", r.prefix)
		if err != nil {
			return nil, err
		}
		rg = party.BytesPrefix(p)
	}
	if fs.Changed("start") {
		s, err := f.decode("--start", r.start)
		if err != nil {
			return nil, err
		}
		if rg.Start == nil || bytes.Compare(s, rg.Start) > 0 {
			rg.Start = s
		}
	}
	if fs.Changed("end") {
		e, err := f.decode("--end", r.end)
		if err != nil {
			return nil, err
		}
		if rg.Limit == nil || bytes.Compare(e, rg.Limit) < 0 {
			rg.Limit = e
		}
	}
	return rg, nil
}

// scanOpts say what scan visits.
type scanOpts struct {
	rng     *party.Range
	reverse bool
	limit   int           // 0: no limit
	stall   time.Duration // fail when one step takes longer; 0: never
}

// scan calls fn for each entry of the range in order, stopping at the
// first error. The slices are valid only during the call.
func scan(ctx context.Context, db *party.DB, o scanOpts, fn func(k, v []byte) error) error {
	if o.rng.Start != nil && o.rng.Limit != nil && bytes.Compare(o.rng.Start, o.rng.Limit) >= 0 {
		return nil // empty range
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var guard *time.Timer
	if o.stall > 0 {
		guard = time.AfterFunc(o.stall, func() {
			cancel(fmt.Errorf("no answer from the database for %v while scanning: %w", o.stall, context.DeadlineExceeded))
		})
		guard.Stop()
		defer guard.Stop()
	}
	it := db.NewIterator(ctx, o.rng)
	defer it.Release()
	move := func(first bool) bool {
		if guard != nil {
			guard.Reset(o.stall)
			defer guard.Stop()
		}
		switch {
		case first && o.reverse:
			return it.Last()
		case first:
			return it.First()
		case o.reverse:
			return it.Prev()
		}
		return it.Next()
	}
	n := 0
	for ok := move(true); ok; ok = move(false) {
		if err := fn(it.Key(), it.Value()); err != nil {
			return err
		}
		n++
		if o.limit > 0 && n >= o.limit {
			break
		}
	}
	if err := it.Error(); err != nil {
		if cause := context.Cause(ctx); cause != nil && errors.Is(err, context.Canceled) {
			return cause
		}
		return err
	}
	return nil
}

func newLsCmd(g *globals) *cobra.Command {
	var cf codecFlags
	var rf rangeFlags
	var reverse, keysOnly, valuesOnly, count, asJSON bool
	var limit int
	cmd := &cobra.Command{
		Use:   "ls DIR",
		Short: "List keys and values in key order",
		Long: `List entries in key order, one per line: the key, a tab, the value, both
escaped as described in 'party --help' (or hex or base64), so a tab or a
newline inside a key never breaks a line.

--prefix, --start and --end combine: the keys listed have the prefix and lie
in [start, end). --json prints JSON Lines in the format of 'party dump',
which 'party load' reads.`,
		Example: `  party ls /tmp/db
  party ls /tmp/db --prefix user/ --limit 10
  party ls /tmp/db --start b --end d --reverse --keys-only
  party ls /tmp/db --prefix user/ --count
  party ls /tmp/db --hex --json`,
		Args: cobra.ExactArgs(1),
		RunE: runE(func(cmd *cobra.Command, args []string) (err error) {
			if limit < 0 {
				return usageErrorf("--limit must be 0 (no limit) or more, not %d", limit)
			}
			f := cf.format()
			rng, err := rf.keyRange(cmd.Flags(), f)
			if err != nil {
				return err
			}
			db, err := openDB(g, args[0], openOpts{})
			if err != nil {
				return err
			}
			defer closeDB(db, &err)
			parts := keyAndValue
			switch {
			case keysOnly:
				parts = keyOnly
			case valuesOnly:
				parts = valueOnly
			}
			out := bufio.NewWriterSize(cmd.OutOrStdout(), 64<<10)
			var buf bytes.Buffer
			n := 0
			err = scan(cmd.Context(), db, scanOpts{rng: rng, reverse: reverse, limit: limit, stall: g.timeout}, func(k, v []byte) error {
				n++
				if count {
					return nil
				}
				if asJSON {
					buf.Reset()
					jsonEntry(&buf, k, v, parts, cf.jsonMode())
					_, err := out.Write(buf.Bytes())
					return err
				}
				switch parts {
				case valueOnly:
					out.WriteString(f.encode(v))
				case keyOnly:
					out.WriteString(f.encode(k))
				default:
					out.WriteString(f.encode(k))
					out.WriteByte('\t')
					out.WriteString(f.encode(v))
				}
				return out.WriteByte('\n')
			})
			if err != nil {
				return err
			}
			if count {
				if asJSON {
					fmt.Fprintf(out, "{\"count\":%d}\n", n)
				} else {
					fmt.Fprintln(out, n)
				}
			}
			return out.Flush()
		}),
	}
	cf.register(cmd.Flags())
	rf.register(cmd.Flags())
	fs := cmd.Flags()
	fs.BoolVar(&reverse, "reverse", false, "list in reverse key order")
	fs.IntVar(&limit, "limit", 0, "list at most this many entries (0: no limit)")
	fs.BoolVar(&keysOnly, "keys-only", false, "print keys only")
	fs.BoolVar(&valuesOnly, "values-only", false, "print values only")
	fs.BoolVar(&count, "count", false, "print only the number of entries")
	fs.BoolVar(&asJSON, "json", false, "print JSON Lines (see 'party dump --help' for the format)")
	cmd.MarkFlagsMutuallyExclusive("hex", "base64")
	cmd.MarkFlagsMutuallyExclusive("keys-only", "values-only", "count")
	return cmd
}
