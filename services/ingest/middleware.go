package ingest

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tributary-rag/tributary/pkg/instrument"
)

// Middleware decorates a Service.
type Middleware func(Service) Service

// LoggingMiddleware logs every call with its tenant, caller, document id,
// outcome and duration: at info level when it succeeds, warn when the
// caller was refused, error when the service failed. It never logs
// content or keys.
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
	mw.logAt(ctx, slog.LevelInfo, method, err, begin, attrs...)
}

// logAt logs a call at level when it succeeded, at warn or error when it
// failed.
func (mw loggingMiddleware) logAt(ctx context.Context, level slog.Level, method string, err error, begin time.Time, attrs ...any) {
	attrs = append(attrs,
		"method", method,
		"correlation_id", correlationFrom(ctx),
		"took_ms", instrument.MillisSince(begin),
	)
	instrument.Log(ctx, mw.logger, level, method, err, failure, attrs...)
}

// failure logs a refused call at warn and a failed one at error, with its
// error code.
func failure(err error) (slog.Level, []any) {
	status, code := HTTPStatus(err)
	return instrument.StatusLevel(status), []any{"code", code}
}

func (mw loggingMiddleware) Ingest(ctx context.Context, p Principal, d Document) (res Result, err error) {
	defer func(begin time.Time) {
		id := res.DocumentID
		if id == "" {
			id = d.ID
		}
		mw.log(ctx, "ingest", err, begin,
			"tenant", p.Tenant, "principal", p.Name, "document_id", id,
			"version", res.Version, "status", res.Status, "size", len(d.Content))
	}(time.Now())
	return mw.next.Ingest(ctx, p, d)
}

func (mw loggingMiddleware) Get(ctx context.Context, p Principal, id string) (info Info, err error) {
	defer func(begin time.Time) {
		mw.log(ctx, "get", err, begin, "tenant", p.Tenant, "principal", p.Name, "document_id", id)
	}(time.Now())
	return mw.next.Get(ctx, p, id)
}

func (mw loggingMiddleware) List(ctx context.Context, p Principal, q ListQuery) (res ListResult, err error) {
	defer func(begin time.Time) {
		mw.logAt(ctx, slog.LevelDebug, "list", err, begin, "tenant", p.Tenant, "principal", p.Name,
			"source_prefix", q.SourcePrefix, "documents", len(res.Documents))
	}(time.Now())
	return mw.next.List(ctx, p, q)
}

func (mw loggingMiddleware) Delete(ctx context.Context, p Principal, id string) (res Result, err error) {
	defer func(begin time.Time) {
		mw.log(ctx, "delete", err, begin,
			"tenant", p.Tenant, "principal", p.Name, "document_id", id, "version", res.Version)
	}(time.Now())
	return mw.next.Delete(ctx, p, id)
}

// MarkIndexed logs a recorded announcement at info level; duplicates,
// stale and unknown ones (replays, another instance's documents) at debug.
func (mw loggingMiddleware) MarkIndexed(ctx context.Context, tenant, id string, version int) (res Result, err error) {
	defer func(begin time.Time) {
		level := slog.LevelInfo
		if res.Status != ResultIndexed {
			level = slog.LevelDebug
		}
		mw.logAt(ctx, level, "mark_indexed", err, begin,
			"tenant", tenant, "document_id", id, "version", version, "status", res.Status)
	}(time.Now())
	return mw.next.MarkIndexed(ctx, tenant, id, version)
}

// Metrics are the service's Prometheus instruments.
type Metrics struct {
	requests *instrument.Calls
	bytes    prometheus.Counter
}

// NewMetrics creates the service's instruments and registers them with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		requests: instrument.NewCalls("method", prometheus.CounterOpts{
			Namespace: "tributary", Subsystem: "ingest", Name: "requests_total",
			Help: "Service calls by method and outcome (accepted, unchanged, deleted, found; for mark_indexed indexed, duplicate, stale, unknown; or an error code).",
		}, prometheus.HistogramOpts{
			Namespace: "tributary", Subsystem: "ingest", Name: "request_duration_seconds",
			Help:    "Duration of service calls by method.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}, errorCode),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "tributary", Subsystem: "ingest", Name: "document_bytes_total",
			Help: "Raw bytes of accepted document versions.",
		}),
	}
	if err := instrument.Register(reg, m.requests, m.bytes); err != nil {
		return nil, err
	}
	return m, nil
}

// errorCode is the outcome of a failed call: its error code.
func errorCode(err error) string {
	_, code := HTTPStatus(err)
	return code
}

// InstrumentingMiddleware counts calls and their outcomes and observes
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

func (mw instrumentingMiddleware) Ingest(ctx context.Context, p Principal, d Document) (res Result, err error) {
	defer func(begin time.Time) {
		mw.m.requests.Observe("ingest", res.Status, err, begin)
	}(time.Now())
	res, err = mw.next.Ingest(ctx, p, d)
	if err == nil && res.Status == ResultAccepted {
		mw.m.bytes.Add(float64(len(d.Content)))
	}
	return res, err
}

func (mw instrumentingMiddleware) Get(ctx context.Context, p Principal, id string) (info Info, err error) {
	defer func(begin time.Time) {
		mw.m.requests.Observe("get", "found", err, begin)
	}(time.Now())
	return mw.next.Get(ctx, p, id)
}

func (mw instrumentingMiddleware) List(ctx context.Context, p Principal, q ListQuery) (res ListResult, err error) {
	defer func(begin time.Time) {
		mw.m.requests.Observe("list", "listed", err, begin)
	}(time.Now())
	return mw.next.List(ctx, p, q)
}

func (mw instrumentingMiddleware) Delete(ctx context.Context, p Principal, id string) (res Result, err error) {
	defer func(begin time.Time) {
		mw.m.requests.Observe("delete", res.Status, err, begin)
	}(time.Now())
	return mw.next.Delete(ctx, p, id)
}

func (mw instrumentingMiddleware) MarkIndexed(ctx context.Context, tenant, id string, version int) (res Result, err error) {
	defer func(begin time.Time) {
		mw.m.requests.Observe("mark_indexed", res.Status, err, begin)
	}(time.Now())
	return mw.next.MarkIndexed(ctx, tenant, id, version)
}
