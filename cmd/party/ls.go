package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/levelparty/party"
	"github.com/levelparty/party/internal/sublevel"
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
	var sf sublevelFlag
	var rf rangeFlags
	var reverse, keysOnly, valuesOnly, count, asJSON, sublevels bool
	var limit int
	cmd := &cobra.Command{
		Use:   "ls DIR",
		Short: "List keys and values in key order",
		Long: `List entries in key order, one per line: the key, a tab, the value, both
escaped as described in 'party --help' (or hex or base64), so a tab or a
newline inside a key never breaks a line.

--prefix, --start and --end combine: the keys listed have the prefix and lie
in [start, end). --json prints JSON Lines in the format of 'party dump',
which 'party load' reads.

--sublevel NAME lists inside a sublevel, with keys relative to it, as Node's
db.sublevel(NAME) shows them (repeat it for a nested sublevel). --sublevels
lists the names of the sublevels found (inside --sublevel, the nested ones),
one per line, jumping over each sublevel's keys rather than reading them.`,
		Example: `  party ls /tmp/db
  party ls /tmp/db --prefix user/ --limit 10
  party ls /tmp/db --start b --end d --reverse --keys-only
  party ls /tmp/db --prefix user/ --count
  party ls /tmp/db --hex --json
  party ls /tmp/db --sublevels
  party ls /tmp/db --sublevel users --prefix a`,
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
			handle, db, err := openView(g, args[0], openOpts{sublevel: sf})
			if err != nil {
				return err
			}
			defer closeDB(handle, &err)
			if sublevels {
				return listSublevels(cmd, g, db, limit, asJSON)
			}
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
	sf.register(cmd.Flags())
	rf.register(cmd.Flags())
	fs := cmd.Flags()
	fs.BoolVar(&reverse, "reverse", false, "list in reverse key order")
	fs.IntVar(&limit, "limit", 0, "list at most this many entries (0: no limit)")
	fs.BoolVar(&keysOnly, "keys-only", false, "print keys only")
	fs.BoolVar(&valuesOnly, "values-only", false, "print values only")
	fs.BoolVar(&count, "count", false, "print only the number of entries")
	fs.BoolVar(&asJSON, "json", false, "print JSON Lines (see 'party dump --help' for the format)")
	fs.BoolVar(&sublevels, "sublevels", false, "print the names of the sublevels found instead of entries")
	cmd.MarkFlagsMutuallyExclusive("hex", "base64")
	cmd.MarkFlagsMutuallyExclusive("keys-only", "values-only", "count", "sublevels")
	for _, f := range []string{"reverse", "prefix", "start", "end"} {
		cmd.MarkFlagsMutuallyExclusive(f, "sublevels")
	}
	return cmd
}

// listSublevels prints the names of the sublevels in db: for each, it
// seeks to the first key after the sublevel, so the time it takes grows
// with the number of sublevels, not of keys.
func listSublevels(cmd *cobra.Command, g *globals, db *party.DB, limit int, asJSON bool) error {
	ctx, cancel := opContext(cmd, g)
	defer cancel()
	it := db.NewIterator(ctx, party.BytesPrefix([]byte{sublevel.Separator}))
	defer it.Release()
	out := bufio.NewWriter(cmd.OutOrStdout())
	n := 0
	ok := it.First()
	for ok && (limit == 0 || n < limit) {
		name, isSub := sublevel.Name(it.Key())
		if !isSub {
			ok = it.Next()
			continue
		}
		if asJSON {
			b, _ := json.Marshal(map[string]string{"sublevel": name})
			out.Write(append(b, '\n'))
		} else {
			out.WriteString(name + "\n")
		}
		n++
		// "!name\"" is the first key after every key of the sublevel.
		ok = it.Seek([]byte(string(sublevel.Separator) + name + string(sublevel.Separator+1)))
	}
	if err := it.Error(); err != nil {
		return err
	}
	return out.Flush()
}
