package host

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/levelparty/party/backend"
	"github.com/levelparty/party/internal/engine"
	"github.com/levelparty/party/internal/wire"
)

// Limits on gathered writes and on iterator batches.
const (
	maxGroupBytes   = 4 << 20         // apply gathered writes once they reach this size
	firstBatchLen   = 16              // entries in an iterator's first batch after a seek
	maxBatchLen     = 4096            // entries in later batches, reached by doubling
	maxBatchBytes   = 128 << 10       // bytes of entries in one batch (one entry may exceed it)
	maxOpenIterator = 1 << 16         // iterators one connection may hold open
	closeGrace      = 5 * time.Second // how long Close waits on a follower that does not read
	maxCredit       = 16              // batches a follower may have outstanding per iterator
	maxDeleteRanges = 4               // DeleteRange workers per connection; more wait
)

// conn is one follower's connection. Apart from stop, its methods run on
// the connection's own goroutine, except DeleteRange workers, which only
// send their response. Responses go to the connection's writer goroutine,
// so serving never waits on a write, only for room in the writer's buffer
// when the follower does not read.
type conn struct {
	h   *Host
	eng *engine.Engine
	nc  *net.UnixConn
	out *wire.Writer
	log *slog.Logger

	stopping atomic.Bool
	busyPoll time.Duration // how long to poll for the next request; set by the hello

	snaps    map[uint32]*engine.Snapshot
	nextSnap uint32
	iters    map[uint32]*iter

	group     engine.Group // writes gathered from the current burst
	groupAcks []uint32     // their request ids
	groupSync bool         // one of them asked for fsync

	bg      sync.WaitGroup // DeleteRange workers, and the goroutines of lease.go
	bgSlots chan struct{}  // bounds the DeleteRange workers
	req     wire.Request

	// ctx ends when the connection stops being served: what waits for
	// the transaction lease on its behalf gives up then.
	ctx    context.Context
	cancel context.CancelFunc

	tx      txState                  // the lease, lease requests and parked writes (lease.go)
	watches map[uint32]*engine.Watch // guarded by tx.mu (watch.go)
}

// iter is a follower's iterator: a cursor that streams batches in the
// direction of its last seek while the follower has credit.
type iter struct {
	cur    *engine.Cursor
	fail   error  // why it could not be opened; cur is then nil
	gen    uint32 // generation of the last seek; batches carry it
	credit uint32 // batches the follower is ready to receive
	at     bool   // the cursor is at an entry not yet sent
	done   bool   // the end (or a failure) was sent for this generation
	limit  int    // entries in the next batch
}

func newConn(h *Host, nc *net.UnixConn) *conn {
	ctx, cancel := context.WithCancel(context.Background())
	return &conn{
		ctx:     ctx,
		cancel:  cancel,
		h:       h,
		eng:     h.cfg.Engine,
		nc:      nc,
		log:     h.cfg.Logger,
		snaps:   make(map[uint32]*engine.Snapshot),
		iters:   make(map[uint32]*iter),
		bgSlots: make(chan struct{}, maxDeleteRanges),
	}
}

// stop makes the reader return at its next read; what it has read is
// still served and answered.
func (c *conn) stop() {
	c.stopping.Store(true)
	c.nc.SetReadDeadline(time.Now())
	// A follower that stopped reading must not hold up the leader's Close.
	c.nc.SetWriteDeadline(time.Now().Add(closeGrace))
}

// refuse answers the handshake with a refusal and closes the connection.
func (c *conn) refuse(status uint8, msg string) {
	c.nc.SetDeadline(time.Now().Add(handshakeTimeout))
	if _, err := wire.ReadHello(c.nc); err == nil {
		c.nc.Write(wire.AppendWelcome(nil, c.h.welcome(status, msg)))
	}
	c.nc.Close()
}

func (c *conn) serve() {
	defer c.h.remove(c)
	defer c.nc.Close()

	if peer, err := c.h.checkPeer(c.nc); err != nil {
		c.log.Warn("party: refusing connection", "peer_uid", peer.UID, "peer_pid", peer.PID, "reason", err)
		c.refuse(wire.WelcomeRefused, err.Error())
		return
	} else {
		c.log = c.log.With("peer_pid", peer.PID)
	}

	// After each answer, the connection of a follower that asked for it
	// polls for the next request before it sleeps.
	br := bufio.NewReaderSize(wire.NewPollReader(c.nc, func() time.Duration { return c.busyPoll }), 64<<10)
	c.nc.SetReadDeadline(time.Now().Add(handshakeTimeout))
	if c.stopping.Load() {
		return // stop may have set its deadline before ours
	}
	hello, err := wire.ReadHello(br)
	if err != nil {
		c.log.Warn("party: closing connection: bad handshake", "reason", err)
		return
	}
	c.busyPoll = hello.BusyPoll
	if hello.Version != wire.Version {
		msg := fmt.Sprintf("leader speaks protocol version %d, follower %d", wire.Version, hello.Version)
		c.log.Warn("party: closing connection: version mismatch", "reason", msg)
		c.nc.Write(wire.AppendWelcome(nil, c.h.welcome(wire.WelcomeVersion, msg)))
		return
	}
	if _, err := c.nc.Write(wire.AppendWelcome(nil, c.h.welcome(wire.WelcomeOK, ""))); err != nil {
		return
	}
	c.nc.SetReadDeadline(time.Time{})
	if c.stopping.Load() {
		return
	}

	c.out = wire.NewWriter(c.nc)
	defer func() {
		c.out.Close()
		c.nc.Close()
		c.out.Wait()
	}()
	r := wire.NewReader(br)
	for {
		t, id, body, err := r.Next(false)
		if err == nil {
			err = c.handle(t, id, body)
		}
		if err != nil {
			if !isClosedErr(err) {
				c.log.Warn("party: closing follower connection", "reason", err)
			}
			break
		}
		if !r.FrameBuffered() {
			c.applyGroup()
			c.out.Flush()
		}
	}
	c.applyGroup()
	c.endTx()
	c.closeWatches()
	c.bg.Wait()
	c.out.Drain()
	for _, it := range c.iters {
		if it.cur != nil {
			it.cur.Release()
		}
	}
	for _, s := range c.snaps {
		s.Release()
	}
}

// respond queues the response to request id, with body on success or the
// code and message of err; it is written when the burst ends.
func (c *conn) respond(id uint32, err error, body []byte) {
	code, msg := wire.CodeOf(err)
	if code != wire.OK {
		body = msg
	} else if wire.FrameSize(len(body)+1) > wire.MaxFrame {
		code, body = wire.TooLarge, []byte(fmt.Sprintf("value of %d bytes exceeds the frame limit of %d", len(body), wire.MaxFrame))
	}
	c.out.Queue(func(b []byte) []byte { return wire.AppendResponse(b, id, code, body) })
}

var (
	yes = []byte{1}
	no  = []byte{0}
)

// reader returns what a read of snapshot snap (0: none) runs on, or nil if
// there is no such snapshot.
func (c *conn) reader(snap uint32) engine.Reader {
	if snap == 0 {
		return c.eng
	}
	if s, ok := c.snaps[snap]; ok {
		return s
	}
	return nil
}

var errUnexpected = errors.New("message type not sent by followers")

func (c *conn) handle(t wire.Type, id uint32, body []byte) error {
	req := &c.req
	if err := wire.DecodeRequest(t, id, body, req); err != nil {
		return err
	}
	switch t {
	case wire.TGet, wire.THas:
		r := c.reader(req.Snap)
		switch {
		case r == nil:
			c.respond(id, backend.ErrSnapshotLost, nil)
		case t == wire.TGet:
			v, err := r.Get(req.Key)
			c.respond(id, err, v)
		default:
			ok, err := r.Has(req.Key)
			answer := no
			if ok {
				answer = yes
			}
			c.respond(id, err, answer)
		}
	case wire.TPut:
		c.gather(id, req.Flags, func(g *engine.Group) { g.AddPut(req.Key, req.Value) })
	case wire.TDelete:
		c.gather(id, req.Flags, func(g *engine.Group) { g.AddDelete(req.Key) })
	case wire.TBatch:
		c.gather(id, req.Flags, func(g *engine.Group) { g.AddBatch(req.Records) })
	case wire.TDeleteRange:
		c.applyGroup()
		rng := backend.Range{Start: clone(req.Range.Start), Limit: clone(req.Range.Limit)}
		sync := req.Flags&wire.FlagSync != 0
		c.out.Flush() // answers queued so far must not wait for a free slot
		c.bgSlots <- struct{}{}
		c.bg.Add(1)
		go func() {
			defer func() { <-c.bgSlots; c.bg.Done() }()
			code, msg := wire.CodeOf(c.eng.DeleteRange(c.ctx, rng, sync))
			c.out.Queue(func(b []byte) []byte { return wire.AppendResponse(b, id, code, msg) })
			c.out.Flush()
		}()
	case wire.TSnapshot:
		s, err := c.eng.Snapshot()
		if err != nil {
			c.respond(id, err, nil)
			return nil
		}
		c.nextSnap++
		c.snaps[c.nextSnap] = s
		c.respond(id, nil, binary.BigEndian.AppendUint32(nil, c.nextSnap))
	case wire.TSnapshotRelease:
		if s, ok := c.snaps[req.Snap]; ok {
			s.Release()
			delete(c.snaps, req.Snap)
		}
	case wire.TIterOpen:
		err := c.openIter(req.Iter, req)
		c.respond(id, err, nil)
		if err == nil {
			// Generation 1: the first seek most iterators make, answered
			// in the same write as the open, with a credit of one batch.
			it := c.iters[req.Iter]
			it.gen, it.credit, it.limit = 1, 1, firstBatchLen
			it.at = it.cur.Seek(backend.SeekFirst, nil)
			c.pump(req.Iter, it)
		}
	case wire.TIterSeek:
		it, ok := c.iters[id]
		if !ok {
			c.sendBatchEnd(id, req.Gen, wire.BadRequest, "no such iterator")
			return nil
		}
		it.gen, it.credit, it.done, it.limit = req.Gen, min(req.Credit, maxCredit), false, firstBatchLen
		if it.fail != nil {
			it.done = true
			code, msg := wire.CodeOf(it.fail)
			c.sendBatchEnd(id, it.gen, code, string(msg))
			return nil
		}
		it.at = it.cur.Seek(req.Mode, req.Key)
		c.pump(id, it)
	case wire.TIterCredit:
		if it, ok := c.iters[id]; ok && it.gen == req.Gen && it.fail == nil {
			it.credit = min(it.credit+req.Credit, maxCredit)
			c.pump(id, it)
		}
	case wire.TIterClose:
		if it, ok := c.iters[id]; ok {
			if it.cur != nil {
				it.cur.Release()
			}
			delete(c.iters, id)
		}
	case wire.TStatus:
		c.respond(id, nil, wire.AppendStatus(nil, c.h.Status()))
	case wire.TTxBegin:
		c.beginTx(id, req)
	case wire.TTxCommit:
		c.applyGroup()
		c.respond(id, c.commitTx(req), nil)
	case wire.TTxDiscard:
		c.discardTx(req.Lease)
	case wire.TTxResolve:
		c.resolveTx(id, req)
	case wire.TWatchOpen:
		c.respond(id, c.openWatch(req), nil)
	case wire.TWatchClose:
		c.closeWatch(id)
	case wire.TCompact:
		// Long: on a worker, as DeleteRange.
		rng := backend.Range{Start: clone(req.Range.Start), Limit: clone(req.Range.Limit)}
		c.out.Flush()
		c.bgSlots <- struct{}{}
		c.bg.Add(1)
		go func() {
			defer func() { <-c.bgSlots; c.bg.Done() }()
			code, msg := wire.CodeOf(c.eng.CompactRange(rng))
			c.out.Queue(func(b []byte) []byte { return wire.AppendResponse(b, id, code, msg) })
			c.out.Flush()
		}()
	case wire.TSizeOf:
		sizes, err := c.eng.SizeOf(req.Ranges)
		var body []byte
		for _, n := range sizes {
			body = binary.BigEndian.AppendUint64(body, uint64(n))
		}
		c.respond(id, err, body)
	case wire.TProperty:
		v, err := c.eng.Property(string(req.Key))
		c.respond(id, err, []byte(v))
	default:
		return fmt.Errorf("%w: %v", errUnexpected, t)
	}
	return nil
}

// gather adds a write to the group of the current burst, applied when the
// burst ends or the group is large.
func (c *conn) gather(id uint32, flags uint8, add func(*engine.Group)) {
	add(&c.group)
	c.groupAcks = append(c.groupAcks, id)
	c.groupSync = c.groupSync || flags&wire.FlagSync != 0
	if c.group.Size() >= maxGroupBytes {
		c.applyGroup()
	}
}

// applyGroup writes the gathered writes as one batch and queues their
// acknowledgements, or parks them while another participant holds the
// transaction lease (lease.go).
func (c *conn) applyGroup() {
	if len(c.groupAcks) == 0 {
		return
	}
	if c.parking() || !c.eng.TryEnter() {
		c.park()
		return
	}
	err := c.eng.Apply(&c.group, c.groupSync)
	c.eng.Leave()
	for _, id := range c.groupAcks {
		c.respond(id, err, nil)
	}
	c.groupAcks = c.groupAcks[:0]
	c.groupSync = false
}

// errTooManyIterators refuses an iterator past maxOpenIterator.
var errTooManyIterators = fmt.Errorf("more than %d iterators open on one connection", maxOpenIterator)

// openIter creates iterator id with its view of the data taken now, and
// returns the error to answer with. A failed iterator stays registered so
// that its seeks are answered with the failure.
func (c *conn) openIter(id uint32, req *wire.Request) error {
	if old, ok := c.iters[id]; ok {
		if old.cur != nil {
			old.cur.Release()
		}
		delete(c.iters, id)
	}
	if len(c.iters) >= maxOpenIterator {
		return errTooManyIterators // not registered: its seeks get "no such iterator"
	}
	r := c.reader(req.Snap)
	if r == nil {
		c.iters[id] = &iter{fail: backend.ErrSnapshotLost, done: true}
		return backend.ErrSnapshotLost
	}
	rng := backend.Range{Start: clone(req.Range.Start), Limit: clone(req.Range.Limit)}
	c.iters[id] = &iter{cur: r.NewCursor(rng)}
	return nil
}

// pump sends batches while the follower has credit and entries remain.
// Each batch is built in the writer's buffer, straight from the cursor:
// an entry is copied once on its way to the socket.
func (c *conn) pump(id uint32, it *iter) {
	if it.cur == nil {
		return // a failed iterator: its failure was sent at its seek
	}
	for it.credit > 0 && !it.done {
		var tooLarge int // the size of an entry no frame can carry
		var fail error
		err := c.out.Queue(func(dst []byte) []byte {
			dst, start := wire.AppendIterBatchHeader(dst, id, it.gen, wire.OK, false, "")
			n, size := 0, 0
			for it.at && n < it.limit && size < maxBatchBytes {
				k, v := it.cur.Key(), it.cur.Value()
				es := wire.EntrySize(k, v)
				if wire.IterBatchHeaderSize+es > wire.MaxFrame {
					tooLarge = es
					return dst[:start]
				}
				if n > 0 && len(dst)-start+es > wire.MaxFrame {
					break
				}
				dst = wire.AppendEntry(dst, k, v)
				n++
				size += es
				it.at = it.cur.Step()
			}
			if !it.at {
				if fail = it.cur.Err(); fail != nil {
					return dst[:start]
				}
				it.done = true
				dst[start+wire.HeaderSize+4+1] = 1 // eof
			}
			wire.FinishFrame(dst, start)
			return dst
		})
		switch {
		case err != nil:
			return // the connection is closing
		case tooLarge > 0:
			c.sendBatchEnd(id, it.gen, wire.TooLarge, fmt.Sprintf("entry of %d bytes exceeds the frame limit of %d", tooLarge, wire.MaxFrame))
			it.done = true
			return
		case fail != nil:
			code, msg := wire.CodeOf(fail)
			c.sendBatchEnd(id, it.gen, code, string(msg))
			it.done = true
			return
		}
		it.credit--
		if it.limit < maxBatchLen {
			it.limit *= 2
		}
	}
}

// sendBatchEnd queues a batch without entries that ends a generation.
func (c *conn) sendBatchEnd(id, gen uint32, code wire.Code, msg string) {
	c.out.Queue(func(b []byte) []byte {
		b, start := wire.AppendIterBatchHeader(b, id, gen, code, true, msg)
		wire.FinishFrame(b, start)
		return b
	})
}

func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte{}, b...)
}
