package retrieve

import (
	"context"
	"errors"
	"math"
	"testing"

	"github.com/segmentio/kafka-go"

	"github.com/tributary-rag/tributary/pkg/events"
	"github.com/tributary-rag/tributary/pkg/kafkatransport"
)

func TestValidateChunk(t *testing.T) {
	s := &service{ix: NewIndex(nil, "c", 4)}
	good := func() events.ChunkEmbedded {
		return events.ChunkEmbedded{
			ChunkCreated: events.ChunkCreated{
				ChunkID: events.ChunkID("acme", "doc", 2, 1), DocumentID: "doc", TenantID: "acme",
				Version: 2, Index: 1, ChunkCount: 3, Text: "x",
			},
			Sparse: &events.SparseVector{Indices: []uint32{1, 2}, Values: []float32{1, 1}},
		}
	}
	tests := []struct {
		name   string
		mutate func(*events.ChunkEmbedded)
		ok     bool
	}{
		{"good sparse", func(*events.ChunkEmbedded) {}, true},
		{"good dense only", func(c *events.ChunkEmbedded) { c.Sparse, c.Dense = nil, []float32{1, 0, 0, 0} }, true},
		{"no tenant", func(c *events.ChunkEmbedded) { c.TenantID = "" }, false},
		{"no document", func(c *events.ChunkEmbedded) { c.DocumentID = "" }, false},
		{"version 0", func(c *events.ChunkEmbedded) { c.Version = 0 }, false},
		{"index past count", func(c *events.ChunkEmbedded) { c.Index = 3 }, false},
		{"negative index", func(c *events.ChunkEmbedded) { c.Index = -1 }, false},
		{"other tenant's chunk id", func(c *events.ChunkEmbedded) { c.ChunkID = events.ChunkID("globex", "doc", 2, 1) }, false},
		{"no vector", func(c *events.ChunkEmbedded) { c.Sparse = nil }, false},
		{"empty sparse", func(c *events.ChunkEmbedded) { c.Sparse = &events.SparseVector{} }, false},
		{"dense of wrong size", func(c *events.ChunkEmbedded) { c.Dense = []float32{1, 2} }, false},
		{"NaN in dense", func(c *events.ChunkEmbedded) { c.Dense = []float32{1, float32(math.NaN()), 0, 0} }, false},
		{"sparse lengths differ", func(c *events.ChunkEmbedded) { c.Sparse.Values = []float32{1} }, false},
		{"sparse repeats an index", func(c *events.ChunkEmbedded) { c.Sparse.Indices = []uint32{2, 2} }, false},
		{"Inf in sparse", func(c *events.ChunkEmbedded) { c.Sparse.Values = []float32{1, float32(math.Inf(1))} }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := good()
			tt.mutate(&c)
			err := s.validateChunk(c)
			if tt.ok && err != nil {
				t.Errorf("validateChunk = %v, want nil", err)
			}
			if !tt.ok && !errors.Is(err, ErrInvalid) {
				t.Errorf("validateChunk = %v, want ErrInvalid", err)
			}
		})
	}
}

func TestDocStateSupersedes(t *testing.T) {
	tests := []struct {
		st   DocState
		v    int
		want bool
	}{
		{DocState{}, 1, false},
		{DocState{Indexed: 3}, 2, true},
		{DocState{Indexed: 3}, 3, false},
		{DocState{Indexed: 3}, 4, false},
		{DocState{Deleted: 3}, 3, true},
		{DocState{Deleted: 3}, 4, false},
		{DocState{Indexed: 2, Deleted: 5}, 5, true},
	}
	for _, tt := range tests {
		if got := tt.st.Supersedes(tt.v); got != tt.want {
			t.Errorf("%+v.Supersedes(%d) = %v, want %v", tt.st, tt.v, got, tt.want)
		}
	}
}

// FuzzDecode feeds hostile values and headers to the three decoders: they
// must never panic, and every failure must be permanent.
func FuzzDecode(f *testing.F) {
	f.Add(events.TypeChunkEmbedded, "acme", []byte(`{"chunk_id":"x","tenant_id":"acme","sparse":{"indices":[1],"values":[1]}}`))
	f.Add(events.TypeQueryEmbedded, "acme", []byte(`{"request_id":"r","tenant_id":"acme","top_k":-1}`))
	f.Add(events.TypeDocumentDeleted, "acme", []byte(`{"document_id":"d","tenant_id":"acme","version":1}`))
	f.Add(events.TypeDocumentIndexed, "", []byte(`null`))
	f.Add("tributary.unknown", "acme", []byte(`{}`))
	f.Fuzz(func(t *testing.T, typ, tenant string, value []byte) {
		env := events.NewEnvelope(events.WithTenant(context.Background(), tenant), typ, "fuzz")
		msg := kafka.Message{Value: value, Headers: env.Headers()}
		for _, dec := range []kafkatransport.DecodeRequestFunc{DecodeChunkEmbedded, DecodeDocumentEvent, DecodeQueryEmbedded} {
			if _, err := dec(context.Background(), msg); err != nil && !kafkatransport.IsPermanent(err) {
				t.Errorf("decode error %v is not permanent", err)
			}
		}
	})
}
