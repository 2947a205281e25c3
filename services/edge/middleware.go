package edge

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tributary-rag/tributary/pkg/instrument"
)

// Middleware decorates a Service.
type Middleware func(Service) Service

// LoggingMiddleware logs every ask (request id, tenant, key name, outcome,
// time to publish) and every reply that was not delivered (at debug: on a
// busy cluster most replies belong to other replicas). It never logs the
// question or the answer.
func LoggingMiddleware(logger *slog.Logger) Middleware {
	return func(next Service) Service { return loggingMiddleware{next: next, logger: logger} }
}

type loggingMiddleware struct {
	next   Service
	logger *slog.Logger
}

func (mw loggingMiddleware) Ask(ctx context.Context, q Question, sink Sink) (requestID string, err error) {
	defer func(begin time.Time) {
		instrument.Log(ctx, mw.logger, slog.LevelInfo, "ask", err, instrument.At(slog.LevelWarn),
			"request_id", requestID, "id", q.ID, "tenant", q.Principal.Tenant, "principal", q.Principal.Name,
			"conversation_id", q.ConversationID, "top_k", q.TopK, "took_ms", instrument.MillisSince(begin))
	}(time.Now())
	return mw.next.Ask(ctx, q, sink)
}

func (mw loggingMiddleware) Cancel(ctx context.Context, requestID string) (inFlight bool) {
	defer func() { mw.logger.InfoContext(ctx, "cancel", "request_id", requestID, "in_flight", inFlight) }()
	return mw.next.Cancel(ctx, requestID)
}

func (mw loggingMiddleware) Abandon(ctx context.Context, requestID string) {
	mw.logger.DebugContext(ctx, "abandon", "request_id", requestID)
	mw.next.Abandon(ctx, requestID)
}

func (mw loggingMiddleware) Deliver(ctx context.Context, r Reply) (outcome string, err error) {
	defer func() {
		switch {
		case err != nil:
			mw.logger.ErrorContext(ctx, "deliver", "request_id", r.RequestID, "kind", r.Kind, "error", err.Error())
		case outcome == TenantMismatch:
			mw.logger.WarnContext(ctx, "deliver: tenant mismatch, dropped", "request_id", r.RequestID, "kind", r.Kind, "tenant", r.TenantID)
		case outcome != Delivered:
			mw.logger.DebugContext(ctx, "deliver", "request_id", r.RequestID, "kind", r.Kind, "seq", r.Seq, "outcome", outcome)
		}
	}()
	return mw.next.Deliver(ctx, r)
}

// Metrics are the edge's Prometheus instruments. *Metrics is the
// service's Observer and is safe for concurrent use; a nil *Metrics records
// nothing.
type Metrics struct {
	connections  prometheus.Gauge
	disconnects  *prometheus.CounterVec
	authFailures prometheus.Counter
	asks         *prometheus.CounterVec
	askLatency   prometheus.Histogram
	inFlight     prometheus.Gauge
	firstToken   prometheus.Histogram
	replies      *prometheus.CounterVec
	done         *prometheus.CounterVec
}

// NewMetrics creates the edge's instruments and registers them with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "tributary", Subsystem: "edge", Name: "connections",
			Help: "Open WebSocket connections.",
		}),
		disconnects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "tributary", Subsystem: "edge", Name: "disconnects_total",
			Help: "Closed WebSocket connections by reason (client, read_error, too_large, write_error, slow_consumer, shutdown).",
		}, []string{"reason"}),
		authFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "tributary", Subsystem: "edge", Name: "auth_failures_total",
			Help: "Upgrade requests refused with 401.",
		}),
		asks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "tributary", Subsystem: "edge", Name: "asks_total",
			Help: "Client asks by outcome (accepted, invalid, duplicate_id, too_many_requests, rate_limited, unavailable).",
		}, []string{"outcome"}),
		askLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "tributary", Subsystem: "edge", Name: "ask_publish_seconds",
			Help:    "From an ask to its question published (the accepted reply).",
			Buckets: prometheus.ExponentialBuckets(0.0002, 2, 16),
		}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "tributary", Subsystem: "edge", Name: "requests_in_flight",
			Help: "Requests waiting for or streaming their answer.",
		}),
		firstToken: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "tributary", Subsystem: "edge", Name: "time_to_first_token_seconds",
			Help:    "From an ask to its first token sent to the client.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 18),
		}),
		replies: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "tributary", Subsystem: "edge", Name: "replies_total",
			Help: "Answer events consumed, by kind and outcome (delivered, duplicate, unknown_request, finished, tenant_mismatch, out_of_window).",
		}, []string{"kind", "outcome"}),
		done: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "tributary", Subsystem: "edge", Name: "requests_done_total",
			Help: "Finished requests by finish reason (and timeout, abandoned).",
		}, []string{"reason"}),
	}
	if err := instrument.Register(reg, m.connections, m.disconnects, m.authFailures, m.asks, m.askLatency, m.inFlight, m.firstToken, m.replies, m.done); err != nil {
		return nil, err
	}
	return m, nil
}

// FirstToken implements Observer.
func (m *Metrics) FirstToken(d time.Duration) {
	if m != nil {
		m.firstToken.Observe(d.Seconds())
	}
}

// InFlight implements Observer.
func (m *Metrics) InFlight(delta int) {
	if m != nil {
		m.inFlight.Add(float64(delta))
	}
}

// Done implements Observer.
func (m *Metrics) Done(reason string) {
	if m != nil {
		m.done.WithLabelValues(reason).Inc()
	}
}

func (m *Metrics) connected(delta int) {
	if m != nil {
		m.connections.Add(float64(delta))
	}
}

func (m *Metrics) disconnected(reason string) {
	if m != nil {
		m.disconnects.WithLabelValues(reason).Inc()
	}
}

func (m *Metrics) authFailed() {
	if m != nil {
		m.authFailures.Inc()
	}
}

func (m *Metrics) asked(outcome string) {
	if m != nil {
		m.asks.WithLabelValues(outcome).Inc()
	}
}

// InstrumentingMiddleware records asks (outcome, time to publish) and the
// outcome of every consumed reply.
func InstrumentingMiddleware(m *Metrics) Middleware {
	return func(next Service) Service {
		if m == nil {
			return next
		}
		return instrumentingMiddleware{next: next, m: m}
	}
}

type instrumentingMiddleware struct {
	next Service
	m    *Metrics
}

func (mw instrumentingMiddleware) Ask(ctx context.Context, q Question, sink Sink) (string, error) {
	begin := time.Now()
	id, err := mw.next.Ask(ctx, q, sink)
	switch {
	case err == nil:
		mw.m.asked("accepted")
		mw.m.askLatency.Observe(time.Since(begin).Seconds())
	case errors.Is(err, ErrUnavailable):
		mw.m.asked("unavailable")
	default:
		mw.m.asked("error")
	}
	return id, err
}

func (mw instrumentingMiddleware) Cancel(ctx context.Context, requestID string) bool {
	return mw.next.Cancel(ctx, requestID)
}

func (mw instrumentingMiddleware) Abandon(ctx context.Context, requestID string) {
	mw.next.Abandon(ctx, requestID)
}

func (mw instrumentingMiddleware) Deliver(ctx context.Context, r Reply) (string, error) {
	outcome, err := mw.next.Deliver(ctx, r)
	label := outcome
	if err != nil {
		label = "error"
	}
	mw.m.replies.WithLabelValues(r.Kind, label).Inc()
	return outcome, err
}
