package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/levelparty/party/cmd/party/internal/child"
)

// progress shows entries, bytes and rates on stderr while dump or load
// runs, only when stderr is a terminal. A nil *progress shows nothing.
type progress struct {
	bar     *progressbar.ProgressBar
	w       io.Writer
	verb    string
	entries int64
	start   time.Time
	shown   time.Time
}

// newProgress returns a progress display for total bytes (-1: unknown), or
// nil when quiet or when stderr is not a terminal.
func newProgress(stderr io.Writer, quiet bool, verb string, total int64) *progress {
	f, ok := stderr.(*os.File)
	if quiet || !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	p := &progress{w: stderr, verb: verb, start: time.Now()}
	p.bar = progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(stderr),
		progressbar.OptionSetDescription(p.describe()),
		progressbar.OptionShowBytes(true),
		progressbar.OptionSetWidth(24),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionSpinnerType(14),
		progressbar.OptionUseIECUnits(true),
		progressbar.OptionSetRenderBlankState(true),
	)
	return p
}

func (p *progress) describe() string {
	s := fmt.Sprintf("%s %s entries", p.verb, child.Thousands(p.entries))
	if d := time.Since(p.start).Seconds(); d >= 0.5 {
		s += fmt.Sprintf(" (%s/s)", child.Thousands(int64(float64(p.entries)/d)))
	}
	return s
}

// add counts entries and bytes done.
func (p *progress) add(entries int, bytes int64) {
	if p == nil {
		return
	}
	p.entries += int64(entries)
	if now := time.Now(); now.Sub(p.shown) >= 100*time.Millisecond {
		p.shown = now
		p.bar.Describe(p.describe())
	}
	p.bar.Add64(bytes)
}

// finish draws the final state and ends the line.
func (p *progress) finish() {
	if p == nil {
		return
	}
	p.bar.Describe(p.describe())
	p.bar.Finish()
	fmt.Fprintln(p.w)
}
