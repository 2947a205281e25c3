package gguf

import (
	"fmt"
	"io"
	"os"
)

// readFile is the fallback for platforms or filesystems without mmap.
func readFile(f *os.File, size int) ([]byte, func() error, error) {
	b := make([]byte, size)
	if _, err := f.ReadAt(b, 0); err != nil && err != io.EOF {
		return nil, nil, fmt.Errorf("read: %w", err)
	}
	return b, func() error { return nil }, nil
}
