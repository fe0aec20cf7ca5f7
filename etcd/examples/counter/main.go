// Command counter is the "Outgrowing one machine" example of party's
// README: a program that counts, from any number of processes, in a
// database that lives on an etcd cluster instead of a directory. Moving it
// there changed one line, the Open call.
//
//	go run ./examples/counter                          # starts a one-member etcd of its own
//	go run ./examples/counter -etcd 127.0.0.1:2379     # an existing cluster
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/url"
	"os"
	"strconv"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"

	"github.com/levelparty/party"
	partyetcd "github.com/levelparty/party/etcd"
)

func main() {
	endpoint := flag.String("etcd", "", "an etcd endpoint (default: start a one-member etcd in a temporary directory)")
	flag.Parse()
	if err := run(os.Stdout, *endpoint); err != nil {
		log.Fatal(err)
	}
}

func run(out io.Writer, endpoint string) error {
	if endpoint == "" {
		ep, stop, err := startEtcd()
		if err != nil {
			return err
		}
		defer stop()
		endpoint = ep
	}

	// On one machine this line was:
	//   db, err := party.Open("/var/lib/counter", nil)
	db, err := partyetcd.Open(clientv3.Config{Endpoints: []string{endpoint}}, "counter/", nil)
	if err != nil {
		return err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// Everything below is unchanged party code.
	w, err := db.Watch(ctx, party.BytesPrefix([]byte("hits")))
	if err != nil {
		return err
	}
	defer w.Close()
	for range 3 {
		err := db.Update(ctx, func(tx *party.Transaction) error {
			n := 0
			v, err := tx.Get(ctx, []byte("hits"))
			if err == nil {
				n, _ = strconv.Atoi(string(v))
			} else if !errors.Is(err, party.ErrNotFound) {
				return err
			}
			return tx.Put(ctx, []byte("hits"), []byte(strconv.Itoa(n+1)))
		})
		if err != nil {
			return err
		}
		changes, err := w.Next(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "hits = %s\n", changes[0].Value)
	}
	return nil
}

// startEtcd starts a one-member etcd on free loopback ports in a
// temporary directory, for a machine that has none.
func startEtcd() (endpoint string, stop func(), err error) {
	dir, err := os.MkdirTemp("", "counter-etcd")
	if err != nil {
		return "", nil, err
	}
	cfg := embed.NewConfig()
	cfg.Dir = dir
	cfg.LogLevel = "fatal"
	cu, _ := url.Parse("http://127.0.0.1:0")
	pu, _ := url.Parse("http://127.0.0.1:0")
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{*cu}, []url.URL{*cu}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{*pu}, []url.URL{*pu}
	cfg.InitialCluster = cfg.Name + "=" + pu.String()
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(30 * time.Second):
		e.Close()
		os.RemoveAll(dir)
		return "", nil, errors.New("etcd did not start within 30s")
	}
	stop = func() {
		e.Close()
		os.RemoveAll(dir)
	}
	return e.Clients[0].Addr().String(), stop, nil
}
