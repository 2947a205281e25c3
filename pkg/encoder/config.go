package encoder

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Pooling is how token states become one sentence vector.
type Pooling string

// The poolings of sentence-transformers' Pooling module that we support.
const (
	PoolMean Pooling = "mean"
	PoolCLS  Pooling = "cls"
	PoolLast Pooling = "lasttoken"
)

// Config is an encoder's architecture, from config.json.
type Config struct {
	Architecture  string  `json:"model_type"`
	VocabSize     int     `json:"vocab_size"`
	Hidden        int     `json:"hidden_size"`
	Layers        int     `json:"num_hidden_layers"`
	Heads         int     `json:"num_attention_heads"`
	Intermediate  int     `json:"intermediate_size"`
	MaxPositions  int     `json:"max_position_embeddings"`
	TypeVocabSize int     `json:"type_vocab_size"`
	LayerNormEps  float64 `json:"layer_norm_eps"`
	Activation    string  `json:"hidden_act"`
	// PadTokenID places XLM-RoBERTa's positions: they start at
	// pad_token_id+1 in its table.
	PadTokenID *int `json:"pad_token_id"`

	// RotaryDim is how many leading dimensions of each attention head
	// nomic-bert rotates by position (rotary embeddings, NeoX halves); 0
	// for the absolute position table of BERT and XLM-RoBERTa. Nomic's
	// config.json says rotary_emb_fraction (see nomic.go).
	RotaryDim int `json:"-"`
	// RopeBase is the rotary embeddings' frequency base (nomic-bert's
	// rotary_emb_base; default 10000).
	RopeBase float64 `json:"-"`
}

// positionOffset is the first row of the position table that a token
// uses: pad_token_id+1 for XLM-RoBERTa (pad_token_id defaults to 1 there;
// in a GGUF file llama.cpp has already cut the table), 0 for BERT.
func (c Config) positionOffset() int {
	if c.Architecture != "xlm-roberta" {
		return 0
	}
	if c.PadTokenID != nil {
		return *c.PadTokenID + 1
	}
	return 2
}

func (c Config) check() error {
	switch c.Architecture {
	case "bert", "xlm-roberta", "nomic-bert":
	default:
		return fmt.Errorf("config.json: architecture (model_type) %q is not supported (want bert, xlm-roberta or nomic_bert)", c.Architecture)
	}
	if p := c.PadTokenID; p != nil && (*p < 0 || *p+1 >= c.MaxPositions) {
		return fmt.Errorf("config.json: pad_token_id %d leaves no positions of %d", *p, c.MaxPositions)
	}
	var bad []string
	for _, f := range []struct {
		name string
		v    int
	}{{"vocab_size", c.VocabSize}, {"hidden_size", c.Hidden}, {"num_hidden_layers", c.Layers},
		{"num_attention_heads", c.Heads}, {"intermediate_size", c.Intermediate}, {"max_position_embeddings", c.MaxPositions}} {
		if f.v <= 0 || f.v > 1<<20 {
			bad = append(bad, f.name)
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("config.json: %s missing or out of range", strings.Join(bad, ", "))
	}
	if c.Hidden%c.Heads != 0 {
		return fmt.Errorf("config.json: hidden_size %d is not a multiple of num_attention_heads %d", c.Hidden, c.Heads)
	}
	if c.Architecture == "nomic-bert" {
		return c.checkNomic()
	}
	switch c.Activation {
	case "gelu", "gelu_new", "gelu_pytorch_tanh", "relu":
	default:
		return fmt.Errorf("config.json: hidden_act %q is not supported", c.Activation)
	}
	return nil
}

// stConfig is what the sentence-transformers files around the model say.
type stConfig struct {
	pooling   Pooling
	normalize bool
	maxSeq    int
	prompts   map[string]string
}

// readST reads modules.json, the pooling config, sentence_bert_config.json
// and config_sentence_transformers.json; each is optional, as a plain
// Hugging Face directory has none of them (then: mean pooling, no
// normalization, the model's own maximum length).
func readST(dir string) (stConfig, error) {
	st := stConfig{pooling: PoolMean}
	var modules []struct {
		Path string `json:"path"`
		Type string `json:"type"`
	}
	poolDir := "1_Pooling"
	if ok, err := readJSON(filepath.Join(dir, "modules.json"), &modules); err != nil {
		return st, err
	} else if ok {
		for _, m := range modules {
			switch {
			case strings.HasSuffix(m.Type, ".Pooling"):
				poolDir = m.Path
			case strings.HasSuffix(m.Type, ".Normalize"):
				st.normalize = true
			case strings.HasSuffix(m.Type, ".Transformer"):
			default:
				return st, fmt.Errorf("modules.json: module %s (%s) is not supported", m.Path, m.Type)
			}
		}
	}
	var pool map[string]any
	if ok, err := readJSON(filepath.Join(dir, poolDir, "config.json"), &pool); err != nil {
		return st, err
	} else if ok {
		var on []string
		for k, v := range pool {
			if b, _ := v.(bool); b && strings.HasPrefix(k, "pooling_mode_") {
				on = append(on, strings.TrimPrefix(k, "pooling_mode_"))
			}
		}
		if len(on) != 1 {
			return st, fmt.Errorf("%s/config.json: want exactly one pooling mode, have %v", poolDir, on)
		}
		switch on[0] {
		case "mean_tokens":
			st.pooling = PoolMean
		case "cls_token":
			st.pooling = PoolCLS
		case "lasttoken":
			st.pooling = PoolLast
		default:
			return st, fmt.Errorf("%s/config.json: pooling mode %s is not supported", poolDir, on[0])
		}
	}
	var sb struct {
		MaxSeqLength int `json:"max_seq_length"`
	}
	if _, err := readJSON(filepath.Join(dir, "sentence_bert_config.json"), &sb); err != nil {
		return st, err
	}
	st.maxSeq = sb.MaxSeqLength
	var cst struct {
		Prompts map[string]string `json:"prompts"`
	}
	if _, err := readJSON(filepath.Join(dir, "config_sentence_transformers.json"), &cst); err != nil {
		return st, err
	}
	st.prompts = cst.Prompts
	return st, nil
}

// readJSON decodes the file at path into v; a missing file is ok=false.
func readJSON(path string, v any) (ok bool, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return false, fmt.Errorf("%s: %w", filepath.Base(path), err)
	}
	return true, nil
}
