package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newCompactCmd(g *globals) *cobra.Command {
	var cf codecFlags
	var rf rangeFlags
	cmd := &cobra.Command{
		Use:   "compact DIR",
		Short: "Compact the database, or a range of it, on its leader",
		Long: `Compact the tables that hold the keys selected (every key by default) on the
leader, wherever it runs: deleted and overwritten entries are dropped and the
space they took is given back. It prints the size on disk of the range before
and after. --prefix, --start and --end select the keys, as in 'party ls'.
--timeout bounds joining the database, not the compaction, which ends when done
(or on Ctrl-C, which leaves it running on the leader).`,
		Example: `  party compact /tmp/db
  party compact /tmp/db --prefix sessions/`,
		Args: cobra.ExactArgs(1),
		RunE: runE(func(cmd *cobra.Command, args []string) (err error) {
			rng, err := rf.keyRange(cmd.Flags(), cf.format())
			if err != nil {
				return err
			}
			db, err := openDB(g, args[0], openOpts{})
			if err != nil {
				return err
			}
			defer closeDB(db, &err)
			ctx := cmd.Context()
			before, err := db.SizeOf(ctx, rng)
			if err != nil {
				return err
			}
			if err := db.CompactRange(ctx, rng); err != nil {
				return err
			}
			after, err := db.SizeOf(ctx, rng)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "compacted: %d bytes on disk before, %d after\n", before[0], after[0])
			return nil
		}),
	}
	cf.register(cmd.Flags())
	rf.register(cmd.Flags())
	cmd.MarkFlagsMutuallyExclusive("hex", "base64")
	return cmd
}
