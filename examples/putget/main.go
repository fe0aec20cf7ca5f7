// Command putget is the original level-party scene in Go: start any number
// of putters and getters on one directory, in any order, and everything
// just works.
//
//	go run ./examples/putget put /tmp/data &
//	go run ./examples/putget put /tmp/data &
//	go run ./examples/putget get /tmp/data
//
// Each putter writes an increasing counter under key "a" every second; each
// getter prints the value of "a" four times a second. Kill the putter that
// leads and the others carry on.
package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/signal"
	"strconv"
	"time"

	"github.com/levelparty/party"
)

func main() {
	if len(os.Args) != 3 || (os.Args[1] != "put" && os.Args[1] != "get") {
		fmt.Fprintln(os.Stderr, "usage: putget put|get DIR")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	db, err := party.Open(os.Args[2], nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer db.Close()
	role := "follower"
	if db.IsLeader() {
		role = "leader"
	}
	fmt.Printf("pid %d joined as %s\n", os.Getpid(), role)

	if os.Args[1] == "put" {
		n := rand.IntN(100000)
		for t := time.Tick(time.Second); ; {
			n++
			if err := db.Put(ctx, []byte("a"), []byte(strconv.Itoa(n))); err != nil {
				if ctx.Err() == nil {
					fmt.Fprintln(os.Stderr, err)
				}
				return
			}
			select {
			case <-t:
			case <-ctx.Done():
				return
			}
		}
	}
	for t := time.Tick(250 * time.Millisecond); ; {
		v, err := db.Get(ctx, []byte("a"))
		switch {
		case errors.Is(err, party.ErrNotFound):
			fmt.Println("a is not set yet")
		case err != nil:
			if ctx.Err() == nil {
				fmt.Fprintln(os.Stderr, err)
			}
			return
		default:
			fmt.Printf("a= %s\n", v)
		}
		select {
		case <-t:
		case <-ctx.Done():
			return
		}
	}
}
