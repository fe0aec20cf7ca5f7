package main

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/levelparty/party"
)

// binaryEntries returns entries whose keys and values hold any bytes:
// invalid UTF-8, zero and 0xff bytes, newlines, the empty key, an empty
// value, and a large value.
func binaryEntries() map[string][]byte {
	r := rand.New(rand.NewPCG(1, 2))
	m := map[string][]byte{
		"":                      []byte("the empty key"),
		"\x00":                  {},
		"\xff\xff":              {0, 0xff},
		"line\nbreak\r\t":       []byte("\\x00 is not a zero byte"),
		"café €":                []byte("ünïcode"),
		"\xc3":                  []byte("\xe2\x82"), // truncated UTF-8
		"big":                   bytes.Repeat([]byte("0123456789\x00"), 100_000),
		`{"key":"json"}` + "\n": []byte(`"quoted"`),
	}
	for i := 0; i < 2000; i++ {
		k := make([]byte, 1+r.IntN(24))
		v := make([]byte, r.IntN(64))
		for j := range k {
			k[j] = byte(r.UintN(256))
		}
		for j := range v {
			v[j] = byte(r.UintN(256))
		}
		if i%3 == 0 {
			k = fmt.Appendf(nil, "text/%05d", i) // valid UTF-8 too
		}
		m[string(k)] = v
	}
	return m
}

// writeDB creates a database holding m, through the library.
func writeDB(t *testing.T, dir string, m map[string][]byte) {
	t.Helper()
	db, err := party.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var b party.Batch
	for k, v := range m {
		b.Put([]byte(k), v)
	}
	if err := db.Write(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
}

// readDB returns every entry of the database in dir, through the library.
func readDB(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	db, err := party.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	m := make(map[string][]byte)
	it := db.NewIterator(context.Background(), nil)
	defer it.Release()
	for it.Next() {
		m[string(it.Key())] = bytes.Clone(it.Value())
	}
	if err := it.Error(); err != nil {
		t.Fatal(err)
	}
	return m
}

func sameEntries(t *testing.T, what string, got, want map[string][]byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d entries, want %d", what, len(got), len(want))
	}
	for k, v := range want {
		g, ok := got[k]
		if !ok {
			t.Fatalf("%s: key %q missing", what, k)
		}
		if !bytes.Equal(g, v) {
			t.Fatalf("%s: key %q holds %q, want %q", what, k, g, v)
		}
	}
}

func TestDumpLoadRoundTrip(t *testing.T) {
	want := binaryEntries()
	src := newDir(t)
	writeDB(t, src, want)
	file := filepath.Join(t.TempDir(), "dump.jsonl")

	// To a file; nothing on stderr when it is not a terminal.
	ok(t, "", "dump", src, file)
	dumped, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(dumped, []byte("\n")); n != len(want) {
		t.Fatalf("dump wrote %d lines for %d entries", n, len(want))
	}
	if !bytes.Contains(dumped, []byte(`{"key":"café €","value":"ünïcode"}`)) || !bytes.Contains(dumped, []byte(`{"key_b64":"//8=","value_b64":"AP8="}`)) {
		t.Fatalf("dump does not write text as strings and binary as base64")
	}
	dst := newDir(t)
	ok(t, "", "load", dst, file, "--batch-entries", "300")
	sameEntries(t, "dump to a file, load", readDB(t, dst), want)

	// Through stdout and stdin, in each encoding.
	for _, enc := range [][]string{{"--hex"}, {"--base64"}, {"--quiet"}} {
		out := ok(t, "", append([]string{"dump", src}, enc...)...)
		if enc[0] == "--hex" && strings.Contains(out, `"key":`) {
			t.Fatalf("dump --hex wrote a text key")
		}
		dst := newDir(t)
		ok(t, out, "load", dst, "-", "--batch-bytes", "100000")
		sameEntries(t, "dump "+enc[0], readDB(t, dst), want)
	}

	// ls --json is loadable too; dump --prefix takes a range.
	dst = newDir(t)
	ok(t, ok(t, "", "ls", src, "--json"), "load", dst)
	sameEntries(t, "ls --json, load", readDB(t, dst), want)
	prefixed := make(map[string][]byte)
	for k, v := range want {
		if strings.HasPrefix(k, "text/") {
			prefixed[k] = v
		}
	}
	dst = newDir(t)
	ok(t, ok(t, "", "dump", src, "--prefix", "text/"), "load", dst)
	sameEntries(t, "dump --prefix", readDB(t, dst), prefixed)
}

func TestLoadMalformedLine(t *testing.T) {
	// 2,500 good entries, a blank line, then a bad line: two whole batches
	// and the 500 entries of the third are committed, nothing after.
	var in strings.Builder
	for i := 0; i < 2500; i++ {
		fmt.Fprintf(&in, `{"key":"k%05d","value":"v"}`+"\n", i)
		if i == 1000 {
			in.WriteString("\n")
		}
	}
	in.WriteString(`{"key":"bad","value":"v"` + "\n") // line 2502
	in.WriteString(`{"key":"after","value":"v"}` + "\n")
	dir := newDir(t)
	file := filepath.Join(t.TempDir(), "in.jsonl")
	if err := os.WriteFile(file, []byte(in.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	fails(t, exitFailure, []string{
		"party load: line 2502: not a JSON object",
		"the 2500 entries before it were committed, none from it on",
		"tail -n +2502 " + file + " | party load " + dir,
	}, "", "load", dir, file)
	if got := ok(t, "", "ls", dir, "--count"); got != "2500\n" {
		t.Fatalf("after the bad line, the database holds %s entries, want 2500", got)
	}
	fails(t, 1, nil, "", "get", dir, "after")

	for _, c := range []struct {
		input, want string
	}{
		{"not json\n", "line 1: not a JSON object"},
		{`{"key":"a","value":"b"}` + "\n" + `{"key":"a"}` + "\n", `line 2: missing "value"`},
		{`{"value":"b"}`, `line 1: missing "key"`},
		{`{"key":"a","key_b64":"YQ==","value":""}`, `line 1: more than one of "key", "key_b64", "key_hex"`},
		{`{"key_b64":"!","value":""}`, "line 1: key_b64 is not valid base64"},
		{`{"key":"a","value_hex":"0"}`, "line 1: value_hex is not valid hex"},
		{`{"key":"a","value":"b","extra":1}`, `unknown field "extra"`},
		{`{"key":"a","value":"b"} {}`, "line 1: more than one JSON value"},
		{"\n\n{\"key\":\"a\",\"value\":\"\xff\"}", "line 3: line is not valid UTF-8"},
		{`["a","b"]`, "line 1: not a JSON object"},
	} {
		fails(t, exitFailure, []string{c.want, "were committed", "tail -n +"}, c.input, "load", newDir(t))
	}
}
