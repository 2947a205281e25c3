package embed

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/tributary-rag/tributary/pkg/daemon"
	"github.com/tributary-rag/tributary/pkg/events"
	"github.com/tributary-rag/tributary/pkg/kafkatransport"
)

// Settings are the embed service's own settings, next to the shared
// daemon.Config. Its main and tributary dev both register them (Register),
// check them (Check) and wire the service with them (Wire).
type Settings struct {
	// K1, B and AvgDL are the BM25 parameters.
	K1, B, AvgDL float64
	// Stem applies the English S-stemmer.
	Stem bool
	// Identifiers makes "apt-transport-https" a token besides its parts.
	Identifiers bool
	// Context indexes each chunk with its title, source, heading path and
	// page (IndexText); off indexes the chunk's text alone.
	Context bool
	// PublishBatchTimeout is how long a produce waits for more messages.
	PublishBatchTimeout time.Duration
	// ValidateSchemas checks every input event against its JSON Schema.
	ValidateSchemas bool
	// EmbedModel is a sentence-transformers model directory (or a BERT
	// .gguf file) whose dense vectors go beside the sparse ones; empty:
	// sparse only.
	EmbedModel string
	// EmbedThreads is how many threads the dense model uses (0: all).
	EmbedThreads int
}

// DefaultSettings returns the defaults of every setting.
func DefaultSettings() Settings {
	return Settings{K1: DefaultK1, B: DefaultB, AvgDL: DefaultAvgDL, Stem: true, Identifiers: true, Context: true,
		PublishBatchTimeout: kafkatransport.DefaultBatchTimeout, ValidateSchemas: true}
}

// Register registers a flag for every setting on fs, with s's values as
// the defaults.
func (s *Settings) Register(fs *flag.FlagSet) {
	fs.Float64Var(&s.K1, "bm25-k1", s.K1, "BM25 term-frequency saturation k1 (> 0)")
	fs.Float64Var(&s.B, "bm25-b", s.B, "BM25 length normalization b (0 to 1)")
	fs.Float64Var(&s.AvgDL, "bm25-avgdl", s.AvgDL, "average chunk length in tokens for BM25 length normalization")
	fs.BoolVar(&s.Stem, "stem", s.Stem, "apply the English S-stemmer (plural → singular)")
	fs.BoolVar(&s.Identifiers, "identifier-tokens", s.Identifiers, "index identifiers such as apt-transport-https whole as well as by their parts")
	fs.BoolVar(&s.Context, "index-context", s.Context, "index each chunk with its document title, source, heading path and page")
	fs.DurationVar(&s.PublishBatchTimeout, "publish-batch-timeout", s.PublishBatchTimeout, "how long a produce waits for more messages to share its batch")
	fs.BoolVar(&s.ValidateSchemas, "validate-schemas", s.ValidateSchemas, "check every input event against its JSON Schema (dead-letter the ones that fail)")
	fs.StringVar(&s.EmbedModel, "embed-model", s.EmbedModel, "sentence-transformers model directory or .gguf file (BERT family) for dense vectors beside the sparse ones; empty: sparse only")
	fs.IntVar(&s.EmbedThreads, "embed-threads", s.EmbedThreads, "threads of the dense model (0: all cores)")
}

// Check records in p each setting out of range.
func (s Settings) Check(p *daemon.Problems) {
	if err := ValidateBM25(s.K1, 0.5, 1); err != nil {
		p.Addf("bm25-k1", "must be a positive number")
	}
	if err := ValidateBM25(1, s.B, 1); err != nil {
		p.Addf("bm25-b", "must be between 0 and 1")
	}
	if err := ValidateBM25(1, 0.5, s.AvgDL); err != nil {
		p.Addf("bm25-avgdl", "must be a positive number")
	}
	if s.PublishBatchTimeout <= 0 || s.PublishBatchTimeout > time.Second {
		p.Addf("publish-batch-timeout", "must be positive and at most 1s")
	}
	if s.EmbedThreads < 0 {
		p.Addf("embed-threads", "must be 0 (all cores) or more")
	}
}

// Wire adds the service, its onion and its chunk and query subscribers to
// w.
func (s Settings) Wire(_ context.Context, w *daemon.Wiring, d daemon.Deps) error {
	sparse, err := NewSparse(WithBM25(s.K1, s.B, s.AvgDL), WithStemming(s.Stem), WithIdentifiers(s.Identifiers))
	if err != nil {
		return err
	}
	emb, err := s.withDense(sparse, d.Registry)
	if err != nil {
		return err
	}
	metrics, err := NewMetrics(d.Registry)
	if err != nil {
		return fmt.Errorf("embed metrics: %w", err)
	}
	pub := d.Publisher(w, EventSource, kafkatransport.PublisherBatchTimeout(s.PublishBatchTimeout))
	var svc Service
	svc = NewService(emb, WithContext(s.Context))
	svc = LoggingMiddleware(d.Logger)(svc)
	svc = InstrumentingMiddleware(metrics)(svc)
	endpoints := MakeEndpoints(svc)

	var validator *events.Validator
	if s.ValidateSchemas {
		if validator, err = events.NewValidator(); err != nil {
			return fmt.Errorf("event schemas: %w", err)
		}
	}
	w.Group.Add("chunks", NewChunkSubscriber(d.Brokers, d.Topics, pub, endpoints, validator, d.SubscriberOptions()...).Run)
	w.Group.Add("queries-approved", NewQuerySubscriber(d.Brokers, d.Topics, pub, endpoints, validator, d.SubscriberOptions()...).Run)
	w.Topics([]string{d.Topics.Chunks, d.Topics.QueriesApproved}, d.Topics.ChunksEmbedded, d.Topics.QueriesEmbedded)
	w.Describe("model", emb.Model(), "embed_model", s.EmbedModel, "bm25_k1", s.K1, "bm25_b", s.B, "bm25_avgdl", s.AvgDL, "stem", s.Stem,
		"identifier_tokens", s.Identifiers, "index_context", s.Context,
		"publish_batch_timeout", s.PublishBatchTimeout.String(), "validate_schemas", s.ValidateSchemas)
	return nil
}
