package party

import (
	"context"
	"encoding/hex"
	"time"

	"github.com/levelparty/party/internal/wire"
)

// Status describes the leader serving a database.
type Status struct {
	IsLeader  bool      // this handle is the leader
	PID       int       // the leader's process id
	LeaderID  string    // random id of the leader's term, new at every election
	Since     time.Time // when the leader was elected
	Followers int       // handles connected to the leader
	DiskSize  int64     // bytes of the database's files on disk
}

// Status asks the current leader about itself.
func (db *DB) Status(ctx context.Context) (Status, error) {
	var ws wire.Status
	isLeader := false
	if l := db.local.Load(); l != nil {
		ws = l.host.Status()
		isLeader = true
	} else {
		call, err := db.call(ctx, wire.Request{Type: wire.TStatus})
		if err == errRunLocally {
			return db.Status(ctx)
		}
		if err != nil {
			return Status{}, err
		}
		if err := errOf(call.Code, call.Body); err != nil {
			return Status{}, err
		}
		if ws, err = wire.DecodeStatus(call.Body); err != nil {
			return Status{}, err
		}
	}
	return Status{
		IsLeader:  isLeader,
		PID:       int(ws.PID),
		LeaderID:  hex.EncodeToString(ws.LeaderID[:]),
		Since:     ws.Since,
		Followers: int(ws.Followers),
		DiskSize:  ws.DiskSize,
	}, nil
}
