package backend

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// bin is a byte string with the bytes that break naive encodings.
var bin = []byte{0x00, 0xff, 0x80, 0x7f, 0x00, '\n'}

// rec is one record as ForEach delivers it.
type rec struct {
	put  bool
	k, v string
}

// sampleBatch returns a batch of every kind of record, the records it
// should deliver, and the offsets at which a record ends, so that
// truncation tests know which prefixes are still valid.
func sampleBatch() (b *Batch, want []rec, ends []int) {
	b = new(Batch)
	b.Put([]byte("k1"), []byte("v1"))
	ends = append(ends, b.Size())
	b.Delete(bin)
	ends = append(ends, b.Size())
	b.Put(nil, nil)
	ends = append(ends, b.Size())
	b.Put(bytes.Repeat([]byte{'x'}, 300), bin) // a length needing a 2-byte uvarint
	ends = append(ends, b.Size())
	want = []rec{{true, "k1", "v1"}, {false, string(bin), ""}, {true, "", ""}, {true, strings.Repeat("x", 300), string(bin)}}
	return b, want, ends
}

// sampleRecords returns encoded records and the offsets at which a record
// ends.
func sampleRecords() (records []byte, ends []int) {
	b, _, ends := sampleBatch()
	return b.Records(), ends
}

// collect returns the records ForEachRecord delivers, and its error.
func collect(t *testing.T, records []byte) ([]rec, error) {
	t.Helper()
	var got []rec
	err := ForEachRecord(records, func(put bool, k, v []byte) {
		if !put && v != nil {
			t.Errorf("delete record with value %q", v)
		}
		if k == nil {
			t.Errorf("record with a nil key")
		}
		got = append(got, rec{put, string(k), string(v)})
	})
	return got, err
}

// TestRecords checks that ForEachRecord returns what was added, in order,
// and calls nothing at all for records with a bad tail.
func TestRecords(t *testing.T) {
	b, want, ends := sampleBatch()
	records := b.Records()
	got, err := collect(t, records)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("records %v, want %v", got, want)
	}
	if n, err := CountRecords(records); n != len(want) || err != nil {
		t.Errorf("CountRecords: %d, %v; want %d", n, err, len(want))
	}
	for _, empty := range [][]byte{nil, {}} {
		if err := ForEachRecord(empty, func(bool, []byte, []byte) { t.Error("called on no records") }); err != nil {
			t.Errorf("no records (%#v): %v", empty, err)
		}
		if n, err := CountRecords(empty); n != 0 || err != nil {
			t.Errorf("CountRecords of no records (%#v): %d, %v", empty, n, err)
		}
	}
	valid := map[int]bool{0: true}
	for _, e := range ends {
		valid[e] = true
	}
	for n := 0; n < len(records); n++ {
		if valid[n] {
			if c, err := CountRecords(records[:n:n]); err != nil {
				t.Errorf("records cut at a record boundary %d: %d records, %v", n, c, err)
			}
			continue
		}
		called := 0
		err := ForEachRecord(records[:n:n], func(bool, []byte, []byte) { called++ })
		if !errors.Is(err, ErrMalformedRecords) || called != 0 {
			t.Errorf("records cut to %d: err %v after %d calls; want ErrMalformedRecords and no call", n, err, called)
		}
		if _, err := CountRecords(records[:n:n]); !errors.Is(err, ErrMalformedRecords) {
			t.Errorf("CountRecords of records cut to %d: %v, want ErrMalformedRecords", n, err)
		}
	}
	for _, kind := range []byte{2, 7, 0xff} {
		bad := append(append([]byte{}, records...), kind, 0)
		called := 0
		if err := ForEachRecord(bad, func(bool, []byte, []byte) { called++ }); !errors.Is(err, ErrMalformedRecords) || called != 0 {
			t.Errorf("record kind %d after good ones: err %v after %d calls", kind, err, called)
		}
	}
	cases := []struct {
		name    string
		records []byte
	}{
		{"put without value", []byte{1, 1, 'k'}},
		{"overlong key length", []byte{0, 5, 'k'}},
		{"varint overflow", append([]byte{0}, bytes.Repeat([]byte{0xff}, 11)...)},
		{"huge value length", []byte{1, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}},
		{"kind only", []byte{1}},
	}
	for _, c := range cases {
		if _, err := CountRecords(c.records); !errors.Is(err, ErrMalformedRecords) {
			t.Errorf("%s: %v, want ErrMalformedRecords", c.name, err)
		}
	}
}

// TestBatch checks Batch's methods: it copies what is added, counts and
// sizes its records, and Clone and Reset do what they say about memory.
func TestBatch(t *testing.T) {
	var b Batch
	if b.Len() != 0 || b.Size() != 0 || len(b.Records()) != 0 {
		t.Fatalf("zero batch: len %d size %d records %x", b.Len(), b.Size(), b.Records())
	}
	b.ForEach(func(bool, []byte, []byte) { t.Error("ForEach called on an empty batch") })

	key, value := []byte("key"), []byte("value")
	b.Put(key, value)
	b.Delete(key)
	key[0], value[0] = 'K', 'V' // the batch holds copies
	want := []rec{{true, "key", "value"}, {false, "key", ""}}
	var got []rec
	b.ForEach(func(put bool, k, v []byte) { got = append(got, rec{put, string(k), string(v)}) })
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("ForEach: %v, want %v", got, want)
	}
	if b.Len() != 2 || b.Size() != len(b.Records()) || b.Size() != (1+1+3+1+5)+(1+1+3) {
		t.Errorf("len %d size %d records %d bytes", b.Len(), b.Size(), len(b.Records()))
	}

	c := b.Clone()
	if c.Len() != b.Len() || !bytes.Equal(c.Records(), b.Records()) {
		t.Fatalf("clone: len %d records %x, want %d %x", c.Len(), c.Records(), b.Len(), b.Records())
	}
	before := append([]byte{}, b.Records()...)
	c.Records()[2] = 'X'
	c.Put([]byte("more"), nil)
	if !bytes.Equal(b.Records(), before) || b.Len() != 2 {
		t.Errorf("changing the clone changed the batch: %x, len %d", b.Records(), b.Len())
	}
	b.Delete([]byte("other"))
	if c.Len() != 3 {
		t.Errorf("clone has %d records after the batch grew, want 3", c.Len())
	}
	if n, err := CountRecords(c.Records()); n != 3 || err != nil {
		t.Errorf("clone records: %d, %v", n, err)
	}
	if e := (&Batch{}).Clone(); e.Len() != 0 || e.Size() != 0 {
		t.Errorf("clone of an empty batch: len %d size %d", e.Len(), e.Size())
	}

	mem := &b.Records()[0]
	b.Reset()
	if b.Len() != 0 || b.Size() != 0 || len(b.Records()) != 0 {
		t.Fatalf("after Reset: len %d size %d", b.Len(), b.Size())
	}
	b.ForEach(func(bool, []byte, []byte) { t.Error("ForEach called after Reset") })
	b.Put([]byte("k"), []byte("v"))
	if &b.Records()[0] != mem {
		t.Error("Reset did not keep the batch's memory")
	}
	if n, err := CountRecords(b.Records()); n != 1 || err != nil || b.Len() != 1 {
		t.Errorf("after Reset and Put: %d records (len %d), %v", n, b.Len(), err)
	}
}

// FuzzForEachRecord validates arbitrary batch records. Whatever decodes
// is added to a Batch again, which must give records that decode to the
// same and are no longer (lengths are uvarints, which admit redundant
// encodings, so the bytes may differ).
func FuzzForEachRecord(f *testing.F) {
	records, _ := sampleRecords()
	f.Add(records)
	f.Add([]byte{})
	var one Batch
	one.Delete([]byte("k"))
	f.Add(one.Records())
	var bad Batch
	bad.Put([]byte("k"), []byte("v"))
	f.Add(append(bad.Records(), 2))
	f.Fuzz(func(t *testing.T, data []byte) {
		type raw struct {
			put  bool
			k, v []byte
		}
		var got []raw
		err := ForEachRecord(data, func(put bool, k, v []byte) { got = append(got, raw{put, k, v}) })
		n, cerr := CountRecords(data)
		if err != nil {
			if !errors.Is(err, ErrMalformedRecords) {
				t.Fatalf("error %v is not ErrMalformedRecords", err)
			}
			if len(got) != 0 {
				t.Fatalf("%d records delivered before the error %v", len(got), err)
			}
			if !errors.Is(cerr, ErrMalformedRecords) {
				t.Fatalf("ForEachRecord failed with %v, CountRecords with %v", err, cerr)
			}
			return
		}
		if cerr != nil || n != len(got) {
			t.Fatalf("CountRecords: %d, %v; ForEachRecord delivered %d", n, cerr, len(got))
		}
		var b Batch
		for _, r := range got {
			if r.put {
				b.Put(r.k, r.v)
			} else {
				if r.v != nil {
					t.Fatalf("delete record with a value")
				}
				b.Delete(r.k)
			}
		}
		if b.Len() != len(got) {
			t.Fatalf("batch of %d records has Len %d", len(got), b.Len())
		}
		if b.Size() > len(data) {
			t.Fatalf("re-encoding grew from %d to %d bytes", len(data), b.Size())
		}
		var again []raw
		b.ForEach(func(put bool, k, v []byte) { again = append(again, raw{put, k, v}) })
		if len(again) != len(got) {
			t.Fatalf("%d records after round trip, want %d", len(again), len(got))
		}
		for i := range got {
			if again[i].put != got[i].put || !bytes.Equal(again[i].k, got[i].k) || !bytes.Equal(again[i].v, got[i].v) {
				t.Fatalf("record %d changed in the round trip", i)
			}
		}
		if c := b.Clone(); !bytes.Equal(c.Records(), b.Records()) || c.Len() != b.Len() {
			t.Fatalf("clone differs from its batch")
		}
	})
}
