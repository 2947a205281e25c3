package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/tributary-rag/tributary/pkg/events"
)

// asyncAPIPath is the AsyncAPI document of the event contract, relative to
// this module.
const asyncAPIPath = "../../docs/asyncapi.yaml"

// TestAsyncAPIUpToDate fails when docs/asyncapi.yaml differs from what
// pkg/events (topic catalog, envelope headers, JSON Schemas) describes.
// TRIBUTARY_UPDATE_ASYNCAPI=1 rewrites it.
func TestAsyncAPIUpToDate(t *testing.T) {
	want, err := renderAsyncAPI()
	if err != nil {
		t.Fatal(err)
	}
	if os.Getenv("TRIBUTARY_UPDATE_ASYNCAPI") == "1" {
		if err := os.WriteFile(asyncAPIPath, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(asyncAPIPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is out of date with pkg/events: regenerate it with\n  cd cmd/tributary && TRIBUTARY_UPDATE_ASYNCAPI=1 go test -run TestAsyncAPIUpToDate .", filepath.Clean(asyncAPIPath))
	}
}

// renderAsyncAPI renders the AsyncAPI 3.0 document: one channel per topic
// of events.Catalog (address "{prefix}.<topic>"), one message per event
// type with the CloudEvents binary-mode headers of events.Envelope, the
// Kafka key, and the type's JSON Schema as payload.
func renderAsyncAPI() ([]byte, error) {
	headers := map[string]any{
		"type":     "object",
		"required": []string{events.HeaderSpecVersion, events.HeaderID, events.HeaderSource, events.HeaderType, events.HeaderContentType},
		"properties": map[string]any{
			events.HeaderSpecVersion:   map[string]any{"type": "string", "const": events.SpecVersion, "description": "CloudEvents spec version"},
			events.HeaderID:            map[string]any{"type": "string", "description": "event id, unique per event; consumers deduplicate on it"},
			events.HeaderSource:        map[string]any{"type": "string", "description": "producing service"},
			events.HeaderType:          map[string]any{"type": "string", "description": "event type (the message name)"},
			events.HeaderTime:          map[string]any{"type": "string", "format": "date-time"},
			events.HeaderContentType:   map[string]any{"type": "string", "const": events.ContentTypeJSON},
			events.HeaderTraceParent:   map[string]any{"type": "string", "description": "W3C trace context of the producing span"},
			events.HeaderTenantID:      map[string]any{"type": "string", "description": "tenant the event belongs to"},
			events.HeaderCorrelationID: map[string]any{"type": "string", "description": "id shared by every event of one request or document"},
		},
	}
	channels := map[string]any{}
	operations := map[string]any{}
	messages := map[string]any{}
	for _, ti := range events.Catalog() {
		name := channelName(ti.Topic)
		refs := map[string]any{}
		for _, typ := range ti.Types {
			schemaType := typ
			if strings.HasSuffix(typ, "*") {
				schemaType = events.AuditTypePrefix + events.AuditKindAdminAction
			}
			schema, err := events.Schema(schemaType)
			if err != nil {
				return nil, err
			}
			var payload any
			if err := json.Unmarshal(schema, &payload); err != nil {
				return nil, err
			}
			mname := channelName(strings.TrimPrefix(typ, "tributary."))
			if strings.HasSuffix(typ, "*") {
				mname = "auditEvent"
			}
			msgHeaders := headers
			if strings.HasSuffix(typ, "*") {
				msgHeaders = withType(headers, map[string]any{"type": "string", "pattern": "^" + strings.ReplaceAll(events.AuditTypePrefix, ".", `\.`)})
			} else {
				msgHeaders = withType(headers, map[string]any{"type": "string", "const": typ})
			}
			messages[mname] = map[string]any{
				"name":        typ,
				"contentType": events.ContentTypeJSON,
				"headers":     msgHeaders,
				"payload": map[string]any{
					"schemaFormat": "application/schema+json;version=2020-12",
					"schema":       payload,
				},
				"bindings": map[string]any{"kafka": map[string]any{
					"key":            map[string]any{"type": "string", "description": "the payload's " + ti.Key},
					"bindingVersion": "0.5.0",
				}},
			}
			refs[mname] = map[string]any{"$ref": "#/components/messages/" + mname}
		}
		channels[name] = map[string]any{
			"address":     "{prefix}." + ti.Topic,
			"description": "Kafka key: " + ti.Key + ". Dead letters go to the same address with the suffix " + events.DLQSuffix + ".",
			"parameters":  map[string]any{"prefix": map[string]any{"$ref": "#/components/parameters/prefix"}},
			"messages":    refs,
		}
		operations["send"+upperFirst(name)] = map[string]any{
			"action":  "send",
			"channel": map[string]any{"$ref": "#/channels/" + name},
		}
	}
	doc := map[string]any{
		"asyncapi": "3.0.0",
		"info": map[string]any{
			"title":   "Tributary events",
			"version": "1",
			"description": "The Kafka contract between Tributary's services (docs/events.md): CloudEvents 1.0 in binary mode, " +
				"JSON payloads. Generated from pkg/events by cmd/tributary's TestAsyncAPIUpToDate; do not edit by hand.",
		},
		"defaultContentType": events.ContentTypeJSON,
		"channels":           channels,
		"operations":         operations,
		"components": map[string]any{
			"messages": messages,
			"parameters": map[string]any{"prefix": map[string]any{
				"default":     events.DefaultPrefix,
				"description": "topic prefix (TRIBUTARY_TOPIC_PREFIX)",
			}},
		},
	}
	var buf bytes.Buffer
	buf.WriteString("# Generated from pkg/events by cmd/tributary TestAsyncAPIUpToDate. Do not edit.\n")
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	return buf.Bytes(), enc.Close()
}

func withType(headers map[string]any, typ map[string]any) map[string]any {
	props := map[string]any{}
	for k, v := range headers["properties"].(map[string]any) {
		props[k] = v
	}
	props[events.HeaderType] = typ
	out := map[string]any{}
	for k, v := range headers {
		out[k] = v
	}
	out["properties"] = props
	return out
}

// channelName turns "chunks.embedded.v1" into "chunksEmbeddedV1".
func channelName(s string) string {
	parts := strings.FieldsFunc(s, func(r rune) bool { return r == '.' || r == '_' || r == '*' })
	for i := 1; i < len(parts); i++ {
		parts[i] = upperFirst(parts[i])
	}
	return strings.Join(parts, "")
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
