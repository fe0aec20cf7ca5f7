//go:build !unix

package bench

import (
	"errors"
	"os"
)

var errNoSocketPair = errors.New("bench: the socket round trip is measured on unix only")

func socketPair() (*os.File, *os.File, error) { return nil, nil, errNoSocketPair }

func echoChild(out *lineWriter) error { return errNoSocketPair }
