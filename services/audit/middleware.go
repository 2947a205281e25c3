package audit

import (
	"context"
	"iter"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/tributary-rag/tributary/pkg/instrument"
)

// Middleware decorates a Service.
type Middleware func(Service) Service

// LoggingMiddleware logs every export (who, which filter, outcome) and
// every failed recording. It never logs record contents or keys.
func LoggingMiddleware(logger *slog.Logger) Middleware {
	return func(next Service) Service { return loggingMiddleware{next: next, logger: logger} }
}

type loggingMiddleware struct {
	next   Service
	logger *slog.Logger
}

func (mw loggingMiddleware) Record(ctx context.Context, msgs []kafka.Message) (n int, err error) {
	defer func(begin time.Time) {
		instrument.Log(ctx, mw.logger, slog.LevelDebug, "record", err, instrument.At(slog.LevelError),
			"messages", len(msgs), "appended", n, "took_ms", instrument.MillisSince(begin))
	}(time.Now())
	return mw.next.Record(ctx, msgs)
}

func (mw loggingMiddleware) Export(ctx context.Context, p Principal, f Filter) (recs iter.Seq2[Record, error], err error) {
	defer func() {
		attrs := []any{"principal", p.Name, "tenant", p.Tenant, "filter_tenant", f.Tenant, "types", f.Types,
			"since", f.Since, "until", f.Until}
		if err != nil {
			status, code := HTTPStatus(err)
			mw.logger.Log(ctx, instrument.StatusLevel(status), "export refused", append(attrs, "code", code, "error", err.Error())...)
			return
		}
		mw.logger.InfoContext(ctx, "export", attrs...)
	}()
	return mw.next.Export(ctx, p, f)
}

// Metrics are the service's Prometheus metrics.
type Metrics struct {
	Records       prometheus.Counter
	Duplicates    prometheus.Counter
	RecordSeconds prometheus.Histogram
	BatchSize     prometheus.Histogram
	Exports       *prometheus.CounterVec
}

// NewMetrics registers the service's metrics with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		Records: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tributary_audit_records_total", Help: "Records appended to the audit log."}),
		Duplicates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tributary_audit_redeliveries_skipped_total", Help: "Redelivered messages skipped as already recorded."}),
		RecordSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "tributary_audit_record_seconds", Help: "Time to append and sync one batch.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}),
		BatchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "tributary_audit_batch_messages", Help: "Messages per synced batch.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 10)}),
		Exports: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tributary_audit_exports_total", Help: "Export requests by outcome."}, []string{"outcome"}),
	}
	if err := instrument.Register(reg, m.Records, m.Duplicates, m.RecordSeconds, m.BatchSize, m.Exports); err != nil {
		return nil, err
	}
	return m, nil
}

// InstrumentingMiddleware records metrics of every call.
func InstrumentingMiddleware(m *Metrics) Middleware {
	return func(next Service) Service { return instrumentingMiddleware{next: next, m: m} }
}

type instrumentingMiddleware struct {
	next Service
	m    *Metrics
}

func (mw instrumentingMiddleware) Record(ctx context.Context, msgs []kafka.Message) (int, error) {
	begin := time.Now()
	n, err := mw.next.Record(ctx, msgs)
	if err == nil {
		mw.m.RecordSeconds.Observe(time.Since(begin).Seconds())
		mw.m.BatchSize.Observe(float64(len(msgs)))
		mw.m.Duplicates.Add(float64(len(msgs) - n))
	}
	mw.m.Records.Add(float64(n))
	return n, err
}

func (mw instrumentingMiddleware) Export(ctx context.Context, p Principal, f Filter) (iter.Seq2[Record, error], error) {
	recs, err := mw.next.Export(ctx, p, f)
	outcome := "ok"
	if err != nil {
		_, outcome = HTTPStatus(err)
	}
	mw.m.Exports.WithLabelValues(outcome).Inc()
	return recs, err
}
