package party

import "github.com/levelparty/party/backend"

// Range is a range of keys: Start inclusive, Limit exclusive. A nil Start
// begins at the first key; a nil Limit runs to the last. A nil *Range is
// every key.
type Range struct {
	Start, Limit []byte
}

// BytesPrefix returns the range of keys that begin with prefix.
func BytesPrefix(prefix []byte) *Range {
	var limit []byte
	for i := len(prefix) - 1; i >= 0; i-- {
		if c := prefix[i]; c < 0xff {
			limit = make([]byte, i+1)
			copy(limit, prefix)
			limit[i] = c + 1
			break
		}
	}
	return &Range{Start: append([]byte{}, prefix...), Limit: limit}
}

func (r *Range) backend() backend.Range {
	if r == nil {
		return backend.Range{}
	}
	return backend.Range{Start: r.Start, Limit: r.Limit}
}
