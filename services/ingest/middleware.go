package ingest

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
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
		"took_ms", float64(time.Since(begin).Microseconds())/1000,
	)
	if err != nil {
		status, code := HTTPStatus(err)
		level = slog.LevelWarn
		if status >= 500 {
			level = slog.LevelError
		}
		attrs = append(attrs, "code", code, "error", err.Error())
	}
	mw.logger.Log(ctx, level, method, attrs...)
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
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	bytes    prometheus.Counter
}

// NewMetrics creates the service's instruments and registers them with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "tributary", Subsystem: "ingest", Name: "requests_total",
			Help: "Service calls by method and outcome (accepted, unchanged, deleted, found; for mark_indexed indexed, duplicate, stale, unknown; or an error code).",
		}, []string{"method", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "tributary", Subsystem: "ingest", Name: "request_duration_seconds",
			Help:    "Duration of service calls by method.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}, []string{"method"}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "tributary", Subsystem: "ingest", Name: "document_bytes_total",
			Help: "Raw bytes of accepted document versions.",
		}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.bytes} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
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

func (mw instrumentingMiddleware) observe(method, outcome string, err error, begin time.Time) {
	if err != nil {
		_, outcome = HTTPStatus(err)
	}
	mw.m.requests.WithLabelValues(method, outcome).Inc()
	mw.m.duration.WithLabelValues(method).Observe(time.Since(begin).Seconds())
}

func (mw instrumentingMiddleware) Ingest(ctx context.Context, p Principal, d Document) (res Result, err error) {
	defer func(begin time.Time) {
		mw.observe("ingest", res.Status, err, begin)
	}(time.Now())
	res, err = mw.next.Ingest(ctx, p, d)
	if err == nil && res.Status == ResultAccepted {
		mw.m.bytes.Add(float64(len(d.Content)))
	}
	return res, err
}

func (mw instrumentingMiddleware) Get(ctx context.Context, p Principal, id string) (info Info, err error) {
	defer func(begin time.Time) {
		mw.observe("get", "found", err, begin)
	}(time.Now())
	return mw.next.Get(ctx, p, id)
}

func (mw instrumentingMiddleware) Delete(ctx context.Context, p Principal, id string) (res Result, err error) {
	defer func(begin time.Time) {
		mw.observe("delete", res.Status, err, begin)
	}(time.Now())
	return mw.next.Delete(ctx, p, id)
}

func (mw instrumentingMiddleware) MarkIndexed(ctx context.Context, tenant, id string, version int) (res Result, err error) {
	defer func(begin time.Time) {
		mw.observe("mark_indexed", res.Status, err, begin)
	}(time.Now())
	return mw.next.MarkIndexed(ctx, tenant, id, version)
}
