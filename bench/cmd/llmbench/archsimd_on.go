//go:build goexperiment.simd && amd64

package main

import "simd/archsimd"

// archsimdDot is the float dot product written with Go's SIMD experiment
// (build with GOEXPERIMENT=simd), four accumulators of eight lanes.
func archsimdDot(a, b []float32) (float32, bool) {
	var acc0, acc1, acc2, acc3 archsimd.Float32x8
	i := 0
	for ; i+32 <= len(a); i += 32 {
		acc0 = archsimd.LoadFloat32x8Slice(a[i:]).MulAdd(archsimd.LoadFloat32x8Slice(b[i:]), acc0)
		acc1 = archsimd.LoadFloat32x8Slice(a[i+8:]).MulAdd(archsimd.LoadFloat32x8Slice(b[i+8:]), acc1)
		acc2 = archsimd.LoadFloat32x8Slice(a[i+16:]).MulAdd(archsimd.LoadFloat32x8Slice(b[i+16:]), acc2)
		acc3 = archsimd.LoadFloat32x8Slice(a[i+24:]).MulAdd(archsimd.LoadFloat32x8Slice(b[i+24:]), acc3)
	}
	var tmp [8]float32
	acc0.Add(acc1).Add(acc2.Add(acc3)).StoreSlice(tmp[:])
	var s float32
	for _, v := range tmp {
		s += v
	}
	for ; i < len(a); i++ {
		s += a[i] * b[i]
	}
	return s, true
}
