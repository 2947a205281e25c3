package generate

import (
	"context"
	"testing"

	"github.com/tributary-rag/tributary/pkg/events"
	"github.com/tributary-rag/tributary/pkg/kafkatest"
	"github.com/tributary-rag/tributary/pkg/kafkatransport"
)

// FuzzDecodeKafka feeds hostile values and headers, in binary and
// structured mode, to the generation service's Kafka decoder: it must not
// panic, every failure must be permanent, and a decoded question belongs to
// the tenant of the event's header only.
func FuzzDecodeKafka(f *testing.F) {
	f.Add(events.TypeQueryRetrieved, "acme", []byte(`{"request_id":"r","tenant_id":"acme","question":"q","results":[{"chunk_id":"c","document_id":"d","text":"t","score":0.5}]}`), false)
	f.Add(events.TypeQueryRetrieved, "acme", []byte(`{"request_id":"r","tenant_id":"globex"}`), false)
	f.Add(events.TypeQueryRetrieved, "", []byte(`{"request_id":"","results":null}`), false)
	f.Add("", "", []byte(`{"specversion":"1.0","id":"1","source":"s","type":"tributary.query.retrieved","tenantid":"acme","data":{"request_id":"r"}}`), true)
	f.Fuzz(func(t *testing.T, typ, tenant string, value []byte, structured bool) {
		req, err := DecodeQueryRetrieved(context.Background(), kafkatest.FuzzMessage(typ, tenant, value, structured))
		switch {
		case err != nil:
			if !kafkatransport.IsPermanent(err) {
				t.Errorf("DecodeQueryRetrieved error %v is not permanent", err)
			}
		case structured:
		default:
			q := req.(AnswerRequest).Question
			if q.TenantID != tenant || q.RequestID == "" {
				t.Errorf("DecodeQueryRetrieved = %+v for header tenant %q, want that tenant and a request id", q, tenant)
			}
		}
	})
}
