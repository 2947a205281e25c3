package chunking

import (
	"io"
	"log"
	"os"
	"testing"
)

// TestMain silences langchaingo, which logs a warning through the standard
// logger for every chunk it makes over the size limit.
func TestMain(m *testing.M) {
	log.SetOutput(io.Discard)
	os.Exit(m.Run())
}
