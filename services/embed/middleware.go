package embed

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tributary-rag/tributary/pkg/events"
	"github.com/tributary-rag/tributary/pkg/instrument"
)

// Middleware decorates a Service.
type Middleware func(Service) Service

// LoggingMiddleware logs every call with its tenant, ids, number of
// non-zero sparse terms, outcome and duration: debug when it succeeds
// (one line per chunk would drown the log at info), warn when it fails.
// It never logs text.
func LoggingMiddleware(logger *slog.Logger) Middleware {
	return func(next Service) Service {
		return loggingMiddleware{next: next, logger: logger}
	}
}

type loggingMiddleware struct {
	next   Service
	logger *slog.Logger
}

func (mw loggingMiddleware) log(ctx context.Context, method string, err error, begin time.Time, attrs ...any) {
	attrs = append(attrs,
		"method", method,
		"correlation_id", events.CorrelationID(ctx),
		"took_ms", instrument.MillisSince(begin),
	)
	instrument.Log(ctx, mw.logger, slog.LevelDebug, method, err, instrument.At(slog.LevelWarn), attrs...)
}

func (mw loggingMiddleware) EmbedChunk(ctx context.Context, c events.ChunkCreated) (out events.ChunkEmbedded, err error) {
	defer func(begin time.Time) {
		mw.log(ctx, "embed_chunk", err, begin,
			"tenant", c.TenantID, "document_id", c.DocumentID, "chunk_id", c.ChunkID,
			"version", c.Version, "index", c.Index, "terms", terms(out.Sparse), "runes", c.End-c.Start)
	}(time.Now())
	return mw.next.EmbedChunk(ctx, c)
}

func (mw loggingMiddleware) EmbedQuery(ctx context.Context, q events.QueryApproved) (out events.QueryEmbedded, err error) {
	defer func(begin time.Time) {
		mw.log(ctx, "embed_query", err, begin,
			"tenant", q.TenantID, "request_id", q.RequestID, "terms", terms(out.Sparse))
	}(time.Now())
	return mw.next.EmbedQuery(ctx, q)
}

func terms(v *events.SparseVector) int {
	if v == nil {
		return 0
	}
	return len(v.Indices)
}

// Metrics are the service's Prometheus instruments.
type Metrics struct {
	embedded *instrument.Calls // embedded_total and duration_seconds
	terms    *prometheus.HistogramVec
	bytes    *prometheus.CounterVec
}

// NewMetrics creates the service's instruments and registers them with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		embedded: instrument.NewCalls("kind", prometheus.CounterOpts{
			Namespace: "tributary", Subsystem: "embed", Name: "embedded_total",
			Help: "Texts embedded by kind (chunk, query) and outcome (ok, invalid, error).",
		}, prometheus.HistogramOpts{
			Namespace: "tributary", Subsystem: "embed", Name: "duration_seconds",
			Help:    "Time to embed one text, by kind.",
			Buckets: prometheus.ExponentialBuckets(1e-6, 4, 12),
		}, errorOutcome),
		terms: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "tributary", Subsystem: "embed", Name: "sparse_terms",
			Help:    "Non-zero entries of the sparse vectors, by kind.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 12),
		}, []string{"kind"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "tributary", Subsystem: "embed", Name: "text_bytes_total",
			Help: "Bytes of text embedded, by kind.",
		}, []string{"kind"}),
	}
	if err := instrument.Register(reg, m.embedded, m.terms, m.bytes); err != nil {
		return nil, err
	}
	return m, nil
}

// errorOutcome is "invalid" for invalid texts and "error" for other
// failures.
func errorOutcome(err error) string {
	if isInvalid(err) {
		return "invalid"
	}
	return "error"
}

// InstrumentingMiddleware counts calls, texts and terms and observes
// their duration.
func InstrumentingMiddleware(m *Metrics) Middleware {
	return func(next Service) Service {
		return instrumentingMiddleware{next: next, m: m}
	}
}

type instrumentingMiddleware struct {
	next Service
	m    *Metrics
}

func (mw instrumentingMiddleware) observe(kind string, v *events.SparseVector, size int, err error, begin time.Time) {
	if err == nil {
		mw.m.terms.WithLabelValues(kind).Observe(float64(terms(v)))
		mw.m.bytes.WithLabelValues(kind).Add(float64(size))
	}
	mw.m.embedded.Observe(kind, "ok", err, begin)
}

func (mw instrumentingMiddleware) EmbedChunk(ctx context.Context, c events.ChunkCreated) (out events.ChunkEmbedded, err error) {
	defer func(begin time.Time) {
		mw.observe("chunk", out.Sparse, len(c.Text), err, begin)
	}(time.Now())
	return mw.next.EmbedChunk(ctx, c)
}

func (mw instrumentingMiddleware) EmbedQuery(ctx context.Context, q events.QueryApproved) (out events.QueryEmbedded, err error) {
	defer func(begin time.Time) {
		mw.observe("query", out.Sparse, len(q.Question), err, begin)
	}(time.Now())
	return mw.next.EmbedQuery(ctx, q)
}
