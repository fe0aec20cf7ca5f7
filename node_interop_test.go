package party

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/levelparty/party/internal/sublevel"
)

// nodeFixture returns the directory of the Node side of the interop test,
// with classic-level installed there (npm ci, from .ci/run). Without node
// or the installed packages the test is skipped, unless PARTY_NODE=required
// (as CI sets it), where it fails.
func nodeFixture(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("testdata", "node"))
	if err != nil {
		t.Fatal(err)
	}
	_, nodeErr := exec.LookPath("node")
	_, pkgErr := os.Stat(filepath.Join(dir, "node_modules", "classic-level", "package.json"))
	if nodeErr != nil || pkgErr != nil {
		msg := fmt.Sprintf("node or classic-level missing (node: %v; run `npm ci` in %s: %v)", nodeErr, dir, pkgErr)
		if os.Getenv("PARTY_NODE") == "required" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return dir
}

// nodeRun runs sublevels.js in mode on the database in dir and returns
// its output.
func nodeRun(t *testing.T, fixture, mode, dir string) []byte {
	t.Helper()
	cmd := exec.Command("node", "sublevels.js", mode, dir)
	cmd.Dir = fixture
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node sublevels.js %s: %v", mode, err)
	}
	return out
}

// subListing is what each sublevel path holds: relative keys and values.
type subListing map[string][][2]string

// nodeDump returns what Node's sublevels hold.
func nodeDump(t *testing.T, fixture, dir string) subListing {
	t.Helper()
	var raw map[string][][2]string
	if err := json.Unmarshal(nodeRun(t, fixture, "dump", dir), &raw); err != nil {
		t.Fatal(err)
	}
	out := subListing{}
	for path, entries := range raw {
		out[path] = [][2]string{}
		for _, e := range entries {
			k, err1 := hex.DecodeString(e[0])
			v, err2 := hex.DecodeString(e[1])
			if err1 != nil || err2 != nil {
				t.Fatalf("bad hex in node's dump: %q", e)
			}
			out[path] = append(out[path], [2]string{string(k), string(v)})
		}
	}
	return out
}

// nodePaths are the sublevel paths sublevels.js lists.
var nodePaths = [][]string{{"users"}, {"users", "admins"}, {"bin"}, {"go"}, {"go", "nested"}}

// partyDump returns what party's views of the same paths hold.
func partyDump(t *testing.T, ctx context.Context, db *DB) subListing {
	t.Helper()
	out := subListing{}
	for _, path := range nodePaths {
		v := subView{names: path}.of(db)
		entries := [][2]string{}
		for _, e := range cfScan(t, ctx, v, nil) {
			entries = append(entries, [2]string{string(e.key), string(e.value)})
		}
		out[joinPath(path)] = entries
	}
	return out
}

func joinPath(p []string) string {
	s := p[0]
	for _, n := range p[1:] {
		s += "/" + n
	}
	return s
}

func (l subListing) diff(want subListing) string {
	var d string
	for _, path := range nodePaths {
		p := joinPath(path)
		if !slices.Equal(l[p], want[p]) {
			d += fmt.Sprintf("\n\t%s: %q, want %q", p, l[p], want[p])
		}
	}
	return d
}

// withNodeLeak returns want as Node lists it: abstract-level bounds a
// sublevel's iterators with an inclusive upper bound, "!users\"", so a key
// stored exactly there by the root shows in Node's "users" sublevel as the
// empty key. party's views end before it.
func (l subListing) withNodeLeak() subListing {
	out := subListing{}
	for p, e := range l {
		out[p] = e
	}
	out["users"] = append(slices.Clone(l["users"]), [2]string{"", "upper bound"})
	return out
}

// TestNodeSublevels is the interoperability test with Node: classic-level
// writes through sublevels (nested, utf8 and binary keys, a batch) and
// party reads exactly those keys through Sublevel; party writes through
// Sublevel and Node reads them through its sublevels. Both sides list every
// path, and each listing is compared with the expected one.
func TestNodeSublevels(t *testing.T) {
	fixture := nodeFixture(t)
	dir := filepath.Join(t.TempDir(), "db")
	ctx := itxCtx(t)

	nodeRun(t, fixture, "write", dir)
	want := subListing{
		"users":        {{"!admins!root", "r"}, {"alice", "a"}, {"bob", "b"}, {"zoë", "z"}},
		"users/admins": {{"root", "r"}},
		"bin":          {{"\x00\xff!\"\x00", "\x01\x00\x02"}, {"\xff\xff", ""}},
		"go":           {},
		"go/nested":    {},
	}
	if d := nodeDump(t, fixture, dir).diff(want.withNodeLeak()); d != "" {
		t.Fatalf("Node lists what it wrote differently:%s", d)
	}

	db, err := Open(dir, nil)
	must(t, err)
	if d := partyDump(t, ctx, db).diff(want); d != "" {
		t.Fatalf("party's views of Node's sublevels:%s", d)
	}
	users := db.Sublevel("users")
	must(t, users.Put(ctx, []byte("carol"), []byte("c")))
	must(t, users.Delete(ctx, []byte("bob")))
	must(t, users.Sublevel("admins").Put(ctx, []byte("su"), []byte("s")))
	var b Batch
	b.Put([]byte{0xff, 0x00}, []byte{0x00})
	b.Delete([]byte{0xff, 0xff})
	must(t, db.Sublevel("bin").Write(ctx, &b))
	must(t, db.Sublevel("go").Put(ctx, []byte("k"), []byte("v")))
	must(t, db.Sublevel("go").Sublevel("nested").Update(ctx, func(tx *Transaction) error {
		return tx.Put(ctx, []byte("\x00"), []byte("tx"))
	}))
	must(t, db.Close())

	want = subListing{
		"users":        {{"!admins!root", "r"}, {"!admins!su", "s"}, {"alice", "a"}, {"carol", "c"}, {"zoë", "z"}},
		"users/admins": {{"root", "r"}, {"su", "s"}},
		"bin":          {{"\x00\xff!\"\x00", "\x01\x00\x02"}, {"\xff\x00", "\x00"}},
		"go":           {{"!nested!\x00", "tx"}, {"k", "v"}},
		"go/nested":    {{"\x00", "tx"}},
	}
	if d := nodeDump(t, fixture, dir).diff(want.withNodeLeak()); d != "" {
		t.Fatalf("Node's sublevels after party's writes:%s", d)
	}
}

// TestNodeSublevelNames compares the name rules with abstract-level's own:
// for every code point below 256 alone and names that trimming,
// separators and non-ASCII bytes affect, party's prefix equals the one
// abstract-level computes, and party refuses exactly the names it
// refuses.
func TestNodeSublevelNames(t *testing.T) {
	fixture := nodeFixture(t)
	var names [][2]*string
	if err := json.Unmarshal(nodeRun(t, fixture, "names", filepath.Join(t.TempDir(), "db")), &names); err != nil {
		t.Fatal(err)
	}
	if len(names) < 256 {
		t.Fatalf("node listed %d names", len(names))
	}
	for _, n := range names {
		name := *n[0]
		got, err := sublevel.Prefix(nil, name)
		switch {
		case n[1] == nil && err == nil:
			t.Errorf("Sublevel(%q): prefix %q, but abstract-level refuses the name", name, got)
		case n[1] != nil && err != nil:
			t.Errorf("Sublevel(%q): %v, but abstract-level gives it prefix %q", name, err, *n[1])
		case n[1] != nil && string(got) != *n[1]:
			t.Errorf("Sublevel(%q): prefix %q, abstract-level's %q", name, got, *n[1])
		}
	}
}
