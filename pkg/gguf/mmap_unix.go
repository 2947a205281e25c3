//go:build unix

package gguf

import (
	"fmt"
	"os"
	"syscall"
)

// mapFile maps f read-only; if mmap fails (some filesystems) it reads the
// file into memory instead.
func mapFile(f *os.File, size int) ([]byte, func() error, error) {
	b, err := syscall.Mmap(int(f.Fd()), 0, size, syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return readFile(f, size)
	}
	return b, func() error {
		if err := syscall.Munmap(b); err != nil {
			return fmt.Errorf("munmap: %w", err)
		}
		return nil
	}, nil
}
