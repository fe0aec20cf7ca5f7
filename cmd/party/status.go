package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/levelparty/party"
	"github.com/levelparty/party/cmd/party/internal/child"
)

func newStatusCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status DIR",
		Short: "Show which process leads the database and who follows it",
		Long: `Join the database as a participant and ask its leader about itself: its
process id, its leader id (new at every election), how long it has led, how
many followers are connected, and the size of the database on disk.

If no other participant was serving the database, this command becomes the
leader for a moment to answer, and says so.`,
		Example: `  party status /tmp/db
  party status /tmp/db --json`,
		Args: cobra.ExactArgs(1),
		RunE: runE(func(cmd *cobra.Command, args []string) (err error) {
			db, err := openDB(g, args[0], openOpts{})
			if err != nil {
				return err
			}
			defer closeDB(db, &err)
			ctx, cancel := opContext(cmd, g)
			defer cancel()
			st, err := db.Status(ctx)
			if err != nil {
				return err
			}
			tables, err := tablesPerLevel(ctx, db)
			if err != nil {
				return err
			}
			self := st.IsLeader || db.IsLeader()
			others := st.Followers
			if !self {
				others-- // this command is one of the followers
			}
			out := cmd.OutOrStdout()
			if asJSON {
				b, err := json.Marshal(statusJSON{
					Dir:            db.Dir(),
					Serving:        !self,
					ThisCommandLed: self,
					PID:            st.PID,
					LeaderID:       st.LeaderID,
					Since:          st.Since.Format(time.RFC3339Nano),
					LedMillis:      time.Since(st.Since).Milliseconds(),
					Followers:      st.Followers,
					OtherFollowers: others,
					DiskBytes:      st.DiskSize,
					TablesPerLevel: tables,
				})
				if err != nil {
					return err
				}
				_, err = fmt.Fprintf(out, "%s\n", b)
				return err
			}
			var sb strings.Builder
			fmt.Fprintf(&sb, "database   %s\n", db.Dir())
			if self {
				fmt.Fprintf(&sb, "leader     this command, pid %d: no other participant was serving; this command led briefly\n", st.PID)
				fmt.Fprintf(&sb, "followers  %d connected\n", st.Followers)
			} else {
				fmt.Fprintf(&sb, "leader     serving, pid %d\n", st.PID)
				fmt.Fprintf(&sb, "leader id  %s\n", st.LeaderID)
				fmt.Fprintf(&sb, "leading    for %s, since %s\n", roundDuration(time.Since(st.Since)), st.Since.Local().Format("2006-01-02 15:04:05"))
				fmt.Fprintf(&sb, "followers  %d connected, this command included\n", st.Followers)
			}
			fmt.Fprintf(&sb, "size       %s on disk\n", sizeString(st.DiskSize))
			var levels []string
			for l, n := range tables {
				if n > 0 {
					levels = append(levels, fmt.Sprintf("L%d %d", l, n))
				}
			}
			if len(levels) == 0 {
				levels = append(levels, "none yet (everything is in the journal)")
			}
			fmt.Fprintf(&sb, "tables     %s\n", strings.Join(levels, ", "))
			_, err = io.WriteString(out, sb.String())
			return err
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object")
	return cmd
}

// statusJSON is the output of status --json.
type statusJSON struct {
	Dir            string `json:"dir"`
	Serving        bool   `json:"serving"`          // another participant was leading
	ThisCommandLed bool   `json:"this_command_led"` // no one was: this command led
	PID            int    `json:"pid"`
	LeaderID       string `json:"leader_id"`
	Since          string `json:"since"`
	LedMillis      int64  `json:"led_ms"`
	Followers      int    `json:"followers"`
	OtherFollowers int    `json:"other_followers"` // not counting this command
	DiskBytes      int64  `json:"disk_bytes"`
	TablesPerLevel []int  `json:"tables_per_level"` // goleveldb's leveldb.num-files-at-level<N>
}

// maxLevels bounds the levels status asks about: goleveldb answers 0 for
// any level past its last.
const maxLevels = 16

// tablesPerLevel asks the leader how many tables each level of goleveldb
// holds, up to the last level that has any.
func tablesPerLevel(ctx context.Context, db *party.DB) ([]int, error) {
	var n []int
	for l := range maxLevels {
		v, err := db.Property(ctx, fmt.Sprintf("leveldb.num-files-at-level%d", l))
		if err != nil {
			return nil, err
		}
		c, err := strconv.Atoi(v)
		if err != nil {
			return nil, fmt.Errorf("leveldb.num-files-at-level%d: %q", l, v)
		}
		n = append(n, c)
	}
	for len(n) > 1 && n[len(n)-1] == 0 {
		n = n[:len(n)-1]
	}
	return n, nil
}

// roundDuration shortens d for people: 3m12s, 1.2s, 45ms.
func roundDuration(d time.Duration) string {
	switch {
	case d >= time.Minute:
		return d.Round(time.Second).String()
	case d >= time.Second:
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Millisecond).String()
}

// sizeString writes n bytes as 1.4 MiB (1468006 bytes).
func sizeString(n int64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	f, u := float64(n), 0
	for f >= 1024 && u < len(units)-1 {
		f /= 1024
		u++
	}
	if u == 0 {
		return fmt.Sprintf("%d bytes", n)
	}
	return fmt.Sprintf("%.1f %s (%s bytes)", f, units[u], child.Thousands(n))
}
