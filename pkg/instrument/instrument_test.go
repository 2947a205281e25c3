package instrument

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

var errRefused = errors.New("refused")

func TestCallsObserve(t *testing.T) {
	tests := []struct {
		name         string
		errorOutcome func(error) string
		outcome      string
		err          error
		want         string
	}{
		{name: "ok", outcome: "found", want: "found"},
		{name: "default error outcome", outcome: "found", err: errRefused, want: "error"},
		{name: "error outcome", outcome: "found", err: errRefused,
			errorOutcome: func(err error) string { return "code_" + err.Error() }, want: "code_refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewCalls("method",
				prometheus.CounterOpts{Name: "test_calls_total", Help: "Calls."},
				prometheus.HistogramOpts{Name: "test_call_seconds", Help: "Call duration.", Buckets: []float64{1}},
				tt.errorOutcome)
			reg := prometheus.NewPedanticRegistry()
			if err := Register(reg, c); err != nil {
				t.Fatalf("Register: %v", err)
			}
			c.Observe("get", tt.outcome, tt.err, time.Now().Add(-time.Minute))

			if got := testutil.ToFloat64(c.total.WithLabelValues("get", tt.want)); got != 1 {
				t.Errorf("test_calls_total{method=get,outcome=%q} = %v, want 1", tt.want, got)
			}
			if got := testutil.CollectAndCount(c, "test_calls_total"); got != 1 {
				t.Errorf("test_calls_total has %d series, want 1", got)
			}
			mfs, err := reg.Gather()
			if err != nil {
				t.Fatalf("Gather: %v", err)
			}
			var (
				found bool
				count uint64
				sum   float64
			)
			for _, mf := range mfs {
				if mf.GetName() == "test_call_seconds" && len(mf.GetMetric()) == 1 {
					m := mf.GetMetric()[0]
					if l := m.GetLabel(); len(l) != 1 || l[0].GetName() != "method" || l[0].GetValue() != "get" {
						t.Errorf("test_call_seconds labels = %v, want method=get", l)
					}
					found, count, sum = true, m.GetHistogram().GetSampleCount(), m.GetHistogram().GetSampleSum()
				}
			}
			if !found {
				t.Fatalf("test_call_seconds: not gathered as one series")
			}
			if count != 1 || sum < 60 || sum > 120 {
				t.Errorf("test_call_seconds count %d sum %v, want 1 and about 60", count, sum)
			}
		})
	}
}

func TestRegister(t *testing.T) {
	reg := prometheus.NewRegistry()
	a := prometheus.NewCounter(prometheus.CounterOpts{Name: "a_total", Help: "A."})
	b := prometheus.NewCounter(prometheus.CounterOpts{Name: "b_total", Help: "B."})
	if err := Register(reg, a, b); err != nil {
		t.Fatalf("Register(a, b) = %v, want nil", err)
	}
	err := Register(reg, prometheus.NewCounter(prometheus.CounterOpts{Name: "c_total", Help: "C."}), b)
	var already prometheus.AlreadyRegisteredError
	if !errors.As(err, &already) {
		t.Errorf("Register(c, b again) = %v, want AlreadyRegisteredError", err)
	}
}

func TestMillisSince(t *testing.T) {
	got := MillisSince(time.Now().Add(-1500 * time.Microsecond))
	if got < 1.5 || got > 1000 {
		t.Errorf("MillisSince(1.5ms ago) = %v, want 1.5 or a little more", got)
	}
	if got*1000 != float64(int64(got*1000+0.5)) {
		t.Errorf("MillisSince = %v, want whole microseconds", got)
	}
}

func TestStatusLevel(t *testing.T) {
	tests := []struct {
		status int
		want   slog.Level
	}{
		{400, slog.LevelWarn},
		{499, slog.LevelWarn},
		{500, slog.LevelError},
		{503, slog.LevelError},
	}
	for _, tt := range tests {
		if got := StatusLevel(tt.status); got != tt.want {
			t.Errorf("StatusLevel(%d) = %v, want %v", tt.status, got, tt.want)
		}
	}
}

func TestLog(t *testing.T) {
	withCode := func(err error) (slog.Level, []any) { return slog.LevelError, []any{"code", "internal"} }
	tests := []struct {
		name   string
		err    error
		failed Failure
		want   string
	}{
		{name: "ok", failed: withCode,
			want: `{"level":"INFO","msg":"get","id":"x"}`},
		{name: "failed", err: errRefused, failed: At(slog.LevelWarn),
			want: `{"level":"WARN","msg":"get","id":"x","error":"refused"}`},
		{name: "failed with attributes", err: errRefused, failed: withCode,
			want: `{"level":"ERROR","msg":"get","id":"x","code":"internal","error":"refused"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			logger := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{
				ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
					if a.Key == slog.TimeKey {
						return slog.Attr{}
					}
					return a
				},
			}))
			Log(context.Background(), logger, slog.LevelInfo, "get", tt.err, tt.failed, "id", "x")
			got := bytes.TrimSpace(buf.Bytes())
			if string(got) != tt.want {
				t.Errorf("Log wrote %s, want %s", got, tt.want)
			}
			if !json.Valid(got) {
				t.Errorf("Log wrote invalid JSON %s", got)
			}
		})
	}
}
