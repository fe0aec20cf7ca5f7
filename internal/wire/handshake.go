package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/levelparty/party/backend"
)

// Magic opens both halves of the handshake, so that a peer that is not
// party is recognised at once instead of being read as frames.
var Magic = [8]byte{'L', 'V', 'L', 'P', 'A', 'R', 'T', 'Y'}

// HelloSize is the size of the part of the follower's hello that every
// version shares: magic, version u16, flags u8. Versions 2 and 3 follow
// it with the busy-poll time in microseconds, u32.
const HelloSize = 8 + 2 + 1

// hasBusyPoll reports whether a hello of version v carries the busy-poll
// time: versions 2 and 3 do. Other versions are refused as soon as their
// version is read, whatever follows it.
func hasBusyPoll(v uint16) bool { return v == 2 || v == 3 }

// maxBusyPoll bounds the busy-poll time a follower may ask of the leader.
const maxBusyPoll = time.Millisecond

// Hello flags.
const (
	HelloNoRetry uint8 = 1 << iota // the follower does not retry after failover
)

// Welcome statuses.
const (
	WelcomeOK      uint8 = iota // joined
	WelcomeVersion              // versions differ; Msg explains
	WelcomeClosing              // the leader is shutting down; elect again
	WelcomeRefused              // not allowed to connect; Msg explains
)

// Handshake errors.
var (
	ErrNotParty = errors.New("peer does not speak the party protocol")
)

// Hello is the follower's half of the handshake.
type Hello struct {
	Version uint16
	Flags   uint8
	// BusyPoll is how long the leader polls the follower's connection for
	// its next request after each answer before it sleeps; 0: never. It
	// crosses the socket in whole microseconds, at most a millisecond.
	BusyPoll time.Duration
}

// AppendHello appends the follower's handshake.
func AppendHello(dst []byte, h Hello) []byte {
	dst = append(dst, Magic[:]...)
	dst = binary.BigEndian.AppendUint16(dst, h.Version)
	dst = append(dst, h.Flags)
	if hasBusyPoll(h.Version) {
		dst = binary.BigEndian.AppendUint32(dst, uint32(min(h.BusyPoll, maxBusyPoll)/time.Microsecond))
	}
	return dst
}

// ReadHello reads and checks the follower's handshake. It reads the part
// of a hello of version 2 or 3 that follows the shared part; a hello of another
// version is returned as soon as its version is known, for the leader to
// refuse.
func ReadHello(r io.Reader) (Hello, error) {
	var b [HelloSize + 4]byte
	if _, err := io.ReadFull(r, b[:HelloSize]); err != nil {
		return Hello{}, fmt.Errorf("reading hello: %w", err)
	}
	if [8]byte(b[:8]) != Magic {
		return Hello{}, fmt.Errorf("%w: bad magic %q", ErrNotParty, b[:8])
	}
	h := Hello{Version: binary.BigEndian.Uint16(b[8:]), Flags: b[10]}
	if hasBusyPoll(h.Version) {
		if _, err := io.ReadFull(r, b[HelloSize:]); err != nil {
			return Hello{}, fmt.Errorf("reading hello: %w", err)
		}
		h.BusyPoll = min(time.Duration(binary.BigEndian.Uint32(b[HelloSize:]))*time.Microsecond, maxBusyPoll)
	}
	return h, nil
}

// Welcome is the leader's half of the handshake.
type Welcome struct {
	Version  uint16
	Status   uint8
	PID      uint32
	LeaderID [16]byte  // random, new for every election
	Since    time.Time // when this leader was elected
	Msg      string    // why, for a status other than WelcomeOK
}

// welcomeFixed is the size of a welcome before its message.
const welcomeFixed = 8 + 2 + 1 + 4 + 16 + 8 + 2

// AppendWelcome appends the leader's handshake.
func AppendWelcome(dst []byte, w Welcome) []byte {
	dst = append(dst, Magic[:]...)
	dst = binary.BigEndian.AppendUint16(dst, w.Version)
	dst = append(dst, w.Status)
	dst = binary.BigEndian.AppendUint32(dst, w.PID)
	dst = append(dst, w.LeaderID[:]...)
	dst = binary.BigEndian.AppendUint64(dst, uint64(w.Since.UnixNano()))
	msg := w.Msg
	if len(msg) > 1024 {
		msg = msg[:1024]
	}
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(msg)))
	return append(dst, msg...)
}

// ReadWelcome reads and checks the leader's handshake.
func ReadWelcome(r io.Reader) (Welcome, error) {
	var b [welcomeFixed]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return Welcome{}, fmt.Errorf("reading welcome: %w", err)
	}
	if [8]byte(b[:8]) != Magic {
		return Welcome{}, fmt.Errorf("%w: bad magic %q", ErrNotParty, b[:8])
	}
	w := Welcome{
		Version: binary.BigEndian.Uint16(b[8:]),
		Status:  b[10],
		PID:     binary.BigEndian.Uint32(b[11:]),
		Since:   time.Unix(0, int64(binary.BigEndian.Uint64(b[31:]))),
	}
	copy(w.LeaderID[:], b[15:31])
	n := binary.BigEndian.Uint16(b[39:])
	if n > 1024 {
		return Welcome{}, fmt.Errorf("%w: welcome message of %d bytes", ErrMalformed, n)
	}
	msg := make([]byte, n)
	if _, err := io.ReadFull(r, msg); err != nil {
		return Welcome{}, fmt.Errorf("reading welcome: %w", err)
	}
	w.Msg = string(msg)
	return w, nil
}

// AppendStatus appends the body of a TStatus response. IsLeader does not
// cross the socket: the answer comes from the leader.
func AppendStatus(dst []byte, s backend.Status) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(s.PID))
	dst = append(dst, s.LeaderID[:]...)
	dst = binary.BigEndian.AppendUint64(dst, uint64(s.Since.UnixNano()))
	dst = binary.BigEndian.AppendUint32(dst, uint32(s.Followers))
	return binary.BigEndian.AppendUint64(dst, uint64(s.DiskSize))
}

// DecodeStatus decodes the body of a TStatus response.
func DecodeStatus(b []byte) (backend.Status, error) {
	if len(b) != 4+16+8+4+8 {
		return backend.Status{}, fmt.Errorf("%w: status of %d bytes", ErrMalformed, len(b))
	}
	s := backend.Status{
		PID:       int(binary.BigEndian.Uint32(b)),
		Since:     time.Unix(0, int64(binary.BigEndian.Uint64(b[20:]))),
		Followers: int(binary.BigEndian.Uint32(b[28:])),
		DiskSize:  int64(binary.BigEndian.Uint64(b[32:])),
	}
	copy(s.LeaderID[:], b[4:20])
	return s, nil
}
