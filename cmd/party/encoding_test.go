package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestEscape(t *testing.T) {
	for _, c := range []struct{ in, out string }{
		{"", ""},
		{"plain text", "plain text"},
		{"a\\b", `a\\b`},
		{"\n\t\r", `\n\t\r`},
		{"\x00\x01\x7f", `\x00\x01\x7f`},
		{"\xff\xfe", `\xff\xfe`},
		{"café €", "café €"},
		{"\u00a0\u2028", `\xc2\xa0\xe2\x80\xa8`}, // unprintable runes
		{"\xe2\x82", `\xe2\x82`},                 // truncated UTF-8
		{`\x41`, `\\x41`},
		{"\uFFFD", "\uFFFD"}, // a real replacement character is printable
	} {
		if got := escape([]byte(c.in)); got != c.out {
			t.Errorf("escape(%q) = %q, want %q", c.in, got, c.out)
		}
		back, err := unescape(c.out)
		if err != nil || string(back) != c.in {
			t.Errorf("unescape(%q) = %q, %v; want %q", c.out, back, err, c.in)
		}
	}
	for _, bad := range []string{`\`, `a\q`, `\x`, `\x4`, `\xg0`, `\0`} {
		if b, err := unescape(bad); err == nil {
			t.Errorf("unescape(%q) = %q, want an error", bad, b)
		}
	}
}

// FuzzEscape checks that escape round-trips and always writes one line
// without tabs.
func FuzzEscape(f *testing.F) {
	for _, s := range []string{"", "a\tb\nc", "\x00\xff", "é\xe9", `\\x`, "\u2028"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s := escape(b)
		if strings.ContainsAny(s, "\n\t\r") {
			t.Fatalf("escape(%q) = %q holds a line break or tab", b, s)
		}
		back, err := unescape(s)
		if err != nil || !bytes.Equal(back, b) {
			t.Fatalf("unescape(escape(%q)) = %q, %v", b, back, err)
		}
	})
}

// FuzzJSONEntry checks that a JSON entry in each mode reads back as the
// same key and value.
func FuzzJSONEntry(f *testing.F) {
	f.Add([]byte("key"), []byte("value"))
	f.Add([]byte{0, 0xff}, []byte("\u2028<&>\"\\"))
	f.Add([]byte{}, []byte{0xed, 0xa0, 0x80}) // an encoded surrogate: not UTF-8
	f.Fuzz(func(t *testing.T, k, v []byte) {
		for _, mode := range []jsonMode{jsonAuto, jsonHex, jsonBase64} {
			var buf bytes.Buffer
			jsonEntry(&buf, k, v, keyAndValue, mode)
			line := buf.Bytes()
			if bytes.Count(line, []byte("\n")) != 1 || line[len(line)-1] != '\n' {
				t.Fatalf("entry is not one line: %q", line)
			}
			gk, gv, err := parseEntry(line[:len(line)-1])
			if err != nil || !bytes.Equal(gk, k) || !bytes.Equal(gv, v) {
				t.Fatalf("mode %d: parseEntry(%s) = %q, %q, %v; want %q, %q", mode, line, gk, gv, err, k, v)
			}
		}
	})
}
