package main

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/levelparty/party"
)

func newDelCmd(g *globals) *cobra.Command {
	var cf codecFlags
	var sf sublevelFlag
	var sync bool
	cmd := &cobra.Command{
		Use:   "del DIR KEY",
		Short: "Delete a key",
		Long:  `Delete KEY. Deleting an absent key succeeds.`,
		Example: `  party del /tmp/db greeting
  party del /tmp/db --hex 00ff`,
		Args: cobra.ExactArgs(2),
		RunE: runE(func(cmd *cobra.Command, args []string) (err error) {
			key, err := cf.format().decode("KEY", args[1])
			if err != nil {
				return err
			}
			return withDB(cmd, g, args[0], openOpts{sync: sync, sublevel: sf}, func(ctx context.Context, db *party.DB) error {
				return db.Delete(ctx, key)
			})
		}),
	}
	cf.register(cmd.Flags())
	sf.register(cmd.Flags())
	cmd.Flags().BoolVar(&sync, "sync", false, "have the leader fsync the delete before acknowledging it")
	cmd.MarkFlagsMutuallyExclusive("hex", "base64")
	return cmd
}
