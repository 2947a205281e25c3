package ingest

import (
	"context"
	"flag"
	"fmt"
	"regexp"
	"time"

	"github.com/tributary-rag/tributary/pkg/apikey"
	"github.com/tributary-rag/tributary/pkg/auditevent"
	"github.com/tributary-rag/tributary/pkg/chunk"
	"github.com/tributary-rag/tributary/pkg/daemon"
	"github.com/tributary-rag/tributary/pkg/docparse"
)

// Settings are the ingest service's own settings, next to the shared
// daemon.Config. Its main and tributary dev both register them (Register),
// check them (Check) and wire the service with them (Wire).
type Settings struct {
	// MaxDocumentBytes is the largest accepted document.
	MaxDocumentBytes int64
	// MaxUploads are the POST requests read and processed at once.
	MaxUploads int
	// ChunkSize is the largest chunk, in runes.
	ChunkSize int
	// ChunkOverlap is the most runes a chunk repeats (0: none).
	ChunkOverlap int
	// ParseTimeout limits parsing one document.
	ParseTimeout time.Duration
	// ParseWorkers is the most documents parsed at once, each in its own
	// child process (0: GOMAXPROCS).
	ParseWorkers int
	// ParseMemory is the memory limit of one parse child, in bytes.
	ParseMemory int64
	// InstanceID names this instance's documents consumer group (see
	// DocumentsGroup); empty for a single instance.
	InstanceID string
	// UploadsPerKey, UploadsPerSecond and UploadBurst bound one API key's
	// uploads (see WithHTTPUploadLimits); UploadTimeout bounds the time
	// an upload's body may take.
	UploadsPerKey    int
	UploadsPerSecond float64
	UploadBurst      int
	UploadTimeout    time.Duration
	// MaxChunks and MaxTextBytes bound what one document expands to (see
	// WithExpansionLimits).
	MaxChunks    int
	MaxTextBytes int64
}

// DefaultSettings returns the defaults of every setting.
func DefaultSettings() Settings {
	return Settings{
		MaxDocumentBytes: DefaultMaxDocumentSize,
		MaxUploads:       DefaultMaxUploads,
		ChunkSize:        chunk.DefaultSize,
		ChunkOverlap:     chunk.DefaultOverlap,
		ParseTimeout:     docparse.DefaultTimeout,
		ParseMemory:      docparse.DefaultMaxMemory,
		UploadsPerKey:    2,
		UploadsPerSecond: 20,
		UploadBurst:      50,
		UploadTimeout:    10 * time.Minute,
		MaxChunks:        5000,
		MaxTextBytes:     32 << 20,
	}
}

// Register registers a flag for every setting on fs, with s's values as
// the defaults.
func (s *Settings) Register(fs *flag.FlagSet) {
	fs.Int64Var(&s.MaxDocumentBytes, "max-document-bytes", s.MaxDocumentBytes, "largest accepted document, in bytes")
	fs.IntVar(&s.MaxUploads, "max-concurrent-uploads", s.MaxUploads, "POST requests read and processed at once; others wait")
	fs.IntVar(&s.ChunkSize, "chunk-size", s.ChunkSize, "largest chunk, in runes")
	fs.IntVar(&s.ChunkOverlap, "chunk-overlap", s.ChunkOverlap, "most runes a chunk repeats from the previous one (0: none)")
	fs.DurationVar(&s.ParseTimeout, "parse-timeout", s.ParseTimeout, "time limit for parsing one document")
	fs.IntVar(&s.ParseWorkers, "parse-workers", s.ParseWorkers, "documents parsed at once, each in a child process (0: one per CPU)")
	fs.Int64Var(&s.ParseMemory, "parse-memory", s.ParseMemory, "memory limit of one parse child process, in bytes")
	fs.StringVar(&s.InstanceID, "instance-id", s.InstanceID, "this instance's id when several run side by side; its documents consumer group is ingest.documents.<id> (empty: ingest.documents)")
	fs.IntVar(&s.UploadsPerKey, "max-uploads-per-key", s.UploadsPerKey, "uploads one API key may have in progress; more get 429 (0: no limit; below --max-concurrent-uploads, so one key cannot take every slot)")
	fs.Float64Var(&s.UploadsPerSecond, "uploads-per-second", s.UploadsPerSecond, "uploads one API key may start per second; more get 429 with Retry-After (0: no limit)")
	fs.IntVar(&s.UploadBurst, "upload-burst", s.UploadBurst, "uploads one API key may start at once above its rate")
	fs.DurationVar(&s.UploadTimeout, "upload-timeout", s.UploadTimeout, "longest an upload's body may take once it has a slot; slower gets 408 (0: none)")
	fs.IntVar(&s.MaxChunks, "max-chunks", s.MaxChunks, "most chunks one document may make; more is 413 (0: no limit)")
	fs.Int64Var(&s.MaxTextBytes, "max-text-bytes", s.MaxTextBytes, "most text one document may expand to, in bytes; more is 413 (0: no limit)")
}

var instancePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$`)

// Check records in p each setting out of range.
func (s Settings) Check(p *daemon.Problems) {
	if s.MaxDocumentBytes <= 0 {
		p.Addf("max-document-bytes", "must be positive")
	}
	if s.MaxUploads <= 0 {
		p.Addf("max-concurrent-uploads", "must be positive")
	}
	if s.ChunkSize <= 0 {
		p.Addf("chunk-size", "must be positive")
	}
	if s.ChunkOverlap < 0 || s.ChunkOverlap >= s.ChunkSize {
		p.Addf("chunk-overlap", "must be at least 0 and smaller than the chunk size")
	}
	if s.ParseTimeout <= 0 {
		p.Addf("parse-timeout", "must be positive")
	}
	if s.ParseWorkers < 0 {
		p.Addf("parse-workers", "must be at least 0")
	}
	if s.ParseMemory < 64<<20 {
		p.Addf("parse-memory", "must be at least 64 MiB (67108864)")
	}
	if s.InstanceID != "" && !instancePattern.MatchString(s.InstanceID) {
		p.Addf("instance-id", "%q must be 1-100 characters of [A-Za-z0-9._-]", s.InstanceID)
	}
	if s.UploadsPerKey < 0 || s.UploadsPerKey > s.MaxUploads {
		p.Addf("max-uploads-per-key", "must be between 0 and --max-concurrent-uploads")
	}
	if s.UploadsPerSecond < 0 || s.UploadBurst < 1 {
		p.Addf("uploads-per-second", "the rate must not be negative and the burst must be at least 1")
	}
	if s.UploadTimeout < 0 || s.MaxChunks < 0 || s.MaxTextBytes < 0 {
		p.Addf("upload-timeout", "upload-timeout, max-chunks and max-text-bytes must not be negative")
	}
}

// Wire opens the document store in d.DataDir and adds the service, its
// HTTP API under /v1/ and its subscribers to w.
func (s Settings) Wire(ctx context.Context, w *daemon.Wiring, d daemon.Deps) error {
	_, err := s.WireService(ctx, w, d)
	return err
}

// WireService is Wire returning the wired Service, for callers in the
// same process (tributary dev loads its sample corpus through it).
func (s Settings) WireService(ctx context.Context, w *daemon.Wiring, d daemon.Deps) (Service, error) {
	// Documents are parsed in child processes of this binary (its main
	// calls docparse.RunChild first); NewPool checks that one starts.
	pool, err := docparse.NewPool(ctx, docparse.PoolOptions{Workers: s.ParseWorkers, MaxMemory: s.ParseMemory})
	if err != nil {
		return nil, err
	}
	w.OnClose(pool.Close)
	store, err := OpenStore(d.DataDir)
	if err != nil {
		return nil, err
	}
	w.OnClose(store.Close)
	reconciled, err := store.Reconcile(time.Now())
	if err != nil {
		return nil, err
	}
	if reconciled > 0 {
		d.Logger.Warn("recorded versions a crash left between publishing and recording", "versions", reconciled)
	}
	overlap := s.ChunkOverlap
	if overlap == 0 {
		overlap = -1 // package chunk reads 0 as "the default"
	}
	chunker, err := NewDocChunker(chunk.Options{Size: s.ChunkSize, Overlap: overlap},
		docparse.Limits{MaxBytes: s.MaxDocumentBytes, Timeout: s.ParseTimeout}, pool)
	if err != nil {
		return nil, err
	}
	metrics, err := NewMetrics(d.Registry)
	if err != nil {
		return nil, fmt.Errorf("ingest metrics: %w", err)
	}
	pub := d.Publisher(w, EventSource)
	var svc Service
	audit := auditevent.New(pub, d.Topics.AuditEvents, EventSource, d.Logger)
	svc = NewService(store, chunker, NewKafkaEmitter(pub, d.Topics.Prefix), WithMaxDocumentSize(s.MaxDocumentBytes),
		WithExpansionLimits(s.MaxChunks, s.MaxTextBytes), WithAudit(audit))
	svc = LoggingMiddleware(d.Logger)(svc)
	svc = InstrumentingMiddleware(metrics)(svc)
	endpoints := MakeEndpoints(svc)

	auth := AuthenticatorFunc(func(key string) (Principal, bool) {
		p, ok := d.Keys.Lookup(key)
		return principal(p), ok
	})
	w.Handle("/v1/", MakeHTTPHandler(endpoints, auth, d.Logger, WithHTTPMaxDocumentSize(s.MaxDocumentBytes), WithHTTPMaxUploads(s.MaxUploads), WithHTTPAudit(audit),
		WithHTTPUploadLimits(s.UploadsPerKey, s.UploadsPerSecond, s.UploadBurst, s.UploadTimeout)))
	// Uploads of up to the size limit on slow links: the server sets no
	// ReadTimeout, and shutdown waits longer for them.
	w.Drain(30 * time.Second)

	documentsGroup := DocumentsGroup(s.InstanceID)
	w.Group.Add("ingest-requests", NewIngestSubscriber(d.Brokers, d.Topics.IngestRequests, pub, endpoints, d.SubscriberOptions()...).Run)
	// GET reports "indexed" from retrieve's document.indexed events.
	w.Group.Add("ingest-documents", NewDocumentsSubscriber(d.Brokers, documentsGroup, d.Topics.Documents, pub, endpoints, d.SubscriberOptions()...).Run)
	w.Topics([]string{d.Topics.IngestRequests, d.Topics.Documents}, d.Topics.Chunks, d.Topics.AuditEvents)
	w.Describe("groups", []string{KafkaGroup, documentsGroup}, "data_dir", d.DataDir, "documents", store.Len(), "api_keys", d.Keys.Len())
	return svc, nil
}

func principal(p apikey.Principal) Principal {
	return Principal{Tenant: p.Tenant, Groups: p.Groups, Name: p.Name}
}
