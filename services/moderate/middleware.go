package moderate

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tributary-rag/tributary/pkg/events"
	"github.com/tributary-rag/tributary/pkg/instrument"
)

// Middleware decorates a Service.
type Middleware func(Service) Service

// LoggingMiddleware logs every rejected question and every redacted or
// withheld answer at info (debug for the rest) with request id, tenant,
// outcome and rule ids, and failures at error (warn for invalid events).
// It never logs questions, answers or matched personal data.
func LoggingMiddleware(logger *slog.Logger) Middleware {
	return func(next Service) Service { return loggingMiddleware{next: next, logger: logger} }
}

type loggingMiddleware struct {
	next   Service
	logger *slog.Logger
}

func (mw loggingMiddleware) ModerateQuery(ctx context.Context, q events.Query) (out []Emission, err error) {
	defer func(begin time.Time) { mw.log(ctx, "moderate query", q.RequestID, q.TenantID, out, err, begin) }(time.Now())
	return mw.next.ModerateQuery(ctx, q)
}

func (mw loggingMiddleware) ModerateAnswer(ctx context.Context, ev AnswerEvent) (out []Emission, err error) {
	defer func(begin time.Time) { mw.log(ctx, "moderate answer", ev.RequestID, ev.TenantID, out, err, begin) }(time.Now())
	return mw.next.ModerateAnswer(ctx, ev)
}

func (mw loggingMiddleware) ScreenContext(ctx context.Context, q events.QueryRetrieved) (out []Emission, err error) {
	defer func(begin time.Time) { mw.log(ctx, "screen context", q.RequestID, q.TenantID, out, err, begin) }(time.Now())
	return mw.next.ScreenContext(ctx, q)
}

func (mw loggingMiddleware) log(ctx context.Context, msg, requestID, tenant string, out []Emission, err error, begin time.Time) {
	level := slog.LevelDebug
	attrs := []any{"request_id", requestID, "tenant", tenant, "emitted", len(out),
		"took_ms", instrument.MillisSince(begin)}
	for _, em := range out {
		a, ok := em.Payload.(*events.AuditEvent)
		if !ok {
			continue
		}
		attrs = append(attrs, "outcome", a.Outcome, "reason", a.Reason, "rules", a.Details["rules"])
		if a.Outcome == "deny" || a.Reason == "redacted" {
			level = slog.LevelInfo
		}
	}
	instrument.Log(ctx, mw.logger, level, msg, err, failure, attrs...)
}

// failure logs invalid events at warn and other failures at error.
func failure(err error) (slog.Level, []any) {
	if errors.Is(err, ErrInvalid) {
		return slog.LevelWarn, nil
	}
	return slog.LevelError, nil
}

// Metrics are the service's Prometheus instruments.
type Metrics struct {
	decisions *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	errors    *prometheus.CounterVec
}

// NewMetrics creates the service's instruments and registers them with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "tributary", Subsystem: "moderate", Name: "decisions_total",
			Help: "Policy decisions by stage (input, output), outcome (allow, deny) and reason.",
		}, []string{"stage", "outcome", "reason"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "tributary", Subsystem: "moderate", Name: "handle_seconds",
			Help:    "Time to moderate one question or one answer event, by stage.",
			Buckets: prometheus.ExponentialBuckets(0.00005, 2, 16),
		}, []string{"stage"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "tributary", Subsystem: "moderate", Name: "errors_total",
			Help: "Failed moderations by stage and kind (invalid, policy).",
		}, []string{"stage", "kind"}),
	}
	if err := instrument.Register(reg, m.decisions, m.duration, m.errors); err != nil {
		return nil, err
	}
	return m, nil
}

// InstrumentingMiddleware records decisions, handling time and failures.
func InstrumentingMiddleware(m *Metrics) Middleware {
	return func(next Service) Service { return instrumentingMiddleware{next: next, m: m} }
}

type instrumentingMiddleware struct {
	next Service
	m    *Metrics
}

func (mw instrumentingMiddleware) ModerateQuery(ctx context.Context, q events.Query) ([]Emission, error) {
	begin := time.Now()
	out, err := mw.next.ModerateQuery(ctx, q)
	mw.record("input", out, err, begin)
	return out, err
}

func (mw instrumentingMiddleware) ModerateAnswer(ctx context.Context, ev AnswerEvent) ([]Emission, error) {
	begin := time.Now()
	out, err := mw.next.ModerateAnswer(ctx, ev)
	mw.record("output", out, err, begin)
	return out, err
}

func (mw instrumentingMiddleware) ScreenContext(ctx context.Context, q events.QueryRetrieved) ([]Emission, error) {
	begin := time.Now()
	out, err := mw.next.ScreenContext(ctx, q)
	mw.record("context", out, err, begin)
	return out, err
}

func (mw instrumentingMiddleware) record(stage string, out []Emission, err error, begin time.Time) {
	mw.m.duration.WithLabelValues(stage).Observe(time.Since(begin).Seconds())
	if err != nil {
		kind := "policy"
		if errors.Is(err, ErrInvalid) {
			kind = "invalid"
		}
		mw.m.errors.WithLabelValues(stage, kind).Inc()
		return
	}
	for _, em := range out {
		if a, ok := em.Payload.(*events.AuditEvent); ok {
			mw.m.decisions.WithLabelValues(stage, a.Outcome, a.Reason).Inc()
		}
	}
}
