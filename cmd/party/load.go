package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/levelparty/party"
)

func newLoadCmd(g *globals) *cobra.Command {
	var quiet, sync bool
	var sf sublevelFlag
	var batchEntries, batchBytes int
	cmd := &cobra.Command{
		Use:   "load DIR [FILE]",
		Short: "Write entries from JSON Lines, in batches",
		Long: `Read JSON Lines from FILE (or stdin if FILE is missing or -), as written by
'party dump' or 'party ls --json', and put every entry into the database,
creating it if DIR holds none. Entries are written in atomic batches of
--batch-entries entries or --batch-bytes bytes, whichever comes first. Blank
lines are skipped.

A malformed line stops the load: the entries before it are committed (in
whole batches), none after it, and the error names the line, the reason and
how many entries were committed. A progress bar shows on a terminal; nothing
is printed on stderr otherwise, or with --quiet.

` + jsonFormatHelp,
		Example: `  party load /tmp/db backup.jsonl
  party dump /tmp/db | party load /tmp/copy
  gunzip < backup.jsonl.gz | party load /tmp/db --quiet`,
		Args: cobra.RangeArgs(1, 2),
		RunE: runE(func(cmd *cobra.Command, args []string) (err error) {
			if batchEntries < 1 || batchBytes < 1 {
				return usageErrorf("--batch-entries and --batch-bytes must be at least 1")
			}
			var r io.Reader = cmd.InOrStdin()
			name, total := "-", int64(-1)
			if len(args) == 2 && args[1] != "-" {
				name = args[1]
				f, err := os.Open(name)
				if err != nil {
					return fmt.Errorf("%w; check the path", err)
				}
				defer f.Close()
				if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
					total = st.Size()
				}
				r = f
			}
			handle, db, err := openView(g, args[0], openOpts{create: true, sync: sync, sublevel: sf})
			if err != nil {
				return err
			}
			defer closeDB(handle, &err)
			l := &loader{
				cmd: cmd, g: g, db: db, maxEntries: batchEntries, maxBytes: batchBytes,
				prog: newProgress(cmd.ErrOrStderr(), quiet, "loaded", total),
			}
			err = l.load(bufio.NewReaderSize(r, 1<<20))
			l.prog.finish()
			if err != nil {
				var le *lineError
				if errors.As(err, &le) {
					input := name
					if input == "-" {
						input = "INPUT"
					}
					resume := fmt.Sprintf("tail -n +%d %s | party load %s", le.line, input, args[0])
					return &exitError{code: exitFailure, err: fmt.Errorf(
						"line %d: %v; the %d entries before it were committed, none from it on; fix the line, then load the rest (%s)",
						le.line, le.err, l.committed, resume)}
				}
				return fmt.Errorf("%w; %d entries were committed before the failure", err, l.committed)
			}
			return nil
		}),
	}
	fs := cmd.Flags()
	sf.register(fs)
	fs.BoolVarP(&quiet, "quiet", "q", false, "no progress bar")
	fs.BoolVar(&sync, "sync", false, "have the leader fsync each batch before acknowledging it")
	fs.IntVar(&batchEntries, "batch-entries", 1000, "write at most this many entries per batch")
	fs.IntVar(&batchBytes, "batch-bytes", 4<<20, "write at most about this many bytes of keys and values per batch")
	return cmd
}

// loader writes entries from JSON Lines in batches.
type loader struct {
	cmd        *cobra.Command
	g          *globals
	db         *party.DB
	maxEntries int
	maxBytes   int
	prog       *progress

	batch     party.Batch
	size      int   // bytes of keys and values in batch
	read      int64 // input bytes of the entries in batch
	committed int   // entries written
}

// lineError is a malformed input line.
type lineError struct {
	line int
	err  error
}

func (e *lineError) Error() string { return fmt.Sprintf("line %d: %v", e.line, e.err) }

func (l *loader) load(r *bufio.Reader) error {
	for line := 1; ; line++ {
		b, rerr := r.ReadBytes('\n')
		if rerr != nil && rerr != io.EOF {
			if err := l.flush(); err != nil {
				return err
			}
			return fmt.Errorf("reading line %d: %w", line, rerr)
		}
		read := int64(len(b))
		b = bytes.TrimRight(b, "\r\n")
		if len(bytes.TrimSpace(b)) > 0 {
			k, v, err := parseEntry(b)
			if err != nil {
				if ferr := l.flush(); ferr != nil {
					return ferr
				}
				return &lineError{line: line, err: err}
			}
			l.batch.Put(k, v)
			l.size += len(k) + len(v)
		}
		l.read += read
		if l.batch.Len() >= l.maxEntries || l.size >= l.maxBytes {
			if err := l.flush(); err != nil {
				return err
			}
		}
		if rerr == io.EOF {
			return l.flush()
		}
	}
}

// flush writes the pending batch.
func (l *loader) flush() error {
	n := l.batch.Len()
	if n > 0 {
		ctx, cancel := opContext(l.cmd, l.g)
		err := l.db.Write(ctx, &l.batch)
		cancel()
		if err != nil {
			if errors.Is(err, context.Canceled) {
				err = errors.New("interrupted")
			}
			return fmt.Errorf("writing a batch of %d entries: %w", n, err)
		}
	}
	l.committed += n
	l.prog.add(n, l.read)
	l.batch.Reset()
	l.size, l.read = 0, 0
	return nil
}
