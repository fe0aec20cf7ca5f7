//go:build !unix

package bench

import (
	"errors"
	"os"

	"github.com/levelparty/party/cmd/party/internal/child"
)

var errNoSocketPair = errors.New("bench: the socket round trip is measured on unix only")

func socketPair() (*os.File, *os.File, error) { return nil, nil, errNoSocketPair }

func echoChild(out *child.Lines) error { return errNoSocketPair }
