package wire

import (
	"errors"
	"fmt"

	"github.com/levelparty/party/backend"
)

// Code is the outcome carried by a TResponse or TIterBatch.
type Code uint8

// Response codes.
const (
	OK              Code = iota
	NotFound             // key absent
	Closing              // the leader's engine is closed: it is shutting down
	SnapshotUnknown      // no such snapshot on this connection
	TooLarge             // the answer would exceed the frame limit; the body says why
	BadRequest           // the request was understood but not acceptable; the body says why
	EngineError          // the storage engine failed; the body is its message
	TxAborted            // the transaction ended without applying anything; the body says why
	codeEnd
)

// CodeOf maps the outcome of an operation on the leader to the code and
// message that carry it over the socket. It is the only place where an
// error becomes a code.
func CodeOf(err error) (Code, []byte) {
	var le *backend.LeaderError
	switch {
	case err == nil:
		return OK, nil
	case errors.Is(err, backend.ErrNotFound):
		return NotFound, nil
	case errors.Is(err, backend.ErrClosed):
		return Closing, nil
	case errors.Is(err, backend.ErrSnapshotLost):
		return SnapshotUnknown, nil
	case errors.Is(err, backend.ErrTooLarge):
		return TooLarge, []byte(err.Error())
	case errors.Is(err, backend.ErrTxAborted):
		return TxAborted, []byte(err.Error())
	case errors.As(err, &le):
		return EngineError, []byte(le.Msg)
	default:
		return EngineError, []byte(err.Error())
	}
}

// Err maps a code and its message back to the error the caller sees: the
// inverse of CodeOf. It is the only place where a code becomes an error.
func (c Code) Err(msg []byte) error {
	switch c {
	case OK:
		return nil
	case NotFound:
		return backend.ErrNotFound
	case Closing:
		return backend.ErrClosed
	case SnapshotUnknown:
		return backend.ErrSnapshotLost
	case TooLarge:
		return fmt.Errorf("%w: %s", backend.ErrTooLarge, msg)
	case TxAborted:
		return fmt.Errorf("%w (on the leader: %s)", backend.ErrTxAborted, msg)
	default:
		return &backend.LeaderError{Msg: string(msg)}
	}
}
