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
	// EmbedBatchWindow is how long the first of concurrent dense calls
	// waits for others to share its forward pass, up to EmbedBatchTexts
	// texts (see WithDenseBatching).
	EmbedBatchWindow time.Duration
	EmbedBatchTexts  int
	// EmbedURL is an OpenAI-compatible embeddings server; with it,
	// EmbedModel names the server's model instead of a path (see
	// OpenAIConfig for the fields below).
	EmbedURL                              string
	EmbedAPIKey, EmbedAPIKeyFile          string
	EmbedDim, EmbedURLBatch               int
	EmbedURLTimeout                       time.Duration
	EmbedQueryPrefix, EmbedDocumentPrefix string
	// RebuildGroup, when set, makes this a rebuild deployment: chunks
	// only, from the topic's beginning, in this consumer group (see
	// NewRebuildSubscriber).
	RebuildGroup string
}

// DefaultSettings returns the defaults of every setting.
func DefaultSettings() Settings {
	return Settings{K1: DefaultK1, B: DefaultB, AvgDL: DefaultAvgDL, Stem: true, Identifiers: true, Context: true,
		PublishBatchTimeout: kafkatransport.DefaultBatchTimeout, ValidateSchemas: true,
		EmbedURLBatch: 32, EmbedURLTimeout: 30 * time.Second, EmbedBatchWindow: 2 * time.Millisecond, EmbedBatchTexts: 64}
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
	fs.DurationVar(&s.EmbedBatchWindow, "embed-batch-window", s.EmbedBatchWindow, "how long the first of concurrent dense-model calls waits for others to share its forward pass (0: no wait; calls arriving during a pass always share the next)")
	fs.IntVar(&s.EmbedBatchTexts, "embed-batch-texts", s.EmbedBatchTexts, "most texts in one forward pass of the dense model")
	fs.StringVar(&s.EmbedURL, "embed-url", s.EmbedURL, "OpenAI-compatible embeddings server (TEI, vLLM, Ollama, OpenAI, tributary inference); --embed-model then names its model")
	fs.StringVar(&s.EmbedAPIKey, "embed-api-key", s.EmbedAPIKey, "Bearer key for --embed-url (prefer the variable or --embed-api-key-file: flags show in ps)")
	fs.StringVar(&s.EmbedAPIKeyFile, "embed-api-key-file", s.EmbedAPIKeyFile, "file holding the key for --embed-url (a mounted secret; one trailing newline is ignored)")
	fs.IntVar(&s.EmbedDim, "embed-dim", s.EmbedDim, "dimension the --embed-url model's vectors must have (0: the first answer's)")
	fs.IntVar(&s.EmbedURLBatch, "embed-url-batch", s.EmbedURLBatch, "most texts per --embed-url request")
	fs.DurationVar(&s.EmbedURLTimeout, "embed-url-timeout", s.EmbedURLTimeout, "time limit of one --embed-url request")
	fs.StringVar(&s.EmbedQueryPrefix, "embed-query-prefix", s.EmbedQueryPrefix, "text put before each question for --embed-url (e5: \"query: \")")
	fs.StringVar(&s.RebuildGroup, "rebuild-group", s.RebuildGroup, "rebuild deployment for a model change: embed only the chunks topic, from its beginning, in this consumer group (no questions); empty: the normal service")
	fs.StringVar(&s.EmbedDocumentPrefix, "embed-document-prefix", s.EmbedDocumentPrefix, "text put before each chunk for --embed-url (e5: \"passage: \")")
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
	if s.EmbedBatchWindow < 0 || s.EmbedBatchWindow > 100*time.Millisecond {
		p.Addf("embed-batch-window", "must be between 0 and 100ms")
	}
	if s.EmbedBatchTexts < 1 {
		p.Addf("embed-batch-texts", "must be 1 or more")
	}
	s.checkRemote(p)
	s.checkRebuild(p)
}

// Wire adds the service, its onion and its chunk and query subscribers to
// w.
func (s Settings) Wire(_ context.Context, w *daemon.Wiring, d daemon.Deps) error {
	sparse, err := NewSparse(WithBM25(s.K1, s.B, s.AvgDL), WithStemming(s.Stem), WithIdentifiers(s.Identifiers))
	if err != nil {
		return err
	}
	emb, err := s.embedder(sparse, d.Registry)
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
	if s.RebuildGroup != "" {
		w.Group.Add("chunks-rebuild", NewRebuildSubscriber(d.Brokers, d.Topics, s.RebuildGroup, pub, endpoints, validator, d.SubscriberOptions()...).Run)
		w.Topics([]string{d.Topics.Chunks}, d.Topics.ChunksEmbedded)
	} else {
		w.Group.Add("chunks", NewChunkSubscriber(d.Brokers, d.Topics, pub, endpoints, validator, d.SubscriberOptions()...).Run)
		w.Group.Add("queries-approved", NewQuerySubscriber(d.Brokers, d.Topics, pub, endpoints, validator, d.SubscriberOptions()...).Run)
		w.Topics([]string{d.Topics.Chunks, d.Topics.QueriesApproved}, d.Topics.ChunksEmbedded, d.Topics.QueriesEmbedded)
	}
	w.Describe("model", emb.Model(), "embed_model", s.EmbedModel, "embed_url", redactURL(s.EmbedURL), "rebuild_group", s.RebuildGroup, "bm25_k1", s.K1, "bm25_b", s.B, "bm25_avgdl", s.AvgDL, "stem", s.Stem,
		"identifier_tokens", s.Identifiers, "index_context", s.Context,
		"publish_batch_timeout", s.PublishBatchTimeout.String(), "validate_schemas", s.ValidateSchemas)
	return nil
}
