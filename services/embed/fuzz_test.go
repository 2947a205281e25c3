package embed

import (
	"context"
	"testing"

	"github.com/tributary-rag/tributary/pkg/events"
	"github.com/tributary-rag/tributary/pkg/kafkatest"
	"github.com/tributary-rag/tributary/pkg/kafkatransport"
)

// FuzzDecodeKafka feeds hostile values and headers, in binary and
// structured mode, to the embedding service's Kafka decoders, bare and
// behind the JSON Schema check the service wires: they must not panic,
// every failure must be permanent, and a decoded chunk or query belongs to
// the tenant of the event's header only.
func FuzzDecodeKafka(f *testing.F) {
	f.Add(events.TypeChunkCreated, "acme", []byte(`{"chunk_id":"c","document_id":"d","tenant_id":"acme","version":1,"index":0,"text":"hello"}`), false)
	f.Add(events.TypeChunkCreated, "acme", []byte(`{"chunk_id":"c","tenant_id":"globex"}`), false)
	f.Add(events.TypeQueryApproved, "acme", []byte(`{"request_id":"r","tenant_id":"acme","question":"q","top_k":5}`), false)
	f.Add(events.TypeQueryApproved, "", []byte(`[]`), false)
	f.Add("", "", []byte(`{"specversion":"1.0","id":"1","source":"s","type":"tributary.chunk.created","tenantid":"acme","data":{"tenant_id":"acme"}}`), true)
	v, err := events.NewValidator()
	if err != nil {
		f.Fatal(err)
	}
	decoders := []struct {
		name string
		dec  kafkatransport.DecodeRequestFunc
	}{
		{"DecodeChunkCreated", DecodeChunkCreated},
		{"DecodeQueryApproved", DecodeQueryApproved},
		{"validated DecodeChunkCreated", validating(v, DecodeChunkCreated)},
		{"validated DecodeQueryApproved", validating(v, DecodeQueryApproved)},
	}
	f.Fuzz(func(t *testing.T, typ, tenant string, value []byte, structured bool) {
		msg := kafkatest.FuzzMessage(typ, tenant, value, structured)
		for _, d := range decoders {
			req, err := d.dec(context.Background(), msg)
			if err != nil {
				if !kafkatransport.IsPermanent(err) {
					t.Errorf("%s error %v is not permanent", d.name, err)
				}
				continue
			}
			if structured {
				continue
			}
			var got string
			switch r := req.(type) {
			case EmbedChunkRequest:
				got = r.Chunk.TenantID
			case EmbedQueryRequest:
				got = r.Query.TenantID
			default:
				t.Fatalf("%s returned %T", d.name, req)
			}
			if got != tenant {
				t.Errorf("%s: tenant %q, header says %q", d.name, got, tenant)
			}
		}
	})
}
