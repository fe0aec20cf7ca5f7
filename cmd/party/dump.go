package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
)

// jsonFormatHelp describes the JSON Lines format of dump, load and --json.
const jsonFormatHelp = `Format: JSON Lines, one object per entry, in key order:
  {"key":"user/1","value":"Ada"}
A key or value that is valid UTF-8 is a JSON string under "key" or
"value"; any other is standard base64 under "key_b64" or "value_b64":
  {"key_b64":"AP8=","value":"zero and 0xff"}
With --base64 every field is written as key_b64/value_b64, with --hex as
key_hex/value_hex. load accepts any of the three forms on any line.`

func newDumpCmd(g *globals) *cobra.Command {
	var cf codecFlags
	var sf sublevelFlag
	var rf rangeFlags
	var quiet bool
	cmd := &cobra.Command{
		Use:   "dump DIR [FILE]",
		Short: "Write every entry (or a range) as JSON Lines",
		Long: `Write every entry of the database, or those selected by --prefix, --start
and --end, to FILE (or stdout if FILE is missing or -) as JSON Lines, which
'party load' reads back. A progress bar shows on a terminal; nothing is
printed on stderr otherwise, or with --quiet.

The entries come from one view of the database. If the leader changes during
the dump, it continues exactly after the last key written, on the new
leader's current data.

` + jsonFormatHelp,
		Example: `  party dump /tmp/db backup.jsonl
  party dump /tmp/db --prefix user/ > users.jsonl
  party dump /tmp/db --base64 | gzip > backup.jsonl.gz`,
		Args: cobra.RangeArgs(1, 2),
		RunE: runE(func(cmd *cobra.Command, args []string) (err error) {
			rng, err := rf.keyRange(cmd.Flags(), cf.format())
			if err != nil {
				return err
			}
			handle, db, err := openView(g, args[0], openOpts{sublevel: sf})
			if err != nil {
				return err
			}
			defer closeDB(handle, &err)
			var w io.Writer = cmd.OutOrStdout()
			name := "stdout"
			if len(args) == 2 && args[1] != "-" {
				name = args[1]
				f, err := os.Create(name)
				if err != nil {
					return fmt.Errorf("%w; check the path and its permissions", err)
				}
				defer func() {
					if cerr := f.Close(); cerr != nil && err == nil {
						err = cerr
					}
				}()
				w = f
			}
			out := bufio.NewWriterSize(w, 256<<10)
			prog := newProgress(cmd.ErrOrStderr(), quiet, "dumped", -1)
			var buf bytes.Buffer
			n := 0
			err = scan(cmd.Context(), db, scanOpts{rng: rng, stall: g.timeout}, func(k, v []byte) error {
				buf.Reset()
				jsonEntry(&buf, k, v, keyAndValue, cf.jsonMode())
				n++
				prog.add(1, int64(buf.Len()))
				_, err := out.Write(buf.Bytes())
				return err
			})
			if err == nil {
				err = out.Flush()
			}
			prog.finish()
			if err != nil {
				return fmt.Errorf("%w; %s is incomplete: %d entries were written", err, name, n)
			}
			return nil
		}),
	}
	cf.register(cmd.Flags())
	sf.register(cmd.Flags())
	rf.register(cmd.Flags())
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "no progress bar")
	cmd.MarkFlagsMutuallyExclusive("hex", "base64")
	return cmd
}
