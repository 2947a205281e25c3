package gguf

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
)

// KV is one metadata entry for Write. Value must be one of the Go types
// Value documents (uint8 … float64, bool, string) or an Array.
type KV struct {
	Key   string
	Value any
}

// WriteTensor is one tensor for Write: Data holds its encoded bytes.
type WriteTensor struct {
	Name string
	Dims []uint64
	Type TensorType
	Data []byte
}

// Write encodes a version-3 GGUF file with the default alignment. It is
// meant for tests and synthetic models.
func Write(w io.Writer, kvs []KV, tensors []WriteTensor) error {
	bw := bufio.NewWriter(w)
	le := binary.LittleEndian
	var n int64
	put := func(v any) {
		_ = binary.Write(bw, le, v)
		n += int64(binary.Size(v))
	}
	putStr := func(s string) {
		put(uint64(len(s)))
		_, _ = bw.WriteString(s)
		n += int64(len(s))
	}
	_, _ = bw.WriteString(Magic)
	n += 4
	put(uint32(3))
	put(uint64(len(tensors)))
	put(uint64(len(kvs)))
	var putVal func(v any) error
	putVal = func(v any) error {
		switch x := v.(type) {
		case string:
			putStr(x)
		case bool:
			b := uint8(0)
			if x {
				b = 1
			}
			put(b)
		case uint8, int8, uint16, int16, uint32, int32, float32, uint64, int64, float64:
			put(x)
		case Array:
			put(uint32(x.Elem))
			put(uint64(x.Len()))
			switch s := x.Values.(type) {
			case []string:
				for _, e := range s {
					putStr(e)
				}
			case []bool:
				for _, e := range s {
					if err := putVal(e); err != nil {
						return err
					}
				}
			case []Array:
				for _, e := range s {
					if err := putVal(e); err != nil {
						return err
					}
				}
			default:
				put(s)
			}
		default:
			return fmt.Errorf("gguf write: unsupported metadata value %T", v)
		}
		return nil
	}
	for _, kv := range kvs {
		putStr(kv.Key)
		t, err := typeOf(kv.Value)
		if err != nil {
			return fmt.Errorf("gguf write %q: %w", kv.Key, err)
		}
		put(uint32(t))
		if err := putVal(kv.Value); err != nil {
			return err
		}
	}
	var off uint64
	offsets := make([]uint64, len(tensors))
	for i, t := range tensors {
		putStr(t.Name)
		put(uint32(len(t.Dims)))
		for _, d := range t.Dims {
			put(d)
		}
		put(uint32(t.Type))
		offsets[i] = off
		put(off)
		off += uint64(len(t.Data))
		off = (off + DefaultAlignment - 1) / DefaultAlignment * DefaultAlignment
	}
	pad := func() {
		for n%DefaultAlignment != 0 {
			_ = bw.WriteByte(0)
			n++
		}
	}
	pad()
	for i, t := range tensors {
		_, _ = bw.Write(t.Data)
		n += int64(len(t.Data))
		if i < len(tensors)-1 {
			pad()
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("gguf write: %w", err)
	}
	return nil
}

func typeOf(v any) (ValueType, error) {
	switch v.(type) {
	case uint8:
		return TypeUint8, nil
	case int8:
		return TypeInt8, nil
	case uint16:
		return TypeUint16, nil
	case int16:
		return TypeInt16, nil
	case uint32:
		return TypeUint32, nil
	case int32:
		return TypeInt32, nil
	case float32:
		return TypeFloat32, nil
	case bool:
		return TypeBool, nil
	case string:
		return TypeString, nil
	case Array:
		return TypeArray, nil
	case uint64:
		return TypeUint64, nil
	case int64:
		return TypeInt64, nil
	case float64:
		return TypeFloat64, nil
	}
	return 0, fmt.Errorf("unsupported metadata value %T", v)
}

// EncodeF32 encodes floats as an F32 tensor.
func EncodeF32(x []float32) []byte {
	b := make([]byte, 4*len(x))
	for i, v := range x {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return b
}

// QuantizeQ8_0 encodes x (length a multiple of 32) as Q8_0 blocks, rounding
// as ggml's reference quantizer does.
func QuantizeQ8_0(x []float32) []byte {
	nb := len(x) / QK8_0
	b := make([]byte, nb*BlockQ8_0Size)
	for i := 0; i < nb; i++ {
		blk := x[i*QK8_0 : (i+1)*QK8_0]
		var amax float32
		for _, v := range blk {
			amax = max(amax, float32(math.Abs(float64(v))))
		}
		d := amax / 127
		id := float32(0)
		if d != 0 {
			id = 1 / d
		}
		out := b[i*BlockQ8_0Size:]
		binary.LittleEndian.PutUint16(out, FloatToHalf(d))
		for j, v := range blk {
			out[2+j] = byte(int8(math.Round(float64(v * id))))
		}
	}
	return b
}
