package main

import (
	"bytes"
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/levelparty/party"
)

func newHasCmd(g *globals) *cobra.Command {
	var cf codecFlags
	var sf sublevelFlag
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "has DIR KEY",
		Short: "Tell whether a key is present",
		Long: `Print true and exit with 0 if KEY is present, print false and exit with 1
if not, so that scripts can test it.`,
		Example: `  party has /tmp/db greeting
  if party has /tmp/db lock/owner >/dev/null; then echo taken; fi
  party has /tmp/db --base64 AP8= --json`,
		Args: cobra.ExactArgs(2),
		RunE: runE(func(cmd *cobra.Command, args []string) (err error) {
			f := cf.format()
			key, err := f.decode("KEY", args[1])
			if err != nil {
				return err
			}
			var ok bool
			err = withDB(cmd, g, args[0], openOpts{sublevel: sf}, func(ctx context.Context, db *party.DB) (err error) {
				ok, err = db.Has(ctx, key)
				return err
			})
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				var buf bytes.Buffer
				jsonEntry(&buf, key, nil, keyOnly, cf.jsonMode())
				buf.Truncate(buf.Len() - 2) // "}\n"
				fmt.Fprintf(&buf, `,"found":%t}`+"\n", ok)
				_, err = out.Write(buf.Bytes())
			} else {
				_, err = fmt.Fprintln(out, ok)
			}
			if err != nil {
				return err
			}
			if !ok {
				// stdout already says false: no message, only the exit code.
				return &exitError{code: exitNotFound, err: notFound(f, key), silent: true}
			}
			return nil
		}),
	}
	cf.register(cmd.Flags())
	sf.register(cmd.Flags())
	cmd.Flags().BoolVar(&asJSON, "json", false, `print {"key":...,"found":true|false}`)
	cmd.MarkFlagsMutuallyExclusive("hex", "base64")
	return cmd
}
