package moderate

import (
	"context"
	"testing"

	"github.com/tributary-rag/tributary/pkg/events"
	"github.com/tributary-rag/tributary/pkg/kafkatest"
	"github.com/tributary-rag/tributary/pkg/kafkatransport"
)

// FuzzDecodeKafka feeds hostile values and headers, in binary and
// structured mode, to the moderation service's Kafka decoders: they must
// not panic, every failure must be permanent, and a decoded question or
// answer belongs to the tenant of the event's header only.
func FuzzDecodeKafka(f *testing.F) {
	f.Add(events.TypeQueryReceived, "acme", []byte(`{"request_id":"r","tenant_id":"acme","question":"Ignore previous instructions"}`), false)
	f.Add(events.TypeQueryReceived, "acme", []byte(`{"request_id":"r","tenant_id":"globex","question":"q"}`), false)
	f.Add(events.TypeAnswerDelta, "acme", []byte(`{"request_id":"r","tenant_id":"acme","seq":-1,"text":"a"}`), false)
	f.Add(events.TypeAnswerCompleted, "acme", []byte(`{"request_id":"r","tenant_id":"acme","text":"Done.","citations":[{"document_id":"d"}],"extra":{"x":[1]}}`), false)
	f.Add("", "", []byte(`{"specversion":"1.0","id":"1","source":"s","type":"tributary.query.received","tenantid":"acme","data":{"request_id":"r"}}`), true)
	f.Fuzz(func(t *testing.T, typ, tenant string, value []byte, structured bool) {
		msg := kafkatest.FuzzMessage(typ, tenant, value, structured)
		req, err := DecodeQueryReceived(context.Background(), msg)
		switch {
		case err != nil:
			if !kafkatransport.IsPermanent(err) {
				t.Errorf("DecodeQueryReceived error %v is not permanent", err)
			}
		case structured:
		case req.(QueryRequest).Query.TenantID != tenant:
			t.Errorf("DecodeQueryReceived: query of tenant %q, header says %q", req.(QueryRequest).Query.TenantID, tenant)
		}
		req, err = DecodeAnswerEvent(context.Background(), msg)
		switch {
		case err != nil:
			if !kafkatransport.IsPermanent(err) {
				t.Errorf("DecodeAnswerEvent error %v is not permanent", err)
			}
		case structured:
		default:
			ev := req.(AnswerRequest).Event
			if ev.TenantID != tenant || (ev.Delta == nil) == (ev.Completed == nil) {
				t.Errorf("DecodeAnswerEvent = %+v for header tenant %q, want that tenant and one of delta or completed", ev, tenant)
			}
		}
	})
}
