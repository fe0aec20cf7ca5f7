package main

import (
	"bufio"
	"bytes"
	"errors"

	"github.com/spf13/cobra"

	"github.com/levelparty/party"
)

func newWatchCmd(g *globals) *cobra.Command {
	var cf codecFlags
	var sf sublevelFlag
	var rf rangeFlags
	var asJSON bool
	var count int
	cmd := &cobra.Command{
		Use:   "watch DIR",
		Short: "Print changes as other programs make them",
		Long: `Print every change committed to the database, by any program that shares it,
as it happens, one line each in the text forms 'party ls' uses:
  put<TAB>key<TAB>value
  del<TAB>key
and a line 'gap' when changes may have been missed (the leader changed, or
this command fell too far behind): read the state again then. The entries of
one atomic write (a batch, a transaction) come one after another, in order.

--prefix, --start and --end select the keys, as in 'party ls'. --json prints
JSON Lines with an "op" field ("put", "del" or "gap"). --count N exits after N
changes. It runs until interrupted (Ctrl-C ends it cleanly, exit 0); --timeout
bounds how long it waits to join the database.`,
		Example: `  party watch /tmp/db
  party watch /tmp/db --prefix user/ --json
  party watch /tmp/db --count 1   # wait for the next change`,
		Args: cobra.ExactArgs(1),
		RunE: runE(func(cmd *cobra.Command, args []string) (err error) {
			if count < 0 {
				return usageErrorf("--count must be 0 (no limit) or more, not %d", count)
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
			ctx := cmd.Context()
			wctx, cancel := opContext(cmd, g)
			w, err := db.Watch(wctx, rng)
			cancel()
			if err != nil {
				return err
			}
			defer w.Close()
			out := bufio.NewWriterSize(cmd.OutOrStdout(), 64<<10)
			var buf bytes.Buffer
			n := 0
			for count == 0 || n < count {
				ev, err := w.Next(ctx)
				switch {
				case ctx.Err() != nil:
					return out.Flush() // interrupted: a clean end
				case errors.Is(err, party.ErrWatchGap):
					if asJSON {
						out.WriteString("{\"op\":\"gap\"}\n")
					} else {
						out.WriteString("gap\n")
					}
				case err != nil:
					out.Flush()
					return err
				}
				for _, c := range ev {
					if count > 0 && n == count {
						break
					}
					n++
					writeChange(out, &buf, f, cf.jsonMode(), asJSON, c)
				}
				if err := out.Flush(); err != nil {
					return err
				}
			}
			return nil
		}),
	}
	cf.register(cmd.Flags())
	sf.register(cmd.Flags())
	rf.register(cmd.Flags())
	fs := cmd.Flags()
	fs.BoolVar(&asJSON, "json", false, `print JSON Lines with an "op" field`)
	fs.IntVar(&count, "count", 0, "exit after this many changes (0: run until interrupted)")
	cmd.MarkFlagsMutuallyExclusive("hex", "base64")
	return cmd
}

// writeChange writes one change as a line of text or JSON.
func writeChange(out *bufio.Writer, buf *bytes.Buffer, f format, mode jsonMode, asJSON bool, c party.Change) {
	if asJSON {
		buf.Reset()
		if c.Deleted {
			buf.WriteString(`{"op":"del",`)
			jsonField(buf, "key", c.Key, mode, true)
			buf.WriteString("}\n")
		} else {
			buf.WriteString(`{"op":"put",`)
			jsonField(buf, "key", c.Key, mode, true)
			jsonField(buf, "value", c.Value, mode, false)
			buf.WriteString("}\n")
		}
		out.Write(buf.Bytes())
		return
	}
	if c.Deleted {
		out.WriteString("del\t")
		out.WriteString(f.encode(c.Key))
	} else {
		out.WriteString("put\t")
		out.WriteString(f.encode(c.Key))
		out.WriteByte('\t')
		out.WriteString(f.encode(c.Value))
	}
	out.WriteByte('\n')
}
