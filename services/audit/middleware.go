package audit

import (
	"context"
	"errors"
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

func (mw loggingMiddleware) Export(ctx context.Context, p Principal, f Filter) (recs iter.Seq2[Entry, error], err error) {
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

func (mw loggingMiddleware) Admin(ctx context.Context, p Principal, req AdminRequest) (res AdminResult, err error) {
	defer func() {
		attrs := []any{"principal", p.Name, "tenant", p.Tenant, "action", req.Action, "target_tenant", req.Tenant}
		if err != nil {
			mw.logger.ErrorContext(ctx, "audit admin action failed", append(attrs, "error", err.Error())...)
			return
		}
		mw.logger.InfoContext(ctx, "audit admin action", append(attrs, "keys", len(res.Keys), "rewrapped", res.Rewrapped)...)
	}()
	return mw.next.Admin(ctx, p, req)
}

// Metrics are the service's Prometheus metrics.
type Metrics struct {
	Records       prometheus.Counter
	Duplicates    prometheus.Counter
	RecordSeconds prometheus.Histogram
	BatchSize     prometheus.Histogram
	Exports       *prometheus.CounterVec
	// KeyErrors counts batches that waited because no data key could be
	// made (Vault unreachable, sealed, refusing); KeysUp is 0 while that
	// lasts.
	KeyErrors prometheus.Counter
	KeysUp    prometheus.Gauge
	Admin     *prometheus.CounterVec
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
		KeyErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tributary_audit_key_errors_total", Help: "Record attempts that failed because the key provider (Vault) was unavailable; the batch is retried, not committed."}),
		KeysUp: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tributary_audit_keys_up", Help: "1 while the key provider answers, 0 while records wait for it."}),
		Admin: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tributary_audit_admin_actions_total", Help: "Key operations (rotate, rewrap, shred) by action and outcome."}, []string{"action", "outcome"}),
	}
	m.KeysUp.Set(1)
	if err := instrument.Register(reg, m.Records, m.Duplicates, m.RecordSeconds, m.BatchSize, m.Exports, m.KeyErrors, m.KeysUp, m.Admin); err != nil {
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
	if errors.Is(err, ErrKeysUnavailable) {
		mw.m.KeyErrors.Inc()
		mw.m.KeysUp.Set(0)
	} else if err == nil {
		mw.m.KeysUp.Set(1)
	}
	if err == nil {
		mw.m.RecordSeconds.Observe(time.Since(begin).Seconds())
		mw.m.BatchSize.Observe(float64(len(msgs)))
		mw.m.Duplicates.Add(float64(len(msgs) - n))
	}
	mw.m.Records.Add(float64(n))
	return n, err
}

func (mw instrumentingMiddleware) Export(ctx context.Context, p Principal, f Filter) (iter.Seq2[Entry, error], error) {
	recs, err := mw.next.Export(ctx, p, f)
	outcome := "ok"
	if err != nil {
		_, outcome = HTTPStatus(err)
	}
	mw.m.Exports.WithLabelValues(outcome).Inc()
	return recs, err
}

func (mw instrumentingMiddleware) Admin(ctx context.Context, p Principal, req AdminRequest) (AdminResult, error) {
	res, err := mw.next.Admin(ctx, p, req)
	outcome := "ok"
	if err != nil {
		_, outcome = HTTPStatus(err)
	}
	mw.m.Admin.WithLabelValues(req.Action, outcome).Inc()
	return res, err
}
