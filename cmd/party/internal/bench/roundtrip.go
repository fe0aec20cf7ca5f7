package bench

import (
	"fmt"
	"io"
	"net"

	"github.com/levelparty/party/cmd/party/internal/child"
)

// roundtripLen is the size of a round trip's message, each way: a key and
// a value.
const roundtripLen = keyLen + valueLen

// roundtripFigure measures the bound under every sequential follower
// figure: a bare round trip over a unix stream socket between this
// process and an echo child, one goroutine on each side, through Go's
// network poller like party's connections. Each round trip writes
// roundtripLen bytes and reads them back.
func (r *runner) roundtripFigure() ([]Figure, error) {
	mine, theirs, err := socketPair()
	if err != nil {
		return nil, err
	}
	echo, err := r.spawnWith(roleEcho, r.root, theirs)
	theirs.Close()
	if err != nil {
		mine.Close()
		return nil, err
	}
	defer echo.stop()
	c, err := net.FileConn(mine)
	mine.Close()
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	defer c.Close()
	msg, back := make([]byte, roundtripLen), make([]byte, roundtripLen)
	n := r.sz.seqOps
	f := Figure{Name: SocketRoundtripSeq, Kind: Bound, Reps: r.sz.reps, Ops: n}
	var rate, p50, p99 []float64
	for rep := range r.sz.reps {
		s, err := sequential(r.ctx, n, func(i int, _ []byte) error {
			msg[0] = byte(i)
			if _, err := c.Write(msg); err != nil {
				return err
			}
			if _, err := io.ReadFull(c, back); err != nil {
				return err
			}
			if back[0] != byte(i) {
				return fmt.Errorf("bench: echo answered %d to %d", back[0], byte(i))
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", SocketRoundtripSeq, err)
		}
		p := percentiles(s.lat, 50, 99)
		rate, p50, p99 = append(rate, s.opsPerSec()), append(p50, p[0]), append(p99, p[1])
		r.logf("%s rep %d/%d: %s/s p50 %.2f µs p99 %.2f µs", SocketRoundtripSeq, rep+1, r.sz.reps, child.Thousands(int64(s.opsPerSec())), p[0], p[1])
	}
	f.OpsPerSec, f.P50us, f.P99us = spread(rate), spread(p50), spread(p99)
	return []Figure{f}, nil
}
