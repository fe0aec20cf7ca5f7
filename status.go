package party

import (
	"context"
	"encoding/hex"
	"time"
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
	if err := ctx.Err(); err != nil {
		return Status{}, err
	}
	s, err := db.b.Status(ctx)
	if err != nil {
		return Status{}, err
	}
	return Status{
		IsLeader:  s.IsLeader,
		PID:       s.PID,
		LeaderID:  hex.EncodeToString(s.LeaderID[:]),
		Since:     s.Since,
		Followers: s.Followers,
		DiskSize:  s.DiskSize,
	}, nil
}
