package main

import (
	"errors"
	"os"

	"github.com/spf13/cobra"

	"github.com/levelparty/party/cmd/party/internal/bench"
)

func newBenchCmd() *cobra.Command {
	var (
		asJSON, large             bool
		quick                     bool
		reps                      int
		dir                       string
		svgPath, sqlitePath, from string
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
follower_iter (full iteration), follower_scan10_seq (open an iterator, read
10 entries, release it), failover_gap_ms (kill -9 of the leader to the
first acknowledged operation on every follower), follower_get_c64,
local_put_seq (the leader's own puts), follower_iter_slow_mem (memory while a
slow reader iterates a large range), socket_roundtrip_seq, the bare unix
socket round trip that bounds the sequential figures, and the scaling
figures followers_get_KxN and followers_put_KxN: K follower processes (1, 2,
4, 8) with N calls in flight each, total throughput against goleveldb with
K×N goroutines in one process; tx_update_c4, Update increments of one
counter from 4 follower processes (direct: a mutex around Get and Put);
watch_latency (a Put on one follower to Next on a watcher in another process)
and follower_put_c64_watched8 (follower_put_c64 with 8 watcher processes,
against none); and
the value-size figures
follower_{put,get,iter}_{100b,4k,256k}, which add MB/s. --large adds
db_{1m,10m}_{get_seq,get_random,iter}: gets of consecutive and of random
keys and a full iteration on databases of 1 M and 10 M entries (about 3 GB
of temporary disk and several more minutes).

--svg FILE also draws a chart of the run: party, goleveldb direct and
SQLite (from --sqlite, the JSON lines of the bench/sqlite program) for the
main figures, throughput as follower processes are added, and sequential
latency with and without BusyPoll. --from FILE draws it from the JSON lines
of an earlier run instead of measuring.

Figures are only meaningful on an otherwise idle machine; the load average
is printed before and after.`,
		Example: `  party bench --quick
  party bench --json > figures.jsonl
  party bench --from figures.jsonl --sqlite sqlite.jsonl --svg speed.svg`,
		Args: cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, _ []string) error {
			var results []bench.Result
			if from != "" {
				if svgPath == "" {
					return errors.New("--from only draws the chart: give --svg FILE")
				}
				var err error
				if results, err = readResults(from); err != nil {
					return err
				}
			} else {
				o := bench.Options{Quick: quick, Reps: reps, Dir: dir, Large: large, Progress: cmd.ErrOrStderr()}
				figs, err := bench.Run(cmd.Context(), o)
				if err != nil {
					return err
				}
				if asJSON {
					err = bench.WriteJSON(cmd.OutOrStdout(), figs)
				} else {
					err = bench.WriteTable(cmd.OutOrStdout(), figs)
				}
				if err != nil {
					return err
				}
				results = bench.Results(figs)
			}
			if svgPath == "" {
				return nil
			}
			var sqlite []bench.Result
			if sqlitePath != "" {
				var err error
				if sqlite, err = readResults(sqlitePath); err != nil {
					return err
				}
			}
			f, err := os.Create(svgPath)
			if err != nil {
				return err
			}
			if err := bench.WriteSVG(f, results, sqlite); err != nil {
				f.Close()
				return err
			}
			return f.Close()
		}),
	}
	cmd.Flags().StringVar(&svgPath, "svg", "", "also draw the figures as an SVG chart in `FILE`")
	cmd.Flags().StringVar(&sqlitePath, "sqlite", "", "JSON lines of bench/sqlite to draw beside party (`FILE`)")
	cmd.Flags().StringVar(&from, "from", "", "draw the chart from the JSON lines of an earlier run (`FILE`) instead of measuring")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object per figure")
	cmd.Flags().BoolVar(&large, "large", false, "also measure databases of 1 M and 10 M entries (about 3 GB of temporary disk)")
	cmd.Flags().BoolVar(&quick, "quick", false, "smaller figures and fewer repetitions (well under a minute)")
	cmd.Flags().IntVar(&reps, "reps", 0, "repetitions of every figure (0: 5, or 3 with --quick)")
	cmd.Flags().StringVar(&dir, "dir", "", "where to make the temporary databases (default: the system temp dir)")
	return cmd
}

// readResults reads the JSON lines of a bench run from path.
func readResults(path string) ([]bench.Result, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return bench.ReadResults(f)
}
