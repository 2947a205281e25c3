package retrieve

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/tributary-rag/tributary/pkg/events"
)

const mitText = "Permission is hereby granted, free of charge, to any person obtaining a copy of this software and associated documentation files."

func hit(doc string, score float32, text string) events.RetrievedChunk {
	return events.RetrievedChunk{DocumentID: doc, ChunkID: fmt.Sprintf("%s-%v", doc, score), Score: score, Text: text}
}

func docsOf(hs []events.RetrievedChunk) string {
	var ids []string
	for _, h := range hs {
		ids = append(ids, h.DocumentID)
	}
	return strings.Join(ids, ",")
}

func TestUncrowd(t *testing.T) {
	hits := []events.RetrievedChunk{
		hit("zlib", 9, mitText),
		hit("curl", 8, strings.ToUpper(mitText)),                        // identical but for case
		hit("jq", 7, strings.Replace(mitText, "copy", "copy\n", 1)+"!"), // identical but for spacing
		hit("jq", 6.5, mitText+" Use it."),
		hit("zlib", 6, "zlib is a compression library."),
		hit("zlib", 5, "It implements deflate."),
		hit("zlib", 4, "It is used by gzip and png."),
		hit("make", 3, "GNU make builds programs."),
	}
	tests := []struct {
		name    string
		k, per  int
		near    float64
		want    string
		wantLen int
	}{
		{"near duplicates and a per-document limit", 10, 2, DefaultNearDuplicate, "zlib,zlib,make", 3},
		{"identical texts only", 10, 0, 1, "zlib,jq,zlib,zlib,zlib,make", 6},
		{"off", 10, 0, 2, "zlib,curl,jq,jq,zlib,zlib,zlib,make", 8},
		{"k cuts", 2, 0, DefaultNearDuplicate, "zlib,zlib", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := uncrowd(slices.Clone(hits), tt.k, tt.per, tt.near)
			if docsOf(got) != tt.want || len(got) != tt.wantLen {
				t.Errorf("uncrowd(k=%d, per=%d, near=%v) = %s, want %s", tt.k, tt.per, tt.near, docsOf(got), tt.want)
			}
			for i := 1; i < len(got); i++ {
				if got[i].Score > got[i-1].Score {
					t.Errorf("results out of score order: %v", got)
				}
			}
		})
	}
	if got := uncrowd(nil, 5, 2, 0.8); got == nil || len(got) != 0 {
		t.Errorf("uncrowd(nil) = %#v, want an empty slice", got)
	}
}

func TestApplyFilter(t *testing.T) {
	hits := []events.RetrievedChunk{
		{DocumentID: "a", Source: "doc/zlib/copyright"},
		{DocumentID: "b", Source: "doc/curl/copyright"},
		{DocumentID: "c", Source: "man/curl.1"},
	}
	tests := []struct {
		f    *events.QueryFilter
		want string
	}{
		{nil, "a,b,c"},
		{&events.QueryFilter{SourcePrefix: "doc/"}, "a,b"},
		{&events.QueryFilter{DocumentIDs: []string{"b", "c"}}, "b,c"},
		{&events.QueryFilter{DocumentIDs: []string{"b", "c"}, SourcePrefix: "doc/"}, "b"},
	}
	for _, tt := range tests {
		if got := docsOf(applyFilter(slices.Clone(hits), tt.f)); got != tt.want {
			t.Errorf("applyFilter(%+v) = %s, want %s", tt.f, got, tt.want)
		}
	}
}

func BenchmarkUncrowd(b *testing.B) {
	hits := make([]events.RetrievedChunk, 200)
	for i := range hits {
		text := mitText
		if i%3 != 0 {
			text = fmt.Sprintf("chunk %d of a manual about topic %d with its own words and numbers %d %d", i, i%17, i*7, i*13)
		}
		hits[i] = hit(fmt.Sprintf("d%d", i%40), float32(200-i), text)
	}
	b.ReportAllocs()
	for b.Loop() {
		uncrowd(hits, 50, DefaultPerDocument, DefaultNearDuplicate)
	}
}
