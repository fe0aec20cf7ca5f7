package main

import (
	"github.com/spf13/cobra"

	"github.com/levelparty/party/cmd/party/internal/bench"
)

func newBenchCmd() *cobra.Command {
	var (
		asJSON bool
		quick  bool
		reps   int
		dir    string
	)
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure a follower against goleveldb used directly",
		Long: `Run party's speed figures on a fresh temporary database: a leader and a
follower in separate processes (this binary, re-executed), and the same
operations on goleveldb directly in the same run for the ratio. Every figure
is repeated; the table gives min, median and max.

Figures (16-byte keys, 100-byte values): follower_get_seq, follower_put_seq,
the same with Options.BusyPoll 50µs (follower_get_seq_busypoll,
follower_put_seq_busypoll), follower_put_c64 (64 goroutines in flight),
follower_iter (full iteration), failover_gap_ms (kill -9 of the leader to the
first acknowledged operation on every follower), follower_get_c64,
local_put_seq (the leader's own puts), follower_iter_slow_mem (memory while a
slow reader iterates a large range), socket_roundtrip_seq, the bare unix
socket round trip that bounds the sequential figures, and the scaling
figures followers_get_KxN and followers_put_KxN: K follower processes (1, 2,
4, 8) with N calls in flight each, total throughput against goleveldb with
K×N goroutines in one process; and the value-size figures
follower_{put,get,iter}_{100b,4k,256k}, which add MB/s.

Figures are only meaningful on an otherwise idle machine; the load average
is printed before and after.`,
		Example: `  party bench --quick
  party bench --json > figures.jsonl`,
		Args: cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, _ []string) error {
			o := bench.Options{Quick: quick, Reps: reps, Dir: dir, Progress: cmd.ErrOrStderr()}
			figs, err := bench.Run(cmd.Context(), o)
			if err != nil {
				return err
			}
			if asJSON {
				return bench.WriteJSON(cmd.OutOrStdout(), figs)
			}
			return bench.WriteTable(cmd.OutOrStdout(), figs)
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object per figure")
	cmd.Flags().BoolVar(&quick, "quick", false, "smaller figures and fewer repetitions (well under a minute)")
	cmd.Flags().IntVar(&reps, "reps", 0, "repetitions of every figure (0: 5, or 3 with --quick)")
	cmd.Flags().StringVar(&dir, "dir", "", "where to make the temporary databases (default: the system temp dir)")
	return cmd
}
