package retrieve

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"log/slog"
	"regexp"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tributary-rag/tributary/pkg/daemon"
	"github.com/tributary-rag/tributary/pkg/encoder"
)

// Settings are the retrieve service's own settings, next to the shared
// daemon.Config. Its main and tributary dev both register them (Register),
// check them (Check) and wire the service with them (Wire).
type Settings struct {
	// Collection is the Qdrant collection of the chunks.
	Collection string
	// DenseSize is the size of the dense vectors, fixed at creation.
	DenseSize int
	// TopK is the results per query that names none; MaxTopK the most.
	TopK, MaxTopK int
	// PerDocument and NearDuplicate keep results from crowding (see
	// WithCrowding).
	PerDocument   int
	NearDuplicate float64
	// Alias: Collection names an alias of the collection (see WithAlias).
	Alias bool
	// GroupBy is the payload key searches group by, at most PerDocument
	// hits per value, in the store (QueryGroups); empty: no grouping.
	GroupBy string
	// Quantize creates the collection with int8 scalar quantization, the
	// originals on disk (see WithQuantization); default on.
	Quantize bool
	// QdrantAPIKey is sent with every call (Qdrant's api-key), and
	// QdrantTLS/QdrantTLSCA connect over TLS (CA empty: the system's).
	QdrantAPIKey string
	QdrantTLS    bool
	QdrantTLSCA  string
	// RerankModel is a cross-encoder (directory or .gguf) that reorders
	// the best RerankCandidates fused hits; empty: no reranking.
	RerankModel      string
	RerankCandidates int
	// SearchVectors picks which of a query's vectors are searched:
	// VectorsHybrid (both when both are there, fused with RRF), or only
	// VectorsDense or VectorsSparse (see WithSearchVectors).
	SearchVectors string
	// CollectionPerModel indexes each embedding model's vectors in a
	// collection of its own behind the alias Collection (see Spaces);
	// RetireAfter is how long a replaced one stays, ModelCheckEvery how
	// often a rebuilt one is checked for having caught up.
	CollectionPerModel           bool
	RetireAfter, ModelCheckEvery time.Duration
}

// DefaultSettings returns the defaults of every setting.
func DefaultSettings() Settings {
	return Settings{Collection: DefaultCollection, DenseSize: DefaultDenseSize, TopK: DefaultTopK, MaxTopK: MaxTopK,
		PerDocument: DefaultPerDocument, NearDuplicate: DefaultNearDuplicate,
		Alias: true, GroupBy: FieldDocumentID, Quantize: true, RerankCandidates: DefaultRerankCandidates,
		SearchVectors: VectorsHybrid, RetireAfter: DefaultRetireAfter, ModelCheckEvery: DefaultCheckEvery}
}

// Register registers a flag for every setting on fs, with s's values as
// the defaults.
func (s *Settings) Register(fs *flag.FlagSet) {
	fs.StringVar(&s.Collection, "collection", s.Collection, "Qdrant collection of the chunks")
	fs.IntVar(&s.DenseSize, "dense-size", s.DenseSize, "size of the dense vectors (fixed when the collection is created)")
	fs.IntVar(&s.TopK, "top-k", s.TopK, "results per query when the query names none")
	fs.IntVar(&s.MaxTopK, "max-top-k", s.MaxTopK, "most results per query")
	fs.IntVar(&s.PerDocument, "per-document", s.PerDocument, "most chunks of one document per result (0: no limit)")
	fs.BoolVar(&s.Alias, "collection-alias", s.Alias, "reach the chunks through an alias named --collection (created pointing at <collection>_v1), so a rebuilt collection can be swapped in")
	fs.StringVar(&s.GroupBy, "group-by", s.GroupBy, "payload key the vector store groups hits by, at most --per-document per value (empty: no grouping)")
	fs.BoolVar(&s.Quantize, "quantize", s.Quantize, "create the collection with int8 scalar quantization (originals on disk, rescored)")
	fs.Float64Var(&s.NearDuplicate, "near-duplicate", s.NearDuplicate, "word-trigram similarity at which chunk texts count as one and only the best-scoring copy is kept (1: identical texts only; above 1: off)")
	fs.StringVar(&s.QdrantAPIKey, "qdrant-api-key", s.QdrantAPIKey, "API key sent to Qdrant (prefer the variable: flags show in ps)")
	fs.BoolVar(&s.QdrantTLS, "qdrant-tls", s.QdrantTLS, "connect to Qdrant over TLS (implied by --qdrant-tls-ca)")
	fs.StringVar(&s.QdrantTLSCA, "qdrant-tls-ca", s.QdrantTLSCA, "PEM file of the CAs that sign Qdrant's certificate (empty: the system's)")
	fs.StringVar(&s.RerankModel, "rerank-model", s.RerankModel, "cross-encoder model directory or .gguf file (ms-marco-MiniLM, bge-reranker) that reorders the fused candidates; empty: no reranking")
	fs.StringVar(&s.SearchVectors, "search-vectors", s.SearchVectors, "which of a query's vectors are searched: hybrid (dense and sparse fused with RRF when the query has both), dense or sparse")
	fs.IntVar(&s.RerankCandidates, "rerank-candidates", s.RerankCandidates, "fused candidates per query the reranker reads")
	fs.BoolVar(&s.CollectionPerModel, "collection-per-model", s.CollectionPerModel, "index each embedding model in a collection of its own (<collection>__<model>_<dim>) behind the alias --collection; a new model's collection is rebuilt in the background and swapped in when it has caught up")
	fs.DurationVar(&s.RetireAfter, "retire-after", s.RetireAfter, "with --collection-per-model: how long a replaced collection stays for questions of its model")
	fs.DurationVar(&s.ModelCheckEvery, "model-check-interval", s.ModelCheckEvery, "with --collection-per-model: how often a rebuilt collection is checked for having caught up")
}

var (
	collectionRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,255}$`)
	groupByRE    = regexp.MustCompile(`^[A-Za-z0-9_.]{1,255}$`)
)

// Check records in p each setting out of range.
func (s Settings) Check(p *daemon.Problems) {
	if !collectionRE.MatchString(s.Collection) {
		p.Addf("collection", "must be 1-255 characters of [A-Za-z0-9_-]")
	}
	if s.DenseSize <= 0 || s.DenseSize > 65536 {
		p.Addf("dense-size", "must be between 1 and 65536")
	}
	if s.MaxTopK <= 0 || s.MaxTopK > 1000 {
		p.Addf("max-top-k", "must be between 1 and 1000")
	}
	if s.TopK <= 0 || s.TopK > s.MaxTopK {
		p.Addf("top-k", "must be between 1 and the max-top-k")
	}
	if s.GroupBy != "" && !groupByRE.MatchString(s.GroupBy) {
		p.Addf("group-by", "must be a payload key of [A-Za-z0-9_.]")
	}
	if s.PerDocument < 0 {
		p.Addf("per-document", "must not be negative")
	}
	if !(s.NearDuplicate > 0) || s.NearDuplicate > 2 {
		p.Addf("near-duplicate", "must be above 0 and at most 2")
	}
	if s.CollectionPerModel && !s.Alias {
		p.Addf("collection-per-model", "needs --collection-alias")
	}
	if s.RetireAfter < 0 {
		p.Addf("retire-after", "must not be negative")
	}
	if s.ModelCheckEvery < 100*time.Millisecond {
		p.Addf("model-check-interval", "must be at least 100ms")
	}
	if s.RerankCandidates <= 0 || s.RerankCandidates > 1000 {
		p.Addf("rerank-candidates", "must be between 1 and 1000")
	}
	switch s.SearchVectors {
	case VectorsHybrid, VectorsDense, VectorsSparse:
	default:
		p.Addf("search-vectors", "must be hybrid, dense or sparse")
	}
}

// Wire connects to Qdrant at d.QdrantAddr, creates the collection (waiting
// up to a minute for Qdrant to come up), and adds the service, its onion
// and its subscribers to w.
func (s Settings) Wire(ctx context.Context, w *daemon.Wiring, d daemon.Deps) error {
	var tlsCfg *tls.Config
	if s.QdrantTLS || s.QdrantTLSCA != "" {
		c, err := daemon.ClientTLS(s.QdrantTLSCA, "", "")
		if err != nil {
			return fmt.Errorf("qdrant tls: %w", err)
		}
		tlsCfg = c
	}
	client, err := Dial(d.QdrantAddr, s.QdrantAPIKey, tlsCfg)
	if err != nil {
		return err
	}
	w.OnClose(client.Close)
	var opts []IndexOption
	if s.Alias {
		opts = append(opts, WithAlias())
	}
	if s.Quantize {
		opts = append(opts, WithQuantization())
	}
	opts = append(opts, WithGrouping(s.GroupBy, s.PerDocument))
	index := NewIndex(client, s.Collection, s.DenseSize, opts...)
	if !s.CollectionPerModel { // Spaces makes its collections on first sight
		if err := retry(ctx, d.Logger, "ensure collection", index.Ensure); err != nil {
			return err
		}
	}
	metrics, err := NewMetrics(d.Registry)
	if err != nil {
		return fmt.Errorf("retrieve metrics: %w", err)
	}
	pub := d.Publisher(w, EventSource)
	var svc Service
	svcOpts := []Option{WithTopK(s.TopK, s.MaxTopK), WithCrowding(s.PerDocument, s.NearDuplicate), WithSearchVectors(s.SearchVectors)}
	if s.RerankModel != "" {
		rr, err := encoder.LoadReranker(s.RerankModel, encoder.Options{})
		if err != nil {
			return fmt.Errorf("rerank model: %w", err)
		}
		w.OnClose(func() error { rr.Close(); return nil })
		latency := prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "tributary_retrieve_rerank_seconds",
			Help:    "Time the cross-encoder takes to rerank one query's candidates.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		})
		if err := d.Registry.Register(latency); err != nil {
			return fmt.Errorf("retrieve metrics: %w", err)
		}
		svcOpts = append(svcOpts, WithReranker(encoderReranker{rr}, s.RerankCandidates, latency))
		w.Describe("rerank_model", rr.Name(), "rerank_candidates", s.RerankCandidates)
	}
	if s.CollectionPerModel {
		sp := NewSpaces(client, s.Collection, s.DenseSize, NewKafkaEmitter(pub, d.Topics.Documents), WithRetireAfter(s.RetireAfter),
			WithSpacesLogger(d.Logger), WithSpaceIndexOptions(opts...), WithSpaceServiceOptions(svcOpts...))
		if err := retry(ctx, d.Logger, "load collections", sp.Load); err != nil {
			return err
		}
		if err := sp.Register(d.Registry); err != nil {
			return fmt.Errorf("retrieve metrics: %w", err)
		}
		w.Group.Add("model-switch", func(ctx context.Context) error { return sp.Run(ctx, s.ModelCheckEvery) })
		svc = sp
	} else {
		svc = NewService(index, NewKafkaEmitter(pub, d.Topics.Documents), svcOpts...)
	}
	svc = LoggingMiddleware(d.Logger)(svc)
	svc = InstrumentingMiddleware(metrics)(svc)
	endpoints := MakeEndpoints(svc)

	t := d.Topics
	w.Group.Add("chunks-embedded", NewChunksSubscriber(d.Brokers, t.ChunksEmbedded, pub, endpoints, d.SubscriberOptions()...).Run)
	w.Group.Add("documents", NewDocumentsSubscriber(d.Brokers, t.Documents, pub, endpoints, d.SubscriberOptions()...).Run)
	w.Group.Add("queries-embedded", NewQueriesSubscriber(d.Brokers, t.QueriesEmbedded, t.QueriesRetrieved, pub, endpoints, d.SubscriberOptions()...).Run)
	w.Topics([]string{t.ChunksEmbedded, t.Documents, t.QueriesEmbedded}, t.QueriesRetrieved)
	w.Check(daemon.Check{Name: "qdrant", Run: index.Health})
	w.Describe("qdrant_addr", d.QdrantAddr, "collection", s.Collection, "dense_size", s.DenseSize, "collection_per_model", s.CollectionPerModel)
	return nil
}

// retry runs fn until it succeeds, for up to a minute, so that the service
// may start together with its vector store.
func retry(ctx context.Context, logger *slog.Logger, what string, fn func(context.Context) error) error {
	deadline := time.Now().Add(time.Minute)
	for attempt := 1; ; attempt++ {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := fn(cctx)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return fmt.Errorf("%s: %w", what, err)
		}
		logger.Warn(what+": not ready, retrying", "attempt", attempt, "error", err.Error())
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}
