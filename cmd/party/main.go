// Command party inspects and changes a LevelDB database while other
// programs have it open through the party library: it joins them as one
// more participant. It also runs a demonstration of failover.
//
// Exit codes: 0 success, 1 key not found (get, has), 2 usage error, 3 any
// other error. Errors are written to stderr on one line.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/levelparty/party"
	"github.com/levelparty/party/cmd/party/internal/bench"
	"github.com/levelparty/party/internal/sublevel"
)

// Exit codes.
const (
	exitOK       = 0
	exitNotFound = 1
	exitUsage    = 2
	exitFailure  = 3
)

func main() {
	bench.MaybeChild() // a child process of party bench runs its role and exits
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run executes the command line args and returns the exit code.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRootCmd()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	code, msg := describe(cmd, err)
	if msg != "" {
		fmt.Fprintln(stderr, msg)
	}
	return code
}

// globals are the flags of the root command, shared by every subcommand.
type globals struct {
	timeout time.Duration
}

func newRootCmd() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:   "party",
		Short: "Read and change a LevelDB database that other programs have open",
		Long: `party joins the programs that share a LevelDB directory through the party
library as one more participant, so it can read, write, scan, export and
import the database while they run. If nobody has the directory open, party
opens it itself for the duration of the command.

Keys and values may hold any bytes. In arguments and text output they are
escaped text by default: printable UTF-8 stands for itself, and
  \\   a backslash        \n  newline        \t  tab
  \r   carriage return    \xNN  any byte, as two hex digits
Any other backslash sequence is an error. So one entry is always one line, and
what party prints can be pasted back as an argument. --hex and --base64
switch arguments and output to hexadecimal or base64.

Exit codes: 0 success, 1 key not found (get, has), 2 usage error, 3 any other
error. Errors are one line on stderr.`,
		Example: `  go run ./cmd/party demo          # watch failover happen
  party put /tmp/db greeting hello
  party get /tmp/db greeting
  party ls /tmp/db --prefix user/ --limit 10
  party dump /tmp/db backup.jsonl`,
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.PersistentFlags().DurationVar(&g.timeout, "timeout", 10*time.Second,
		"how long to wait to join the database, and for each single operation (0: no limit)")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageErrorf("%v", err) })
	root.AddCommand(
		newGetCmd(g), newPutCmd(g), newDelCmd(g), newHasCmd(g), newLsCmd(g), newWatchCmd(g), newCompactCmd(g),
		newDumpCmd(g), newLoadCmd(g), newStatusCmd(g), newDemoCmd(g), newBenchCmd(),
		newHoldCmd(g), newDemoWriterCmd(), newDemoReaderCmd(),
	)
	return root
}

// exitError is an error with its exit code.
type exitError struct {
	code   int
	err    error
	silent bool // the command's output already said it: print nothing
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// usageErrorf reports a command line that cannot be run as written.
func usageErrorf(format string, args ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

// notFound reports an absent key.
func notFound(f format, key []byte) error {
	return &exitError{code: exitNotFound, err: fmt.Errorf("key %s not found", quoteKey(f, key))}
}

func quoteKey(f format, key []byte) string {
	if f == formatText {
		return `"` + escape(key) + `"`
	}
	return f.encode(key) + " (" + f.String() + ")"
}

// describe turns an error into an exit code and a one-line message that says
// what to do.
func describe(cmd *cobra.Command, err error) (int, string) {
	path := "party"
	if cmd != nil {
		path = cmd.CommandPath()
	}
	code := exitFailure
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
		if ee.silent {
			return code, ""
		}
	} else if !isRunError(err) {
		// Errors that cobra returns before running a command (unknown
		// commands and flags, wrong argument counts) are usage errors.
		code = exitUsage
	}
	msg := strings.TrimPrefix(err.Error(), "party: ")
	var hint string
	switch {
	case code == exitUsage:
		hint = fmt.Sprintf("run '%s --help' for usage", path)
	case code == exitNotFound:
		hint = "list the keys with 'party ls DIR'"
	case errors.Is(err, party.ErrLockedByOther):
		hint = "a program that does not use party holds the database; stop it, or open the database through party in that program"
	case errors.Is(err, context.DeadlineExceeded):
		hint = "no answer from the database in time; check that its leader process is not stuck, or raise --timeout"
	case errors.Is(err, context.Canceled):
		msg = strings.ReplaceAll(msg, context.Canceled.Error(), "interrupted")
	case errors.Is(err, party.ErrTooLarge):
		hint = "keys, values and batches must stay under 64 MiB"
	}
	if hint != "" && !strings.Contains(msg, hint) {
		msg += "; " + hint
	}
	msg = strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(msg)
	return code, path + ": " + msg
}

// runError marks errors returned by a command's own code.
type runError struct{ err error }

func (e *runError) Error() string { return e.err.Error() }
func (e *runError) Unwrap() error { return e.err }

func isRunError(err error) bool {
	var re *runError
	return errors.As(err, &re)
}

// runE adapts a command body so that its errors are told apart from
// cobra's own usage errors.
func runE(f func(cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		if err := f(cmd, args); err != nil {
			return &runError{err}
		}
		return nil
	}
}

// openOpts say how a command opens a database.
type openOpts struct {
	create   bool         // the command may create the database
	sync     bool         // fsync every write before it is acknowledged
	sublevel sublevelFlag // the command works inside this sublevel
}

// sublevelFlag is --sublevel, repeated for a nested sublevel.
type sublevelFlag []string

func (s *sublevelFlag) register(fs *pflag.FlagSet) {
	fs.StringArrayVar((*[]string)(s), "sublevel", nil,
		"work inside the sublevel `NAME`, as Node's db.sublevel(NAME) (repeat for a nested one)")
}

// check refuses a name abstract-level refuses, before anything is opened.
func (s sublevelFlag) check() error {
	var prefix []byte
	for _, name := range s {
		var err error
		if prefix, err = sublevel.Prefix(prefix, name); err != nil {
			return usageErrorf("--sublevel: %s", strings.TrimPrefix(err.Error(), "party: "))
		}
	}
	return nil
}

// of returns db's view of the sublevel.
func (s sublevelFlag) of(db *party.DB) *party.DB {
	for _, name := range s {
		db = db.Sublevel(name)
	}
	return db
}

// openView opens the database in dir and returns the handle, which the
// caller closes, and the view the command works on: the handle, or its
// sublevel with --sublevel.
func openView(g *globals, dir string, o openOpts) (handle, view *party.DB, err error) {
	if err := o.sublevel.check(); err != nil {
		return nil, nil, err
	}
	if handle, err = openDB(g, dir, o); err != nil {
		return nil, nil, err
	}
	return handle, o.sublevel.of(handle), nil
}

// openDB joins the participants of the database in dir.
func openDB(g *globals, dir string, o openOpts) (*party.DB, error) {
	if !o.create {
		if err := requireDB(dir); err != nil {
			return nil, err
		}
	}
	opts := &party.Options{Sync: o.sync, OpenTimeout: g.timeout}
	if g.timeout <= 0 {
		opts.OpenTimeout = 365 * 24 * time.Hour
	}
	return party.Open(dir, opts)
}

// requireDB refuses a directory that holds no database, so that reading
// commands never create one by mistake.
func requireDB(dir string) error {
	st, err := os.Stat(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("no database at %s: the directory does not exist; check the path (put and load create a database)", dir)
		}
		return err
	}
	if !st.IsDir() {
		return fmt.Errorf("%s is not a directory; give the database directory", dir)
	}
	if _, err := os.Stat(filepath.Join(dir, "CURRENT")); err != nil {
		return fmt.Errorf("no database in %s: it has no CURRENT file; check the path (put and load create a database)", dir)
	}
	return nil
}

// opContext bounds one operation by --timeout.
func opContext(cmd *cobra.Command, g *globals) (context.Context, context.CancelFunc) {
	if g.timeout <= 0 {
		return context.WithCancel(cmd.Context())
	}
	return context.WithTimeout(cmd.Context(), g.timeout)
}

// withDB opens the database in dir, runs one operation bounded by
// --timeout, and closes the database, keeping the first error.
func withDB(cmd *cobra.Command, g *globals, dir string, o openOpts, op func(ctx context.Context, db *party.DB) error) (err error) {
	handle, view, err := openView(g, dir, o)
	if err != nil {
		return err
	}
	defer closeDB(handle, &err)
	ctx, cancel := opContext(cmd, g)
	defer cancel()
	return op(ctx, view)
}

// closeDB closes db and keeps the first error.
func closeDB(db *party.DB, err *error) {
	if cerr := db.Close(); cerr != nil && *err == nil {
		*err = cerr
	}
}
