package embed

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/tributary-rag/tributary/pkg/events"
)

// TestChunkContextIsIndexed checks that a chunk that never names its
// document is found by the words of its title, source and headings, and
// that the text users see stays the chunk's own.
func TestChunkContextIsIndexed(t *testing.T) {
	sp := newSparse(t)
	svc := NewService(sp)
	c := events.ChunkCreated{
		ChunkID: events.ChunkID("acme", "d", 1, 0), DocumentID: "d", TenantID: "acme", Version: 1, ChunkCount: 1,
		Text:        "Permission is hereby granted, free of charge, to any person obtaining a copy.",
		Title:       "copyright",
		Source:      "doc/apt-transport-https/copyright",
		HeadingPath: []string{"Licence", "MIT"},
		Page:        3,
	}
	got, err := svc.EmbedChunk(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	if got.Text != c.Text {
		t.Errorf("Text = %q, want the chunk's own text", got.Text)
	}
	has := func(tok string) bool { return slices.Contains(got.Sparse.Indices, TokenIndex([]byte(tok))) }
	for _, tok := range []string{"apt-transport-https", "transport", "copyright", "licence", "mit", "permission"} {
		if !has(tok) {
			t.Errorf("chunk vector lacks %q", tok)
		}
	}
	bare, err := svc.EmbedChunk(context.Background(), events.ChunkCreated{ChunkID: c.ChunkID, DocumentID: "d", TenantID: "acme", Version: 1, ChunkCount: 1, Text: c.Text})
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(bare.Sparse.Indices, TokenIndex([]byte("apt-transport-https"))) {
		t.Error("a chunk without context has the source's tokens")
	}
	if IndexText(events.ChunkCreated{Text: "x"}) != "x" {
		t.Errorf("IndexText without context = %q, want the text", IndexText(events.ChunkCreated{Text: "x"}))
	}
}

// BenchmarkEmbedChunk measures a chunk of Debian copyright text with its
// context, without it, and without identifier tokens.
func BenchmarkEmbedChunk(b *testing.B) {
	text := strings.Repeat("Files: debian/* Copyright: 2009-2023 Jane Doe <jane@example.org> License: GPL-2+ "+
		"This package is free software; you can redistribute it and/or modify it under the terms of the GNU General Public License. ", 3)
	c := events.ChunkCreated{
		ChunkID: events.ChunkID("acme", "d", 1, 0), DocumentID: "d", TenantID: "acme", Version: 1, ChunkCount: 1,
		Text: text, Title: "copyright", Source: "doc/libgdk-pixbuf2.0-common/copyright", HeadingPath: []string{"Licence"},
	}
	noid, err := NewSparse(WithIdentifiers(false))
	if err != nil {
		b.Fatal(err)
	}
	for _, v := range []struct {
		name string
		svc  Service
	}{
		{"context", NewService(newSparse(b))},
		{"no-context", NewService(newSparse(b), WithContext(false))},
		{"no-identifiers", NewService(noid)},
	} {
		b.Run(v.name, func(b *testing.B) {
			b.SetBytes(int64(len(text)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.svc.EmbedChunk(context.Background(), c); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
