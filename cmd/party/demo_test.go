//go:build unix

package main

import (
	"errors"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// TestDemo runs party demo and checks its summary: every acknowledged
// write is found, the leader changed, and no child or file is left behind.
func TestDemo(t *testing.T) {
	tmp := t.TempDir()
	r := partyEnv(t, []string{"TMPDIR=" + tmp}, "", "demo", "--writers", "2", "--seconds", "2")
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("demo: exit %d, stderr %q\n%s", r.code, r.stderr, r.stdout)
	}
	out := r.stdout
	field := func(re string) []string {
		t.Helper()
		m := regexp.MustCompile(re).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("demo output does not match %q:\n%s", re, out)
		}
		return m
	}
	number := func(s string) int {
		n, err := strconv.Atoi(strings.ReplaceAll(s, ",", ""))
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	acked := number(field(`writes acknowledged\s+([\d,]+)`)[1])
	found := number(field(`acknowledged writes found\s+([\d,]+)\s+✓`)[1])
	if acked == 0 || acked != found {
		t.Fatalf("demo: %d writes acknowledged, %d found:\n%s", acked, found, out)
	}
	before := field(`leader before the kill\s+(.+), pid (\d+)`)
	after := field(`leader after the kill\s+(.+), pid (\d+)`)
	if before[2] == after[2] || before[1] != "writer 1" {
		t.Fatalf("demo: leader before %q, after %q:\n%s", before[1:], after[1:], out)
	}
	field(`failover gap\s+\d+\.\d ms`)
	field(`kill -9 writer 1 \(pid ` + before[2] + `\), the leader`)
	field(`no counter ever went backwards ✓`)

	// Every child is gone, and so is the temporary directory.
	pids := regexp.MustCompile(`(?m)^  (?:writer \d+|reader)\s+pid (\d+)`).FindAllStringSubmatch(out, -1)
	if len(pids) != 3 {
		t.Fatalf("demo started %d children, want 3:\n%s", len(pids), out)
	}
	for _, m := range pids {
		pid, _ := strconv.Atoi(m[1])
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("demo child %d is still there after the demo: %v", pid, err)
		}
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("demo left %d files in its temporary directory", len(left))
	}
}
