package party_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/levelparty/party"
)

// Two handles on one directory: the first leads, the second follows and
// reads what the first wrote. Two processes work the same way.
func ExampleOpen() {
	dir, err := os.MkdirTemp("", "party-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()

	first, err := party.Open(dir, nil)
	if err != nil {
		log.Fatal(err)
	}
	second, err := party.Open(dir, nil) // no lock error: it joins as a follower
	if err != nil {
		log.Fatal(err)
	}
	defer second.Close()

	if err := first.Put(ctx, []byte("greeting"), []byte("hello")); err != nil {
		log.Fatal(err)
	}
	v, err := second.Get(ctx, []byte("greeting"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s (first leads: %v, second leads: %v)\n", v, first.IsLeader(), second.IsLeader())

	first.Close() // the follower takes over
	if err := second.Put(ctx, []byte("greeting"), []byte("still here")); err != nil {
		log.Fatal(err)
	}
	v, _ = second.Get(ctx, []byte("greeting"))
	fmt.Printf("%s (second leads: %v)\n", v, second.IsLeader())
	// Output:
	// hello (first leads: true, second leads: false)
	// still here (second leads: true)
}

// Iterating over a prefix, forward and backward.
func ExampleDB_NewIterator() {
	dir, err := os.MkdirTemp("", "party-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()

	db, err := party.Open(dir, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	var b party.Batch
	b.Put([]byte("fruit:apple"), []byte("red"))
	b.Put([]byte("fruit:banana"), []byte("yellow"))
	b.Put([]byte("fruit:cherry"), []byte("dark red"))
	b.Put([]byte("veg:leek"), []byte("green"))
	if err := db.Write(ctx, &b); err != nil {
		log.Fatal(err)
	}

	it := db.NewIterator(ctx, party.BytesPrefix([]byte("fruit:")))
	defer it.Release()
	for it.Next() {
		fmt.Printf("%s=%s\n", it.Key(), it.Value())
	}
	for ok := it.Last(); ok; ok = it.Prev() {
		fmt.Printf("%s ", it.Key())
	}
	fmt.Println()
	if err := it.Error(); err != nil {
		log.Fatal(err)
	}
	// Output:
	// fruit:apple=red
	// fruit:banana=yellow
	// fruit:cherry=dark red
	// fruit:cherry fruit:banana fruit:apple
}

// A counter incremented by several handles at once: Update makes each
// read-modify-write atomic across every process that shares the directory,
// and counts each successful call exactly once.
func ExampleDB_Update() {
	dir, err := os.MkdirTemp("", "party-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()

	var handles []*party.DB
	for range 3 {
		db, err := party.Open(dir, nil)
		if err != nil {
			log.Fatal(err)
		}
		defer db.Close()
		handles = append(handles, db)
	}
	increment := func(tx *party.Transaction) error {
		n := 0
		if v, err := tx.Get(ctx, []byte("visits")); err == nil {
			n, _ = strconv.Atoi(string(v))
		} else if !errors.Is(err, party.ErrNotFound) {
			return err
		}
		return tx.Put(ctx, []byte("visits"), []byte(strconv.Itoa(n+1)))
	}
	var wg sync.WaitGroup
	for _, db := range handles {
		wg.Go(func() {
			for range 100 {
				if err := db.Update(ctx, increment); err != nil {
					log.Fatal(err)
				}
			}
		})
	}
	wg.Wait()
	v, err := handles[0].Get(ctx, []byte("visits"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("visits: %s\n", v)
	// Output: visits: 300
}

// A watcher on one handle sees what another handle commits, write by
// write: a Put, then a batch together.
func ExampleDB_Watch() {
	dir, err := os.MkdirTemp("", "party-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()
	writer, err := party.Open(dir, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer writer.Close()
	reader, err := party.Open(dir, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer reader.Close()

	w, err := reader.Watch(ctx, party.BytesPrefix([]byte("settings/")))
	if err != nil {
		log.Fatal(err)
	}
	defer w.Close()
	writer.Put(ctx, []byte("settings/theme"), []byte("dark"))
	writer.Put(ctx, []byte("other"), []byte("not watched"))
	var b party.Batch
	b.Put([]byte("settings/lang"), []byte("fr"))
	b.Delete([]byte("settings/theme"))
	writer.Write(ctx, &b)

	for range 2 {
		changes, err := w.Next(ctx)
		if err != nil {
			log.Fatal(err)
		}
		var line []string
		for _, c := range changes {
			if c.Deleted {
				line = append(line, fmt.Sprintf("del %s", c.Key))
			} else {
				line = append(line, fmt.Sprintf("put %s=%s", c.Key, c.Value))
			}
		}
		fmt.Println(strings.Join(line, ", "))
	}
	// Output:
	// put settings/theme=dark
	// put settings/lang=fr, del settings/theme
}
