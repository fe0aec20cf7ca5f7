package main

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/spf13/pflag"
)

// format is how keys and values are written in arguments and in text
// output.
type format int

const (
	formatText   format = iota // escaped text (see escape)
	formatHex                  // lowercase hexadecimal
	formatBase64               // standard base64 with padding
)

// codecFlags are the --hex and --base64 flags of a command.
type codecFlags struct {
	hex, base64 bool
}

func (c *codecFlags) register(fs *pflag.FlagSet) {
	fs.BoolVar(&c.hex, "hex", false, "keys and values in arguments and output are hexadecimal")
	fs.BoolVar(&c.base64, "base64", false, "keys and values in arguments and output are standard base64")
}

func (c *codecFlags) format() format {
	switch {
	case c.hex:
		return formatHex
	case c.base64:
		return formatBase64
	}
	return formatText
}

// decode turns a command-line argument into bytes; what names the argument
// in the error.
func (f format) decode(what, s string) ([]byte, error) {
	var b []byte
	var err error
	switch f {
	case formatHex:
		b, err = hex.DecodeString(s)
	case formatBase64:
		b, err = base64.StdEncoding.DecodeString(s)
	default:
		b, err = unescape(s)
	}
	if err != nil {
		return nil, usageErrorf("%s '%s' is not valid %s: %v", what, s, f, err)
	}
	return b, nil
}

// encode turns bytes into one line of text output.
func (f format) encode(b []byte) string {
	switch f {
	case formatHex:
		return hex.EncodeToString(b)
	case formatBase64:
		return base64.StdEncoding.EncodeToString(b)
	}
	return escape(b)
}

func (f format) String() string {
	switch f {
	case formatHex:
		return "hex"
	case formatBase64:
		return "base64"
	}
	return "escaped text"
}

// escape writes b as printable text on one line: printable UTF-8 is kept,
// a backslash becomes \\, newline, tab and carriage return become \n, \t
// and \r, and every other byte (control bytes, invalid UTF-8, unprintable
// runes) becomes \xNN. unescape reverses it exactly.
func escape(b []byte) string {
	var sb strings.Builder
	sb.Grow(len(b))
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		switch {
		case r == '\\':
			sb.WriteString(`\\`)
		case r == '\n':
			sb.WriteString(`\n`)
		case r == '\t':
			sb.WriteString(`\t`)
		case r == '\r':
			sb.WriteString(`\r`)
		case r == utf8.RuneError && size == 1, !strconv.IsPrint(r):
			for _, c := range b[:size] {
				fmt.Fprintf(&sb, `\x%02x`, c)
			}
		default:
			sb.Write(b[:size])
		}
		b = b[size:]
	}
	return sb.String()
}

// unescape reads text written by escape: \\, \n, \t, \r and \xNN are
// escapes, any other byte stands for itself. Any other backslash is an
// error, so that a mistyped escape never passes silently.
func unescape(s string) ([]byte, error) {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			b = append(b, c)
			continue
		}
		if i+1 >= len(s) {
			return nil, fmt.Errorf(`lone backslash at the end (write \\ for a backslash)`)
		}
		i++
		switch s[i] {
		case '\\':
			b = append(b, '\\')
		case 'n':
			b = append(b, '\n')
		case 't':
			b = append(b, '\t')
		case 'r':
			b = append(b, '\r')
		case 'x':
			if i+2 >= len(s) {
				return nil, fmt.Errorf(`\x at byte %d needs two hex digits`, i-1)
			}
			v, err := hex.DecodeString(s[i+1 : i+3])
			if err != nil {
				return nil, fmt.Errorf(`\x at byte %d needs two hex digits`, i-1)
			}
			b = append(b, v[0])
			i += 2
		default:
			return nil, fmt.Errorf(`unknown escape \%c at byte %d (escapes are \\ \n \t \r \xNN; write \\ for a backslash)`, s[i], i-1)
		}
	}
	return b, nil
}

// jsonMode is how a JSON entry writes keys and values.
type jsonMode int

const (
	jsonAuto   jsonMode = iota // "key" as a string if valid UTF-8, else "key_b64"
	jsonHex                    // always "key_hex"
	jsonBase64                 // always "key_b64"
)

func (c *codecFlags) jsonMode() jsonMode {
	switch {
	case c.hex:
		return jsonHex
	case c.base64:
		return jsonBase64
	}
	return jsonAuto
}

// jsonField appends one field of a JSON entry, named name, name_b64 or
// name_hex as mode and b say, preceded by a comma unless first.
func jsonField(buf *bytes.Buffer, name string, b []byte, mode jsonMode, first bool) {
	if !first {
		buf.WriteByte(',')
	}
	var v string
	switch {
	case mode == jsonHex:
		name += "_hex"
		v = hex.EncodeToString(b)
	case mode == jsonBase64 || !utf8.Valid(b):
		name += "_b64"
		v = base64.StdEncoding.EncodeToString(b)
	default:
		v = string(b)
	}
	buf.WriteByte('"')
	buf.WriteString(name)
	buf.WriteString(`":`)
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	enc.Encode(v) // a string always encodes
	buf.Truncate(buf.Len() - 1)
}

// entryParts says which parts of an entry to write.
type entryParts int

const (
	keyAndValue entryParts = iota
	keyOnly
	valueOnly
)

// jsonEntry appends one JSON Lines entry, {"key":...,"value":...} or only
// one of the two, and a newline.
func jsonEntry(buf *bytes.Buffer, key, value []byte, parts entryParts, mode jsonMode) {
	buf.WriteByte('{')
	if parts != valueOnly {
		jsonField(buf, "key", key, mode, true)
	}
	if parts != keyOnly {
		jsonField(buf, "value", value, mode, parts == valueOnly)
	}
	buf.WriteString("}\n")
}

// jsonLine is an entry as load reads it: exactly one of the key fields and
// one of the value fields.
type jsonLine struct {
	Key      *string `json:"key"`
	KeyB64   *string `json:"key_b64"`
	KeyHex   *string `json:"key_hex"`
	Value    *string `json:"value"`
	ValueB64 *string `json:"value_b64"`
	ValueHex *string `json:"value_hex"`
}

// parseEntry reads one line of JSON Lines into a key and a value.
func parseEntry(line []byte) (key, value []byte, err error) {
	if !utf8.Valid(line) {
		return nil, nil, errors.New("line is not valid UTF-8 (write binary keys and values as key_b64/value_b64 or key_hex/value_hex)")
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	var e jsonLine
	if err := dec.Decode(&e); err != nil {
		return nil, nil, fmt.Errorf("not a JSON object with a key and a value: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, nil, errors.New("more than one JSON value on the line")
	}
	if key, err = pickField("key", e.Key, e.KeyB64, e.KeyHex); err != nil {
		return nil, nil, err
	}
	if value, err = pickField("value", e.Value, e.ValueB64, e.ValueHex); err != nil {
		return nil, nil, err
	}
	return key, value, nil
}

func pickField(name string, text, b64, hx *string) ([]byte, error) {
	n := 0
	for _, p := range []*string{text, b64, hx} {
		if p != nil {
			n++
		}
	}
	switch {
	case n == 0:
		return nil, fmt.Errorf("missing %q (or %q, %q)", name, name+"_b64", name+"_hex")
	case n > 1:
		return nil, fmt.Errorf("more than one of %q, %q, %q", name, name+"_b64", name+"_hex")
	case text != nil:
		return []byte(*text), nil
	case b64 != nil:
		b, err := base64.StdEncoding.DecodeString(*b64)
		if err != nil {
			return nil, fmt.Errorf("%s_b64 is not valid base64: %v", name, err)
		}
		return b, nil
	default:
		b, err := hex.DecodeString(*hx)
		if err != nil {
			return nil, fmt.Errorf("%s_hex is not valid hex: %v", name, err)
		}
		return b, nil
	}
}
