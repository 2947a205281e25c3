package daemon

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tributary-rag/tributary/pkg/kafkatransport"
	"github.com/tributary-rag/tributary/pkg/tracecontext"
)

// NewLogger returns a JSON logger at level that adds "service" to every
// record. Log with stable keys (document_id, request_id, topic) and never
// log secrets.
func NewLogger(w io.Writer, level slog.Level, service string) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level})).With("service", service)
}

// NewRegistry returns a Prometheus registry with the Go and process
// collectors.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// NewHTTPServer returns the server of a service's handler on addr. It
// bounds the request header (ReadHeaderTimeout, against clients that open
// connections and never finish a request) and idle keep-alive connections,
// but sets no ReadTimeout or WriteTimeout: uploads on slow links, audit
// exports and WebSocket connections rightly last as long as they need.
func NewHTTPServer(addr string, handler http.Handler) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
}

// Check is one readiness check; nil means ready.
type Check struct {
	Name string
	Run  func(ctx context.Context) error
}

// KafkaCheck is ready when a broker answers and every topic exists.
func KafkaCheck(brokers []string, sec kafkatransport.Security, topics ...string) Check {
	return Check{Name: "kafka", Run: func(ctx context.Context) error {
		return kafkatransport.CheckTopics(ctx, brokers, sec, topics...)
	}}
}

// CheckTimeout bounds each readiness check.
const CheckTimeout = 3 * time.Second

// NewHTTPHandler serves GET /healthz (the process is up), GET /readyz (every
// check passes: 200, else 503 with each failure), GET /metrics from
// gatherer, and everything else from app (which may be nil). Readiness
// results are JSON: {"status":"ready"} or {"status":"not ready",
// "checks":{"kafka":"…"}}.
func NewHTTPHandler(app http.Handler, gatherer prometheus.Gatherer, checks ...Check) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		failures := runChecks(r.Context(), checks)
		if len(failures) > 0 {
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "not ready", "checks": failures})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	if gatherer != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	}
	if app != nil {
		mux.Handle("/", Trace(app))
	}
	return mux
}

// Trace continues the caller's trace: it parses the request's traceparent
// header (or starts a new trace when it is missing or malformed), puts a
// child span in the request context, where events.Marshal finds it, and
// returns that span's traceparent in the response header. NewHTTPHandler
// applies it to the service's routes.
func Trace(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tp, err := tracecontext.Parse(r.Header.Get(tracecontext.Header))
		if err != nil {
			tp = tracecontext.New()
		} else {
			tp = tp.Child()
		}
		w.Header().Set(tracecontext.Header, tp.String())
		next.ServeHTTP(w, r.WithContext(tracecontext.WithContext(r.Context(), tp)))
	})
}

func runChecks(ctx context.Context, checks []Check) map[string]string {
	var mu sync.Mutex
	failures := map[string]string{}
	var wg sync.WaitGroup
	for _, c := range checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, CheckTimeout)
			defer cancel()
			if err := c.Run(cctx); err != nil {
				mu.Lock()
				failures[c.Name] = err.Error()
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return failures
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
