//go:build !unix

package vectordb

import "errors"

// rowFile is not available without mmap: on_disk rows stay on the heap.
type rowFile struct{}

func growRowFile(*rowFile, string, int, int) (*rowFile, []float32, error) {
	return nil, nil, errors.New("memory-mapped rows need a unix system")
}

func (*rowFile) close() {}
