package child

import (
	"bytes"
	"strings"
	"sync"
	"testing"
)

func TestThousands(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 7: "7", 999: "999", 1000: "1,000", 1234567: "1,234,567", -1234: "-1,234"} {
		if got := Thousands(n); got != want {
			t.Errorf("Thousands(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestLinesWhole(t *testing.T) {
	var buf bytes.Buffer
	l := NewLines(&buf)
	var wg sync.WaitGroup
	for g := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				l.Printf("goroutine %d %s", g, strings.Repeat("x", 100))
			}
		}()
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 1000 {
		t.Fatalf("%d lines, want 1000", len(lines))
	}
	for _, line := range lines {
		if !strings.HasSuffix(line, strings.Repeat("x", 100)) || !strings.HasPrefix(line, "goroutine ") {
			t.Fatalf("torn line %q", line)
		}
	}
}
