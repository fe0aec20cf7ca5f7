//go:build !unix

package wire

import (
	"io"
	"time"
)

// PollReader reads plainly where there is no non-blocking read.
type PollReader struct{ r io.Reader }

// NewPollReader returns a plain reader of c.
func NewPollReader(c io.Reader, _ func() time.Duration) *PollReader { return &PollReader{r: c} }

// Read reads into b.
func (p *PollReader) Read(b []byte) (int, error) { return p.r.Read(b) }
