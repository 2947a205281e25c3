package encoder

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tributary-rag/tributary/pkg/gguf"
	"github.com/tributary-rag/tributary/pkg/llm"
)

var tinyVocab = []string{"the", "cat", "sat", "on", "mat", "dog", "run", "##s", "##ning", ".", ",", "北", "京", "a", "b", "c"}

func tinyModel(t testing.TB, s Synthetic) string {
	t.Helper()
	if s.Hidden == 0 {
		s.Config = Config{Hidden: 32, Layers: 2, Heads: 4, Intermediate: 64, MaxPositions: 64}
	}
	if s.Vocab == nil {
		s.Vocab = tinyVocab
	}
	dir := t.TempDir()
	if err := s.Write(dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

// refModel is a deliberately naive float64 BERT: its own safetensors
// reading, plain loops, no shared kernels. It checks the engine.
type refModel struct {
	cfg Config
	w   map[string][]float64
}

func loadRef(t *testing.T, dir string) refModel {
	t.Helper()
	var r refModel
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &r.cfg); err != nil {
		t.Fatal(err)
	}
	b, err = os.ReadFile(filepath.Join(dir, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	n := binary.LittleEndian.Uint64(b)
	var hdr map[string]struct {
		DType   string `json:"dtype"`
		Offsets [2]int `json:"data_offsets"`
	}
	if err := json.Unmarshal(b[8:8+n], &hdr); err != nil {
		t.Fatal(err)
	}
	data := b[8+n:]
	r.w = map[string][]float64{}
	for name, e := range hdr {
		raw := data[e.Offsets[0]:e.Offsets[1]]
		var v []float64
		switch e.DType {
		case "F32":
			for i := 0; i < len(raw); i += 4 {
				v = append(v, float64(math.Float32frombits(binary.LittleEndian.Uint32(raw[i:]))))
			}
		case "F16":
			for i := 0; i < len(raw); i += 2 {
				v = append(v, float64(gguf.HalfToFloat(binary.LittleEndian.Uint16(raw[i:]))))
			}
		case "BF16":
			for i := 0; i < len(raw); i += 2 {
				v = append(v, float64(math.Float32frombits(uint32(binary.LittleEndian.Uint16(raw[i:]))<<16)))
			}
		}
		r.w[name] = v
	}
	return r
}

func (r refModel) embed(ids []int32, pooling Pooling, normalize bool) []float64 {
	H, n := r.cfg.Hidden, len(ids)
	x := make([][]float64, n)
	for t, id := range ids {
		x[t] = make([]float64, H)
		for j := 0; j < H; j++ {
			x[t][j] = r.w["embeddings.word_embeddings.weight"][int(id)*H+j] +
				r.w["embeddings.position_embeddings.weight"][t*H+j] +
				r.w["embeddings.token_type_embeddings.weight"][j]
		}
	}
	norm := func(x [][]float64, p string) {
		for _, row := range x {
			mean, vr := 0.0, 0.0
			for _, a := range row {
				mean += a
			}
			mean /= float64(H)
			for _, a := range row {
				vr += (a - mean) * (a - mean)
			}
			vr /= float64(H)
			for j := range row {
				row[j] = (row[j]-mean)/math.Sqrt(vr+r.cfg.LayerNormEps)*r.w[p+".weight"][j] + r.w[p+".bias"][j]
			}
		}
	}
	linear := func(x [][]float64, p string) [][]float64 {
		w, b := r.w[p+".weight"], r.w[p+".bias"]
		in, out := len(x[0]), len(b)
		y := make([][]float64, len(x))
		for t := range x {
			y[t] = make([]float64, out)
			for o := 0; o < out; o++ {
				s := b[o]
				for i := 0; i < in; i++ {
					s += x[t][i] * w[o*in+i]
				}
				y[t][o] = s
			}
		}
		return y
	}
	norm(x, "embeddings.LayerNorm")
	heads := r.cfg.Heads
	d := H / heads
	for l := 0; l < r.cfg.Layers; l++ {
		p := "encoder.layer." + string(rune('0'+l)) + "."
		q, k, v := linear(x, p+"attention.self.query"), linear(x, p+"attention.self.key"), linear(x, p+"attention.self.value")
		ctx := make([][]float64, n)
		for t := range ctx {
			ctx[t] = make([]float64, H)
		}
		for h := 0; h < heads; h++ {
			for t := 0; t < n; t++ {
				scores := make([]float64, n)
				mx := math.Inf(-1)
				for s := 0; s < n; s++ {
					for j := 0; j < d; j++ {
						scores[s] += q[t][h*d+j] * k[s][h*d+j]
					}
					scores[s] /= math.Sqrt(float64(d))
					mx = math.Max(mx, scores[s])
				}
				sum := 0.0
				for s := range scores {
					scores[s] = math.Exp(scores[s] - mx)
					sum += scores[s]
				}
				for s := 0; s < n; s++ {
					for j := 0; j < d; j++ {
						ctx[t][h*d+j] += scores[s] / sum * v[s][h*d+j]
					}
				}
			}
		}
		a := linear(ctx, p+"attention.output.dense")
		for t := range x {
			for j := range x[t] {
				x[t][j] += a[t][j]
			}
		}
		norm(x, p+"attention.output.LayerNorm")
		f := linear(x, p+"intermediate.dense")
		for _, row := range f {
			for j, z := range row {
				row[j] = z * 0.5 * (1 + math.Erf(z/math.Sqrt2))
			}
		}
		f = linear(f, p+"output.dense")
		for t := range x {
			for j := range x[t] {
				x[t][j] += f[t][j]
			}
		}
		norm(x, p+"output.LayerNorm")
	}
	out := make([]float64, H)
	switch pooling {
	case PoolCLS:
		copy(out, x[0])
	case PoolLast:
		copy(out, x[n-1])
	default:
		for t := range x {
			for j := range out {
				out[j] += x[t][j] / float64(n)
			}
		}
	}
	if normalize {
		s := 0.0
		for _, a := range out {
			s += a * a
		}
		for j := range out {
			out[j] /= math.Sqrt(s)
		}
	}
	return out
}

func maxDiff(a []float32, b []float64) float64 {
	d := 0.0
	for i := range a {
		d = math.Max(d, math.Abs(float64(a[i])-b[i]))
	}
	return d
}

var texts = []string{
	"the cat sat on the mat.",
	"dogs",
	"running dogs, a b c 北京",
	"the the the the the the the the the the the the the the the the the the the the the the cat",
	"unknown words here",
}

func TestForwardMatchesReference(t *testing.T) {
	for _, c := range []struct {
		name string
		s    Synthetic
		tol  float64
	}{
		{"mean", Synthetic{Seed: 1}, 1e-4},
		{"mean-normalized", Synthetic{Seed: 2, Normalize: true}, 1e-4},
		{"cls", Synthetic{Seed: 3, Pooling: PoolCLS, Normalize: true}, 1e-4},
		{"last", Synthetic{Seed: 4, Pooling: PoolLast}, 1e-4},
		{"f16", Synthetic{Seed: 5, DType: "F16", Normalize: true}, 1e-4},
		{"bf16", Synthetic{Seed: 6, DType: "BF16", Normalize: true}, 1e-4},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := tinyModel(t, c.s)
			ref := loadRef(t, dir)
			for _, threads := range []int{0, 1, 2, 3} {
				o := Options{Threads: threads}
				if threads == 0 {
					// A caller's backend: its own Attention runs.
					o.Backend = llm.NewCPU(2)
				}
				e, err := Load(dir, o)
				if err != nil {
					t.Fatal(err)
				}
				got, st, err := e.Embed(context.Background(), texts)
				if err != nil {
					t.Fatal(err)
				}
				if st.Truncated != 0 || st.Tokens < 30 {
					t.Errorf("stats = %+v", st)
				}
				for i, text := range texts {
					ids, _ := e.Tokenizer().Encode(text, 0)
					want := ref.embed(ids, e.Pooling(), e.Normalized())
					if d := maxDiff(got[i], want); d > c.tol || len(got[i]) != 32 {
						t.Errorf("threads %d text %d: max |diff| %.3g over %d dims", threads, i, d, len(got[i]))
					}
				}
			}
		})
	}
}

func TestInvariants(t *testing.T) {
	dir := tinyModel(t, Synthetic{Seed: 7, Normalize: true})
	e, err := Load(dir, Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	alone, _, err := e.Embed(ctx, texts[1:2])
	if err != nil {
		t.Fatal(err)
	}
	// In a batch with longer texts, on several threads, the same vector:
	// nothing of the padding or of the neighbours leaks in.
	batch, _, err := e.Embed(ctx, append(texts, texts...))
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{1, 1 + len(texts)} {
		for j := range alone[0] {
			if math.Abs(float64(alone[0][j]-batch[i][j])) > 1e-6 {
				t.Fatalf("batch vector %d differs from the text embedded alone at %d: %v vs %v", i, j, batch[i][j], alone[0][j])
			}
		}
	}
	for i, v := range batch {
		var s float64
		for _, a := range v {
			s += float64(a) * float64(a)
		}
		if math.Abs(math.Sqrt(s)-1) > 1e-5 {
			t.Errorf("vector %d has norm %v", i, math.Sqrt(s))
		}
	}
	// Different texts, different vectors.
	if maxDiff(batch[0], toF64(batch[1])) < 1e-3 {
		t.Error("two texts embed the same")
	}
	// Truncation at the configured maximum is counted.
	short, err := Load(dir, Options{MaxLength: 8})
	if err != nil {
		t.Fatal(err)
	}
	_, st, err := short.Embed(ctx, texts)
	if err != nil || st.Truncated != 3 {
		t.Errorf("truncated = %d (%v), want 3", st.Truncated, err)
	}
	if short.MaxLength() != 8 || e.MaxLength() != 64 {
		t.Errorf("MaxLength = %d, %d", short.MaxLength(), e.MaxLength())
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, _, err := e.Embed(cctx, texts); err == nil {
		t.Error("Embed with a cancelled context: no error")
	}
	if _, err := e.EmbedIDs(ctx, [][]int32{{2, 999, 3}}); err == nil {
		t.Error("EmbedIDs with an id outside the vocabulary: no error")
	}
}

func toF64(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, a := range v {
		out[i] = float64(a)
	}
	return out
}

func TestPrompts(t *testing.T) {
	dir := tinyModel(t, Synthetic{Seed: 8, Prompts: map[string]string{"query": "query: ", "passage": "passage: "}})
	e, err := Load(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if e.Prompt("query") != "query: " || e.Prompt("passage") != "passage: " || e.Prompt("document") != "" {
		t.Errorf("prompts = %q %q", e.Prompt("query"), e.Prompt("passage"))
	}
}

func TestLoadErrors(t *testing.T) {
	edit := func(t *testing.T, f func(dir string)) error {
		dir := tinyModel(t, Synthetic{Seed: 9})
		f(dir)
		_, err := Load(dir, Options{})
		return err
	}
	rewrite := func(dir, name, old, new string) {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(strings.Replace(string(b), old, new, 1)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		name, want string
		f          func(dir string)
	}{
		{"no config", "no config.json", func(d string) { os.Remove(filepath.Join(d, "config.json")) }},
		{"no weights", "model.safetensors", func(d string) { os.Remove(filepath.Join(d, "model.safetensors")) }},
		{"no tokenizer", "tokenizer.json", func(d string) { os.Remove(filepath.Join(d, "tokenizer.json")) }},
		{"architecture", `"llama" is not supported`, func(d string) { rewrite(d, "config.json", `"model_type":"bert"`, `"model_type":"llama"`) }},
		{"shape", "has shape", func(d string) { rewrite(d, "config.json", `"intermediate_size":64`, `"intermediate_size":65`) }},
		{"heads", "not a multiple", func(d string) { rewrite(d, "config.json", `"num_attention_heads":4`, `"num_attention_heads":5`) }},
		{"vocab", "do not match", func(d string) { rewrite(d, "config.json", `"vocab_size":20`, `"vocab_size":10`) }},
		{"pooling", "pooling mode", func(d string) {
			rewrite(d, "1_Pooling/config.json", `"pooling_mode_mean_tokens":true`, `"pooling_mode_max_tokens":true`)
		}},
		{"truncated", "truncated", func(d string) {
			p := filepath.Join(d, "model.safetensors")
			b, _ := os.ReadFile(p)
			os.WriteFile(p, b[:len(b)-100], 0o644)
		}},
		{"missing tensor", "no tensor", func(d string) {
			ts, _ := ReadSafetensors(filepath.Join(d, "model.safetensors"))
			delete(ts, "encoder.layer.1.output.dense.bias")
			WriteSafetensors(filepath.Join(d, "model.safetensors"), ts)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := edit(t, c.f)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Load: %v, want an error containing %q", err, c.want)
			}
		})
	}
}

func TestParseSafetensorsErrors(t *testing.T) {
	hdr := func(h string) []byte {
		b := binary.LittleEndian.AppendUint64(nil, uint64(len(h)))
		return append(append(b, h...), make([]byte, 16)...)
	}
	for name, b := range map[string][]byte{
		"short":       {1, 2},
		"huge header": binary.LittleEndian.AppendUint64(nil, 1<<40),
		"bad json":    hdr("{"),
		"dtype":       hdr(`{"a":{"dtype":"Q9","shape":[1],"data_offsets":[0,1]}}`),
		"past end":    hdr(`{"a":{"dtype":"F32","shape":[8],"data_offsets":[0,32]}}`),
		"shape size":  hdr(`{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,16]}}`),
		"negative":    hdr(`{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}`),
		"reversed":    hdr(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}}`),
		"overflow":    hdr(`{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}}`),
	} {
		if _, err := ParseSafetensors(b); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	ts, err := ParseSafetensors(hdr(`{"__metadata__":{"format":"pt"},"a":{"dtype":"F16","shape":[2,2],"data_offsets":[0,8]}}`))
	if err != nil || len(ts) != 1 || ts["a"].Elements() != 4 {
		t.Fatalf("ParseSafetensors = %v, %v", ts, err)
	}
	if _, err := (Tensor{DType: "I8", Shape: []int{1}, Data: []byte{1}}).F32(); err == nil {
		t.Error("I8 to F32: no error")
	}
}

func FuzzParseSafetensors(f *testing.F) {
	h := `{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(h)))
	f.Add(append(append(b, h...), make([]byte, 8)...))
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		ts, err := ParseSafetensors(b)
		if err != nil {
			return
		}
		for _, x := range ts {
			if x.DType == "F32" || x.DType == "F16" || x.DType == "BF16" {
				if v, err := x.F32(); err != nil || len(v) != x.Elements() {
					t.Fatalf("F32: %v", err)
				}
			}
		}
	})
}

func TestErf32(t *testing.T) {
	worst := 0.0
	for x := -6.0; x <= 6; x += 1e-3 {
		worst = math.Max(worst, math.Abs(float64(erf32(float32(x)))-math.Erf(x)))
	}
	if worst > 5e-7 {
		t.Errorf("erf32: max |error| %.3g, want ≤ 5e-7", worst)
	}
}

func TestQuantizedQ8(t *testing.T) {
	s := Synthetic{Seed: 10, Normalize: true, Config: Config{Hidden: 64, Layers: 2, Heads: 4, Intermediate: 128, MaxPositions: 64}}
	dir := tinyModel(t, s)
	f32, err := Load(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	q8, err := Load(dir, Options{Quantize: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	a, _, err := f32.Embed(ctx, texts)
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := q8.Embed(ctx, texts)
	if err != nil {
		t.Fatal(err)
	}
	for i := range a {
		var dot float64
		for j := range a[i] {
			dot += float64(a[i][j]) * float64(b[i][j])
		}
		if dot < 0.999 || maxDiff(a[i], toF64(b[i])) == 0 {
			t.Errorf("text %d: cosine Q8_0 to F32 %.5f (want ≥ 0.999 and not identical)", i, dot)
		}
	}
}

func TestExp32(t *testing.T) {
	worst := 0.0
	for x := -90.0; x <= 0; x += 1e-3 {
		want := math.Exp(float64(float32(x)))
		got := float64(exp32(float32(x)))
		if want > 1e-30 {
			worst = math.Max(worst, math.Abs(got-want)/want)
		} else if got > 2e-30 {
			t.Fatalf("exp32(%v) = %v, want %v", x, got, want)
		}
	}
	if worst > 1e-6 {
		t.Errorf("exp32: max relative error %.3g", worst)
	}
}
