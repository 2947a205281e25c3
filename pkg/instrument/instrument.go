// Package instrument provides what the services' logging and instrumenting
// middlewares share: registering a service's collectors, counting and
// timing calls by method (or kind) and outcome, and logging a finished call
// with its duration and error. The middlewares themselves stay in each
// service, since each wraps its own Service interface.
package instrument

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Register registers every collector with reg and returns the first error,
// unwrapped, so that callers can still test for
// prometheus.AlreadyRegisteredError.
func Register(reg prometheus.Registerer, cs ...prometheus.Collector) error {
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// Calls counts a service's calls by one label (such as method) and
// outcome, and times them by that label. It is a prometheus.Collector of
// both metrics, and safe for concurrent use.
type Calls struct {
	total        *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	errorOutcome func(error) string
}

// NewCalls returns the counter described by total, with the labels label
// and "outcome", and the histogram described by duration, with the label
// label. errorOutcome names the outcome of a failed call; nil names it
// "error".
func NewCalls(label string, total prometheus.CounterOpts, duration prometheus.HistogramOpts, errorOutcome func(error) string) *Calls {
	if errorOutcome == nil {
		errorOutcome = func(error) string { return "error" }
	}
	return &Calls{
		total:        prometheus.NewCounterVec(total, []string{label, "outcome"}),
		duration:     prometheus.NewHistogramVec(duration, []string{label}),
		errorOutcome: errorOutcome,
	}
}

// Observe counts one call labelled value with outcome, or with
// errorOutcome(err) when err is not nil, and observes the seconds since
// begin.
func (c *Calls) Observe(value, outcome string, err error, begin time.Time) {
	if err != nil {
		outcome = c.errorOutcome(err)
	}
	c.total.WithLabelValues(value, outcome).Inc()
	c.duration.WithLabelValues(value).Observe(time.Since(begin).Seconds())
}

// Describe implements prometheus.Collector.
func (c *Calls) Describe(ch chan<- *prometheus.Desc) {
	c.total.Describe(ch)
	c.duration.Describe(ch)
}

// Collect implements prometheus.Collector.
func (c *Calls) Collect(ch chan<- prometheus.Metric) {
	c.total.Collect(ch)
	c.duration.Collect(ch)
}

// MillisSince returns the milliseconds since begin, to the microsecond:
// the value the services log as "took_ms".
func MillisSince(begin time.Time) float64 {
	return float64(time.Since(begin).Microseconds()) / 1000
}

// Failure returns the level to log a call that failed with err at, and the
// attributes to log before its "error".
type Failure func(err error) (slog.Level, []any)

// At logs every failure at level, with no more attributes.
func At(level slog.Level) Failure {
	return func(error) (slog.Level, []any) { return level, nil }
}

// StatusLevel is the level of a failure answered with an HTTP status:
// warn for the caller's errors (below 500), error for the service's own.
func StatusLevel(status int) slog.Level {
	if status >= 500 {
		return slog.LevelError
	}
	return slog.LevelWarn
}

// Log logs a finished call as msg with attrs: at level when err is nil;
// otherwise at the level failed returns for err, with failed's attributes
// and "error" appended.
func Log(ctx context.Context, logger *slog.Logger, level slog.Level, msg string, err error, failed Failure, attrs ...any) {
	if err != nil {
		var extra []any
		level, extra = failed(err)
		attrs = append(append(attrs, extra...), "error", err.Error())
	}
	logger.Log(ctx, level, msg, attrs...)
}
