package events

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

// interopRequest is the ingest request the interop tests send in every
// form a CloudEvents producer may use.
var interopRequest = IngestRequested{DocumentID: "doc-1", RequestID: "req-1", TenantID: "acme",
	ContentType: "text/plain", Content: []byte("hello")}

func interopData(t testing.TB) []byte {
	t.Helper()
	b, err := json.Marshal(interopRequest)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func hdrs(kv ...string) []kafka.Header {
	var hs []kafka.Header
	for i := 0; i+1 < len(kv); i += 2 {
		hs = append(hs, kafka.Header{Key: kv[i], Value: []byte(kv[i+1])})
	}
	return hs
}

// structured returns a structured-mode message whose value is members
// (with data added unless it is nil) as JSON.
func structured(t testing.TB, contentType string, members map[string]any, data []byte) kafka.Message {
	t.Helper()
	m := map[string]any{}
	for k, v := range members {
		m[k] = v
	}
	if data != nil {
		m["data"] = json.RawMessage(data)
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return kafka.Message{Key: []byte("doc-1"), Value: b, Headers: hdrs(HeaderContentType, contentType)}
}

func sdkMembers() map[string]any {
	return map[string]any{"specversion": "1.0", "id": "e1", "source": "partner/crm", "type": TypeIngestRequested,
		"datacontenttype": "application/json", "tenantid": "acme", "correlationid": "corr-1"}
}

func with(m map[string]any, kv ...any) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
			continue
		}
		out[kv[i].(string)] = kv[i+1]
	}
	return out
}

// TestParseMessageModes reads one ingest request in each form a producer
// may write it: ours, the legacy headers, without time, and structured
// mode as the CloudEvents SDKs write it.
func TestParseMessageModes(t *testing.T) {
	data := interopData(t)
	base := []string{HeaderSpecVersion, "1.0", HeaderID, "e1", HeaderSource, "partner/crm", HeaderType, TypeIngestRequested}
	at := time.Date(2026, 12, 7, 1, 2, 3, 400000000, time.UTC)
	tests := []struct {
		name            string
		msg             kafka.Message
		wantCorrelation string
		wantTime        time.Time
		wantTrace       string
	}{
		{"binary", kafka.Message{Value: data, Headers: hdrs(append(base, HeaderTime, at.Format(time.RFC3339Nano), HeaderContentType, ContentTypeJSON,
			HeaderTenantID, "acme", HeaderCorrelationID, "corr-1")...)}, "corr-1", at, ""},
		{"binary without time or content-type", kafka.Message{Value: data, Headers: hdrs(append(base, HeaderTenantID, "acme")...)}, "", time.Time{}, ""},
		{"legacy headers", kafka.Message{Value: data, Headers: hdrs(append(base, LegacyHeaderTenantID, "acme", LegacyHeaderCorrelationID, "corr-1")...)}, "corr-1", time.Time{}, ""},
		{"ce_ headers win over legacy", kafka.Message{Value: data, Headers: hdrs(append(base, LegacyHeaderTenantID, "globex", HeaderTenantID, "acme",
			HeaderCorrelationID, "corr-1", LegacyHeaderCorrelationID, "old")...)}, "corr-1", time.Time{}, ""},
		{"structured", structured(t, ContentTypeCloudEventsJSON, with(sdkMembers(), "time", "2026-12-07T02:02:03.4+01:00"), data), "corr-1", at, ""},
		{"structured without time, charset", structured(t, " Application/CloudEvents+JSON; charset=UTF-8", sdkMembers(), data), "corr-1", time.Time{}, ""},
		{"structured without datacontenttype", structured(t, ContentTypeCloudEventsJSON, with(sdkMembers(), "datacontenttype", nil), data), "corr-1", time.Time{}, ""},
		{"structured data_base64", structured(t, ContentTypeCloudEventsJSON, with(sdkMembers(), "data_base64", base64.StdEncoding.EncodeToString(data)), nil), "corr-1", time.Time{}, ""},
		{"structured traceparent from the header", func() kafka.Message {
			m := structured(t, ContentTypeCloudEventsJSON, sdkMembers(), data)
			m.Headers = append(m.Headers, kafka.Header{Key: HeaderTraceParent, Value: []byte("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")})
			return m
		}(), "corr-1", time.Time{}, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, p, err := Decode(tt.msg)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if got := *p.(*IngestRequested); !reflect.DeepEqual(got, interopRequest) {
				t.Errorf("payload = %+v, want %+v", got, interopRequest)
			}
			if env.ID != "e1" || env.Source != "partner/crm" || env.TenantID != "acme" || env.CorrelationID != tt.wantCorrelation ||
				!env.Time.Equal(tt.wantTime) || env.TraceParent != tt.wantTrace {
				t.Errorf("envelope = %+v, want tenant acme, correlation %q, time %v, traceparent %q", env, tt.wantCorrelation, tt.wantTime, tt.wantTrace)
			}
			var u IngestRequested
			if _, err := Unmarshal(tt.msg, &u); err != nil || !reflect.DeepEqual(u, interopRequest) {
				t.Errorf("Unmarshal = %+v, %v", u, err)
			}
			// Binary gives a message that reads the same through the headers
			// alone, as consumers that read headers and value directly do.
			bin, err := Binary(tt.msg)
			if err != nil {
				t.Fatalf("Binary: %v", err)
			}
			benv, err := ParseHeaders(bin.Headers)
			if err != nil {
				t.Fatalf("ParseHeaders(Binary): %v", err)
			}
			if !bytes.Equal(bin.Value, data) && !jsonEqual(bin.Value, data) {
				t.Errorf("Binary value = %s, want %s", bin.Value, data)
			}
			if benv.TenantID != env.TenantID || benv.CorrelationID != env.CorrelationID || !benv.Time.Equal(env.Time) || benv.ID != env.ID || benv.TraceParent != env.TraceParent {
				t.Errorf("Binary envelope = %+v, want %+v", benv, env)
			}
			for _, h := range bin.Headers {
				if h.Key == LegacyHeaderTenantID || h.Key == LegacyHeaderCorrelationID || (h.Key == HeaderContentType && string(h.Value) != ContentTypeJSON) {
					t.Errorf("Binary kept header %s: %s", h.Key, h.Value)
				}
			}
		})
	}
}

func jsonEqual(a, b []byte) bool {
	var x, y any
	return json.Unmarshal(a, &x) == nil && json.Unmarshal(b, &y) == nil && reflect.DeepEqual(x, y)
}

func TestParseMessageErrors(t *testing.T) {
	data := interopData(t)
	ce := ContentTypeCloudEventsJSON
	tests := []struct {
		name string
		msg  kafka.Message
	}{
		{"not JSON", kafka.Message{Value: []byte("{"), Headers: hdrs(HeaderContentType, ce)}},
		{"JSON array", kafka.Message{Value: []byte("[]"), Headers: hdrs(HeaderContentType, ce)}},
		{"batch format", structured(t, "application/cloudevents-batch+json", sdkMembers(), data)},
		{"avro format", structured(t, "application/cloudevents+avro", sdkMembers(), data)},
		{"no specversion", structured(t, ce, with(sdkMembers(), "specversion", nil), data)},
		{"specversion 0.3", structured(t, ce, with(sdkMembers(), "specversion", "0.3"), data)},
		{"no id", structured(t, ce, with(sdkMembers(), "id", nil), data)},
		{"no tenantid", structured(t, ce, with(sdkMembers(), "tenantid", nil), data)},
		{"tenantid a number", structured(t, ce, with(sdkMembers(), "tenantid", 7), data)},
		{"bad time", structured(t, ce, with(sdkMembers(), "time", "yesterday"), data)},
		{"xml data", structured(t, ce, with(sdkMembers(), "datacontenttype", "application/xml"), data)},
		{"data and data_base64", structured(t, ce, with(sdkMembers(), "data_base64", "aGk="), data)},
		{"bad base64", structured(t, ce, with(sdkMembers(), "data_base64", "!!"), nil)},
		{"data_base64 a number", structured(t, ce, with(sdkMembers(), "data_base64", 3), nil)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := ParseMessage(tt.msg); !errors.Is(err, ErrInvalidEnvelope) {
				t.Errorf("ParseMessage() = %v, want ErrInvalidEnvelope", err)
			}
			if _, _, err := Decode(tt.msg); !errors.Is(err, ErrInvalidEnvelope) {
				t.Errorf("Decode() = %v, want ErrInvalidEnvelope", err)
			}
			if _, err := Binary(tt.msg); !errors.Is(err, ErrInvalidEnvelope) {
				t.Errorf("Binary() = %v, want ErrInvalidEnvelope", err)
			}
		})
	}
	// A structured event without data decodes to no payload.
	if _, _, err := Decode(structured(t, ce, sdkMembers(), nil)); !errors.Is(err, ErrInvalidPayload) {
		t.Errorf("Decode(no data) = %v, want ErrInvalidPayload", err)
	}
}

// TestBinaryStructuredExtensions checks that a structured event's other
// attributes become ce_ headers and that its other headers stay.
func TestBinaryStructuredExtensions(t *testing.T) {
	msg := structured(t, ContentTypeCloudEventsJSON, with(sdkMembers(), "subject", "s1", "partitionkey", "doc-1",
		"priority", 3, "urgent", true, "nested", map[string]any{"a": 1}, "Bad-Name", "x"), interopData(t))
	msg.Headers = append(msg.Headers, kafka.Header{Key: "x-team", Value: []byte("crm")})
	bin, err := Binary(msg)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, h := range bin.Headers {
		if _, dup := got[h.Key]; dup {
			t.Errorf("header %s twice", h.Key)
		}
		got[h.Key] = string(h.Value)
	}
	want := map[string]string{"ce_subject": "s1", "ce_partitionkey": "doc-1", "ce_priority": "3", "ce_urgent": "true",
		"x-team": "crm", HeaderTenantID: "acme", HeaderCorrelationID: "corr-1", HeaderContentType: ContentTypeJSON}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("header %s = %q, want %q", k, got[k], v)
		}
	}
	for _, k := range []string{"ce_nested", "ce_Bad-Name", HeaderTime} {
		if _, ok := got[k]; ok {
			t.Errorf("header %s should be left out", k)
		}
	}
	if string(bin.Key) != "doc-1" {
		t.Errorf("key = %q", bin.Key)
	}
}

// TestBinaryKeepsOurs checks that an event in our own form is passed
// through without a copy.
func TestBinaryKeepsOurs(t *testing.T) {
	msg, err := Marshal(WithTenant(context.Background(), "acme"), "s", interopRequest)
	if err != nil {
		t.Fatal(err)
	}
	bin, err := Binary(msg)
	if err != nil || &bin.Headers[0] != &msg.Headers[0] {
		t.Errorf("Binary copied our message (err %v)", err)
	}
	for _, h := range msg.Headers {
		if h.Key == LegacyHeaderTenantID || h.Key == LegacyHeaderCorrelationID {
			t.Errorf("Marshal wrote the legacy header %s", h.Key)
		}
	}
}

func BenchmarkParseMessage(b *testing.B) {
	data := interopData(b)
	ours, err := Marshal(WithTenant(context.Background(), "acme"), "s", interopRequest)
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		msg  kafka.Message
	}{
		{"binary", ours},
		{"structured", structured(b, ContentTypeCloudEventsJSON, sdkMembers(), data)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := Decode(bc.msg); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(bc.name+"/Binary", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Binary(bc.msg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// FuzzStructured checks that any structured value either fails with
// ErrInvalidEnvelope or reads the same after Binary.
func FuzzStructured(f *testing.F) {
	data := interopData(f)
	for _, m := range []map[string]any{sdkMembers(), with(sdkMembers(), "time", "2026-12-07T01:02:03Z", "subject", "x", "n", 1.5)} {
		f.Add(structured(f, ContentTypeCloudEventsJSON, m, data).Value)
	}
	f.Add(structured(f, ContentTypeCloudEventsJSON, with(sdkMembers(), "data_base64", "aGk="), nil).Value)
	f.Fuzz(func(t *testing.T, value []byte) {
		msg := kafka.Message{Value: value, Headers: hdrs(HeaderContentType, ContentTypeCloudEventsJSON)}
		env, data, err := ParseMessage(msg)
		if err != nil {
			if !errors.Is(err, ErrInvalidEnvelope) {
				t.Fatalf("ParseMessage error %v is not ErrInvalidEnvelope", err)
			}
			if _, err := Binary(msg); err == nil {
				t.Fatalf("Binary accepted what ParseMessage refused")
			}
			return
		}
		bin, err := Binary(msg)
		if err != nil {
			t.Fatalf("Binary: %v", err)
		}
		benv, bdata, err := ParseMessage(bin)
		if err != nil {
			t.Fatalf("ParseMessage(Binary): %v", err)
		}
		if !bytes.Equal(data, bdata) || !benv.Time.Equal(env.Time) {
			t.Fatalf("Binary changed the data or time")
		}
		benv.Time, env.Time = time.Time{}, time.Time{}
		if env.ContentType == "" {
			env.ContentType = ContentTypeJSON
		}
		if benv != env {
			t.Fatalf("Binary envelope %+v, want %+v", benv, env)
		}
	})
}

// TestLegacyFixtures reads the fixtures as published before the tenant and
// correlation id became the ce_tenantid and ce_correlationid headers (and
// before citations carried n): consumers still read them, with the same
// envelope as today's fixtures.
func TestLegacyFixtures(t *testing.T) {
	files, err := filepath.Glob("testdata/legacy/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no legacy fixtures: %v", err)
	}
	v, err := NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			read := func(path string) (Envelope, Payload) {
				b, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				var f fixture
				if err := json.Unmarshal(b, &f); err != nil {
					t.Fatal(err)
				}
				env, p, err := Decode(f.message())
				if err != nil {
					t.Fatalf("Decode(%s): %v", path, err)
				}
				if err := v.ValidatePayload(p); err != nil {
					t.Errorf("ValidatePayload(%s): %v", path, err)
				}
				return env, p
			}
			old, _ := read(file)
			cur, _ := read(filepath.Join("testdata/fixtures", filepath.Base(file)))
			if old != cur || old.TenantID == "" || old.CorrelationID == "" {
				t.Errorf("legacy envelope %+v, today's %+v", old, cur)
			}
		})
	}
}
