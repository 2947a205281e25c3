package vectordb

import (
	"testing"

	"github.com/qdrant/go-client/qdrant"
)

func TestParseKeyPath(t *testing.T) {
	tests := []struct {
		in   string
		want int // number of items; -1 for an error
	}{
		{"a", 1}, {"a.b.c", 3}, {"a[].b", 3}, {"a[0]", 2}, {`"x.y".z`, 2}, {"a[][]", 3},
		{"", -1}, {"a..b", -1}, {"a[", -1}, {"a[x]", -1}, {`"a`, -1}, {"a.", -1}, {"[0]", -1}, {"a]b", 1}, // lenient: Qdrant would ask for quotes
	}
	for _, tt := range tests {
		p, err := parseKeyPath(tt.in)
		got := len(p)
		if err != nil {
			got = -1
		}
		if got != tt.want {
			t.Errorf("parseKeyPath(%q) = %d items (err %v), want %d", tt.in, got, err, tt.want)
		}
	}
}

func TestFilterConditions(t *testing.T) {
	payload := qdrant.NewValueMap(map[string]any{
		"city":  "Berlin",
		"tags":  []any{"a", "b"},
		"n":     int64(5),
		"f":     5.0,
		"empty": []any{},
		"null":  nil,
		"text":  "the quick brown fox",
		"items": []any{map[string]any{"sku": "x1", "qty": int64(2)}, map[string]any{"sku": "y2", "qty": int64(9)}},
		"obj":   map[string]any{"deep": map[string]any{"v": true}},
	})
	id := pointID{num: 7}
	c := func(cs ...*qdrant.Condition) []*qdrant.Condition { return cs }
	tests := []struct {
		name   string
		filter *qdrant.Filter
		want   bool
	}{
		{"keyword", &qdrant.Filter{Must: c(qdrant.NewMatchKeyword("city", "Berlin"))}, true},
		{"keyword mismatch", &qdrant.Filter{Must: c(qdrant.NewMatchKeyword("city", "berlin"))}, false},
		{"keyword in array", &qdrant.Filter{Must: c(qdrant.NewMatchKeyword("tags", "b"))}, true},
		{"integer does not match float", &qdrant.Filter{Must: c(qdrant.NewMatchInt("f", 5))}, false},
		{"integer", &qdrant.Filter{Must: c(qdrant.NewMatchInt("n", 5))}, true},
		{"nested bool", &qdrant.Filter{Must: c(qdrant.NewMatchBool("obj.deep.v", true))}, true},
		{"key does not descend arrays", &qdrant.Filter{Must: c(qdrant.NewMatchKeyword("items.sku", "x1"))}, false},
		{"wildcard descends arrays", &qdrant.Filter{Must: c(qdrant.NewMatchKeyword("items[].sku", "x1"))}, true},
		{"index", &qdrant.Filter{Must: c(qdrant.NewMatchKeyword("items[1].sku", "x1"))}, false},
		{"text substring", &qdrant.Filter{Must: c(qdrant.NewMatchText("text", "brown"))}, true},
		{"except keywords", &qdrant.Filter{Must: c(qdrant.NewMatchExceptKeywords("city", "Berlin", "Paris"))}, false},
		{"except keywords, other", &qdrant.Filter{Must: c(qdrant.NewMatchExceptKeywords("city", "Paris"))}, true},
		{"except integers, missing field", &qdrant.Filter{Must: c(qdrant.NewMatchExceptInts("missing", 1))}, true},
		{"except integers", &qdrant.Filter{Must: c(qdrant.NewMatchExceptInts("n", 5))}, false},
		{"except keywords, other kind", &qdrant.Filter{Must: c(qdrant.NewMatchExceptKeywords("n", "5"))}, true},
		{"except keywords, empty array", &qdrant.Filter{Must: c(qdrant.NewMatchExceptKeywords("empty", "a"))}, true},
		{"except keywords, array all excluded", &qdrant.Filter{Must: c(qdrant.NewMatchExceptKeywords("tags", "a", "b"))}, false},
		{"except keywords, array one outside", &qdrant.Filter{Must: c(qdrant.NewMatchExceptKeywords("tags", "a"))}, true},
		{"keyword, empty array", &qdrant.Filter{Must: c(qdrant.NewMatchKeyword("empty", "a"))}, false},
		{"range int", &qdrant.Filter{Must: c(qdrant.NewRange("n", &qdrant.Range{Gte: ptr(5.0), Lt: ptr(6.0)}))}, true},
		{"range exclusive", &qdrant.Filter{Must: c(qdrant.NewRange("f", &qdrant.Range{Gt: ptr(5.0)}))}, false},
		{"range on string", &qdrant.Filter{Must: c(qdrant.NewRange("city", &qdrant.Range{Gt: ptr(0.0)}))}, false},
		{"values count", &qdrant.Filter{Must: c(qdrant.NewValuesCount("tags", &qdrant.ValuesCount{Gte: ptr[uint64](2)}))}, true},
		{"is empty: empty array", &qdrant.Filter{Must: c(qdrant.NewIsEmpty("empty"))}, true},
		{"is empty: null", &qdrant.Filter{Must: c(qdrant.NewIsEmpty("null"))}, true},
		{"is empty: missing", &qdrant.Filter{Must: c(qdrant.NewIsEmpty("missing"))}, true},
		{"is empty: value", &qdrant.Filter{Must: c(qdrant.NewIsEmpty("city"))}, false},
		{"is null", &qdrant.Filter{Must: c(qdrant.NewIsNull("null"))}, true},
		{"is null: missing", &qdrant.Filter{Must: c(qdrant.NewIsNull("missing"))}, false},
		{"has id", &qdrant.Filter{Must: c(qdrant.NewHasID(qdrant.NewIDNum(7)))}, true},
		{"has id other", &qdrant.Filter{Must: c(qdrant.NewHasID(qdrant.NewIDNum(8)))}, false},
		{"should none", &qdrant.Filter{Should: c(qdrant.NewMatchInt("n", 1), qdrant.NewMatchInt("n", 2))}, false},
		{"should one", &qdrant.Filter{Should: c(qdrant.NewMatchInt("n", 1), qdrant.NewMatchInt("n", 5))}, true},
		{"must not", &qdrant.Filter{MustNot: c(qdrant.NewMatchInt("n", 5))}, false},
		{"min should 2 of 3", &qdrant.Filter{MinShould: &qdrant.MinShould{MinCount: 2, Conditions: c(
			qdrant.NewMatchInt("n", 5), qdrant.NewMatchKeyword("city", "Berlin"), qdrant.NewMatchInt("n", 1))}}, true},
		{"min should 3 of 3", &qdrant.Filter{MinShould: &qdrant.MinShould{MinCount: 3, Conditions: c(
			qdrant.NewMatchInt("n", 5), qdrant.NewMatchKeyword("city", "Berlin"), qdrant.NewMatchInt("n", 1))}}, false},
		{"nested object filter", &qdrant.Filter{Must: c(qdrant.NewNestedFilter("items", &qdrant.Filter{Must: c(
			qdrant.NewMatchKeyword("sku", "x1"), qdrant.NewRange("qty", &qdrant.Range{Gt: ptr(5.0)}))}))}, false},
		{"nested object filter, one element", &qdrant.Filter{Must: c(qdrant.NewNestedFilter("items", &qdrant.Filter{Must: c(
			qdrant.NewMatchKeyword("sku", "y2"), qdrant.NewRange("qty", &qdrant.Range{Gt: ptr(5.0)}))}))}, true},
		{"sub-filter", &qdrant.Filter{Must: c(qdrant.NewFilterAsCondition(&qdrant.Filter{MustNot: c(qdrant.NewMatchInt("n", 5))}))}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := compileFilter(tt.filter)
			if err != nil {
				t.Fatalf("compileFilter: %v", err)
			}
			if got := p(id, payload); got != tt.want {
				t.Errorf("filter %v = %v, want %v", tt.filter, got, tt.want)
			}
		})
	}
}

func TestFilterUnimplementedConditions(t *testing.T) {
	tests := []*qdrant.Condition{
		qdrant.NewGeoRadius("loc", 1, 2, 3),
		qdrant.NewHasVector("v"),
		qdrant.NewMatchPhrase("t", "a b"),
	}
	for _, tt := range tests {
		if _, err := compileFilter(&qdrant.Filter{Must: []*qdrant.Condition{tt}}); err == nil {
			t.Errorf("compileFilter(%v) succeeded, want an Unimplemented error", tt)
		}
	}
}
