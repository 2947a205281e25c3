package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"github.com/tributary-rag/tributary/pkg/daemon"
	"github.com/tributary-rag/tributary/pkg/vectordb"
)

// runVectorDB serves the embedded vector store over Qdrant's gRPC API until
// ctx is cancelled, then stops gracefully and writes a final snapshot.
func runVectorDB(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("vectordb", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", vectordbEnv("TRIBUTARY_VECTORDB_LISTEN", "127.0.0.1:6334"), "gRPC listen address (host:port); Qdrant's gRPC port is 6334")
	dataDir := fs.String("data-dir", os.Getenv("TRIBUTARY_DATA_DIR"), "data directory (WAL and snapshots); required")
	snapshotMB := fs.Int("snapshot-mb", 64, "WAL size in MiB that triggers a snapshot and WAL compaction")
	annThreshold := fs.Int("ann-threshold", 20000, "vectors per space from which searches use the HNSW index")
	hnswEf := fs.Int("hnsw-ef", 128, "default HNSW search beam width (a request's hnsw_ef overrides it)")
	restore := fs.String("restore-snapshot", "", "restore a snapshot file before serving: PATH restores the collections (and aliases) it holds, PATH:NAME its one collection as NAME; existing collections of those names are replaced")
	logLevel := fs.String("log-level", vectordbEnv("TRIBUTARY_LOG_LEVEL", "info"), "log level: debug, info, warn, error")
	apiKeys := fs.String("api-key", os.Getenv("TRIBUTARY_QDRANT_API_KEY"), "comma-separated read-write API keys every call must carry (gRPC metadata api-key, as Qdrant's service.api_key; env TRIBUTARY_QDRANT_API_KEY, which retrieve sends); required unless listening on loopback")
	roKeys := fs.String("read-only-api-key", os.Getenv("TRIBUTARY_QDRANT_READ_ONLY_API_KEY"), "comma-separated read-only API keys: search, scroll, count and list only (env TRIBUTARY_QDRANT_READ_ONLY_API_KEY)")
	tlsCert := fs.String("tls-cert", "", "PEM certificate: serve TLS only")
	tlsKey := fs.String("tls-key", "", "PEM key of --tls-cert")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errUsage
	}
	if *dataDir == "" {
		fmt.Fprintln(stderr, "vectordb: --data-dir is required")
		return errUsage
	}
	if *snapshotMB <= 0 || *annThreshold <= 0 || *hnswEf <= 0 {
		fmt.Fprintln(stderr, "vectordb: --snapshot-mb, --ann-threshold and --hnsw-ef must be positive")
		return errUsage
	}
	var lvl slog.Level
	switch *logLevel {
	case "debug":
		lvl = slog.LevelDebug
	case "info":
		lvl = slog.LevelInfo
	case "warn":
		lvl = slog.LevelWarn
	case "error":
		lvl = slog.LevelError
	default:
		fmt.Fprintf(stderr, "vectordb: unknown --log-level %q\n", *logLevel)
		return errUsage
	}
	access := vectordb.Access{Keys: splitKeys(*apiKeys), ReadOnlyKeys: splitKeys(*roKeys)}
	if host, _, err := net.SplitHostPort(*listen); err == nil && len(access.Keys)+len(access.ReadOnlyKeys) == 0 && !isLoopback(host) {
		fmt.Fprintf(stderr, "vectordb: --listen %s is reachable from other machines: set --api-key (or listen on loopback)\n", *listen)
		return errUsage
	}
	var tlsCfg *tls.Config
	if *tlsCert != "" || *tlsKey != "" {
		c, err := daemon.ServerTLS(*tlsCert, *tlsKey, "")
		if err != nil {
			return fmt.Errorf("vectordb: tls: %w", err)
		}
		tlsCfg = c
	}
	logger := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: lvl})).With("component", "vectordb")

	store, err := vectordb.Open(*dataDir,
		vectordb.WithLogger(logger),
		vectordb.WithSnapshotThreshold(int64(*snapshotMB)<<20),
		vectordb.WithANNThreshold(*annThreshold),
		vectordb.WithSearchEf(*hnswEf),
	)
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	if *restore != "" {
		path, as := *restore, ""
		if i := strings.LastIndexByte(path, ':'); i > 0 && !strings.ContainsAny(path[i+1:], `/\`) {
			path, as = path[:i], path[i+1:]
		}
		if err := store.RestoreSnapshot(ctx, path, as); err != nil {
			store.Close()
			return fmt.Errorf("restore snapshot %s: %w", *restore, err)
		}
		logger.Info("snapshot restored", "path", path, "as", as)
	}
	lis, err := net.Listen("tcp", *listen)
	if err != nil {
		store.Close()
		return fmt.Errorf("listen: %w", err)
	}
	logger.Info("serving Qdrant gRPC API", "addr", lis.Addr().String(), "data_dir", *dataDir,
		"api_keys", len(access.Keys), "read_only_api_keys", len(access.ReadOnlyKeys), "tls", tlsCfg != nil)
	fmt.Fprintf(stdout, "vectordb listening on %s\n", lis.Addr())
	serveErr := vectordb.Serve(ctx, store, lis, logger, 10*time.Second, access.ServerOptions(tlsCfg)...)
	if err := store.Close(); err != nil && serveErr == nil {
		serveErr = fmt.Errorf("close store: %w", err)
	}
	return serveErr
}

// splitKeys splits a comma-separated list of keys, dropping empty ones.
func splitKeys(s string) []string {
	var keys []string
	for _, k := range strings.Split(s, ",") {
		if k = strings.TrimSpace(k); k != "" {
			keys = append(keys, k)
		}
	}
	return keys
}

// vectordbEnv returns the environment variable key, or def when it is unset.
func vectordbEnv(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
