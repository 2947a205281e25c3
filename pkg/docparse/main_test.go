package docparse

import (
	"os"
	"testing"
)

// TestMain serves the parse children that this package's Pools start: the
// test binary is the child binary.
func TestMain(m *testing.M) {
	if code, ok := RunChild(); ok {
		os.Exit(code)
	}
	os.Exit(m.Run())
}
