//go:build unix

package main

import (
	"fmt"
	"os"
	"syscall"
	"unsafe"
)

// mapNPYFloat32 maps the float32 data of an npy file read-only.
func mapNPYFloat32(path string, rows, cols int) ([]float32, func(), error) {
	off, err := npyDataOffset(path)
	if err != nil {
		return nil, nil, fmt.Errorf("map %s: %w", path, err)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	size := int(off) + 4*rows*cols
	mem, err := syscall.Mmap(int(f.Fd()), 0, size, syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil, nil, fmt.Errorf("map %s: %w", path, err)
	}
	if off%4 != 0 {
		return nil, nil, fmt.Errorf("map %s: data offset %d is not 4-aligned", path, off)
	}
	data := unsafe.Slice((*float32)(unsafe.Pointer(&mem[off])), rows*cols)
	return data, func() { _ = syscall.Munmap(mem) }, nil
}
