package daemon_test

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tributary-rag/tributary/pkg/broker"
	"github.com/tributary-rag/tributary/pkg/daemon"
	"github.com/tributary-rag/tributary/pkg/eventually"
	"github.com/tributary-rag/tributary/pkg/kafkatransport"
	"github.com/tributary-rag/tributary/pkg/tracecontext"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestParseConfig(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	passwordFile := filepath.Join(dir, "kafka-password")
	if err := os.WriteFile(passwordFile, []byte("secret-password\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		need    daemon.Need
		wantErr []string // substrings of the error, nil for success
		check   func(t *testing.T, c daemon.Config)
	}{
		{
			name: "defaults",
			need: daemon.NeedKafka,
			check: func(t *testing.T, c daemon.Config) {
				if strings.Join(c.KafkaBrokers, ",") != "localhost:9092" || c.TopicPrefix != "tributary" ||
					c.HTTPAddr != ":8080" || c.LogLevel != slog.LevelInfo || c.APIKeys == nil || c.APIKeys.Len() != 0 {
					t.Errorf("defaults = %+v", c)
				}
			},
		},
		{
			name: "kafka scram and tls",
			env: map[string]string{
				"TRIBUTARY_KAFKA_SASL_MECHANISM": "scram-sha-512",
				"TRIBUTARY_KAFKA_USERNAME":       "ingest",
				"TRIBUTARY_KAFKA_PASSWORD":       "secret-password",
				"TRIBUTARY_KAFKA_TLS":            "true",
			},
			check: func(t *testing.T, c daemon.Config) {
				if c.KafkaSecurity.SASL == nil || c.KafkaSecurity.SASL.Name() != "SCRAM-SHA-512" || c.KafkaSecurity.TLS == nil {
					t.Errorf("kafka security = %+v", c.KafkaSecurity)
				}
			},
		},
		{
			name: "kafka password from a file",
			env: map[string]string{
				"TRIBUTARY_KAFKA_SASL_MECHANISM": "SCRAM-SHA-256",
				"TRIBUTARY_KAFKA_USERNAME":       "ingest",
				"TRIBUTARY_KAFKA_PASSWORD_FILE":  passwordFile,
			},
			check: func(t *testing.T, c daemon.Config) {
				if c.KafkaSecurity.SASL == nil || c.KafkaSecurity.SASL.Name() != "SCRAM-SHA-256" {
					t.Errorf("kafka security = %+v", c.KafkaSecurity)
				}
			},
		},
		{
			name: "kafka: password and its file",
			env: map[string]string{
				"TRIBUTARY_KAFKA_SASL_MECHANISM": "SCRAM-SHA-256",
				"TRIBUTARY_KAFKA_USERNAME":       "ingest",
				"TRIBUTARY_KAFKA_PASSWORD":       "secret-password",
				"TRIBUTARY_KAFKA_PASSWORD_FILE":  passwordFile,
			},
			wantErr: []string{"TRIBUTARY_KAFKA_PASSWORD_FILE (--kafka-password-file): set either"},
		},
		{
			name:    "kafka: missing password file",
			env:     map[string]string{"TRIBUTARY_KAFKA_PASSWORD_FILE": filepath.Join(dir, "missing")},
			wantErr: []string{"TRIBUTARY_KAFKA_PASSWORD_FILE (--kafka-password-file): open"},
		},
		{
			name:    "kafka: plain without tls",
			env:     map[string]string{"TRIBUTARY_KAFKA_SASL_MECHANISM": "PLAIN", "TRIBUTARY_KAFKA_USERNAME": "edge"},
			wantErr: []string{"TRIBUTARY_KAFKA_SASL_MECHANISM (--kafka-sasl-mechanism): PLAIN needs TLS"},
		},
		{
			name:    "kafka: unknown mechanism, password without mechanism, missing ca",
			args:    []string{"--kafka-sasl-mechanism", "GSSAPI"},
			env:     map[string]string{"TRIBUTARY_KAFKA_TLS_CA": filepath.Join(dir, "missing.pem")},
			wantErr: []string{"unknown sasl mechanism \"GSSAPI\"", "TRIBUTARY_KAFKA_TLS (--kafka-tls): ca file"},
		},
		{
			name:    "kafka: username without mechanism",
			env:     map[string]string{"TRIBUTARY_KAFKA_USERNAME": "edge"},
			wantErr: []string{"TRIBUTARY_KAFKA_SASL_MECHANISM (--kafka-sasl-mechanism): required with a username"},
		},
		{
			name: "environment",
			env: map[string]string{
				"TRIBUTARY_KAFKA_BROKERS": "k1:9092, k2:9093",
				"TRIBUTARY_TOPIC_PREFIX":  "staging",
				"TRIBUTARY_HTTP_ADDR":     "127.0.0.1:9000",
				"TRIBUTARY_DATA_DIR":      filepath.Join(dir, "new", "sub"),
				"TRIBUTARY_QDRANT_ADDR":   "qdrant:6334",
				"TRIBUTARY_API_KEYS":      "k-alice-123:acme:eng",
				"TRIBUTARY_LOG_LEVEL":     "debug",
			},
			need: daemon.NeedKafka | daemon.NeedDataDir | daemon.NeedQdrant | daemon.NeedAPIKeys,
			check: func(t *testing.T, c daemon.Config) {
				if strings.Join(c.KafkaBrokers, ",") != "k1:9092,k2:9093" || c.TopicPrefix != "staging" ||
					c.HTTPAddr != "127.0.0.1:9000" || c.QdrantAddr != "qdrant:6334" || c.LogLevel != slog.LevelDebug {
					t.Errorf("config = %+v", c)
				}
				if p, ok := c.APIKeys.Lookup("k-alice-123"); !ok || p.Tenant != "acme" {
					t.Errorf("api key lookup = %+v, %v", p, ok)
				}
				if fi, err := os.Stat(c.DataDir); err != nil || !fi.IsDir() {
					t.Errorf("data dir not created: %v", err)
				}
			},
		},
		{
			name: "flags override environment, both spellings",
			args: []string{"--topic-prefix=flag", "--TRIBUTARY_LOG_LEVEL", "warn"},
			env:  map[string]string{"TRIBUTARY_TOPIC_PREFIX": "env", "TRIBUTARY_LOG_LEVEL": "debug"},
			check: func(t *testing.T, c daemon.Config) {
				if c.TopicPrefix != "flag" || c.LogLevel != slog.LevelWarn {
					t.Errorf("prefix %q level %v, want flag values", c.TopicPrefix, c.LogLevel)
				}
			},
		},
		{
			name:    "required missing",
			env:     map[string]string{"TRIBUTARY_KAFKA_BROKERS": " , "},
			need:    daemon.NeedKafka | daemon.NeedDataDir | daemon.NeedAPIKeys,
			wantErr: []string{"TRIBUTARY_KAFKA_BROKERS", "TRIBUTARY_DATA_DIR", "TRIBUTARY_API_KEYS", "required"},
		},
		{
			name: "every value bad, all reported",
			env: map[string]string{
				"TRIBUTARY_KAFKA_BROKERS": "nohost",
				"TRIBUTARY_TOPIC_PREFIX":  "bad prefix",
				"TRIBUTARY_HTTP_ADDR":     "8080",
				"TRIBUTARY_DATA_DIR":      filepath.Join(file, "sub"),
				"TRIBUTARY_QDRANT_ADDR":   "qdrant:notaport",
				"TRIBUTARY_API_KEYS":      "short:acme:",
				"TRIBUTARY_LOG_LEVEL":     "verbose",
			},
			wantErr: []string{"TRIBUTARY_KAFKA_BROKERS", "TRIBUTARY_TOPIC_PREFIX", "TRIBUTARY_HTTP_ADDR",
				"TRIBUTARY_DATA_DIR", "TRIBUTARY_QDRANT_ADDR", "TRIBUTARY_API_KEYS", "TRIBUTARY_LOG_LEVEL"},
		},
		{
			name:    "unknown flag",
			args:    []string{"--nope"},
			wantErr: []string{"nope"},
		},
		{
			name:    "stray argument",
			args:    []string{"extra"},
			wantErr: []string{"unexpected arguments"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := flag.NewFlagSet("svc", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			c, err := daemon.ParseConfig(fs, tt.args, env(tt.env), tt.need)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("ParseConfig: %v", err)
				}
				tt.check(t, c)
				return
			}
			if err == nil {
				t.Fatalf("ParseConfig succeeded with %+v, want an error", c)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "short:acme") {
				t.Errorf("error leaks an api key: %v", err)
			}
		})
	}
}

func TestParseFlagsServiceFlags(t *testing.T) {
	fs := flag.NewFlagSet("svc", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	max := fs.Int64("max-document-bytes", 50<<20, "")
	if err := daemon.ParseFlags(fs, nil, env(map[string]string{"TRIBUTARY_MAX_DOCUMENT_BYTES": "1024"})); err != nil {
		t.Fatal(err)
	}
	if *max != 1024 {
		t.Errorf("max = %d, want 1024 from the environment", *max)
	}
	fs = flag.NewFlagSet("svc", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Int64("max-document-bytes", 50<<20, "")
	err := daemon.ParseFlags(fs, nil, env(map[string]string{"TRIBUTARY_MAX_DOCUMENT_BYTES": "lots"}))
	if err == nil || !strings.Contains(err.Error(), "TRIBUTARY_MAX_DOCUMENT_BYTES") {
		t.Errorf("bad env value: %v, want an error naming the variable", err)
	}
}

func get(t *testing.T, url string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body := map[string]any{}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Fatal(err)
		}
	}
	return resp.StatusCode, body
}

// TestReadyzFlips checks /readyz against a real broker: not ready while a
// topic is missing, ready once it exists, not ready after the broker stops.
func TestReadyzFlips(t *testing.T) {
	// This test stops its broker, so it always runs its own in-process one.
	b, err := broker.Start(broker.Config{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	brokers := []string{b.Addr()}
	topic := "readyz-topic"
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "tributary_test_total", Help: "test"})
	reg.MustRegister(c)
	c.Inc()
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	srv := httptest.NewServer(daemon.NewHTTPHandler(app, reg, daemon.KafkaCheck(brokers, kafkatransport.Security{}, topic)))
	defer srv.Close()

	if code, body := get(t, srv.URL+"/healthz"); code != 200 || body["status"] != "ok" {
		t.Errorf("/healthz = %d %v", code, body)
	}
	code, body := get(t, srv.URL+"/readyz")
	if code != 503 || !strings.Contains(body["checks"].(map[string]any)["kafka"].(string), topic) {
		t.Errorf("/readyz with missing topic = %d %v, want 503 naming it", code, body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := kafkatransport.EnsureTopics(ctx, brokers, kafkatransport.Security{}, kafkatransport.TopicSpec{Name: topic, Partitions: 1, ReplicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
	if code, body := get(t, srv.URL+"/readyz"); code != 200 || body["status"] != "ready" {
		t.Errorf("/readyz = %d %v, want 200", code, body)
	}
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(raw), "tributary_test_total 1") {
		t.Errorf("/metrics lacks the counter:\n%s", raw)
	}
	if code, _ := get(t, srv.URL+"/v1/anything"); code != http.StatusTeapot {
		t.Errorf("app route = %d, want 418", code)
	}
	b.Close()
	start := time.Now()
	if code, _ := get(t, srv.URL+"/readyz"); code != 503 {
		t.Errorf("/readyz with broker down = %d, want 503", code)
	}
	if d := time.Since(start); d > daemon.CheckTimeout+2*time.Second {
		t.Errorf("/readyz took %v with the broker down", d)
	}
}

func TestGroup(t *testing.T) {
	t.Run("context cancel drains every part", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		var g daemon.Group
		g.AddHTTP(&http.Server{Handler: daemon.NewHTTPHandler(nil, nil)}, ln, time.Second)
		drained := make(chan struct{})
		g.Add("worker", func(ctx context.Context) error {
			<-ctx.Done()
			time.Sleep(50 * time.Millisecond) // finish in-flight work
			close(drained)
			return nil
		})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- g.Run(ctx, nil) }()
		url := "http://" + ln.Addr().String() + "/healthz"
		eventually.NoError(t, url+" to answer", 5*time.Second, func() error {
			resp, err := http.Get(url)
			if err != nil {
				return err
			}
			return resp.Body.Close()
		})
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run() = %v, want nil", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not return")
		}
		select {
		case <-drained:
		default:
			t.Error("Run returned before the worker drained")
		}
		if _, err := http.Get("http://" + ln.Addr().String() + "/healthz"); err == nil {
			t.Error("HTTP server still serving after Run")
		}
	})
	t.Run("a failing part stops the others", func(t *testing.T) {
		var g daemon.Group
		boom := errors.New("boom")
		g.Add("failing", func(ctx context.Context) error { return boom })
		stopped := make(chan struct{})
		g.Add("other", func(ctx context.Context) error { <-ctx.Done(); close(stopped); return nil })
		err := g.Run(context.Background(), slog.New(slog.NewJSONHandler(io.Discard, nil)))
		if !errors.Is(err, boom) || !strings.Contains(err.Error(), "failing") {
			t.Errorf("Run() = %v, want boom from part failing", err)
		}
		select {
		case <-stopped:
		default:
			t.Error("other part was not stopped")
		}
	})
}

func TestNewLogger(t *testing.T) {
	var b strings.Builder
	l := daemon.NewLogger(&b, slog.LevelInfo, "ingest")
	l.Debug("hidden")
	l.Info("hello", "document_id", "d1")
	var rec map[string]any
	if err := json.Unmarshal([]byte(b.String()), &rec); err != nil {
		t.Fatalf("log line %q is not one JSON object: %v", b.String(), err)
	}
	if rec["service"] != "ingest" || rec["msg"] != "hello" || rec["document_id"] != "d1" {
		t.Errorf("record = %v", rec)
	}
}

func TestTrace(t *testing.T) {
	var seen tracecontext.TraceParent
	h := daemon.Trace(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen, _ = tracecontext.FromContext(r.Context())
	}))
	parent := tracecontext.New()
	tests := []struct {
		name      string
		header    string
		sameTrace bool
	}{
		{"continues the caller's trace", parent.String(), true},
		{"starts a trace without a header", "", false},
		{"starts a trace on garbage", "00-zz", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			seen = tracecontext.TraceParent{}
			req := httptest.NewRequest("GET", "/v1/x", nil)
			if tt.header != "" {
				req.Header.Set("traceparent", tt.header)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if !seen.IsValid() {
				t.Fatal("handler context has no traceparent")
			}
			if (seen.TraceID == parent.TraceID) != tt.sameTrace || seen.SpanID == parent.SpanID {
				t.Errorf("context traceparent %v, caller's %v, want same trace %v", seen, parent, tt.sameTrace)
			}
			if rec.Header().Get("traceparent") != seen.String() {
				t.Errorf("response traceparent %q, want %q", rec.Header().Get("traceparent"), seen)
			}
		})
	}
}
