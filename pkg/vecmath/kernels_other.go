//go:build !amd64 || purego

package vecmath

const useAsm = false

func dot(a, b []float32) float32  { return dotGeneric(a, b) }
func l2sq(a, b []float32) float32 { return l2sqGeneric(a, b) }

func dotI8(q []float32, c []int8) float32 { return dotI8Generic(q, c) }

// Prefetch hints the CPU to start loading v into cache; a no-op on this
// platform.
func Prefetch(v []float32) {}

// PrefetchI8 is Prefetch for int8 codes; a no-op on this platform.
func PrefetchI8(c []int8) {}
