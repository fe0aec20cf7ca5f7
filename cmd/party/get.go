package main

import (
	"bytes"
	"context"
	"errors"

	"github.com/spf13/cobra"

	"github.com/levelparty/party"
)

func newGetCmd(g *globals) *cobra.Command {
	var cf codecFlags
	var sf sublevelFlag
	var asJSON, raw bool
	cmd := &cobra.Command{
		Use:   "get DIR KEY",
		Short: "Print the value of a key",
		Long: `Print the value of KEY on one line, escaped as described in 'party --help'
(or in hex or base64). With --raw, write the value's bytes exactly, with no
newline. Exits with 1 if the key is absent.`,
		Example: `  party get /tmp/db greeting
  party get /tmp/db 'user\x00042'          # a key holding a zero byte
  party get /tmp/db --hex 7573657200 --json
  party get /tmp/db photo --raw > photo.jpg`,
		Args: cobra.ExactArgs(2),
		RunE: runE(func(cmd *cobra.Command, args []string) (err error) {
			f := cf.format()
			key, err := f.decode("KEY", args[1])
			if err != nil {
				return err
			}
			var v []byte
			err = withDB(cmd, g, args[0], openOpts{sublevel: sf}, func(ctx context.Context, db *party.DB) (err error) {
				v, err = db.Get(ctx, key)
				return err
			})
			if errors.Is(err, party.ErrNotFound) {
				return notFound(f, key)
			}
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			switch {
			case raw:
				_, err = out.Write(v)
			case asJSON:
				var buf bytes.Buffer
				jsonEntry(&buf, key, v, keyAndValue, cf.jsonMode())
				_, err = out.Write(buf.Bytes())
			default:
				_, err = out.Write([]byte(f.encode(v) + "\n"))
			}
			return err
		}),
	}
	cf.register(cmd.Flags())
	sf.register(cmd.Flags())
	cmd.Flags().BoolVar(&asJSON, "json", false, `print {"key":...,"value":...} (see 'party dump --help' for the format)`)
	cmd.Flags().BoolVar(&raw, "raw", false, "write the value's bytes exactly, with no escaping and no newline")
	cmd.MarkFlagsMutuallyExclusive("hex", "base64")
	cmd.MarkFlagsMutuallyExclusive("json", "raw")
	return cmd
}
