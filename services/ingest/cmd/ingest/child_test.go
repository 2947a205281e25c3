package main

import (
	"os"
	"testing"

	"github.com/tributary-rag/tributary/pkg/docparse"
)

// TestMain serves the parse children of the service these tests run: the
// test binary stands in for the ingest binary.
func TestMain(m *testing.M) {
	if code, ok := docparse.RunChild(); ok {
		os.Exit(code)
	}
	os.Exit(m.Run())
}
