package llm

import (
	"math"
	"testing"
)

func TestSamplerGreedyEquivalents(t *testing.T) {
	logits := []float32{0.1, 2.5, -1, 2.4, 0.3}
	tests := []struct {
		name string
		s    Sampling
	}{
		{"zero value", Sampling{}},
		{"top-k 1", Sampling{Temperature: 1.5, TopK: 1, Seed: 1}},
		{"tiny top-p", Sampling{Temperature: 1, TopP: 1e-6, Seed: 2}},
		{"min-p 1", Sampling{Temperature: 1, MinP: 1, Seed: 3}},
	}
	for _, tt := range tests {
		sp := newSampler(tt.s)
		for i := 0; i < 50; i++ {
			if got := sp.sample(logits, nil); got != 1 {
				t.Errorf("%s: sample = %d, want 1", tt.name, got)
				break
			}
		}
	}
}

func TestSamplerDistribution(t *testing.T) {
	probs := []float64{0.5, 0.3, 0.15, 0.05}
	logits := make([]float32, len(probs))
	for i, p := range probs {
		logits[i] = float32(math.Log(p))
	}
	tests := []struct {
		name string
		s    Sampling
		want []float64
	}{
		{"temperature 1", Sampling{Temperature: 1, Seed: 9}, probs},
		{"top-k 2", Sampling{Temperature: 1, TopK: 2, Seed: 9}, []float64{0.625, 0.375, 0, 0}},
		{"top-p 0.75", Sampling{Temperature: 1, TopP: 0.75, Seed: 9}, []float64{0.625, 0.375, 0, 0}},
		{"min-p 0.2", Sampling{Temperature: 1, MinP: 0.2, Seed: 9}, []float64{0.5 / 0.95, 0.3 / 0.95, 0.15 / 0.95, 0}},
		{"temperature 0.5", Sampling{Temperature: 0.5, Seed: 9}, []float64{0.25 / 0.3625, 0.09 / 0.3625, 0.0225 / 0.3625, 0.0025 / 0.3625}},
	}
	const n = 40000
	for _, tt := range tests {
		sp := newSampler(tt.s)
		counts := make([]float64, len(probs))
		for i := 0; i < n; i++ {
			counts[sp.sample(logits, nil)]++
		}
		for i := range counts {
			if got := counts[i] / n; math.Abs(got-tt.want[i]) > 0.015 {
				t.Errorf("%s: P(%d) = %.3f, want %.3f", tt.name, i, got, tt.want[i])
			}
		}
	}
}

func TestSamplerRepeatPenalty(t *testing.T) {
	logits := []float32{1.0, 1.1, -0.5}
	sp := newSampler(Sampling{RepeatPenalty: 1.5})
	if got := sp.sample(logits, []int32{1}); got != 0 {
		t.Errorf("penalised argmax = %d, want 0", got)
	}
	if got := sp.sample(logits, []int32{0}); got != 1 {
		t.Errorf("argmax with other token penalised = %d, want 1", got)
	}
	// Outside the window the penalty does not apply.
	sp = newSampler(Sampling{RepeatPenalty: 1.5, RepeatLastN: 1})
	if got := sp.sample(logits, []int32{1, 2}); got != 1 {
		t.Errorf("penalty outside window: %d, want 1", got)
	}
	if logits[1] != 1.1 {
		t.Errorf("sample modified its input: %v", logits)
	}
}

func TestSamplerSeedReproducible(t *testing.T) {
	logits := make([]float32, 100)
	for i := range logits {
		logits[i] = float32(math.Sin(float64(i)))
	}
	run := func(seed uint64) []int32 {
		sp := newSampler(Sampling{Temperature: 1, Seed: seed})
		out := make([]int32, 30)
		for i := range out {
			out[i] = sp.sample(logits, nil)
		}
		return out
	}
	a, b, c := run(5), run(5), run(6)
	same := func(x, y []int32) bool {
		for i := range x {
			if x[i] != y[i] {
				return false
			}
		}
		return true
	}
	if !same(a, b) || same(a, c) {
		t.Errorf("seed 5: %v, again: %v, seed 6: %v", a, b, c)
	}
}

func TestTextStream(t *testing.T) {
	tests := []struct {
		name   string
		stops  []string
		pieces []string
		want   []string // emitted per push, then flush
		stop   bool
	}{
		{"plain", nil, []string{"a", "b"}, []string{"a", "b", ""}, false},
		{"utf-8 split", nil, []string{"\xe2", "\x82", "\xac!"}, []string{"", "", "€!", ""}, false},
		{"stop inside piece", []string{"END"}, []string{"abENDcd"}, []string{"ab"}, true},
		{"stop across pieces", []string{"END"}, []string{"xE", "N", "Dy"}, []string{"x", "", ""}, true},
		{"false start released", []string{"END"}, []string{"xE", "Nz"}, []string{"x", "ENz", ""}, false},
		{"held until flush", []string{"END"}, []string{"aEN"}, []string{"a", "EN"}, false},
		{"invalid bytes replaced", nil, []string{"\xff", "a"}, []string{"\uFFFD", "a", ""}, false},
	}
	for _, tt := range tests {
		ts := newTextStream(tt.stops)
		var got []string
		stopped := false
		for _, p := range tt.pieces {
			out, s := ts.push([]byte(p))
			got = append(got, out)
			if s {
				stopped = true
				break
			}
		}
		if !stopped {
			got = append(got, ts.flush())
		}
		if stopped != tt.stop || len(got) != len(tt.want) {
			t.Errorf("%s: got %q stopped=%v, want %q stopped=%v", tt.name, got, stopped, tt.want, tt.stop)
			continue
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
				break
			}
		}
	}
}
