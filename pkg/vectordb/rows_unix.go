//go:build unix

package vectordb

import (
	"fmt"
	"os"
	"runtime"
	"syscall"
	"unsafe"
)

// rowFile is a shared read-write mapping of a file of float32 rows.
type rowFile struct {
	f       *os.File
	mem     []byte
	cleanup runtime.Cleanup
}

// growRowFile maps the file at path (created on first use, truncated: it is
// a cache) with room for capFloats float32 values, keeping the first
// lenFloats; it unmaps the previous mapping of old, whose data it replaces.
func growRowFile(old *rowFile, path string, lenFloats, capFloats int) (*rowFile, []float32, error) {
	r := old
	if r == nil {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
		if err != nil {
			return nil, nil, fmt.Errorf("create row file: %w", err)
		}
		r = &rowFile{f: f}
	}
	size := int64(capFloats) * 4
	if err := r.f.Truncate(size); err != nil {
		return nil, nil, fmt.Errorf("grow row file: %w", err)
	}
	mem, err := syscall.Mmap(int(r.f.Fd()), 0, int(size), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	if err != nil {
		return nil, nil, fmt.Errorf("map row file: %w", err)
	}
	if r.mem != nil {
		r.cleanup.Stop()
		_ = syscall.Munmap(r.mem)
	}
	r.mem = mem
	r.cleanup = runtime.AddCleanup(r, func(m []byte) { _ = syscall.Munmap(m) }, mem)
	data := unsafe.Slice((*float32)(unsafe.Pointer(&mem[0])), capFloats)
	return r, data[:lenFloats], nil
}

// close deletes the file; the mapping stays valid until r is unreachable.
func (r *rowFile) close() {
	_ = r.f.Close()
	_ = os.Remove(r.f.Name())
}
