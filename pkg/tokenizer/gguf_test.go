package tokenizer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// readGGUFMetadata is a test-only reader of a GGUF v2/v3 file's key/value
// metadata; it keeps the tests independent of the model loader.
func readGGUFMetadata(path string) (map[string]any, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	r := &metaReader{b: data}
	if string(r.next(4)) != "GGUF" {
		return nil, errors.New("not a gguf file")
	}
	if v := r.u32(); v != 2 && v != 3 {
		return nil, fmt.Errorf("gguf version %d", v)
	}
	r.u64() // tensor count
	n := r.u64()
	meta := map[string]any{}
	for i := uint64(0); i < n && r.err == nil; i++ {
		k := r.str()
		meta[k] = r.value(r.u32())
	}
	return meta, r.err
}

type metaReader struct {
	b   []byte
	off int
	err error
}

func (r *metaReader) next(n int) []byte {
	if r.err != nil || n < 0 || r.off+n > len(r.b) {
		r.err = io.ErrUnexpectedEOF
		return make([]byte, max(n, 0))
	}
	s := r.b[r.off : r.off+n]
	r.off += n
	return s
}

func (r *metaReader) u32() uint32 { return binary.LittleEndian.Uint32(r.next(4)) }
func (r *metaReader) u64() uint64 { return binary.LittleEndian.Uint64(r.next(8)) }
func (r *metaReader) str() string { return string(r.next(int(r.u64()))) }

func (r *metaReader) value(typ uint32) any {
	switch typ {
	case 0, 1, 7:
		return int64(r.next(1)[0])
	case 2, 3:
		return int64(binary.LittleEndian.Uint16(r.next(2)))
	case 4:
		return int64(r.u32())
	case 5:
		return int64(int32(r.u32()))
	case 6:
		return math.Float32frombits(r.u32())
	case 8:
		return r.str()
	case 9:
		et := r.u32()
		n := r.u64()
		if n > uint64(len(r.b)) {
			r.err = errors.New("array too long")
			return nil
		}
		out := make([]any, 0, n)
		for i := uint64(0); i < n && r.err == nil; i++ {
			out = append(out, r.value(et))
		}
		return out
	case 10, 11:
		return int64(r.u64())
	case 12:
		return math.Float64frombits(r.u64())
	}
	r.err = fmt.Errorf("gguf value type %d", typ)
	return nil
}

// storiesConfig reads the vocabulary of the repository's stories260K model.
func storiesConfig(t testing.TB) Config {
	t.Helper()
	meta, err := readGGUFMetadata(filepath.Join("..", "..", "models", "stories260K.gguf"))
	if err != nil {
		t.Fatalf("read stories260K metadata: %v", err)
	}
	cfg := Config{
		Model: meta["tokenizer.ggml.model"].(string),
		BOS:   int32(meta["tokenizer.ggml.bos_token_id"].(int64)),
		EOS:   int32(meta["tokenizer.ggml.eos_token_id"].(int64)),
		EOT:   -1, Pad: -1,
		Unknown:        int32(meta["tokenizer.ggml.unknown_token_id"].(int64)),
		AddBOS:         true,
		AddSpacePrefix: true,
	}
	for _, v := range meta["tokenizer.ggml.tokens"].([]any) {
		cfg.Tokens = append(cfg.Tokens, v.(string))
	}
	for _, v := range meta["tokenizer.ggml.scores"].([]any) {
		cfg.Scores = append(cfg.Scores, v.(float32))
	}
	for _, v := range meta["tokenizer.ggml.token_type"].([]any) {
		cfg.Types = append(cfg.Types, int32(v.(int64)))
	}
	return cfg
}

func storiesTokenizer(t testing.TB) *Tokenizer {
	t.Helper()
	tok, err := New(storiesConfig(t))
	if err != nil {
		t.Fatalf("New(stories260K) error: %v", err)
	}
	return tok
}
