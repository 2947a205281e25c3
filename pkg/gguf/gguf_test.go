package gguf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

const stories = "../../models/stories260K.gguf"

func TestOpenStories(t *testing.T) {
	f, err := Open(stories)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Version != 3 || len(f.Tensors) != 48 {
		t.Errorf("version %d, %d tensors; want 3, 48", f.Version, len(f.Tensors))
	}
	if a, _ := f.String("general.architecture"); a != "llama" {
		t.Errorf("architecture %q", a)
	}
	if n, _ := f.Uint("llama.embedding_length"); n != 64 {
		t.Errorf("embedding_length %d", n)
	}
	toks, ok := f.Array("tokenizer.ggml.tokens")
	if !ok || toks.Elem != TypeString || toks.Len() != 512 || toks.Values.([]string)[1] != "<s>" {
		t.Errorf("tokens: %v %v %d", ok, toks.Elem, toks.Len())
	}
	if sc, ok := f.Array("tokenizer.ggml.scores"); !ok || sc.Elem != TypeFloat32 || sc.Len() != 512 {
		t.Errorf("scores: %v", ok)
	}
	ti, ok := f.Tensor("token_embd.weight")
	if !ok || ti.Type != F32 || !reflect.DeepEqual(ti.Dims, []uint64{64, 512}) || ti.Size != 64*512*4 {
		t.Fatalf("token_embd.weight = %+v", ti)
	}
	if d := f.Data(ti); len(d) != int(ti.Size) {
		t.Errorf("data %d bytes", len(d))
	}
	if err := f.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

// sample builds a small valid file with every metadata type.
func sample(t testing.TB) []byte {
	t.Helper()
	var buf bytes.Buffer
	kvs := []KV{
		{"u8", uint8(7)}, {"i8", int8(-7)}, {"u16", uint16(700)}, {"i16", int16(-700)},
		{"u32", uint32(70000)}, {"i32", int32(-70000)}, {"f32", float32(1.5)}, {"bool", true},
		{"str", "héllo"}, {"u64", uint64(1 << 40)}, {"i64", int64(-1 << 40)}, {"f64", 2.25},
		{"arr.str", Array{Elem: TypeString, Values: []string{"a", "", "ccc"}}},
		{"arr.i32", Array{Elem: TypeInt32, Values: []int32{1, -2, 3}}},
		{"arr.f32", Array{Elem: TypeFloat32, Values: []float32{0.5}}},
		{"arr.bool", Array{Elem: TypeBool, Values: []bool{true, false}}},
		{"arr.u8", Array{Elem: TypeUint8, Values: []uint8{1, 2}}},
		{"arr.nested", Array{Elem: TypeArray, Values: []Array{{Elem: TypeUint16, Values: []uint16{9}}}}},
	}
	w := make([]float32, 64)
	for i := range w {
		w[i] = float32(i) - 32
	}
	tensors := []WriteTensor{
		{Name: "a", Dims: []uint64{32, 2}, Type: F32, Data: EncodeF32(w)},
		{Name: "b", Dims: []uint64{64}, Type: Q8_0, Data: QuantizeQ8_0(w)},
	}
	if err := Write(&buf, kvs, tensors); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestWriteParseRoundTrip(t *testing.T) {
	f, err := Parse(sample(t))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"u8": uint8(7), "i8": int8(-7), "u16": uint16(700), "i16": int16(-700), "u32": uint32(70000),
		"i32": int32(-70000), "f32": float32(1.5), "bool": true, "str": "héllo", "u64": uint64(1 << 40),
		"i64": int64(-1 << 40), "f64": 2.25,
		"arr.str":    Array{Elem: TypeString, Values: []string{"a", "", "ccc"}},
		"arr.i32":    Array{Elem: TypeInt32, Values: []int32{1, -2, 3}},
		"arr.f32":    Array{Elem: TypeFloat32, Values: []float32{0.5}},
		"arr.bool":   Array{Elem: TypeBool, Values: []bool{true, false}},
		"arr.u8":     Array{Elem: TypeUint8, Values: []uint8{1, 2}},
		"arr.nested": Array{Elem: TypeArray, Values: []Array{{Elem: TypeUint16, Values: []uint16{9}}}},
	}
	for k, v := range want {
		if got := f.Metadata[k].V; !reflect.DeepEqual(got, v) {
			t.Errorf("metadata %q = %#v, want %#v", k, got, v)
		}
	}
	if i, ok := f.Int("i64"); !ok || i != -1<<40 {
		t.Errorf("Int(i64) = %d, %v", i, ok)
	}
	if _, ok := f.Uint("i8"); ok {
		t.Error("Uint of a negative value succeeded")
	}
	a, _ := f.Tensor("a")
	got := make([]float32, 64)
	if err := DequantizeRow(F32, f.Data(a), got); err != nil || got[63] != 31 {
		t.Errorf("tensor a: %v %v", got[63], err)
	}
	b, _ := f.Tensor("b")
	if err := DequantizeRow(Q8_0, f.Data(b), got); err != nil {
		t.Fatal(err)
	}
	for i, v := range got {
		if math.Abs(float64(v)-float64(i-32)) > 0.2 {
			t.Errorf("q8_0[%d] = %g, want ≈ %d", i, v, i-32)
		}
	}
	if f.DataOffset%DefaultAlignment != 0 || b.Offset%DefaultAlignment != 0 {
		t.Errorf("data offset %d, tensor b offset %d not aligned", f.DataOffset, b.Offset)
	}
}

func TestParseErrors(t *testing.T) {
	good := sample(t)
	le := binary.LittleEndian
	mod := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	tests := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"bad magic", mod(func(b []byte) []byte { b[0] = 'X'; return b })},
		{"version 1", mod(func(b []byte) []byte { le.PutUint32(b[4:], 1); return b })},
		{"version 4", mod(func(b []byte) []byte { le.PutUint32(b[4:], 4); return b })},
		{"big endian", mod(func(b []byte) []byte { binary.BigEndian.PutUint32(b[4:], 3); return b })},
		{"huge tensor count", mod(func(b []byte) []byte { le.PutUint64(b[8:], 1<<62); return b })},
		{"huge kv count", mod(func(b []byte) []byte { le.PutUint64(b[16:], 1<<62); return b })},
		{"huge key length", mod(func(b []byte) []byte { le.PutUint64(b[24:], 1<<62); return b })},
		{"bad value type", mod(func(b []byte) []byte { le.PutUint32(b[24+8+2:], 99); return b })},
		{"truncated data", good[:len(good)-10]},
		{"header only", good[:24]},
	}
	for _, tt := range tests {
		if _, err := Parse(tt.data); !errors.Is(err, ErrFormat) {
			t.Errorf("%s: Parse = %v, want ErrFormat", tt.name, err)
		}
	}
	// Every truncation of a valid file fails cleanly.
	for n := 0; n < len(good); n++ {
		if _, err := Parse(good[:n]); err == nil {
			t.Fatalf("Parse of the first %d of %d bytes succeeded", n, len(good))
		}
	}
}

func TestParseTensorErrors(t *testing.T) {
	build := func(dims []uint64, typ TensorType, size int) []byte {
		var buf bytes.Buffer
		if err := Write(&buf, nil, []WriteTensor{{Name: "t", Dims: dims, Type: typ, Data: make([]byte, size)}}); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	tests := []struct {
		name string
		data []byte
	}{
		{"unsupported type", build([]uint64{32}, TensorType(3), 20)},
		{"row not multiple of block", build([]uint64{48}, Q8_0, 34)},
		{"data past end", build([]uint64{64}, F32, 16)},
		{"zero dimension", build([]uint64{0}, F32, 0)},
		{"too many dims", build([]uint64{1, 1, 1, 1, 1}, F32, 4)},
	}
	for _, tt := range tests {
		if _, err := Parse(tt.data); !errors.Is(err, ErrFormat) {
			t.Errorf("%s: Parse = %v, want ErrFormat", tt.name, err)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.gguf")
	if err := os.WriteFile(bad, []byte("GGUF\x03\x00\x00\x00"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty.gguf")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{bad, empty, filepath.Join(dir, "missing.gguf")} {
		if f, err := Open(p); err == nil {
			_ = f.Close()
			t.Errorf("Open(%s) succeeded", filepath.Base(p))
		}
	}
}

func TestHalfConversion(t *testing.T) {
	for h := 0; h < 1<<16; h++ {
		f := HalfToFloat(uint16(h))
		if f != f { // NaN
			continue
		}
		if back := FloatToHalf(f); back != uint16(h) {
			t.Fatalf("FloatToHalf(HalfToFloat(%#04x) = %g) = %#04x", h, f, back)
		}
	}
	tests := []struct {
		h uint16
		f float32
	}{{0x3c00, 1}, {0xc000, -2}, {0x7bff, 65504}, {0x0001, 5.960464477539063e-08}, {0x3555, 0.33325195}}
	for _, tt := range tests {
		if got := HalfToFloat(tt.h); got != tt.f {
			t.Errorf("HalfToFloat(%#04x) = %g, want %g", tt.h, got, tt.f)
		}
	}
	if got := BF16ToFloat(0x3fc0); got != 1.5 {
		t.Errorf("BF16ToFloat(0x3fc0) = %g", got)
	}
}

// TestDequantizeKnownBlocks decodes hand-built blocks whose values follow
// directly from ggml's layouts.
func TestDequantizeKnownBlocks(t *testing.T) {
	one := FloatToHalf(1)
	// Q4_0: d=1, nibbles j (low) and 15-j (high): values j-8 and 7-j.
	q40 := make([]byte, BlockQ4_0Size)
	binary.LittleEndian.PutUint16(q40, one)
	for j := 0; j < 16; j++ {
		q40[2+j] = byte(j) | byte(15-j)<<4
	}
	got := make([]float32, 32)
	if err := DequantizeRow(Q4_0, q40, got); err != nil {
		t.Fatal(err)
	}
	for j := 0; j < 16; j++ {
		if got[j] != float32(j-8) || got[j+16] != float32(7-j) {
			t.Fatalf("Q4_0 [%d]=%g [%d]=%g", j, got[j], j+16, got[j+16])
		}
	}
	// Q4_K: d=1, dmin=1, sub-block j has scale j+1 and min j; quants 3.
	q4k := make([]byte, BlockQ4_KSize)
	binary.LittleEndian.PutUint16(q4k, one)
	binary.LittleEndian.PutUint16(q4k[2:], one)
	sc := [8]byte{1, 2, 3, 4, 5, 6, 7, 8}
	mn := [8]byte{0, 1, 2, 3, 4, 5, 6, 7}
	for j := 0; j < 4; j++ {
		q4k[4+j] = sc[j] | (sc[j+4]>>4)<<6
		q4k[4+j+4] = mn[j] | (mn[j+4]>>4)<<6
		q4k[4+j+8] = sc[j+4]&0xf | (mn[j+4]&0xf)<<4
	}
	for i := 16; i < BlockQ4_KSize; i++ {
		q4k[i] = 0x33
	}
	got = make([]float32, 256)
	if err := DequantizeRow(Q4_K, q4k, got); err != nil {
		t.Fatal(err)
	}
	for i, v := range got {
		j := i / 32
		if want := float32(sc[j])*3 - float32(mn[j]); v != want {
			t.Fatalf("Q4_K[%d] = %g, want %g", i, v, want)
		}
	}
	// Q6_K: d=1, scales s, all quants 33 (value 1): element i = scale[i/16].
	q6k := make([]byte, BlockQ6_KSize)
	for i := 0; i < 128; i++ {
		q6k[i] = 0x11 // low 4 bits 1 in both nibbles
	}
	for i := 128; i < 192; i++ {
		q6k[i] = 0xAA // high 2 bits 2 for all four groups: 1 | 2<<4 = 33
	}
	for i := 0; i < 16; i++ {
		q6k[192+i] = byte(int8(i - 8))
	}
	binary.LittleEndian.PutUint16(q6k[208:], one)
	if err := DequantizeRow(Q6_K, q6k, got); err != nil {
		t.Fatal(err)
	}
	for i, v := range got {
		half, r := i/128, i%128
		g, l := r/32, r%32
		want := float32(half*8 + 2*g + l/16 - 8)
		if v != want {
			t.Fatalf("Q6_K[%d] = %g, want %g", i, v, want)
		}
	}
	if err := DequantizeRow(Q6_K, q6k[:100], got); !errors.Is(err, ErrFormat) {
		t.Errorf("short Q6_K row: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add(sample(f))
	f.Add([]byte("GGUF\x03\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"))
	hdr, err := os.ReadFile(stories)
	if err == nil {
		f.Add(hdr[:4096])
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		g, err := Parse(data)
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("error %v does not wrap ErrFormat", err)
			}
			return
		}
		for i := range g.Tensors {
			ti := &g.Tensors[i]
			d := g.Data(ti)
			if uint64(len(d)) != ti.Size {
				t.Fatalf("tensor %q: %d bytes, size %d", ti.Name, len(d), ti.Size)
			}
			if ti.Elements() <= 1<<16 && ti.Type != F32 {
				out := make([]float32, ti.Elements())
				_ = DequantizeRow(ti.Type, d, out)
			}
		}
	})
}
