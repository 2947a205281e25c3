package llm

import (
	"encoding/binary"
	"fmt"
	"math"
	"unsafe"

	"github.com/tributary-rag/tributary/pkg/gguf"
)

// Weight is a 2-D weight matrix of Rows rows of Cols elements each, stored
// in one of gguf's tensor types. Data aliases the memory-mapped file; for
// F32 weights F32 views the same memory as float32.
type Weight struct {
	Name       string
	Type       gguf.TensorType
	Rows, Cols int
	Data       []byte
	F32        []float32
	rowBytes   int
}

// RowBytes is the encoded size of one row.
func (w *Weight) RowBytes() int { return w.rowBytes }

// Row returns the encoded bytes of row r.
func (w *Weight) Row(r int) []byte { return w.Data[r*w.rowBytes : (r+1)*w.rowBytes] }

// DequantizeRow decodes row r into dst (len Cols).
func (w *Weight) DequantizeRow(r int, dst []float32) {
	if w.F32 != nil {
		copy(dst, w.F32[r*w.Cols:(r+1)*w.Cols])
		return
	}
	// Layout was validated when the weight was built.
	_ = gguf.DequantizeRow(w.Type, w.Row(r), dst)
}

func newWeight(f *gguf.File, name string) (*Weight, error) {
	t, ok := f.Tensor(name)
	if !ok {
		return nil, fmt.Errorf("missing tensor %q", name)
	}
	if len(t.Dims) > 2 {
		for _, d := range t.Dims[2:] {
			if d != 1 {
				return nil, fmt.Errorf("tensor %q: expected a matrix, has dims %v", name, t.Dims)
			}
		}
	}
	rows := uint64(1)
	if len(t.Dims) > 1 {
		rows = t.Dims[1]
	}
	if t.Dims[0] > math.MaxInt32 || rows > math.MaxInt32 {
		return nil, fmt.Errorf("tensor %q too large: %v", name, t.Dims)
	}
	w := &Weight{Name: name, Type: t.Type, Rows: int(rows), Cols: int(t.Dims[0]), Data: f.Data(t)}
	w.rowBytes = t.Type.RowSize(w.Cols)
	if w.rowBytes*w.Rows != len(w.Data) {
		return nil, fmt.Errorf("tensor %q: size mismatch", name)
	}
	if t.Type == gguf.F32 {
		w.F32 = bytesToF32(w.Data)
	}
	return w, nil
}

// bytesToF32 views little-endian float32 bytes as []float32 without a copy
// where the host is little-endian and the data aligned, else it decodes.
func bytesToF32(b []byte) []float32 {
	n := len(b) / 4
	if n == 0 {
		return []float32{}
	}
	if littleEndian() && uintptr(unsafe.Pointer(&b[0]))%4 == 0 {
		return unsafe.Slice((*float32)(unsafe.Pointer(&b[0])), n)
	}
	out := make([]float32, n)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}

func littleEndian() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}

// vector loads a 1-D F32 (or F16/BF16) tensor of n elements.
func vector(f *gguf.File, name string, n int) ([]float32, error) {
	t, ok := f.Tensor(name)
	if !ok {
		return nil, fmt.Errorf("missing tensor %q", name)
	}
	if t.Elements() != uint64(n) {
		return nil, fmt.Errorf("tensor %q has %d elements, want %d", name, t.Elements(), n)
	}
	if t.Type == gguf.F32 {
		return bytesToF32(f.Data(t)), nil
	}
	out := make([]float32, n)
	if n%t.Type.BlockSize() != 0 {
		return nil, fmt.Errorf("tensor %q: %d elements not a multiple of the %s block", name, n, t.Type)
	}
	if err := gguf.DequantizeRow(t.Type, f.Data(t), out); err != nil {
		return nil, fmt.Errorf("tensor %q: %w", name, err)
	}
	return out, nil
}

// NewWeight wraps encoded tensor data as a rows×cols weight matrix, for
// backends, tools and tests that build weights outside a GGUF file.
func NewWeight(name string, typ gguf.TensorType, rows, cols int, data []byte) (*Weight, error) {
	if !typ.Supported() || rows <= 0 || cols <= 0 || cols%typ.BlockSize() != 0 {
		return nil, fmt.Errorf("weight %q: invalid %s shape %dx%d", name, typ, rows, cols)
	}
	w := &Weight{Name: name, Type: typ, Rows: rows, Cols: cols, Data: data, rowBytes: typ.RowSize(cols)}
	if len(data) != w.rowBytes*rows {
		return nil, fmt.Errorf("weight %q: %d bytes, want %d", name, len(data), w.rowBytes*rows)
	}
	if typ == gguf.F32 {
		w.F32 = bytesToF32(data)
	}
	return w, nil
}
