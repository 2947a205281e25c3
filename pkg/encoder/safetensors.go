package encoder

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"slices"
	"sort"

	"github.com/tributary-rag/tributary/pkg/gguf"
)

// maxHeader bounds the JSON header of a safetensors file; real headers are
// a few hundred kilobytes at most.
const maxHeader = 100 << 20

// Tensor is one tensor of a safetensors file. Data aliases the file's
// bytes, little-endian, row-major.
type Tensor struct {
	DType string
	Shape []int
	Data  []byte
}

// Elements is the number of elements in the tensor.
func (t Tensor) Elements() int {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// F32 decodes the tensor into float32, whatever its stored type (F32, F16,
// BF16, or Q8_0 from GGUF files).
func (t Tensor) F32() ([]float32, error) {
	n := t.Elements()
	out := make([]float32, n)
	switch t.DType {
	case "F32":
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(t.Data[4*i:]))
		}
	case "F16":
		for i := range out {
			out[i] = gguf.HalfToFloat(binary.LittleEndian.Uint16(t.Data[2*i:]))
		}
	case "BF16":
		for i := range out {
			out[i] = gguf.BF16ToFloat(binary.LittleEndian.Uint16(t.Data[2*i:]))
		}
	case "Q8_0":
		if n%gguf.QK8_0 != 0 || len(t.Data) != n/gguf.QK8_0*gguf.BlockQ8_0Size {
			return nil, fmt.Errorf("Q8_0 tensor of %d elements has %d bytes", n, len(t.Data))
		}
		if err := gguf.DequantizeRow(gguf.Q8_0, t.Data, out); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("tensor type %s is not supported (want F32, F16, BF16 or Q8_0)", t.DType)
	}
	return out, nil
}

// dtypeSize is the byte size of one element of each safetensors dtype.
var dtypeSize = map[string]int{
	"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1,
}

// ReadSafetensors reads every tensor of the safetensors file at path.
func ReadSafetensors(path string) (map[string]Tensor, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	ts, err := ParseSafetensors(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return ts, nil
}

// ParseSafetensors parses a safetensors file held in b: an 8-byte
// little-endian header length, a JSON header naming each tensor's dtype,
// shape and byte range, then the data. Every range is checked against the
// file and against its shape, so a truncated or inconsistent file is an
// error, never a panic.
func ParseSafetensors(b []byte) (map[string]Tensor, error) {
	if len(b) < 8 {
		return nil, fmt.Errorf("safetensors: file of %d bytes is shorter than its 8-byte header length", len(b))
	}
	n := binary.LittleEndian.Uint64(b)
	if n > maxHeader || n > uint64(len(b)-8) {
		return nil, fmt.Errorf("safetensors: header length %d exceeds the file (%d bytes) or the %d-byte limit", n, len(b), maxHeader)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b[8:8+n], &raw); err != nil {
		return nil, fmt.Errorf("safetensors: header: %w", err)
	}
	data := b[8+n:]
	type entry struct {
		DType   string   `json:"dtype"`
		Shape   []int    `json:"shape"`
		Offsets []uint64 `json:"data_offsets"`
	}
	out := make(map[string]Tensor, len(raw))
	for name, r := range raw {
		if name == "__metadata__" {
			continue
		}
		var e entry
		if err := json.Unmarshal(r, &e); err != nil {
			return nil, fmt.Errorf("safetensors: tensor %q: %w", name, err)
		}
		size, ok := dtypeSize[e.DType]
		if !ok {
			return nil, fmt.Errorf("safetensors: tensor %q: unknown dtype %q", name, e.DType)
		}
		if len(e.Offsets) != 2 || e.Offsets[0] > e.Offsets[1] || e.Offsets[1] > uint64(len(data)) {
			return nil, fmt.Errorf("safetensors: tensor %q: data offsets %v outside the %d data bytes (truncated file?)", name, e.Offsets, len(data))
		}
		elems := uint64(1)
		for _, d := range e.Shape {
			if d < 0 || (d > 0 && elems > math.MaxInt32/uint64(d)) {
				return nil, fmt.Errorf("safetensors: tensor %q: bad shape %v", name, e.Shape)
			}
			elems *= uint64(d)
		}
		if elems*uint64(size) != e.Offsets[1]-e.Offsets[0] {
			return nil, fmt.Errorf("safetensors: tensor %q: shape %v of %s needs %d bytes, offsets give %d", name, e.Shape, e.DType, elems*uint64(size), e.Offsets[1]-e.Offsets[0])
		}
		out[name] = Tensor{DType: e.DType, Shape: e.Shape, Data: data[e.Offsets[0]:e.Offsets[1]:e.Offsets[1]]}
	}
	return out, nil
}

// WriteSafetensors writes tensors as a safetensors file at path, in name
// order. Tests and benchmarks build synthetic models with it.
func WriteSafetensors(path string, tensors map[string]Tensor) error {
	names := make([]string, 0, len(tensors))
	for k := range tensors {
		names = append(names, k)
	}
	sort.Strings(names)
	header := make(map[string]any, len(names))
	var off uint64
	for _, k := range names {
		t := tensors[k]
		header[k] = map[string]any{"dtype": t.DType, "shape": slices.Clone(t.Shape), "data_offsets": []uint64{off, off + uint64(len(t.Data))}}
		off += uint64(len(t.Data))
	}
	h, err := json.Marshal(header)
	if err != nil {
		return err
	}
	buf := make([]byte, 8, 8+len(h)+int(off))
	binary.LittleEndian.PutUint64(buf, uint64(len(h)))
	buf = append(buf, h...)
	for _, k := range names {
		buf = append(buf, tensors[k].Data...)
	}
	return os.WriteFile(path, buf, 0o644)
}

// F32Tensor encodes v with the given shape as an F32 tensor.
func F32Tensor(v []float32, shape ...int) Tensor {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return Tensor{DType: "F32", Shape: shape, Data: b}
}
