package vectordb

import (
	"context"
	"testing"

	"github.com/qdrant/go-client/qdrant"
)

func TestSelectorPredicate(t *testing.T) {
	tests := []struct {
		name     string
		sel      *qdrant.PointsSelector
		wantPred bool // a predicate, which must match every point when the filter is empty
		wantErr  bool
	}{
		{"ids", qdrant.NewPointsSelector(qdrant.NewIDNum(1), qdrant.NewIDUUID("00000000-0000-0000-0000-000000000001")), false, false},
		{"bad uuid", qdrant.NewPointsSelector(qdrant.NewIDUUID("nope")), false, true},
		{"filter", qdrant.NewPointsSelectorFilter(&qdrant.Filter{Must: []*qdrant.Condition{qdrant.NewMatchKeyword("k", "v")}}), true, false},
		{"empty filter matches all", qdrant.NewPointsSelectorFilter(&qdrant.Filter{}), true, false},
		{"unimplemented filter", qdrant.NewPointsSelectorFilter(&qdrant.Filter{Must: []*qdrant.Condition{qdrant.NewHasVector("v")}}), false, true},
		{"empty selector", &qdrant.PointsSelector{}, false, true},
		{"nil selector", nil, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pred, err := selectorPredicate(tt.sel)
			if (err != nil) != tt.wantErr {
				t.Fatalf("selectorPredicate(%v) error = %v, want error %v", tt.sel, err, tt.wantErr)
			}
			if (pred != nil) != tt.wantPred {
				t.Fatalf("selectorPredicate(%v) predicate set = %v, want %v", tt.sel, pred != nil, tt.wantPred)
			}
			if pred != nil && len(tt.sel.GetFilter().GetMust()) == 0 && !pred(pointID{num: 1}, nil) {
				t.Errorf("selectorPredicate(%v) with an empty filter does not match every point", tt.sel)
			}
		})
	}
}

func TestUpdatesRefuseBadSelectors(t *testing.T) {
	s := mustOpen(t, t.TempDir())
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	ctx := context.Background()
	if err := s.CreateCollection(ctx, &qdrant.CreateCollection{CollectionName: "c",
		VectorsConfig: qdrant.NewVectorsConfig(&qdrant.VectorParams{Size: 2, Distance: qdrant.Distance_Dot})}); err != nil {
		t.Fatalf("CreateCollection: %v", err)
	}
	tests := []struct {
		name string
		sel  *qdrant.PointsSelector
	}{
		{"empty selector", &qdrant.PointsSelector{}},
		{"bad uuid", qdrant.NewPointsSelector(qdrant.NewIDUUID("nope"))},
		{"unimplemented filter", qdrant.NewPointsSelectorFilter(&qdrant.Filter{Must: []*qdrant.Condition{qdrant.NewHasVector("v")}})},
	}
	for _, tt := range tests {
		if _, err := s.Delete(ctx, &qdrant.DeletePoints{CollectionName: "c", Points: tt.sel, Wait: wait()}); err == nil {
			t.Errorf("Delete(%s) succeeded, want an error", tt.name)
		}
		if _, err := s.SetPayload(ctx, &qdrant.SetPayloadPoints{CollectionName: "c", PointsSelector: tt.sel, Wait: wait(),
			Payload: qdrant.NewValueMap(map[string]any{"a": 1})}, false); err == nil {
			t.Errorf("SetPayload(%s) succeeded, want an error", tt.name)
		}
	}
	if _, err := s.Delete(ctx, &qdrant.DeletePoints{CollectionName: "missing", Points: &qdrant.PointsSelector{}}); err == nil {
		t.Errorf("Delete on a missing collection succeeded, want an error")
	}
}
