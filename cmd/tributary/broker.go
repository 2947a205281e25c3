package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/tributary-rag/tributary/pkg/broker"
	"github.com/tributary-rag/tributary/pkg/daemon"
	"github.com/tributary-rag/tributary/pkg/events"
)

// runBroker runs "tributary broker": a standalone Kafka-protocol broker on
// kfake. It prints the advertised address on stdout once it serves, and
// stops (persisting state with --data-dir) when ctx is cancelled.
func runBroker(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("broker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: tributary broker --listen ADDR [--advertise HOST[:PORT]] [--data-dir DIR [--fsync]] [--partitions N] [--users FILE [--topic-prefix P]] [--tls-cert F --tls-key F [--tls-client-ca F]]")
		fs.PrintDefaults()
	}
	var cfg broker.Config
	fs.StringVar(&cfg.Listen, "listen", "127.0.0.1:9092", "TCP address to listen on (\"0.0.0.0:9092\" for every interface, port 0 for a free one)")
	fs.StringVar(&cfg.Advertise, "advertise", "", "address clients are told to connect to, e.g. broker:9092 in a Docker network (default: the listen host, or 127.0.0.1)")
	fs.StringVar(&cfg.DataDir, "data-dir", "", "directory for durable state; empty keeps everything in memory")
	fs.BoolVar(&cfg.Fsync, "fsync", false, "with --data-dir: fsync every write before acknowledging it (default: like Kafka, rely on the page cache; a killed broker loses nothing, a machine crash may)")
	fs.IntVar(&cfg.Partitions, "partitions", 3, "partitions of auto-created topics")
	users := fs.String("users", "", "file of name:password lines: turns on SASL (SCRAM-SHA-256/512; PLAIN with TLS) and least-privilege ACLs, one principal per service and admin as the superuser; created with random passwords if missing")
	prefix := fs.String("topic-prefix", events.DefaultPrefix, "topic prefix the services' ACLs are for (with --users)")
	cert := fs.String("tls-cert", "", "PEM certificate: serve TLS only")
	key := fs.String("tls-key", "", "PEM key of --tls-cert")
	clientCA := fs.String("tls-client-ca", "", "PEM CAs: require client certificates they signed (mutual TLS)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "broker: unexpected arguments %q\n", fs.Args())
		return errUsage
	}
	if cfg.Partitions <= 0 {
		fmt.Fprintln(stderr, "broker: --partitions must be positive")
		return errUsage
	}
	if err := events.ValidatePrefix(*prefix); err != nil {
		fmt.Fprintf(stderr, "broker: --topic-prefix: %v\n", err)
		return errUsage
	}
	if *users != "" {
		u, err := broker.LoadUsers(*users, events.NewTopics(*prefix), true)
		if err != nil {
			return fmt.Errorf("broker: %w", err)
		}
		cfg.Users = u
	}
	if *cert != "" || *key != "" || *clientCA != "" {
		t, err := daemon.ServerTLS(*cert, *key, *clientCA)
		if err != nil {
			return fmt.Errorf("broker: tls: %w", err)
		}
		cfg.TLS = t
	}
	return broker.Run(ctx, cfg, func(b *broker.Broker) {
		durability := "in memory"
		if cfg.DataDir != "" {
			durability = "durable in " + cfg.DataDir
			if cfg.Fsync {
				durability += ", fsync per write"
			}
		}
		auth := "no authentication"
		if len(cfg.Users) > 0 {
			auth = fmt.Sprintf("SASL with %d principals from %s", len(cfg.Users), *users)
		}
		if cfg.TLS != nil {
			auth += ", TLS"
		}
		fmt.Fprintf(stderr, "broker: listening on %s, advertised as %s, %s, %s\n", b.ListenAddr(), b.Addr(), durability, auth)
		fmt.Fprintln(stdout, b.Addr())
	})
}
