//go:build !linux

package bench

import (
	"errors"
)

// rssSupported says whether rss works here.
const rssSupported = false

// rss is not measured outside Linux.
func rss(pid int) (int64, error) {
	return 0, errors.New("bench: RSS is measured on Linux only")
}

// loadAverage is not read outside Linux.
func loadAverage() (float64, error) {
	return 0, errors.New("bench: load average is read on Linux only")
}
