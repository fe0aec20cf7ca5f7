package main

import (
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/levelparty/party"
	"github.com/levelparty/party/cmd/party/internal/child"
)

// The hidden commands below run as child processes of tests and of the
// demo. They talk to their parent in lines on stdout, each a word and
// fields: "ready PID LEADER UNIXNANO" once open, "leader UNIXNANO" when
// elected later, and command-specific lines. They stop when stdin closes.

// childOpen opens dir for a child process and announces it: "ready", then
// "leader" if it becomes leader later (until stop closes).
func childOpen(dir string, lw *child.Lines, stop <-chan struct{}) (*party.DB, error) {
	db, err := party.Open(dir, &party.Options{OpenTimeout: 30 * time.Second})
	if err != nil {
		return nil, err
	}
	leader := db.IsLeader()
	lw.Printf("ready %d %t %d", os.Getpid(), leader, time.Now().UnixNano())
	if !leader {
		go func() {
			select {
			case <-db.Elected():
				lw.Printf("leader %d", time.Now().UnixNano())
			case <-stop:
			}
		}()
	}
	return db, nil
}

// stdinClosed returns a channel closed when stdin reaches its end.
func stdinClosed(r io.Reader) <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		io.Copy(io.Discard, r)
		close(ch)
	}()
	return ch
}

func newHoldCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:    "hold DIR",
		Short:  "Keep the database open until stdin closes (for tests)",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			lw := child.NewLines(cmd.OutOrStdout())
			stop := stdinClosed(cmd.InOrStdin())
			db, err := childOpen(args[0], lw, stop)
			if err != nil {
				return err
			}
			select {
			case <-stop:
			case <-cmd.Context().Done():
			}
			err = db.Close()
			lw.Printf("closed")
			return err
		}),
	}
}
