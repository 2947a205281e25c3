//go:build !(goexperiment.simd && amd64)

package main

// archsimdDot is unavailable without GOEXPERIMENT=simd on amd64.
func archsimdDot(a, b []float32) (float32, bool) { return 0, false }
