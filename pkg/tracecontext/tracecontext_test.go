package tracecontext

import (
	"context"
	"errors"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in   string
		ok   bool
		want string
	}{
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", true, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", true, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"},
		{"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra", true, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra", false, ""},
		{"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", false, ""},
		{"00-00000000000000000000000000000000-00f067aa0ba902b7-01", false, ""},
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", false, ""},
		{"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", false, ""},
		{"00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", false, ""},
		{"", false, ""},
		{"garbage", false, ""},
	}
	for _, tt := range tests {
		tp, err := Parse(tt.in)
		if (err == nil) != tt.ok {
			t.Errorf("Parse(%q) error = %v, want ok=%v", tt.in, err, tt.ok)
			continue
		}
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Errorf("Parse(%q) error %v is not ErrInvalid", tt.in, err)
		}
		if tt.ok && tp.String() != tt.want {
			t.Errorf("Parse(%q).String() = %q, want %q", tt.in, tp.String(), tt.want)
		}
	}
}

func TestNewChildContext(t *testing.T) {
	tp := New()
	if !tp.IsValid() || tp.Flags != FlagSampled {
		t.Fatalf("New() = %v", tp)
	}
	back, err := Parse(tp.String())
	if err != nil || back != tp {
		t.Fatalf("Parse(New().String()) = %v, %v", back, err)
	}
	c := tp.Child()
	if c.TraceID != tp.TraceID || c.SpanID == tp.SpanID || c.Flags != tp.Flags {
		t.Errorf("Child() = %v of %v", c, tp)
	}
	if _, ok := FromContext(context.Background()); ok {
		t.Error("FromContext(Background) found a traceparent")
	}
	ctx := WithContext(context.Background(), tp)
	if got, ok := FromContext(ctx); !ok || got != tp {
		t.Errorf("FromContext = %v, %v", got, ok)
	}
	ctx2, got := Ensure(ctx)
	if got != tp || ctx2 != ctx {
		t.Error("Ensure replaced an existing traceparent")
	}
	_, fresh := Ensure(context.Background())
	if !fresh.IsValid() {
		t.Error("Ensure did not start a trace")
	}
	if len(tp.TraceIDString()) != 32 {
		t.Errorf("TraceIDString() = %q", tp.TraceIDString())
	}
}

func FuzzParse(f *testing.F) {
	f.Add("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	f.Add("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x")
	f.Fuzz(func(t *testing.T, s string) {
		tp, err := Parse(s)
		if err != nil {
			return
		}
		again, err := Parse(tp.String())
		if err != nil || again != tp {
			t.Fatalf("Parse(%q) round trip: %v %v", s, again, err)
		}
	})
}
