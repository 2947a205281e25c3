package ingest

import (
	"context"
	"testing"

	"github.com/tributary-rag/tributary/pkg/events"
	"github.com/tributary-rag/tributary/pkg/kafkatest"
	"github.com/tributary-rag/tributary/pkg/kafkatransport"
)

// FuzzDecodeKafka feeds hostile values and headers, in binary and
// structured mode, to the ingest service's Kafka decoders: they must not
// panic, every failure must be permanent (a retry cannot fix a message), and
// a decoded request acts for the tenant of the event's header only.
func FuzzDecodeKafka(f *testing.F) {
	f.Add(events.TypeIngestRequested, "acme", []byte(`{"document_id":"d","tenant_id":"acme","title":"T","content_type":"text/plain","content":"aGk="}`), false)
	f.Add(events.TypeIngestRequested, "acme", []byte(`{"tenant_id":"globex","content":"x"}`), false)
	f.Add(events.TypeDocumentIndexed, "acme", []byte(`{"document_id":"d","tenant_id":"acme","version":3}`), false)
	f.Add(events.TypeDocumentAccepted, "", []byte(`null`), false)
	f.Add("", "acme", []byte(`{"specversion":"1.0","id":"1","source":"s","type":"tributary.ingest.requested","tenantid":"acme","data":{"tenant_id":"acme"}}`), true)
	f.Fuzz(func(t *testing.T, typ, tenant string, value []byte, structured bool) {
		msg := kafkatest.FuzzMessage(typ, tenant, value, structured)
		req, err := DecodeIngestRequested(context.Background(), msg)
		switch {
		case err != nil:
			if !kafkatransport.IsPermanent(err) {
				t.Errorf("DecodeIngestRequested error %v is not permanent", err)
			}
		case structured:
		case req.(IngestRequest).Principal.Tenant != tenant:
			t.Errorf("DecodeIngestRequested acts for tenant %q, header says %q", req.(IngestRequest).Principal.Tenant, tenant)
		}
		req, err = DecodeDocumentEvent(context.Background(), msg)
		switch {
		case err != nil:
			if !kafkatransport.IsPermanent(err) {
				t.Errorf("DecodeDocumentEvent error %v is not permanent", err)
			}
		case structured:
		default:
			if r, ok := req.(MarkIndexedRequest); ok && r.Tenant != tenant {
				t.Errorf("DecodeDocumentEvent acts for tenant %q, header says %q", r.Tenant, tenant)
			}
		}
	})
}
