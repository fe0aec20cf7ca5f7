package main

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestPutGetDelHas(t *testing.T) {
	dir := newDir(t)
	ok(t, "", "put", dir, "greeting", "hello")
	if got := ok(t, "", "get", dir, "greeting"); got != "hello\n" {
		t.Fatalf("get: %q", got)
	}
	if got := ok(t, "", "has", dir, "greeting"); got != "true\n" {
		t.Fatalf("has: %q", got)
	}
	if got := ok(t, "", "get", dir, "greeting", "--json"); got != `{"key":"greeting","value":"hello"}`+"\n" {
		t.Fatalf("get --json: %q", got)
	}
	if got := ok(t, "", "has", dir, "greeting", "--json"); got != `{"key":"greeting","found":true}`+"\n" {
		t.Fatalf("has --json: %q", got)
	}

	// Escapes in arguments and output.
	ok(t, "", "put", dir, `tab\there`, `line one\nline two\\ \x00\xff`)
	if got := ok(t, "", "get", dir, `tab\there`); got != `line one\nline two\\ \x00\xff`+"\n" {
		t.Fatalf("get escaped: %q", got)
	}
	if got := ok(t, "", "get", dir, `tab\there`, "--raw"); got != "line one\nline two\\ \x00\xff" {
		t.Fatalf("get --raw: %q", got)
	}
	if got := ok(t, "", "get", dir, "--hex", hex.EncodeToString([]byte("tab\there"))); got != hex.EncodeToString([]byte("line one\nline two\\ \x00\xff"))+"\n" {
		t.Fatalf("get --hex: %q", got)
	}
	if got := ok(t, "", "get", dir, "--base64", "dGFiCWhlcmU="); got != "bGluZSBvbmUKbGluZSB0d29cIAD/\n" {
		t.Fatalf("get --base64: %q", got)
	}
	if got := ok(t, "", "get", dir, `tab\there`, "--json"); got != `{"key":"tab\there","value_b64":"bGluZSBvbmUKbGluZSB0d29cIAD/"}`+"\n" {
		t.Fatalf("get --json of invalid UTF-8: %q", got)
	}
	if got := ok(t, "", "get", dir, "7461620968657265", "--json", "--hex"); got != `{"key_hex":"7461620968657265","value_hex":"6c696e65206f6e650a6c696e652074776f5c2000ff"}`+"\n" {
		t.Fatalf("get --json --hex: %q", got)
	}

	// A value from stdin: exact bytes, or hex text.
	ok(t, "bin\x00ary\n", "put", dir, "stdin", "-")
	if got := ok(t, "", "get", dir, "stdin", "--raw"); got != "bin\x00ary\n" {
		t.Fatalf("value from stdin: %q", got)
	}
	ok(t, " 00 ff\n", "put", dir, "--hex", "6b", "-")
	if got := ok(t, "", "get", dir, "--hex", "6b"); got != "00ff\n" {
		t.Fatalf("hex value from stdin: %q", got)
	}

	// Absent keys: exit 1; has says false and nothing on stderr.
	fails(t, 1, []string{`party get: key "nope" not found`}, "", "get", dir, "nope")
	r := cli(t, "", "has", dir, "nope")
	if r.code != 1 || r.stdout != "false\n" || r.stderr != "" {
		t.Fatalf("has absent: %+v", r)
	}

	ok(t, "", "del", dir, "greeting")
	ok(t, "", "del", dir, "greeting") // deleting an absent key succeeds
	fails(t, 1, []string{"not found"}, "", "get", dir, "greeting")
	fails(t, 1, []string{"key 6b6b (hex) not found"}, "", "get", dir, "--hex", "6b6b")
}

// TestBinaryKeys puts keys of arbitrary bytes with --hex and reads them
// back through every output format, and through the escaped text of ls.
func TestBinaryKeys(t *testing.T) {
	dir := newDir(t)
	entries := [][2]string{ // hex key, hex value, in key order
		{"", "656d707479206b6579"},
		{"00", ""},
		{"0000", "0a0d09"},
		{"00ff", "5c"},
		{"0a", "e282ac"},
		{"5c78", "ff"},
		{"c3", "c3a9"},
		{"e282ac", "00"},
		{"ff", "ffff"},
		{"ffff", "2d"},
	}
	for _, e := range entries {
		ok(t, "", "put", dir, "--hex", e[0], e[1])
	}
	var wantHex, wantB64, wantText strings.Builder
	for _, e := range entries {
		k, _ := hex.DecodeString(e[0])
		v, _ := hex.DecodeString(e[1])
		fmt.Fprintf(&wantHex, "%s\t%s\n", e[0], e[1])
		fmt.Fprintf(&wantB64, "%s\t%s\n", formatBase64.encode(k), formatBase64.encode(v))
		fmt.Fprintf(&wantText, "%s\t%s\n", escape(k), escape(v))
	}
	if got := ok(t, "", "ls", dir, "--hex"); got != wantHex.String() {
		t.Fatalf("ls --hex:\n%s\nwant:\n%s", got, wantHex.String())
	}
	if got := ok(t, "", "ls", dir, "--base64"); got != wantB64.String() {
		t.Fatalf("ls --base64:\n%s\nwant:\n%s", got, wantB64.String())
	}
	text := ok(t, "", "ls", dir)
	if text != wantText.String() {
		t.Fatalf("ls:\n%s\nwant:\n%s", text, wantText.String())
	}
	// Each line of the text output is one entry, and its escaped key,
	// given back as an argument, finds the entry.
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if len(lines) != len(entries) {
		t.Fatalf("ls printed %d lines for %d entries", len(lines), len(entries))
	}
	for i, line := range lines {
		key, value, _ := strings.Cut(line, "\t")
		want, _ := hex.DecodeString(entries[i][1])
		if got := ok(t, "", "get", dir, key, "--raw"); got != string(want) {
			t.Fatalf("get %q (from ls) = %q, want %q", key, got, want)
		}
		if got := ok(t, "", "get", dir, key); got != value+"\n" {
			t.Fatalf("get %q = %q, want %q", key, got, value)
		}
	}
	// JSON: strings when valid UTF-8, base64 otherwise.
	js := ok(t, "", "ls", dir, "--json", "--limit", "3")
	want := `{"key":"","value":"empty key"}` + "\n" +
		`{"key":"\u0000","value":""}` + "\n" +
		`{"key":"\u0000\u0000","value":"\n\r\t"}` + "\n"
	if js != want {
		t.Fatalf("ls --json:\n%s\nwant:\n%s", js, want)
	}
	if got := ok(t, "", "ls", dir, "--json", "--start", `\xff`); got != `{"key_b64":"/w==","value_b64":"//8="}`+"\n"+`{"key_b64":"//8=","value":"-"}`+"\n" {
		t.Fatalf("ls --json of binary keys: %q", got)
	}
	// The empty key is a key like any other.
	if got := ok(t, "", "get", dir, ""); got != "empty key\n" {
		t.Fatalf("get of the empty key: %q", got)
	}
	ok(t, "", "del", dir, "--hex", "")
	fails(t, 1, []string{`key "" not found`}, "", "get", dir, "")
}

func TestLs(t *testing.T) {
	dir := newDir(t)
	keys := []string{"a", "ab", "abc", "b", "ba", "c", "d"}
	var load strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&load, `{"key":%q,"value":"v-%s"}`+"\n", k, k)
	}
	ok(t, load.String(), "load", dir)

	lsKeys := func(args ...string) string {
		t.Helper()
		out := ok(t, "", append([]string{"ls", dir, "--keys-only"}, args...)...)
		return strings.Join(strings.Fields(out), " ")
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "a ab abc b ba c d"},
		{[]string{"--prefix", "a"}, "a ab abc"},
		{[]string{"--prefix", "ab"}, "ab abc"},
		{[]string{"--prefix", "x"}, ""},
		{[]string{"--start", "ab"}, "ab abc b ba c d"},
		{[]string{"--end", "b"}, "a ab abc"},
		{[]string{"--start", "ab", "--end", "ba"}, "ab abc b"},
		{[]string{"--start", "c", "--end", "b"}, ""},
		{[]string{"--prefix", "a", "--start", "ab"}, "ab abc"},
		{[]string{"--prefix", "a", "--end", "abc"}, "a ab"},
		{[]string{"--prefix", "b", "--start", "a", "--end", "z"}, "b ba"},
		{[]string{"--reverse"}, "d c ba b abc ab a"},
		{[]string{"--reverse", "--prefix", "a"}, "abc ab a"},
		{[]string{"--reverse", "--start", "ab", "--end", "c", "--limit", "2"}, "ba b"},
		{[]string{"--limit", "2"}, "a ab"},
		{[]string{"--limit", "0"}, "a ab abc b ba c d"},
		{[]string{"--hex", "--prefix", "62"}, "62 6261"},
	} {
		if got := lsKeys(c.args...); got != c.want {
			t.Errorf("ls --keys-only %q = %q, want %q", c.args, got, c.want)
		}
	}
	if got := ok(t, "", "ls", dir, "--prefix", "b"); got != "b\tv-b\nba\tv-ba\n" {
		t.Errorf("ls --prefix b: %q", got)
	}
	if got := ok(t, "", "ls", dir, "--prefix", "b", "--values-only"); got != "v-b\nv-ba\n" {
		t.Errorf("ls --values-only: %q", got)
	}
	if got := ok(t, "", "ls", dir, "--prefix", "b", "--values-only", "--json"); got != `{"value":"v-b"}`+"\n"+`{"value":"v-ba"}`+"\n" {
		t.Errorf("ls --values-only --json: %q", got)
	}
	if got := ok(t, "", "ls", dir, "--prefix", "b", "--keys-only", "--json"); got != `{"key":"b"}`+"\n"+`{"key":"ba"}`+"\n" {
		t.Errorf("ls --keys-only --json: %q", got)
	}
	if got := ok(t, "", "ls", dir, "--count"); got != "7\n" {
		t.Errorf("ls --count: %q", got)
	}
	if got := ok(t, "", "ls", dir, "--count", "--prefix", "a", "--limit", "2"); got != "2\n" {
		t.Errorf("ls --count --limit 2: %q", got)
	}
	if got := ok(t, "", "ls", dir, "--count", "--json", "--start", "b"); got != `{"count":4}`+"\n" {
		t.Errorf("ls --count --json: %q", got)
	}
}

// TestUsageAndErrors checks exit codes and that every error is one line
// on stderr.
func TestUsageAndErrors(t *testing.T) {
	dir := newDir(t)
	ok(t, "", "put", dir, "k", "v")
	missing := newDir(t)
	for _, c := range []struct {
		code int
		want []string
		args []string
	}{
		{exitUsage, []string{"party get: accepts 2 arg(s), received 1", "party get --help"}, []string{"get", dir}},
		{exitUsage, []string{"party put: accepts 3 arg(s), received 2"}, []string{"put", dir, "k"}},
		{exitUsage, []string{"unknown command"}, []string{"frobnicate"}},
		{exitUsage, []string{"unknown flag: --bogus", "party ls --help"}, []string{"ls", dir, "--bogus"}},
		{exitUsage, []string{"KEY", "not valid hex"}, []string{"get", dir, "--hex", "zz"}},
		{exitUsage, []string{"not valid base64"}, []string{"del", dir, "--base64", "!!"}},
		{exitUsage, []string{`unknown escape \q`, `write \\ for a backslash`}, []string{"get", dir, `a\q`}},
		{exitUsage, []string{`\x at byte 0 needs two hex digits`}, []string{"put", dir, `\x4`, "v"}},
		{exitUsage, []string{"--prefix", "not valid"}, []string{"ls", dir, "--prefix", `\`}},
		{exitUsage, []string{"hex", "base64"}, []string{"ls", dir, "--hex", "--base64"}},
		{exitUsage, []string{"keys-only", "values-only"}, []string{"ls", dir, "--keys-only", "--values-only"}},
		{exitUsage, []string{"--limit must be 0"}, []string{"ls", dir, "--limit", "-1"}},
		{exitUsage, []string{"invalid argument"}, []string{"ls", dir, "--limit", "x"}},
		{exitUsage, []string{"--writers must be between 1 and 16"}, []string{"demo", "--writers", "0"}},
		{exitNotFound, []string{"not found"}, []string{"get", dir, "absent"}},
		{exitFailure, []string{"no database at", "check the path"}, []string{"get", missing, "k"}},
		{exitFailure, []string{"no database at"}, []string{"ls", missing}},
		{exitFailure, []string{"no database at"}, []string{"status", missing}},
		{exitFailure, []string{"no database in", "no CURRENT file"}, []string{"dump", t.TempDir()}},
		{exitFailure, []string{"no such file", "check the path"}, []string{"load", dir, missing + ".jsonl"}},
	} {
		fails(t, c.code, c.want, "", c.args...)
	}
	// Commands that only read never create a database.
	if _, err := os.Stat(missing); err == nil {
		t.Fatalf("a reading command created %s", missing)
	}
}

func TestHelp(t *testing.T) {
	out := ok(t, "", "--help")
	for _, want := range []string{"Exit codes", `\xNN`, "demo", "dump"} {
		if !strings.Contains(out, want) {
			t.Errorf("party --help does not mention %q", want)
		}
	}
	for _, name := range []string{"get", "put", "del", "has", "ls", "dump", "load", "status", "demo", "bench"} {
		out := ok(t, "", name, "--help")
		if !strings.Contains(out, "Examples:\n") || !strings.Contains(out, "party "+name) {
			t.Errorf("party %s --help has no example:\n%s", name, out)
		}
	}
}

// TestWhileHeld runs the CLI against a database that another process holds
// open as leader, then lets a second holder take over after a kill -9.
func TestWhileHeld(t *testing.T) {
	dir := newDir(t)
	a := hold(t, dir)
	if !a.leader {
		t.Fatal("the first holder of a new database is not its leader")
	}
	ok(t, "", "put", dir, "k1", "v1")
	ok(t, "", "put", dir, "--hex", "00ff", "01")
	if got := ok(t, "", "get", dir, "k1"); got != "v1\n" {
		t.Fatalf("get: %q", got)
	}
	if got := ok(t, "", "ls", dir); got != "\\x00\\xff\t\\x01\nk1\tv1\n" {
		t.Fatalf("ls: %q", got)
	}
	// The leader notices that earlier commands left a moment after they
	// exit, so wait until it counts only the status command.
	st := waitStatus(t, dir, func(st statusJSON) bool { return st.OtherFollowers == 0 })
	if !st.Serving || st.ThisCommandLed || st.PID != a.pid || st.Followers != 1 {
		t.Fatalf("status while held: %+v, holder pid %d", st, a.pid)
	}
	text := ok(t, "", "status", dir)
	for _, want := range []string{fmt.Sprintf("serving, pid %d", a.pid), "connected, this command included", "leader id  " + st.LeaderID} {
		if !strings.Contains(text, want) {
			t.Fatalf("status does not say %q:\n%s", want, text)
		}
	}

	b := hold(t, dir)
	if b.leader {
		t.Fatal("a second holder leads while the first is alive")
	}
	if st := waitStatus(t, dir, func(st statusJSON) bool { return st.OtherFollowers == 1 }); st.PID != a.pid {
		t.Fatalf("status with two holders: %+v", st)
	}
	a.kill(t)
	b.waitLeader(t)
	ok(t, "", "put", dir, "k2", "v2")
	if got := ok(t, "", "ls", dir, "--keys-only"); got != "\\x00\\xff\nk1\nk2\n" {
		t.Fatalf("ls after the kill: %q", got)
	}
	if st := status(t, dir); st.PID != b.pid || st.LeaderID == "" {
		t.Fatalf("status after the kill: %+v, new holder pid %d", st, b.pid)
	}
	b.stop(t)

	// Nobody holds it now: the CLI leads, briefly, and says so.
	st = status(t, dir)
	if st.Serving || !st.ThisCommandLed || st.Followers != 0 {
		t.Fatalf("status of a database nobody holds: %+v", st)
	}
	if text := ok(t, "", "status", dir); !strings.Contains(text, "no other participant was serving; this command led briefly") {
		t.Fatalf("status alone:\n%s", text)
	}
	if got := ok(t, "", "get", dir, "k2"); got != "v2\n" {
		t.Fatalf("get after the holders left: %q", got)
	}
}

// waitStatus runs status until cond holds, and fails the test if it never
// does.
func waitStatus(t *testing.T, dir string, cond func(statusJSON) bool) statusJSON {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := status(t, dir)
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("status never met the condition; last: %+v", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func status(t *testing.T, dir string) statusJSON {
	t.Helper()
	var st statusJSON
	out := ok(t, "", "status", dir, "--json")
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status --json: %v: %q", err, out)
	}
	if st.DiskBytes <= 0 || st.PID <= 0 || len(st.LeaderID) != 32 {
		t.Fatalf("status --json: %+v", st)
	}
	return st
}

// TestWatch runs 'party watch' as a process while other party processes
// write: it prints the changes in its range, in order, in text or JSON,
// exits 0 after --count changes, and exits 0 on SIGINT.
func TestWatch(t *testing.T) {
	dir := newDir(t)
	ok(t, "", "put", dir, "seed", "x")
	h := hold(t, dir)
	defer h.stop(t)
	for _, asJSON := range []bool{false, true} {
		args := []string{"watch", dir, "--prefix", "k/", "--count", "4"}
		if asJSON {
			args = append(args, "--json")
		}
		cmd := exec.Command(partyBin, args...)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan string, 16)
		go func() {
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		// Until the watch is registered, pings may go unseen: the first
		// line seen is a ping.
		var got []string
		deadline := time.Now().Add(30 * time.Second)
		for len(got) == 0 {
			ok(t, "", "put", dir, "k/ping", "p")
			select {
			case l := <-lines:
				got = append(got, l)
			case <-time.After(100 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				t.Fatalf("party watch printed nothing; stderr %q", stderr.String())
			}
		}
		ok(t, "", "put", dir, "other", "not in the range")
		ok(t, "", "put", dir, "k/a\tb", "1\n2")
		ok(t, "", "del", dir, "k/ping")
		ok(t, "", "put", dir, "k/last", "z")
		for l := range lines {
			got = append(got, l)
		}
		if err := cmd.Wait(); err != nil {
			t.Fatalf("party watch: %v; stderr %q", err, stderr.String())
		}
		want := []string{"put\tk/ping\tp", "put\tk/a\\tb\t1\\n2", "del\tk/ping", "put\tk/last\tz"}
		if asJSON {
			want = []string{`{"op":"put","key":"k/ping","value":"p"}`, `{"op":"put","key":"k/a\tb","value":"1\n2"}`,
				`{"op":"del","key":"k/ping"}`, `{"op":"put","key":"k/last","value":"z"}`}
		}
		// Pings before the first line seen may repeat the first.
		for len(got) > len(want) && got[1] == want[0] {
			got = got[1:]
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("party %q printed:\n%s\nwant:\n%s", args, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}

	// Interrupted, it ends cleanly. The interrupt is sent once the watch
	// printed a change, so its handler is installed (a sleep was not
	// enough on a loaded machine).
	cmd := exec.Command(partyBin, "watch", dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	printed := make(chan struct{})
	go func() {
		r := bufio.NewReader(stdout)
		if _, err := r.ReadString('\n'); err == nil {
			close(printed)
		}
		io.Copy(io.Discard, r)
	}()
	for waiting, deadline := true, time.After(30*time.Second); waiting; {
		ok(t, "", "put", dir, "k/ping", "p")
		select {
		case <-printed:
			waiting = false
		case <-time.After(100 * time.Millisecond):
		case <-deadline:
			t.Fatalf("party watch printed nothing; stderr %q", stderr.String())
		}
	}
	cmd.Process.Signal(os.Interrupt)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("party watch after SIGINT: %v; stderr %q", err, stderr.String())
	}
}

// TestCompact runs 'party compact' on a database that a holder process
// leads, after every key was written four times: the compaction drops the
// overwritten versions, and the size on disk it reports shrinks.
func TestCompact(t *testing.T) {
	dir := newDir(t)
	// 3,000 keys of 1,000 hex digits, written 4 times: more than the
	// memtable holds, so tables keep overwritten versions.
	rnd := rand.New(rand.NewPCG(1, 2))
	var in strings.Builder
	for i := range 3000 {
		v := make([]byte, 500)
		for j := range v {
			v[j] = byte(rnd.IntN(256))
		}
		fmt.Fprintf(&in, "{\"key\":\"k/%05d\",\"value\":\"%x\"}\n", i, v)
	}
	h := hold(t, dir)
	defer h.stop(t)
	for range 4 {
		ok(t, in.String(), "load", "-q", dir)
	}
	out := ok(t, "", "compact", dir, "--prefix", "k/")
	var before, after int64
	if _, err := fmt.Sscanf(out, "compacted: %d bytes on disk before, %d after", &before, &after); err != nil {
		t.Fatalf("party compact printed %q: %v", out, err)
	}
	if after >= before {
		t.Fatalf("party compact: %d bytes before, %d after: want fewer after overwriting every key", before, after)
	}
	if n := strings.TrimSpace(ok(t, "", "ls", dir, "--count")); n != "3000" {
		t.Fatalf("ls --count after compact: %s", n)
	}
	// status counts the tables per level, from the leader's goleveldb.
	st := status(t, dir)
	tables := 0
	for _, n := range st.TablesPerLevel {
		tables += n
	}
	if tables == 0 || len(st.TablesPerLevel) < 2 {
		t.Fatalf("status tables_per_level %v after a compaction: want tables below level 0", st.TablesPerLevel)
	}
	if out := ok(t, "", "status", dir); !strings.Contains(out, "tables     L") {
		t.Fatalf("status shows no tables line:\n%s", out)
	}
}

// TestSublevelFlag runs every command that takes --sublevel inside one
// (and a nested one), while a holder process leads: keys are relative,
// nothing outside the sublevel is read or written, dump and load copy one
// sublevel into another, watch sees only the sublevel's changes, ls
// --sublevels names the sublevels, and a name abstract-level refuses is a
// usage error.
func TestSublevelFlag(t *testing.T) {
	dir := newDir(t)
	ok(t, "", "put", dir, "!users", "next to the sublevel")
	h := hold(t, dir)
	defer h.stop(t)
	ok(t, "", "put", dir, "--sublevel", "users", "alice", "1")
	ok(t, "", "put", dir, "--sublevel", "users", "bob", "2")
	ok(t, "", "put", dir, "--sublevel", "users", "--sublevel", "admins", "root", "r")
	ok(t, "", "put", dir, "--sublevel", "sessions", "s1", "x")
	ok(t, "", "put", dir, "!not a sublevel!k", "bad name")

	if got := ok(t, "", "get", dir, "--sublevel", "users", "alice"); got != "1\n" {
		t.Errorf("get --sublevel users alice: %q", got)
	}
	fails(t, 1, []string{"not found"}, "", "get", dir, "--sublevel", "sessions", "alice")
	if got := ok(t, "", "has", dir, "--sublevel", "users", "--sublevel", "admins", "root"); got != "true\n" {
		t.Errorf("has in a nested sublevel: %q", got)
	}
	ok(t, "", "del", dir, "--sublevel", "users", "bob")
	if got, want := ok(t, "", "ls", dir, "--sublevel", "users"), "!admins!root\tr\nalice\t1\n"; got != want {
		t.Errorf("ls --sublevel users:\n%s\nwant:\n%s", got, want)
	}
	if got, want := ok(t, "", "ls", dir, "--sublevel", "users", "--sublevel", "admins"), "root\tr\n"; got != want {
		t.Errorf("ls of a nested sublevel: %q, want %q", got, want)
	}
	if got, want := ok(t, "", "ls", dir, "--sublevels"), "sessions\nusers\n"; got != want {
		t.Errorf("ls --sublevels: %q, want %q", got, want)
	}
	if got, want := ok(t, "", "ls", dir, "--sublevels", "--sublevel", "users", "--json"), "{\"sublevel\":\"admins\"}\n"; got != want {
		t.Errorf("ls --sublevels inside users: %q, want %q", got, want)
	}

	// dump one sublevel, load it into another.
	dump := ok(t, "", "dump", dir, "--sublevel", "users")
	ok(t, dump, "load", "-q", dir, "--sublevel", "copy")
	if got, want := ok(t, "", "ls", dir, "--sublevel", "copy"), "!admins!root\tr\nalice\t1\n"; got != want {
		t.Errorf("a sublevel loaded from another's dump:\n%s\nwant:\n%s", got, want)
	}
	if got := ok(t, "", "get", dir, "!copy!!admins!root"); got != "r\n" {
		t.Errorf("the loaded nested key is not stored at !copy!!admins!root: %q", got)
	}

	// watch inside a sublevel: a change next to it never shows.
	cmd := exec.Command(partyBin, "watch", dir, "--sublevel", "users", "--count", "1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	deadline := time.After(30 * time.Second)
	for waiting := true; waiting; {
		ok(t, "", "put", dir, "!users", "outside")
		ok(t, "", "put", dir, "--sublevel", "sessions", "s2", "outside")
		ok(t, "", "put", dir, "--sublevel", "users", "ping", "p")
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("party watch --sublevel: %v; stderr %q", err, stderr.String())
			}
			waiting = false
		case <-time.After(100 * time.Millisecond):
		case <-deadline:
			t.Fatalf("party watch --sublevel printed nothing; stderr %q", stderr.String())
		}
	}
	if got := stdout.String(); got != "put\tping\tp\n" {
		t.Errorf("party watch --sublevel users printed %q, want the sublevel's put only", got)
	}

	fails(t, 2, []string{"--sublevel", `"a b"`, "'#'"}, "", "put", dir, "--sublevel", "a b", "k", "v")
	fails(t, 2, []string{"sublevels"}, "", "ls", dir, "--sublevels", "--prefix", "x")
	if got := ok(t, "", "get", dir, "!users"); got != "outside\n" {
		t.Errorf("the key next to the sublevel: %q", got)
	}
}
