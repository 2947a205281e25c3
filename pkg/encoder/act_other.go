//go:build !amd64 || purego

package encoder

func softmax(row []float32, scale float32) { softmaxGo(row, scale) }

func gelu(x []float32) { geluGo(x) }
