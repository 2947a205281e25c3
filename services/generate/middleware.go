package generate

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

// LoggingMiddleware logs every answer with its request id, tenant, mode,
// finish reason, sizes and timings: info when it was answered, warn when
// the backend failed (finish reason "error") or the query was invalid,
// error when its events could not be published. It never logs the
// question, the sources or the answer.
func LoggingMiddleware(logger *slog.Logger) Middleware {
	return func(next Service) Service { return loggingMiddleware{next: next, logger: logger} }
}

type loggingMiddleware struct {
	next   Service
	logger *slog.Logger
}

func (mw loggingMiddleware) Answer(ctx context.Context, q Question) (a Answer, err error) {
	defer func(begin time.Time) {
		level := slog.LevelInfo
		attrs := []any{
			"request_id", q.RequestID, "tenant", q.TenantID, "correlation_id", events.CorrelationID(ctx),
			"chunks", len(q.Chunks), "mode", a.Mode, "model", a.Model, "finish_reason", a.FinishReason,
			"deltas", a.Deltas, "citations", len(a.Citations), "prompt_version", a.PromptVersion, "language", a.Lang,
			"first_token_ms", a.Timings.FirstTokenMs, "took_ms", instrument.MillisSince(begin),
		}
		if a.Error != "" {
			level = slog.LevelWarn
			attrs = append(attrs, "backend_error", a.Error)
		}
		// A failure is an invalid query (warn), an unpublished answer
		// (error), or the caller's cancellation (info), whatever the backend
		// did.
		instrument.Log(ctx, mw.logger, level, "answer", err, func(err error) (slog.Level, []any) {
			switch {
			case ctx.Err() != nil:
				return slog.LevelInfo, nil
			case errors.Is(err, ErrInvalid):
				return slog.LevelWarn, nil
			default:
				return slog.LevelError, nil
			}
		}, attrs...)
	}(time.Now())
	return mw.next.Answer(ctx, q)
}

// Metrics are the service's Prometheus instruments.
type Metrics struct {
	answers    *prometheus.CounterVec
	firstToken *prometheus.HistogramVec
	duration   *prometheus.HistogramVec
	tokens     *prometheus.CounterVec
	citations  prometheus.Histogram
}

// NewMetrics creates the service's instruments and registers them with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		answers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "tributary", Subsystem: "generate", Name: "answers_total",
			Help: "Answers by mode and finish reason; outcome is ok, invalid, publish_error or cancelled.",
		}, []string{"mode", "finish_reason", "outcome"}),
		firstToken: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "tributary", Subsystem: "generate", Name: "time_to_first_token_seconds",
			Help:    "From receiving a query to its first delta, by mode.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 18),
		}, []string{"mode"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "tributary", Subsystem: "generate", Name: "answer_duration_seconds",
			Help:    "From receiving a query to its completed event, by mode.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 18),
		}, []string{"mode"}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "tributary", Subsystem: "generate", Name: "tokens_total",
			Help: "Prompt and completion tokens by mode and kind.",
		}, []string{"mode", "kind"}),
		citations: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "tributary", Subsystem: "generate", Name: "citations_per_answer",
			Help:    "Distinct sources cited by an answer.",
			Buckets: []float64{0, 1, 2, 3, 4, 6, 8},
		}),
	}
	if err := instrument.Register(reg, m.answers, m.firstToken, m.duration, m.tokens, m.citations); err != nil {
		return nil, err
	}
	return m, nil
}

// InstrumentingMiddleware records answers, their timings, tokens and
// citations.
func InstrumentingMiddleware(m *Metrics) Middleware {
	return func(next Service) Service { return instrumentingMiddleware{next: next, m: m} }
}

type instrumentingMiddleware struct {
	next Service
	m    *Metrics
}

func (mw instrumentingMiddleware) Answer(ctx context.Context, q Question) (Answer, error) {
	a, err := mw.next.Answer(ctx, q)
	outcome := "ok"
	switch {
	case err == nil:
	case errors.Is(err, ErrInvalid):
		outcome = "invalid"
	case ctx.Err() != nil:
		outcome = "cancelled"
	default:
		outcome = "publish_error"
	}
	mw.m.answers.WithLabelValues(a.Mode, a.FinishReason, outcome).Inc()
	if err == nil {
		if a.Deltas > 0 {
			mw.m.firstToken.WithLabelValues(a.Mode).Observe(a.Timings.FirstTokenMs / 1000)
		}
		mw.m.duration.WithLabelValues(a.Mode).Observe(a.Timings.TotalMs / 1000)
		mw.m.tokens.WithLabelValues(a.Mode, "prompt").Add(float64(a.Usage.PromptTokens))
		mw.m.tokens.WithLabelValues(a.Mode, "completion").Add(float64(a.Usage.CompletionTokens))
		mw.m.citations.Observe(float64(len(a.Citations)))
	}
	return a, err
}
