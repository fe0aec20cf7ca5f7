package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/levelparty/party"
)

func newPutCmd(g *globals) *cobra.Command {
	var cf codecFlags
	var sf sublevelFlag
	var sync bool
	cmd := &cobra.Command{
		Use:   "put DIR KEY VALUE",
		Short: "Set a key to a value",
		Long: `Set KEY to VALUE, creating the database if DIR holds none.

KEY and VALUE are escaped text (see 'party --help'), or hex or base64 with
--hex or --base64. A VALUE of - reads the value from stdin: its bytes
exactly as they are, or hex or base64 text with --hex or --base64 (spaces
and newlines around it are ignored then).`,
		Example: `  party put /tmp/db greeting hello
  party put /tmp/db 'tab\there' 'line one\nline two'
  party put /tmp/db --hex 00ff 0102
  party put /tmp/db photo - < photo.jpg`,
		Args: cobra.ExactArgs(3),
		RunE: runE(func(cmd *cobra.Command, args []string) (err error) {
			f := cf.format()
			key, err := f.decode("KEY", args[1])
			if err != nil {
				return err
			}
			var value []byte
			if args[2] == "-" {
				if value, err = readValue(cmd.InOrStdin(), f); err != nil {
					return err
				}
			} else if value, err = f.decode("VALUE", args[2]); err != nil {
				return err
			}
			return withDB(cmd, g, args[0], openOpts{create: true, sync: sync, sublevel: sf}, func(ctx context.Context, db *party.DB) error {
				return db.Put(ctx, key, value)
			})
		}),
	}
	cf.register(cmd.Flags())
	sf.register(cmd.Flags())
	cmd.Flags().BoolVar(&sync, "sync", false, "have the leader fsync the write before acknowledging it")
	cmd.MarkFlagsMutuallyExclusive("hex", "base64")
	return cmd
}

// readValue reads a value from stdin: raw bytes, or hex or base64 text.
func readValue(r io.Reader, f format) ([]byte, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("reading the value from stdin: %w", err)
	}
	switch f {
	case formatHex:
		b, err = hex.DecodeString(string(bytes.Join(bytes.Fields(b), nil)))
	case formatBase64:
		b, err = base64.StdEncoding.DecodeString(string(bytes.Join(bytes.Fields(b), nil)))
	}
	if err != nil {
		return nil, usageErrorf("the value on stdin is not valid %s: %v", f, err)
	}
	return b, nil
}
