package events

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tributary-rag/tributary/pkg/tracecontext"
)

type fixture struct {
	Key     string            `json:"key"`
	Headers map[string]string `json:"headers"`
	Data    json.RawMessage   `json:"data"`
}

func (f fixture) message() kafka.Message {
	keys := make([]string, 0, len(f.Headers))
	for k := range f.Headers {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var hs []kafka.Header
	for _, k := range keys {
		hs = append(hs, kafka.Header{Key: k, Value: []byte(f.Headers[k])})
	}
	return kafka.Message{Key: []byte(f.Key), Value: f.Data, Headers: hs}
}

func canonicalJSON(t *testing.T, b []byte) string {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("unmarshal %s: %v", b, err)
	}
	out, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// TestFixtures checks every golden fixture: its envelope parses, its data
// validates against the schema of its type, it decodes into the Go type and
// encodes back to the same JSON, and its key is the payload's partition key.
func TestFixtures(t *testing.T) {
	v, err := NewValidator()
	if err != nil {
		t.Fatalf("NewValidator: %v", err)
	}
	files, err := filepath.Glob("testdata/fixtures/*.json")
	if err != nil {
		t.Fatal(err)
	}
	covered := map[string]bool{}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			b, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var f fixture
			if err := json.Unmarshal(b, &f); err != nil {
				t.Fatalf("fixture: %v", err)
			}
			env, p, err := Decode(f.message())
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			covered[env.Type] = true
			if want := strings.TrimSuffix(filepath.Base(file), ".json"); "tributary."+want != env.Type {
				t.Errorf("fixture %s has ce_type %q", file, env.Type)
			}
			if err := v.Validate(env.Type, f.Data); err != nil {
				t.Errorf("Validate: %v", err)
			}
			if err := v.ValidatePayload(p); err != nil {
				t.Errorf("ValidatePayload: %v", err)
			}
			out, err := json.Marshal(p)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := canonicalJSON(t, out), canonicalJSON(t, f.Data); got != want {
				t.Errorf("round trip:\n got %s\nwant %s", got, want)
			}
			if p.PartitionKey() != f.Key {
				t.Errorf("PartitionKey() = %q, want key %q", p.PartitionKey(), f.Key)
			}
			// Re-encode with the same envelope: the message must match.
			msg, err := MarshalWith(env, p)
			if err != nil {
				t.Fatalf("MarshalWith: %v", err)
			}
			env2, p2, err := Decode(msg)
			if err != nil {
				t.Fatalf("Decode(MarshalWith): %v", err)
			}
			if !reflect.DeepEqual(env, env2) || !reflect.DeepEqual(p, p2) {
				t.Errorf("MarshalWith/Decode changed the event:\n%+v\n%+v", env, env2)
			}
		})
	}
	for _, typ := range Types() {
		if !covered[typ] {
			t.Errorf("no fixture for %s", typ)
		}
	}
}

// TestInvalidFixtures checks that the schemas reject broken payloads.
func TestInvalidFixtures(t *testing.T) {
	v, err := NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob("testdata/invalid/*.json")
	if len(files) == 0 {
		t.Fatal("no invalid fixtures")
	}
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var f struct {
			Type string          `json:"type"`
			Data json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(b, &f); err != nil {
			t.Fatal(err)
		}
		if err := v.Validate(f.Type, f.Data); !errors.Is(err, ErrInvalidPayload) {
			t.Errorf("Validate(%s) = %v, want ErrInvalidPayload", filepath.Base(file), err)
		}
	}
}

// TestSchemasMatchTypes checks that each schema names exactly the JSON
// fields of its Go type and requires exactly those without omitempty.
func TestSchemasMatchTypes(t *testing.T) {
	for _, typ := range Types() {
		p, err := NewPayload(typ)
		if err != nil {
			t.Fatal(err)
		}
		b, err := Schema(typ)
		if err != nil {
			t.Fatalf("Schema(%s): %v", typ, err)
		}
		var s struct {
			Properties map[string]json.RawMessage `json:"properties"`
			Required   []string                   `json:"required"`
		}
		if err := json.Unmarshal(b, &s); err != nil {
			t.Fatal(err)
		}
		fields, required := jsonFields(reflect.TypeOf(p).Elem())
		var props []string
		for k := range s.Properties {
			props = append(props, k)
		}
		sort.Strings(props)
		sort.Strings(s.Required)
		if !reflect.DeepEqual(props, fields) {
			t.Errorf("%s: schema properties %v, Go fields %v", typ, props, fields)
		}
		if !reflect.DeepEqual(s.Required, required) {
			t.Errorf("%s: schema required %v, Go required %v", typ, s.Required, required)
		}
	}
}

func jsonFields(t reflect.Type) (fields, required []string) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if f.Anonymous {
			a, b := jsonFields(f.Type)
			fields = append(fields, a...)
			required = append(required, b...)
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		fields = append(fields, name)
		if !strings.Contains(opts, "omitempty") {
			required = append(required, name)
		}
	}
	sort.Strings(fields)
	sort.Strings(required)
	return fields, required
}

func TestMarshalCarriesContext(t *testing.T) {
	parent := tracecontext.New()
	ctx := tracecontext.WithContext(context.Background(), parent)
	ctx = WithTenant(ctx, "acme")
	ctx = WithCorrelationID(ctx, "req-1")
	p := ChunkCreated{ChunkID: ChunkID("acme", "d1", 1, 0), DocumentID: "d1", TenantID: "acme", Version: 1, Text: "hi"}
	before := time.Now().Add(-time.Second)
	msg, err := Marshal(ctx, "tributary/test", p)
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	if string(msg.Key) != "d1" {
		t.Errorf("key = %q, want d1", msg.Key)
	}
	want := map[string]string{
		HeaderSpecVersion:   "1.0",
		HeaderSource:        "tributary/test",
		HeaderType:          TypeChunkCreated,
		HeaderContentType:   ContentTypeJSON,
		HeaderTenantID:      "acme",
		HeaderCorrelationID: "req-1",
	}
	got := map[string]string{}
	for _, h := range msg.Headers {
		got[h.Key] = string(h.Value)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("header %s = %q, want %q", k, got[k], v)
		}
	}
	tp, err := tracecontext.Parse(got[HeaderTraceParent])
	if err != nil {
		t.Fatalf("traceparent: %v", err)
	}
	if tp.TraceID != parent.TraceID || tp.SpanID == parent.SpanID {
		t.Errorf("traceparent %s is not a child of %s", tp, parent)
	}
	if !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(got[HeaderID]) {
		t.Errorf("ce_id %q is not a UUID v4", got[HeaderID])
	}
	var back ChunkCreated
	env, err := Unmarshal(msg, &back)
	if err != nil {
		t.Fatalf("Unmarshal: %v", err)
	}
	if !reflect.DeepEqual(back, p) {
		t.Errorf("Unmarshal = %+v, want %+v", back, p)
	}
	if env.Time.Before(before) || env.Time.After(time.Now().Add(time.Second)) {
		t.Errorf("ce_time %v is not now", env.Time)
	}
	// The envelope's context continues the trace and keeps tenant and
	// correlation id.
	ctx2 := env.Context(context.Background())
	if Tenant(ctx2) != "acme" || CorrelationID(ctx2) != "req-1" {
		t.Errorf("Context: tenant %q correlation %q", Tenant(ctx2), CorrelationID(ctx2))
	}
	if tp2, ok := tracecontext.FromContext(ctx2); !ok || tp2 != tp {
		t.Errorf("Context traceparent = %v, want %v", tp2, tp)
	}
}

func TestMarshalErrors(t *testing.T) {
	// Without a tenant the envelope is invalid.
	if _, err := Marshal(context.Background(), "s", DocumentDeleted{DocumentID: "d"}); !errors.Is(err, ErrInvalidEnvelope) {
		t.Errorf("Marshal without tenant: %v, want ErrInvalidEnvelope", err)
	}
	// The tenant comes from the payload when ctx has none.
	msg, err := Marshal(context.Background(), "s", DocumentDeleted{DocumentID: "d", TenantID: "acme"})
	if err != nil {
		t.Fatalf("Marshal with payload tenant: %v", err)
	}
	if env, err := ParseHeaders(msg.Headers); err != nil || env.TenantID != "acme" {
		t.Errorf("tenantid = %q, %v; want acme", env.TenantID, err)
	}
	// A payload of another tenant than ctx's is refused.
	if _, err := Marshal(WithTenant(context.Background(), "globex"), "s", DocumentDeleted{DocumentID: "d", TenantID: "acme"}); !errors.Is(err, ErrInvalidEnvelope) {
		t.Errorf("Marshal with tenant mismatch: %v, want ErrInvalidEnvelope", err)
	}
	env := NewEnvelope(WithTenant(context.Background(), "t"), TypeDocumentIndexed, "s")
	if _, err := MarshalWith(env, DocumentDeleted{DocumentID: "d"}); !errors.Is(err, ErrTypeMismatch) {
		t.Errorf("MarshalWith mismatched type: %v, want ErrTypeMismatch", err)
	}
	// Consumers accept events without time; our producers always write it.
	env.Type, env.Time = TypeDocumentDeleted, time.Time{}
	if _, err := MarshalWith(env, DocumentDeleted{DocumentID: "d"}); !errors.Is(err, ErrInvalidEnvelope) {
		t.Errorf("MarshalWith without time: %v, want ErrInvalidEnvelope", err)
	}
}

func TestParseHeadersErrors(t *testing.T) {
	good := NewEnvelope(WithTenant(context.Background(), "t"), TypeAnswerDelta, "s").Headers()
	without := func(key string) []kafka.Header {
		var hs []kafka.Header
		for _, h := range good {
			if h.Key != key {
				hs = append(hs, h)
			}
		}
		return hs
	}
	with := func(key, value string) []kafka.Header {
		return append(without(key), kafka.Header{Key: key, Value: []byte(value)})
	}
	tests := []struct {
		name    string
		headers []kafka.Header
		wantErr error
	}{
		{"good", good, nil},
		{"no headers", nil, ErrInvalidEnvelope},
		{"no spec version", without(HeaderSpecVersion), ErrInvalidEnvelope},
		{"spec version 0.3", with(HeaderSpecVersion, "0.3"), ErrInvalidEnvelope},
		{"no id", without(HeaderID), ErrInvalidEnvelope},
		{"no type", without(HeaderType), ErrInvalidEnvelope},
		{"no source", without(HeaderSource), ErrInvalidEnvelope},
		{"no tenant", without(HeaderTenantID), ErrInvalidEnvelope},
		{"bad time", with(HeaderTime, "yesterday"), ErrInvalidEnvelope},
		{"no time: optional in CloudEvents", without(HeaderTime), nil},
		{"legacy tenant header", append(without(HeaderTenantID), kafka.Header{Key: LegacyHeaderTenantID, Value: []byte("t")}), nil},
		{"xml", with(HeaderContentType, "application/xml"), ErrInvalidEnvelope},
		{"bad traceparent is dropped", with(HeaderTraceParent, "garbage"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseHeaders(tt.headers)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Errorf("ParseHeaders() = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	ctx := WithTenant(context.Background(), "t")
	msg, err := Marshal(ctx, "s", AnswerDelta{RequestID: "r", TenantID: "t", Text: "x"})
	if err != nil {
		t.Fatal(err)
	}
	unknown := msg
	unknown.Headers = NewEnvelope(ctx, "tributary.nope", "s").Headers()
	notJSON := msg
	notJSON.Value = []byte("{")
	audit := msg
	audit.Headers = NewEnvelope(ctx, AuditTypePrefix+AuditKindAuthFailed, "s").Headers()
	tests := []struct {
		name    string
		msg     kafka.Message
		wantErr error
	}{
		{"good", msg, nil},
		{"unknown type", unknown, ErrUnknownType},
		{"bad json", notJSON, ErrInvalidPayload},
		// An audit type over a payload without "kind": the kind comes from
		// the type, and schema validation is what rejects the payload.
		{"audit type, no kind", audit, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Decode(tt.msg)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Errorf("Decode() = %v, want %v", err, tt.wantErr)
			}
		})
	}
	var d DocumentDeleted
	if _, err := Unmarshal(msg, &d); !errors.Is(err, ErrTypeMismatch) {
		t.Errorf("Unmarshal into wrong type: %v, want ErrTypeMismatch", err)
	}
}

func TestChunkID(t *testing.T) {
	tests := []struct {
		tenant, doc    string
		version, index int
		want           string
	}{
		// Golden values from Python's uuid.uuid5 over the same names.
		{"acme", "doc-7f3a", 2, 1, "acdffc58-e424-53c0-80d3-2e6f781394a9"},
		{"tenant", "文档-1", 1, 0, "9a14c687-433f-52a5-bb4c-ec875ed90ab0"},
	}
	for _, tt := range tests {
		if got := ChunkID(tt.tenant, tt.doc, tt.version, tt.index); got != tt.want {
			t.Errorf("ChunkID(%q, %q, %d, %d) = %s, want %s", tt.tenant, tt.doc, tt.version, tt.index, got, tt.want)
		}
	}
	seen := map[string]bool{}
	for _, in := range [][4]any{{"a", "b", 1, 0}, {"a", "b", 1, 1}, {"a", "b", 2, 0}, {"b", "b", 1, 0}, {"a/b", "", 1, 0}, {"a", "/b", 1, 0}} {
		id := ChunkID(in[0].(string), in[1].(string), in[2].(int), in[3].(int))
		if seen[id] {
			t.Errorf("ChunkID%v collides", in)
		}
		seen[id] = true
	}
	if DeterministicID("a", "b") != DeterministicID("a", "b") || DeterministicID("a", "b") == DeterministicID("ab") {
		t.Error("DeterministicID is not deterministic or is ambiguous")
	}
}

func TestTopics(t *testing.T) {
	tp := NewTopics("")
	if tp.Chunks != "tributary.chunks.v1" || tp.AuditEvents != "tributary.audit.events.v1" {
		t.Errorf("NewTopics(\"\") = %+v", tp)
	}
	staging := NewTopics("staging.tributary")
	if got := DLQ(staging.QueriesApproved); got != "staging.tributary.queries.approved.v1.dlq" {
		t.Errorf("DLQ = %q", got)
	}
	if len(tp.All()) != len(Catalog()) {
		t.Errorf("All() has %d topics, Catalog() %d", len(tp.All()), len(Catalog()))
	}
	for i, info := range Catalog() {
		if want := TopicName("", info.Topic); tp.All()[i] != want {
			t.Errorf("All()[%d] = %s, want %s", i, tp.All()[i], want)
		}
	}
	for _, tt := range []struct {
		prefix string
		ok     bool
	}{{"tributary", true}, {"prod.eu-1", true}, {"", false}, {".x", false}, {"a..b", false}, {"a b", false}, {strings.Repeat("a", 181), false}} {
		if err := ValidatePrefix(tt.prefix); (err == nil) != tt.ok {
			t.Errorf("ValidatePrefix(%q) = %v, want ok=%v", tt.prefix, err, tt.ok)
		}
	}
}

func FuzzDecode(f *testing.F) {
	files, _ := filepath.Glob("testdata/fixtures/*.json")
	for _, file := range files {
		b, _ := os.ReadFile(file)
		var fx fixture
		if json.Unmarshal(b, &fx) == nil {
			f.Add(fx.Headers[HeaderType], fx.Headers[HeaderTime], fx.Headers[HeaderTraceParent], []byte(fx.Data))
		}
	}
	v, err := NewValidator()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, typ, ts, tp string, data []byte) {
		msg := kafka.Message{Value: data, Headers: []kafka.Header{
			{Key: HeaderSpecVersion, Value: []byte("1.0")},
			{Key: HeaderID, Value: []byte("id")},
			{Key: HeaderSource, Value: []byte("s")},
			{Key: HeaderType, Value: []byte(typ)},
			{Key: HeaderTime, Value: []byte(ts)},
			{Key: HeaderTraceParent, Value: []byte(tp)},
			{Key: HeaderTenantID, Value: []byte("t")},
		}}
		env, p, err := Decode(msg)
		if err != nil {
			return
		}
		if env.Type != p.EventType() {
			t.Fatalf("Decode returned %T for %q", p, env.Type)
		}
		_ = v.Validate(typ, data)
		if _, err := json.Marshal(p); err != nil {
			t.Fatalf("re-marshal: %v", err)
		}
		if !bytes.Equal([]byte(env.Type), []byte(typ)) {
			t.Fatalf("type changed")
		}
	})
}
