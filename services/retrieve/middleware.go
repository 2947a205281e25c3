package retrieve

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

// LoggingMiddleware logs every call with its tenant, document or request
// id, outcome and duration: debug for routine chunk writes, info for
// completed versions, deletions and queries, warn for invalid events and
// error for store or broker failures. It never logs text or vectors.
func LoggingMiddleware(logger *slog.Logger) Middleware {
	return func(next Service) Service { return loggingMiddleware{next: next, logger: logger} }
}

type loggingMiddleware struct {
	next   Service
	logger *slog.Logger
}

func (mw loggingMiddleware) log(ctx context.Context, level slog.Level, method string, err error, begin time.Time, attrs ...any) {
	attrs = append(attrs, "method", method, "took_ms", instrument.MillisSince(begin))
	if c := events.CorrelationID(ctx); c != "" {
		attrs = append(attrs, "correlation_id", c)
	}
	instrument.Log(ctx, mw.logger, level, method, err, failure, attrs...)
}

// failure logs store and broker failures at error, invalid events at warn.
func failure(err error) (slog.Level, []any) {
	if !Retryable(err) {
		return slog.LevelWarn, nil
	}
	return slog.LevelError, nil
}

func (mw loggingMiddleware) IndexChunk(ctx context.Context, c events.ChunkEmbedded) (res IndexResult, err error) {
	defer func(begin time.Time) {
		level := slog.LevelDebug
		if res.Status == StatusIndexed || res.Status == StatusStale {
			level = slog.LevelInfo
		}
		mw.log(ctx, level, "index_chunk", err, begin, "tenant", c.TenantID, "document_id", c.DocumentID,
			"version", c.Version, "index", c.Index, "chunk_count", c.ChunkCount, "status", res.Status)
	}(time.Now())
	return mw.next.IndexChunk(ctx, c)
}

// IndexChunks implements BatchIndexer: one record per chunk, as
// IndexChunk logs it, with the batch's duration.
func (mw loggingMiddleware) IndexChunks(ctx context.Context, chunks []ContextChunk) (results []IndexResult, errs []error, err error) {
	defer func(begin time.Time) {
		for i, c := range chunks {
			var res IndexResult
			cerr := err
			if err == nil {
				res, cerr = results[i], errs[i]
			}
			level := slog.LevelDebug
			if res.Status == StatusIndexed || res.Status == StatusStale {
				level = slog.LevelInfo
			}
			ch := c.Chunk
			mw.log(c.Ctx, level, "index_chunk", cerr, begin, "tenant", ch.TenantID, "document_id", ch.DocumentID,
				"version", ch.Version, "index", ch.Index, "chunk_count", ch.ChunkCount, "status", res.Status, "batch", len(chunks))
		}
	}(time.Now())
	return IndexChunks(ctx, mw.next, chunks)
}

func (mw loggingMiddleware) AcceptDocument(ctx context.Context, d events.DocumentAccepted) (res IndexResult, err error) {
	defer func(begin time.Time) {
		mw.log(ctx, slog.LevelDebug, "accept_document", err, begin, "tenant", d.TenantID, "document_id", d.DocumentID,
			"version", d.Version, "chunk_count", d.ChunkCount, "status", res.Status)
	}(time.Now())
	return mw.next.AcceptDocument(ctx, d)
}

func (mw loggingMiddleware) DeleteDocument(ctx context.Context, d events.DocumentDeleted) (err error) {
	defer func(begin time.Time) {
		mw.log(ctx, slog.LevelInfo, "delete_document", err, begin, "tenant", d.TenantID, "document_id", d.DocumentID, "version", d.Version)
	}(time.Now())
	return mw.next.DeleteDocument(ctx, d)
}

func (mw loggingMiddleware) Retrieve(ctx context.Context, q events.QueryEmbedded) (res events.QueryRetrieved, err error) {
	defer func(begin time.Time) {
		mw.log(ctx, slog.LevelInfo, "retrieve", err, begin, "tenant", q.TenantID, "request_id", q.RequestID,
			"groups", len(q.Groups), "top_k", q.TopK, "results", len(res.Results))
	}(time.Now())
	return mw.next.Retrieve(ctx, q)
}

// Metrics are the service's Prometheus instruments.
type Metrics struct {
	calls   *instrument.Calls
	results prometheus.Histogram
}

// NewMetrics registers the service's instruments with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		calls: instrument.NewCalls("method", prometheus.CounterOpts{
			Name: "tributary_retrieve_calls_total",
			Help: "Service calls by method and outcome (a status such as indexed, pending, stale, or error).",
		}, prometheus.HistogramOpts{
			Name:    "tributary_retrieve_call_seconds",
			Help:    "Service call duration by method.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, nil), // every failure counts as "error"
		results: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "tributary_retrieve_results",
			Help:    "Chunks returned per query.",
			Buckets: []float64{0, 1, 2, 3, 5, 10, 20, 50},
		}),
	}
	if err := instrument.Register(reg, m.calls, m.results); err != nil {
		return nil, err
	}
	return m, nil
}

// InstrumentingMiddleware counts and times every call.
func InstrumentingMiddleware(m *Metrics) Middleware {
	return func(next Service) Service { return instrumentingMiddleware{next: next, m: m} }
}

type instrumentingMiddleware struct {
	next Service
	m    *Metrics
}

func (mw instrumentingMiddleware) IndexChunk(ctx context.Context, c events.ChunkEmbedded) (res IndexResult, err error) {
	defer func(begin time.Time) { mw.m.calls.Observe("index_chunk", res.Status, err, begin) }(time.Now())
	return mw.next.IndexChunk(ctx, c)
}

// IndexChunks implements BatchIndexer: each chunk counts as one
// index_chunk call, timed by its batch.
func (mw instrumentingMiddleware) IndexChunks(ctx context.Context, chunks []ContextChunk) (results []IndexResult, errs []error, err error) {
	defer func(begin time.Time) {
		for i := range chunks {
			if err != nil {
				mw.m.calls.Observe("index_chunk", "", err, begin)
				continue
			}
			mw.m.calls.Observe("index_chunk", results[i].Status, errs[i], begin)
		}
	}(time.Now())
	return IndexChunks(ctx, mw.next, chunks)
}

func (mw instrumentingMiddleware) AcceptDocument(ctx context.Context, d events.DocumentAccepted) (res IndexResult, err error) {
	defer func(begin time.Time) { mw.m.calls.Observe("accept_document", res.Status, err, begin) }(time.Now())
	return mw.next.AcceptDocument(ctx, d)
}

func (mw instrumentingMiddleware) DeleteDocument(ctx context.Context, d events.DocumentDeleted) (err error) {
	defer func(begin time.Time) { mw.m.calls.Observe("delete_document", "deleted", err, begin) }(time.Now())
	return mw.next.DeleteDocument(ctx, d)
}

func (mw instrumentingMiddleware) Retrieve(ctx context.Context, q events.QueryEmbedded) (res events.QueryRetrieved, err error) {
	defer func(begin time.Time) {
		mw.m.calls.Observe("retrieve", "ok", err, begin)
		if err == nil {
			mw.m.results.Observe(float64(len(res.Results)))
		}
	}(time.Now())
	return mw.next.Retrieve(ctx, q)
}
