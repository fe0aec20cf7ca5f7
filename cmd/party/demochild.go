package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/levelparty/party"
	"github.com/levelparty/party/cmd/party/internal/child"
)

// demoPrefix holds the demo writers' keys: demo/writer-1, demo/writer-2...
const demoPrefix = "demo/writer-"

// demoPace is the pause between two operations of a demo child.
const demoPace = time.Millisecond

// newDemoWriterCmd is a demo writer: it puts 1, 2, 3... under its own key
// and prints "ack N UNIXNANO" once each put is acknowledged, until stdin
// closes; then it prints "done".
func newDemoWriterCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "demo-writer DIR ID",
		Short:  "A writer of party demo",
		Hidden: true,
		Args:   cobra.ExactArgs(2),
		RunE: runE(func(cmd *cobra.Command, args []string) (err error) {
			lw := child.NewLines(cmd.OutOrStdout())
			stop := stdinClosed(cmd.InOrStdin())
			db, err := childOpen(args[0], lw, stop)
			if err != nil {
				return err
			}
			defer closeDB(db, &err)
			key := []byte(demoPrefix + args[1])
			for n := 1; ; n++ {
				// The put in flight when stdin closes still completes:
				// every write is either acknowledged or never issued.
				if err := db.Put(context.Background(), key, []byte(strconv.Itoa(n))); err != nil {
					return err
				}
				lw.Printf("ack %d %d", n, time.Now().UnixNano())
				select {
				case <-stop:
					lw.Printf("done")
					return nil
				case <-time.After(demoPace):
				}
			}
		}),
	}
}

// newDemoReaderCmd is the demo reader: it scans the writers' keys and
// prints "seen UNIXNANO V1 V2 ..." (0 for a key not written yet) after
// each scan, until stdin closes.
func newDemoReaderCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "demo-reader DIR WRITERS",
		Short:  "The reader of party demo",
		Hidden: true,
		Args:   cobra.ExactArgs(2),
		RunE: runE(func(cmd *cobra.Command, args []string) (err error) {
			n, err := strconv.Atoi(args[1])
			if err != nil || n < 1 {
				return usageErrorf("WRITERS must be a positive number, not %q", args[1])
			}
			lw := child.NewLines(cmd.OutOrStdout())
			stop := stdinClosed(cmd.InOrStdin())
			db, err := childOpen(args[0], lw, stop)
			if err != nil {
				return err
			}
			defer closeDB(db, &err)
			seen := make([]string, n)
			for {
				for i := range seen {
					seen[i] = "0"
				}
				it := db.NewIterator(context.Background(), party.BytesPrefix([]byte(demoPrefix)))
				for it.Next() {
					id, err := strconv.Atoi(strings.TrimPrefix(string(it.Key()), demoPrefix))
					if err == nil && id >= 1 && id <= n {
						seen[id-1] = string(it.Value())
					}
				}
				err := it.Error()
				it.Release()
				if err != nil {
					return fmt.Errorf("scanning: %w", err)
				}
				lw.Printf("seen %d %s", time.Now().UnixNano(), strings.Join(seen, " "))
				select {
				case <-stop:
					lw.Printf("done")
					return nil
				case <-time.After(demoPace):
				}
			}
		}),
	}
}
