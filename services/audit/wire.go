package audit

import (
	"context"
	"flag"
	"fmt"
	"path/filepath"
	"time"

	"github.com/tributary-rag/tributary/pkg/apikey"
	"github.com/tributary-rag/tributary/pkg/daemon"
)

// Settings are the audit service's own settings, next to the shared
// daemon.Config. Its main and tributary dev both register them (Register),
// check them (Check) and wire the service with them (Wire).
type Settings struct {
	// KeyFile holds the key-encryption keys (empty: <data dir>/audit.key,
	// created 0600 if missing).
	KeyFile string
	// SegmentBytes is the size at which a segment is sealed.
	SegmentBytes int64
	// MaxBatch is the most messages recorded with one fsync.
	MaxBatch int
}

// DefaultSettings returns the defaults of every setting.
func DefaultSettings() Settings {
	return Settings{SegmentBytes: DefaultSegmentSize, MaxBatch: 512}
}

// Register registers a flag for every setting on fs, with s's values as
// the defaults.
func (s *Settings) Register(fs *flag.FlagSet) {
	fs.StringVar(&s.KeyFile, "audit-key-file", s.KeyFile, "key file of the key-encryption keys (default <data-dir>/audit.key; created 0600 if missing)")
	fs.Int64Var(&s.SegmentBytes, "audit-segment-bytes", s.SegmentBytes, "size at which a segment is sealed and the next started")
	fs.IntVar(&s.MaxBatch, "audit-max-batch", s.MaxBatch, "most messages recorded with one fsync")
}

// Check records in p each setting out of range.
func (s Settings) Check(p *daemon.Problems) {
	if s.SegmentBytes < 4096 {
		p.Addf("audit-segment-bytes", "must be at least 4096")
	}
	if s.MaxBatch <= 0 {
		p.Addf("audit-max-batch", "must be positive")
	}
}

// Wire opens the audit log in d.DataDir and adds the service, its export
// API under /v1/audit/ and its consumer of every topic to w.
func (s Settings) Wire(ctx context.Context, w *daemon.Wiring, d daemon.Deps) error {
	if s.KeyFile == "" {
		s.KeyFile = filepath.Join(d.DataDir, "audit.key")
	}
	keys, err := LoadKeyFile(s.KeyFile)
	if err != nil {
		return err
	}
	log, err := Open(ctx, d.DataDir, keys, WithSegmentSize(s.SegmentBytes), WithLogger(d.Logger))
	if err != nil {
		return err
	}
	w.OnClose(log.Close)
	metrics, err := NewMetrics(d.Registry)
	if err != nil {
		return fmt.Errorf("audit metrics: %w", err)
	}
	var svc Service
	svc = NewService(log)
	svc = LoggingMiddleware(d.Logger)(svc)
	svc = InstrumentingMiddleware(metrics)(svc)
	endpoints := MakeEndpoints(svc)

	auth := AuthenticatorFunc(func(key string) (Principal, bool) {
		p, ok := d.Keys.Lookup(key)
		return principal(p), ok
	})
	w.Handle("/v1/audit/", MakeHTTPHandler(endpoints, auth, d.Logger))
	// Exports stream for as long as the log is: the server sets no
	// WriteTimeout, and shutdown waits longer for them.
	w.Drain(30 * time.Second)
	topics := Topics(d.Topics.Prefix)
	w.Group.Add("audit-consumer", NewConsumer(ConsumerConfig{Brokers: d.Brokers, Topics: topics, MaxBatch: s.MaxBatch}, endpoints.Record, d.Logger).Run)
	w.Topics(topics)
	lastSeq, segments := log.Stats()
	w.Describe("data_dir", d.DataDir, "key_id", keys.CurrentKeyID(), "last_seq", lastSeq, "segments", segments, "api_keys", d.Keys.Len())
	return nil
}

func principal(p apikey.Principal) Principal {
	return Principal{Tenant: p.Tenant, Groups: p.Groups, Name: p.Name}
}
