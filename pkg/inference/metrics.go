package inference

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tributary-rag/tributary/pkg/llm"
)

// metrics are the server's Prometheus series, all prefixed
// tributary_inference_.
type metrics struct {
	requests         *prometheus.CounterVec
	inFlight         prometheus.Gauge
	generations      *prometheus.CounterVec
	ttft             prometheus.Histogram
	duration         prometheus.Histogram
	decodeRate       prometheus.Histogram
	promptTokens     prometheus.Counter
	completionTokens prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, engine Engine) (*metrics, error) {
	const ns = "tributary_inference"
	latency := []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120}
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "http_requests_total",
			Help: "HTTP requests by route and status code.",
		}, []string{"route", "code"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Name: "requests_in_flight",
			Help: "Generation requests being served (queued or generating).",
		}),
		generations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "generations_total",
			Help: "Finished generation requests by finish reason (stop, length, cancelled, rejected_queue_full, rejected_invalid, error).",
		}, []string{"finish_reason"}),
		ttft: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: ns, Name: "time_to_first_token_seconds",
			Help:    "Time from the request's arrival at the engine to its first generated token (queueing and prefill).",
			Buckets: latency,
		}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: ns, Name: "generation_duration_seconds",
			Help:    "Time from the request's arrival at the engine to its end.",
			Buckets: latency,
		}),
		decodeRate: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: ns, Name: "decode_tokens_per_second",
			Help:    "Per request: generated tokens after the first, over the time after the first token.",
			Buckets: []float64{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000},
		}),
		promptTokens: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Name: "prompt_tokens_total",
			Help: "Prompt tokens of finished requests.",
		}),
		completionTokens: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Name: "completion_tokens_total",
			Help: "Generated tokens of finished requests; rate() gives the server's tokens per second.",
		}),
	}
	cs := []prometheus.Collector{m.requests, m.inFlight, m.generations, m.ttft, m.duration, m.decodeRate, m.promptTokens, m.completionTokens}
	if engine != nil { // an embeddings-only server has none
		cs = append(cs,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Namespace: ns, Name: "queue_depth",
				Help: "Requests waiting for a batch slot.",
			}, func() float64 { return float64(engine.Stats().Queued) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Namespace: ns, Name: "active_sequences",
				Help: "Sequences in the running batch.",
			}, func() float64 { return float64(engine.Stats().Active) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Namespace: ns, Name: "batch_size",
				Help: "Sequences in the engine's most recent forward step.",
			}, func() float64 { return float64(engine.Stats().LastBatch) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Namespace: ns, Name: "engine_steps_total",
				Help: "Forward steps the engine ran.",
			}, func() float64 { return float64(engine.Stats().Steps) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Namespace: ns, Name: "engine_tokens_total",
				Help: "Tokens (prompt and generated) the engine's forward steps processed; over engine_steps_total it is the mean tokens per step.",
			}, func() float64 { return float64(engine.Stats().Tokens) }),
		)
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register inference metrics: %w", err)
		}
	}
	return m, nil
}

// observe records one finished (or refused) generation.
func (m *metrics) observe(res llm.Result, reason string) {
	m.generations.WithLabelValues(reason).Inc()
	if reason == "rejected_queue_full" || reason == "rejected_invalid" {
		return
	}
	m.promptTokens.Add(float64(res.PromptTokens))
	m.completionTokens.Add(float64(res.CompletionTokens))
	m.duration.Observe(res.Duration.Seconds())
	if res.CompletionTokens > 0 && res.TimeToFirstToken > 0 {
		m.ttft.Observe(res.TimeToFirstToken.Seconds())
	}
	if decode := res.Duration - res.TimeToFirstToken; res.CompletionTokens > 1 && decode > time.Microsecond {
		m.decodeRate.Observe(float64(res.CompletionTokens-1) / decode.Seconds())
	}
}
