// Package tracecontext implements the W3C Trace Context traceparent header
// (https://www.w3.org/TR/trace-context/): parsing, generation of new traces
// and child spans, and carrying the current traceparent in a context.
//
// Tributary carries the traceparent in the Kafka header "traceparent" of
// every event, so one trace follows a document or a question through all
// services:
//
//	tp, ok := tracecontext.FromContext(ctx)
//	if !ok {
//		tp = tracecontext.New()
//	}
//	ctx = tracecontext.WithContext(ctx, tp.Child())
//
// With OpenTelemetry tracing on, the header carries the span context of
// real spans instead (see SpanContext, FromSpanContext and Tracer).
package tracecontext

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"

	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Header is the name of the W3C trace context header, used both on HTTP and
// on Kafka messages.
const Header = "traceparent"

// FlagSampled is the sampled bit of the trace flags.
const FlagSampled byte = 0x01

// ErrInvalid reports a traceparent value that does not follow the W3C format.
var ErrInvalid = errors.New("invalid traceparent")

// TraceParent is one parsed traceparent value (version 00).
type TraceParent struct {
	TraceID [16]byte
	SpanID  [8]byte
	Flags   byte
}

// New starts a new sampled trace with random trace and span ids.
func New() TraceParent {
	var tp TraceParent
	for isZero(tp.TraceID[:]) {
		_, _ = rand.Read(tp.TraceID[:]) // crypto/rand.Read never fails
	}
	tp.SpanID = newSpanID()
	tp.Flags = FlagSampled
	return tp
}

// Child returns a traceparent for a new span in the same trace: the trace id
// and flags are kept and the span id is fresh.
func (tp TraceParent) Child() TraceParent {
	c := tp
	c.SpanID = newSpanID()
	return c
}

// IsValid reports whether neither id is all zeros.
func (tp TraceParent) IsValid() bool {
	return !isZero(tp.TraceID[:]) && !isZero(tp.SpanID[:])
}

// TraceIDString returns the trace id as 32 lowercase hex digits.
func (tp TraceParent) TraceIDString() string { return hex.EncodeToString(tp.TraceID[:]) }

// String formats the traceparent as "00-<trace-id>-<span-id>-<flags>".
func (tp TraceParent) String() string {
	return fmt.Sprintf("00-%x-%x-%02x", tp.TraceID[:], tp.SpanID[:], tp.Flags)
}

// Parse parses a traceparent header value. It accepts version 00 exactly and
// future versions by their first four fields, as the specification asks, and
// rejects all-zero ids, upper-case hex and version ff.
func Parse(s string) (TraceParent, error) {
	var tp TraceParent
	if len(s) < 55 {
		return tp, fmt.Errorf("%w: too short", ErrInvalid)
	}
	if s[2] != '-' || s[35] != '-' || s[52] != '-' {
		return tp, fmt.Errorf("%w: bad separators", ErrInvalid)
	}
	ver, err := lowerHex(s[0:2])
	if err != nil {
		return tp, fmt.Errorf("%w: version: %v", ErrInvalid, err)
	}
	if ver[0] == 0xff {
		return tp, fmt.Errorf("%w: version ff", ErrInvalid)
	}
	if ver[0] == 0 && len(s) != 55 {
		return tp, fmt.Errorf("%w: version 00 must be 55 characters", ErrInvalid)
	}
	if ver[0] != 0 && len(s) > 55 && s[55] != '-' {
		return tp, fmt.Errorf("%w: bad separators", ErrInvalid)
	}
	tid, err := lowerHex(s[3:35])
	if err != nil {
		return tp, fmt.Errorf("%w: trace id: %v", ErrInvalid, err)
	}
	sid, err := lowerHex(s[36:52])
	if err != nil {
		return tp, fmt.Errorf("%w: span id: %v", ErrInvalid, err)
	}
	fl, err := lowerHex(s[53:55])
	if err != nil {
		return tp, fmt.Errorf("%w: flags: %v", ErrInvalid, err)
	}
	copy(tp.TraceID[:], tid)
	copy(tp.SpanID[:], sid)
	tp.Flags = fl[0]
	if !tp.IsValid() {
		return TraceParent{}, fmt.Errorf("%w: all-zero id", ErrInvalid)
	}
	return tp, nil
}

type ctxKey struct{}

// WithContext returns a copy of ctx that carries tp.
func WithContext(ctx context.Context, tp TraceParent) context.Context {
	return context.WithValue(ctx, ctxKey{}, tp)
}

// FromContext returns the traceparent carried by ctx, if any.
func FromContext(ctx context.Context) (TraceParent, bool) {
	tp, ok := ctx.Value(ctxKey{}).(TraceParent)
	return tp, ok
}

// Ensure returns ctx unchanged with its traceparent when it carries one, and
// otherwise a copy carrying a new trace.
func Ensure(ctx context.Context) (context.Context, TraceParent) {
	if tp, ok := FromContext(ctx); ok {
		return ctx, tp
	}
	tp := New()
	return WithContext(ctx, tp), tp
}

// SpanContext returns tp as a remote OpenTelemetry span context, the parent
// of a span that continues the trace tp carries.
func (tp TraceParent) SpanContext() trace.SpanContext {
	return trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID(tp.TraceID), SpanID: trace.SpanID(tp.SpanID), TraceFlags: trace.TraceFlags(tp.Flags), Remote: true,
	})
}

// FromSpanContext returns the traceparent naming sc's span.
func FromSpanContext(sc trace.SpanContext) TraceParent {
	return TraceParent{TraceID: sc.TraceID(), SpanID: sc.SpanID(), Flags: byte(sc.TraceFlags())}
}

// Tracer returns tp's tracer for the instrumentation scope name, or nil when
// tp is nil or OpenTelemetry's no-op provider: callers then skip all span
// work, so tracing that is off costs nothing and the traceparent header
// stays as this package makes it.
func Tracer(tp trace.TracerProvider, name string) trace.Tracer {
	switch tp.(type) {
	case nil, noop.TracerProvider, *noop.TracerProvider:
		return nil
	}
	return tp.Tracer(name)
}

func newSpanID() [8]byte {
	var id [8]byte
	for isZero(id[:]) {
		_, _ = rand.Read(id[:])
	}
	return id
}

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// lowerHex decodes lowercase hex without allocating more than the result.
func lowerHex(s string) ([]byte, error) {
	if len(s)%2 != 0 {
		return nil, errors.New("odd length")
	}
	out := make([]byte, len(s)/2)
	for i := 0; i < len(s); i += 2 {
		hi, ok1 := nibble(s[i])
		lo, ok2 := nibble(s[i+1])
		if !ok1 || !ok2 {
			return nil, errors.New("not lowercase hex")
		}
		out[i/2] = hi<<4 | lo
	}
	return out, nil
}

func nibble(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}
