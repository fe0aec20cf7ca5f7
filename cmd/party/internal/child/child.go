// Package child holds what the party command and its benchmark share for
// the child processes they start (the demo's writers, the benchmark's
// leader and follower) and for the lines they print.
package child

import (
	"fmt"
	"io"
	"sync"
)

// Lines prints whole lines, one write each, from any goroutine, so that a
// parent reading a child's output never sees a torn line.
type Lines struct {
	mu sync.Mutex
	w  io.Writer
}

// NewLines returns a Lines printing to w.
func NewLines(w io.Writer) *Lines { return &Lines{w: w} }

// Printf prints one line; format has no trailing newline.
func (l *Lines) Printf(format string, args ...any) {
	line := fmt.Sprintf(format+"\n", args...)
	l.mu.Lock()
	defer l.mu.Unlock()
	io.WriteString(l.w, line)
}

// Thousands formats n with commas: 1234567 is 1,234,567.
func Thousands(n int64) string {
	if n < 0 {
		return "-" + Thousands(-n)
	}
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
