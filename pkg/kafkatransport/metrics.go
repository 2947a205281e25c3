package kafkatransport

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the Prometheus metrics of subscribers and publishers. One
// Metrics can serve every subscriber and publisher of a process; pass it
// with SubscriberMetrics and PublisherMetrics.
type Metrics struct {
	Consumed       *prometheus.CounterVec   // topic, group
	Produced       *prometheus.CounterVec   // topic
	ProduceErrors  *prometheus.CounterVec   // topic
	Retried        *prometheus.CounterVec   // topic, group
	DeadLettered   *prometheus.CounterVec   // topic, group, reason
	Committed      *prometheus.CounterVec   // topic, group
	HandlerSeconds *prometheus.HistogramVec // topic, group, outcome
	Lag            *prometheus.GaugeVec     // topic, group, partition
}

// NewMetrics creates the metrics and registers them with reg (when not nil).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := newMetrics()
	if reg != nil {
		for _, c := range []prometheus.Collector{m.Consumed, m.Produced, m.ProduceErrors, m.Retried, m.DeadLettered, m.Committed, m.HandlerSeconds, m.Lag} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("register kafka metrics: %w", err)
			}
		}
	}
	return m, nil
}

// newMetrics creates the metrics unregistered. Subscribers and publishers
// given no Metrics record into such a set, which nothing gathers, so they
// need no nil checks.
func newMetrics() *Metrics {
	return &Metrics{
		Consumed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tributary_kafka_consumed_total",
			Help: "Messages fetched by subscribers.",
		}, []string{"topic", "group"}),
		Produced: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tributary_kafka_produced_total",
			Help: "Messages acknowledged by the brokers.",
		}, []string{"topic"}),
		ProduceErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tributary_kafka_produce_errors_total",
			Help: "Messages whose write failed.",
		}, []string{"topic"}),
		Retried: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tributary_kafka_retried_total",
			Help: "Handler attempts that failed and were retried.",
		}, []string{"topic", "group"}),
		DeadLettered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tributary_kafka_dead_lettered_total",
			Help: "Messages written to a dead-letter topic, by reason (permanent or exhausted).",
		}, []string{"topic", "group", "reason"}),
		Committed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tributary_kafka_committed_total",
			Help: "Messages whose offsets were committed.",
		}, []string{"topic", "group"}),
		HandlerSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tributary_kafka_handler_seconds",
			Help:    "Time from fetch to done (decode, endpoint, produce, retries) per message.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"topic", "group", "outcome"}),
		Lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tributary_kafka_consumer_lag",
			Help: "Messages behind the partition's high-water mark at the last fetch.",
		}, []string{"topic", "group", "partition"}),
	}
}
