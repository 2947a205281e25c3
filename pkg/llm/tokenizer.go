package llm

import (
	"fmt"

	"github.com/tributary-rag/tributary/pkg/gguf"
	"github.com/tributary-rag/tributary/pkg/tokenizer"
)

// Tokenizer returns the model's tokenizer, built from its metadata.
func (m *Model) Tokenizer() *tokenizer.Tokenizer { return m.tok }

// TokenizerConfig maps a GGUF file's tokenizer.ggml.* metadata to a
// tokenizer configuration, with llama.cpp's defaults for absent keys.
func TokenizerConfig(f *gguf.File) (tokenizer.Config, error) {
	var c tokenizer.Config
	c.Model, _ = f.String("tokenizer.ggml.model")
	if c.Model == "" {
		return c, fmt.Errorf("%w: tokenizer.ggml.model missing", ErrUnsupported)
	}
	c.Pre, _ = f.String("tokenizer.ggml.pre")
	a, ok := f.Array("tokenizer.ggml.tokens")
	if !ok {
		return c, fmt.Errorf("%w: tokenizer.ggml.tokens missing", ErrUnsupported)
	}
	if c.Tokens, ok = a.Values.([]string); !ok {
		return c, fmt.Errorf("%w: tokenizer.ggml.tokens is %s array", ErrUnsupported, a.Elem)
	}
	if a, ok := f.Array("tokenizer.ggml.scores"); ok {
		if c.Scores, ok = a.Values.([]float32); !ok {
			return c, fmt.Errorf("%w: tokenizer.ggml.scores is %s array", ErrUnsupported, a.Elem)
		}
	}
	if a, ok := f.Array("tokenizer.ggml.token_type"); ok {
		if c.Types, ok = a.Values.([]int32); !ok {
			return c, fmt.Errorf("%w: tokenizer.ggml.token_type is %s array", ErrUnsupported, a.Elem)
		}
	}
	if a, ok := f.Array("tokenizer.ggml.merges"); ok {
		if c.Merges, ok = a.Values.([]string); !ok {
			return c, fmt.Errorf("%w: tokenizer.ggml.merges is %s array", ErrUnsupported, a.Elem)
		}
	}
	id := func(key string) int32 {
		v, ok := f.Uint(key)
		if !ok || v >= uint64(len(c.Tokens)) {
			return -1
		}
		return int32(v)
	}
	c.BOS = id("tokenizer.ggml.bos_token_id")
	c.EOS = id("tokenizer.ggml.eos_token_id")
	c.EOT = id("tokenizer.ggml.eot_token_id")
	c.Unknown = id("tokenizer.ggml.unknown_token_id")
	c.Pad = id("tokenizer.ggml.padding_token_id")
	c.AddBOS = c.Model == "llama"
	if v, ok := f.Bool("tokenizer.ggml.add_bos_token"); ok {
		c.AddBOS = v
	}
	c.AddSpacePrefix = c.Model == "llama"
	if v, ok := f.Bool("tokenizer.ggml.add_space_prefix"); ok {
		c.AddSpacePrefix = v
	}
	return c, nil
}

// initTokenizer builds the model's text tokenizer from metadata.
func (m *Model) initTokenizer(f *gguf.File) error {
	cfg, err := TokenizerConfig(f)
	if err != nil {
		return err
	}
	t, err := tokenizer.New(cfg)
	if err != nil {
		return fmt.Errorf("tokenizer: %w", err)
	}
	m.tok = t
	return nil
}
