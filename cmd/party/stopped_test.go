//go:build linux

package main

import (
	"strings"
	"syscall"
	"testing"
)

// TestStoppedLeaderOpenError: a leader process that is stopped (SIGSTOP)
// accepts connections but never answers the handshake. Open must still
// give up after its timeout, and say why: no answer on the socket.
func TestStoppedLeaderOpenError(t *testing.T) {
	dir := newDir(t)
	h := hold(t, dir)
	if err := syscall.Kill(h.pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer syscall.Kill(h.pid, syscall.SIGCONT)
	msg := fails(t, exitFailure, []string{"could not join within 1s"}, "", "get", dir, "k", "--timeout", "1s")
	if !strings.Contains(msg, "waiting for an answer on party.sock") {
		t.Fatalf("Open's error does not say why it could not join: %q", msg)
	}
}
