// Package gguf reads GGUF model files (versions 2 and 3), the format of
// llama.cpp and ggml: typed metadata, tensor descriptions and tensor data,
// memory-mapped where the platform allows.
//
// Every length, count and offset in a file is checked against the file's
// size before use, so a truncated or hostile file yields an error, never a
// panic or a huge allocation.
package gguf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"sort"
)

// Magic is the four bytes every GGUF file starts with.
const Magic = "GGUF"

// DefaultAlignment is the tensor data alignment when general.alignment is absent.
const DefaultAlignment = 32

// Limits that bound what a header may claim before we allocate for it.
const (
	maxDims         = 4
	maxStringLen    = 1 << 26
	maxArrayNesting = 4
)

// ErrFormat is wrapped by every error about a malformed or unsupported file.
var ErrFormat = errors.New("gguf: invalid file")

// ValueType is the type tag of a metadata value.
type ValueType uint32

// Metadata value types as numbered by the GGUF specification.
const (
	TypeUint8   ValueType = 0
	TypeInt8    ValueType = 1
	TypeUint16  ValueType = 2
	TypeInt16   ValueType = 3
	TypeUint32  ValueType = 4
	TypeInt32   ValueType = 5
	TypeFloat32 ValueType = 6
	TypeBool    ValueType = 7
	TypeString  ValueType = 8
	TypeArray   ValueType = 9
	TypeUint64  ValueType = 10
	TypeInt64   ValueType = 11
	TypeFloat64 ValueType = 12
)

func (t ValueType) String() string {
	names := [...]string{"uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "bool", "string", "array", "uint64", "int64", "float64"}
	if int(t) < len(names) {
		return names[t]
	}
	return fmt.Sprintf("type(%d)", uint32(t))
}

// fixedSize is the encoded size of a scalar type, 0 for string and array.
func (t ValueType) fixedSize() int {
	switch t {
	case TypeUint8, TypeInt8, TypeBool:
		return 1
	case TypeUint16, TypeInt16:
		return 2
	case TypeUint32, TypeInt32, TypeFloat32:
		return 4
	case TypeUint64, TypeInt64, TypeFloat64:
		return 8
	}
	return 0
}

// Value is a decoded metadata value. Scalars hold the Go type of their tag
// (uint8, int8, …, float64, bool, string); arrays hold an Array.
type Value struct {
	Type ValueType
	V    any
}

// Array is a metadata array. Values holds a typed slice: []uint8, []int8,
// []uint16, []int16, []uint32, []int32, []float32, []bool, []string,
// []uint64, []int64, []float64, or []Array for nested arrays.
type Array struct {
	Elem   ValueType
	Values any
}

// Len is the number of elements.
func (a Array) Len() int {
	switch v := a.Values.(type) {
	case []uint8:
		return len(v)
	case []int8:
		return len(v)
	case []uint16:
		return len(v)
	case []int16:
		return len(v)
	case []uint32:
		return len(v)
	case []int32:
		return len(v)
	case []float32:
		return len(v)
	case []bool:
		return len(v)
	case []string:
		return len(v)
	case []uint64:
		return len(v)
	case []int64:
		return len(v)
	case []float64:
		return len(v)
	case []Array:
		return len(v)
	}
	return 0
}

// TensorInfo describes one tensor. Dims lists ggml's ne: Dims[0] is the
// length of a row (the fastest-varying dimension).
type TensorInfo struct {
	Name   string
	Dims   []uint64
	Type   TensorType
	Offset uint64 // relative to the start of the data section
	Size   uint64 // bytes
}

// Elements is the product of the dimensions.
func (t *TensorInfo) Elements() uint64 {
	n := uint64(1)
	for _, d := range t.Dims {
		n *= d
	}
	return n
}

// File is an open GGUF file. Tensor data returned by Data aliases the mapped
// file and stays valid until Close. A File is safe for concurrent reads.
type File struct {
	Version   uint32
	Metadata  map[string]Value
	Tensors   []TensorInfo
	Alignment uint64
	// DataOffset is the absolute file offset of the tensor data section.
	DataOffset uint64

	byName map[string]int
	data   []byte
	unmap  func() error
}

// Open maps path into memory and parses its header.
func Open(path string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open gguf: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat gguf: %w", err)
	}
	size := st.Size()
	if size <= 0 || size > math.MaxInt {
		return nil, fmt.Errorf("%w: %s: size %d", ErrFormat, path, size)
	}
	data, unmap, err := mapFile(f, int(size))
	if err != nil {
		return nil, fmt.Errorf("map gguf %s: %w", path, err)
	}
	g, err := Parse(data)
	if err != nil {
		_ = unmap()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	g.unmap = unmap
	return g, nil
}

// Close releases the mapping. Tensor data must not be used afterwards.
func (f *File) Close() error {
	if f.unmap == nil {
		return nil
	}
	u := f.unmap
	f.unmap = nil
	f.data = nil
	return u()
}

// Parse parses a complete GGUF file held in memory. The returned File
// aliases data.
func Parse(data []byte) (*File, error) {
	r := &reader{b: data}
	if len(data) < 4 || string(data[:4]) != Magic {
		return nil, fmt.Errorf("%w: bad magic", ErrFormat)
	}
	r.off = 4
	version, err := r.u32()
	if err != nil {
		return nil, err
	}
	switch {
	case version == 2 || version == 3:
	case version == 1:
		return nil, fmt.Errorf("%w: version 1 is not supported (convert with a current llama.cpp)", ErrFormat)
	case version&0xFFFF == 0 && version>>16 != 0:
		return nil, fmt.Errorf("%w: big-endian files are not supported", ErrFormat)
	default:
		return nil, fmt.Errorf("%w: unsupported version %d", ErrFormat, version)
	}
	nTensors, err := r.u64()
	if err != nil {
		return nil, err
	}
	nKV, err := r.u64()
	if err != nil {
		return nil, err
	}
	// Each KV needs at least 8+4+1 bytes, each tensor info at least 8+4+8+4+8.
	if nKV > uint64(r.remaining())/13 {
		return nil, fmt.Errorf("%w: metadata count %d exceeds file size", ErrFormat, nKV)
	}
	if nTensors > uint64(r.remaining())/32 {
		return nil, fmt.Errorf("%w: tensor count %d exceeds file size", ErrFormat, nTensors)
	}
	f := &File{
		Version:   version,
		Metadata:  make(map[string]Value, nKV),
		Alignment: DefaultAlignment,
		byName:    make(map[string]int, nTensors),
		data:      data,
	}
	for i := uint64(0); i < nKV; i++ {
		key, err := r.str()
		if err != nil {
			return nil, fmt.Errorf("metadata %d key: %w", i, err)
		}
		t, err := r.u32()
		if err != nil {
			return nil, fmt.Errorf("metadata %q: %w", key, err)
		}
		v, err := r.value(ValueType(t), 0)
		if err != nil {
			return nil, fmt.Errorf("metadata %q: %w", key, err)
		}
		if _, dup := f.Metadata[key]; dup {
			return nil, fmt.Errorf("%w: duplicate metadata key %q", ErrFormat, key)
		}
		f.Metadata[key] = v
	}
	if v, ok := f.Metadata["general.alignment"]; ok {
		a, ok := v.V.(uint32)
		if !ok || a == 0 || a&(a-1) != 0 || a > 1<<16 {
			return nil, fmt.Errorf("%w: general.alignment must be a power-of-two uint32, got %v", ErrFormat, v.V)
		}
		f.Alignment = uint64(a)
	}
	f.Tensors = make([]TensorInfo, 0, nTensors)
	for i := uint64(0); i < nTensors; i++ {
		ti, err := r.tensorInfo()
		if err != nil {
			return nil, fmt.Errorf("tensor %d: %w", i, err)
		}
		if _, dup := f.byName[ti.Name]; dup {
			return nil, fmt.Errorf("%w: duplicate tensor %q", ErrFormat, ti.Name)
		}
		f.byName[ti.Name] = len(f.Tensors)
		f.Tensors = append(f.Tensors, ti)
	}
	start := (uint64(r.off) + f.Alignment - 1) / f.Alignment * f.Alignment
	f.DataOffset = start
	if len(f.Tensors) > 0 && start > uint64(len(data)) {
		return nil, fmt.Errorf("%w: data section starts past end of file", ErrFormat)
	}
	dataLen := uint64(len(data)) - min(start, uint64(len(data)))
	for i := range f.Tensors {
		t := &f.Tensors[i]
		if t.Offset%f.Alignment != 0 {
			return nil, fmt.Errorf("%w: tensor %q offset %d not aligned to %d", ErrFormat, t.Name, t.Offset, f.Alignment)
		}
		if t.Offset > dataLen || t.Size > dataLen-t.Offset {
			return nil, fmt.Errorf("%w: tensor %q (%d bytes at %d) extends past end of file", ErrFormat, t.Name, t.Size, t.Offset)
		}
	}
	// Overlapping tensors are legal in principle but never produced; reject
	// them so a bogus header cannot alias one tensor as another.
	idx := make([]int, len(f.Tensors))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return f.Tensors[idx[a]].Offset < f.Tensors[idx[b]].Offset })
	for i := 1; i < len(idx); i++ {
		p, q := &f.Tensors[idx[i-1]], &f.Tensors[idx[i]]
		if p.Size > 0 && p.Offset+p.Size > q.Offset {
			return nil, fmt.Errorf("%w: tensors %q and %q overlap", ErrFormat, p.Name, q.Name)
		}
	}
	return f, nil
}

// Tensor returns the description of the named tensor.
func (f *File) Tensor(name string) (*TensorInfo, bool) {
	i, ok := f.byName[name]
	if !ok {
		return nil, false
	}
	return &f.Tensors[i], true
}

// Data returns the raw bytes of a tensor (aliasing the mapping).
func (f *File) Data(t *TensorInfo) []byte {
	s := f.DataOffset + t.Offset
	return f.data[s : s+t.Size : s+t.Size]
}

// String returns a string metadata value.
func (f *File) String(key string) (string, bool) {
	v, ok := f.Metadata[key]
	if !ok {
		return "", false
	}
	s, ok := v.V.(string)
	return s, ok
}

// Uint returns an unsigned or non-negative integer metadata value of any width.
func (f *File) Uint(key string) (uint64, bool) {
	v, ok := f.Metadata[key]
	if !ok {
		return 0, false
	}
	switch x := v.V.(type) {
	case uint8:
		return uint64(x), true
	case uint16:
		return uint64(x), true
	case uint32:
		return uint64(x), true
	case uint64:
		return x, true
	case int8:
		return uint64(x), x >= 0
	case int16:
		return uint64(x), x >= 0
	case int32:
		return uint64(x), x >= 0
	case int64:
		return uint64(x), x >= 0
	}
	return 0, false
}

// Int returns a signed integer metadata value of any width.
func (f *File) Int(key string) (int64, bool) {
	v, ok := f.Metadata[key]
	if !ok {
		return 0, false
	}
	switch x := v.V.(type) {
	case int8:
		return int64(x), true
	case int16:
		return int64(x), true
	case int32:
		return int64(x), true
	case int64:
		return x, true
	case uint8:
		return int64(x), true
	case uint16:
		return int64(x), true
	case uint32:
		return int64(x), true
	case uint64:
		return int64(x), x <= math.MaxInt64
	}
	return 0, false
}

// Float returns a floating-point metadata value (float32 or float64).
func (f *File) Float(key string) (float64, bool) {
	v, ok := f.Metadata[key]
	if !ok {
		return 0, false
	}
	switch x := v.V.(type) {
	case float32:
		return float64(x), true
	case float64:
		return x, true
	}
	return 0, false
}

// Bool returns a bool metadata value.
func (f *File) Bool(key string) (bool, bool) {
	v, ok := f.Metadata[key]
	if !ok {
		return false, false
	}
	b, ok := v.V.(bool)
	return b, ok
}

// Array returns an array metadata value.
func (f *File) Array(key string) (Array, bool) {
	v, ok := f.Metadata[key]
	if !ok {
		return Array{}, false
	}
	a, ok := v.V.(Array)
	return a, ok
}

type reader struct {
	b   []byte
	off int
}

func (r *reader) remaining() int { return len(r.b) - r.off }

func (r *reader) need(n uint64) error {
	if n > uint64(r.remaining()) {
		return fmt.Errorf("%w: unexpected end of file at offset %d (need %d bytes)", ErrFormat, r.off, n)
	}
	return nil
}

func (r *reader) u32() (uint32, error) {
	if err := r.need(4); err != nil {
		return 0, err
	}
	v := binary.LittleEndian.Uint32(r.b[r.off:])
	r.off += 4
	return v, nil
}

func (r *reader) u64() (uint64, error) {
	if err := r.need(8); err != nil {
		return 0, err
	}
	v := binary.LittleEndian.Uint64(r.b[r.off:])
	r.off += 8
	return v, nil
}

func (r *reader) bytes(n uint64) ([]byte, error) {
	if err := r.need(n); err != nil {
		return nil, err
	}
	b := r.b[r.off : r.off+int(n)]
	r.off += int(n)
	return b, nil
}

func (r *reader) str() (string, error) {
	n, err := r.u64()
	if err != nil {
		return "", err
	}
	if n > maxStringLen {
		return "", fmt.Errorf("%w: string length %d too large", ErrFormat, n)
	}
	b, err := r.bytes(n)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

func (r *reader) value(t ValueType, depth int) (Value, error) {
	if t == TypeArray {
		a, err := r.array(depth)
		if err != nil {
			return Value{}, err
		}
		return Value{Type: t, V: a}, nil
	}
	if t == TypeString {
		s, err := r.str()
		return Value{Type: t, V: s}, err
	}
	n := t.fixedSize()
	if n == 0 {
		return Value{}, fmt.Errorf("%w: unknown value type %d", ErrFormat, uint32(t))
	}
	b, err := r.bytes(uint64(n))
	if err != nil {
		return Value{}, err
	}
	var v any
	switch t {
	case TypeUint8:
		v = b[0]
	case TypeInt8:
		v = int8(b[0])
	case TypeBool:
		if b[0] > 1 {
			return Value{}, fmt.Errorf("%w: bool value %d", ErrFormat, b[0])
		}
		v = b[0] == 1
	case TypeUint16:
		v = binary.LittleEndian.Uint16(b)
	case TypeInt16:
		v = int16(binary.LittleEndian.Uint16(b))
	case TypeUint32:
		v = binary.LittleEndian.Uint32(b)
	case TypeInt32:
		v = int32(binary.LittleEndian.Uint32(b))
	case TypeFloat32:
		v = math.Float32frombits(binary.LittleEndian.Uint32(b))
	case TypeUint64:
		v = binary.LittleEndian.Uint64(b)
	case TypeInt64:
		v = int64(binary.LittleEndian.Uint64(b))
	case TypeFloat64:
		v = math.Float64frombits(binary.LittleEndian.Uint64(b))
	}
	return Value{Type: t, V: v}, nil
}

func (r *reader) array(depth int) (Array, error) {
	if depth >= maxArrayNesting {
		return Array{}, fmt.Errorf("%w: arrays nested too deeply", ErrFormat)
	}
	et, err := r.u32()
	if err != nil {
		return Array{}, err
	}
	elem := ValueType(et)
	n, err := r.u64()
	if err != nil {
		return Array{}, err
	}
	// Every element takes at least one byte (strings and arrays 8), which
	// bounds n by the bytes left before anything is allocated.
	minSize := uint64(elem.fixedSize())
	if elem == TypeString || elem == TypeArray {
		minSize = 8
	}
	if minSize == 0 {
		return Array{}, fmt.Errorf("%w: unknown array element type %d", ErrFormat, et)
	}
	if n > uint64(r.remaining())/minSize {
		return Array{}, fmt.Errorf("%w: array of %d %s exceeds file size", ErrFormat, n, elem)
	}
	a := Array{Elem: elem}
	le := binary.LittleEndian
	switch elem {
	case TypeString:
		s := make([]string, n)
		for i := range s {
			if s[i], err = r.str(); err != nil {
				return Array{}, err
			}
		}
		a.Values = s
	case TypeArray:
		s := make([]Array, n)
		for i := range s {
			if s[i], err = r.array(depth + 1); err != nil {
				return Array{}, err
			}
		}
		a.Values = s
	default:
		b, err := r.bytes(n * minSize)
		if err != nil {
			return Array{}, err
		}
		switch elem {
		case TypeUint8:
			a.Values = append([]uint8(nil), b...)
		case TypeInt8:
			a.Values = decodeArray(b, 1, func(b []byte) int8 { return int8(b[0]) })
		case TypeBool:
			s := make([]bool, n)
			for i := range s {
				if b[i] > 1 {
					return Array{}, fmt.Errorf("%w: bool value %d", ErrFormat, b[i])
				}
				s[i] = b[i] == 1
			}
			a.Values = s
		case TypeUint16:
			a.Values = decodeArray(b, 2, le.Uint16)
		case TypeInt16:
			a.Values = decodeArray(b, 2, func(b []byte) int16 { return int16(le.Uint16(b)) })
		case TypeUint32:
			a.Values = decodeArray(b, 4, le.Uint32)
		case TypeInt32:
			a.Values = decodeArray(b, 4, func(b []byte) int32 { return int32(le.Uint32(b)) })
		case TypeFloat32:
			a.Values = decodeArray(b, 4, func(b []byte) float32 { return math.Float32frombits(le.Uint32(b)) })
		case TypeUint64:
			a.Values = decodeArray(b, 8, le.Uint64)
		case TypeInt64:
			a.Values = decodeArray(b, 8, func(b []byte) int64 { return int64(le.Uint64(b)) })
		case TypeFloat64:
			a.Values = decodeArray(b, 8, func(b []byte) float64 { return math.Float64frombits(le.Uint64(b)) })
		}
	}
	return a, nil
}

// decodeArray decodes b as consecutive size-byte elements, each with dec.
// len(b) must be a multiple of size.
func decodeArray[T any](b []byte, size int, dec func([]byte) T) []T {
	s := make([]T, len(b)/size)
	for i := range s {
		s[i] = dec(b[size*i:])
	}
	return s
}

func (r *reader) tensorInfo() (TensorInfo, error) {
	name, err := r.str()
	if err != nil {
		return TensorInfo{}, err
	}
	nd, err := r.u32()
	if err != nil {
		return TensorInfo{}, err
	}
	if nd == 0 || nd > maxDims {
		return TensorInfo{}, fmt.Errorf("%w: tensor %q has %d dimensions", ErrFormat, name, nd)
	}
	ti := TensorInfo{Name: name, Dims: make([]uint64, nd)}
	elems := uint64(1)
	for i := range ti.Dims {
		d, err := r.u64()
		if err != nil {
			return TensorInfo{}, err
		}
		if d == 0 || d > 1<<40 {
			return TensorInfo{}, fmt.Errorf("%w: tensor %q dimension %d is %d", ErrFormat, name, i, d)
		}
		if elems > (1<<50)/d {
			return TensorInfo{}, fmt.Errorf("%w: tensor %q too large", ErrFormat, name)
		}
		elems *= d
		ti.Dims[i] = d
	}
	t, err := r.u32()
	if err != nil {
		return TensorInfo{}, err
	}
	ti.Type = TensorType(t)
	bs, ts, ok := ti.Type.blockLayout()
	if !ok {
		return TensorInfo{}, fmt.Errorf("%w: tensor %q has unsupported type %s", ErrFormat, name, ti.Type)
	}
	if ti.Dims[0]%uint64(bs) != 0 {
		return TensorInfo{}, fmt.Errorf("%w: tensor %q row length %d is not a multiple of the %s block size %d", ErrFormat, name, ti.Dims[0], ti.Type, bs)
	}
	ti.Size = elems / uint64(bs) * uint64(ts)
	if ti.Offset, err = r.u64(); err != nil {
		return TensorInfo{}, err
	}
	return ti, nil
}
