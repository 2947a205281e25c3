//go:build amd64 && !purego

package vecmath

import (
	"unsafe"

	"golang.org/x/sys/cpu"
)

// useAsm is fixed at package initialisation from the CPU's features; it is a
// read-only package variable, not mutable state.
var useAsm = cpu.X86.HasAVX2 && cpu.X86.HasFMA

//go:noescape
func dotAVX2(a, b []float32) float32

//go:noescape
func l2sqAVX2(a, b []float32) float32

func dot(a, b []float32) float32 {
	if useAsm {
		return dotAVX2(a, b[:len(a)])
	}
	return dotGeneric(a, b)
}

func l2sq(a, b []float32) float32 {
	if useAsm {
		return l2sqAVX2(a, b[:len(a)])
	}
	return l2sqGeneric(a, b)
}

//go:noescape
func dotI8AVX2(q []float32, c []int8) float32

func dotI8(q []float32, c []int8) float32 {
	if useAsm {
		n := len(q) &^ 7
		s := dotI8AVX2(q[:n], c[:n])
		if n < len(q) {
			s += dotI8Generic(q[n:], c[n:len(q)])
		}
		return s
	}
	return dotI8Generic(q, c)
}

//go:noescape
func prefetchAsm(p *float32)

// Prefetch hints the CPU to start loading the beginning of v into cache, so
// that a later Dot or L2Sq on it waits less for memory. It has no effect on
// results and is a no-op on platforms without the hint.
func Prefetch(v []float32) {
	if len(v) > 0 {
		prefetchAsm(&v[0])
	}
}

// PrefetchI8 is Prefetch for int8 codes.
func PrefetchI8(c []int8) {
	if len(c) > 0 {
		prefetchAsm((*float32)(unsafe.Pointer(&c[0])))
	}
}
