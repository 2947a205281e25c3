package llm

import (
	"math"
	"math/rand/v2"
	"slices"
)

// Sampling selects how the next token is chosen. The zero value is greedy
// decoding (always the most likely token).
//
// With Temperature > 0 the steps are: repetition penalty (as llama.cpp),
// top-k, temperature, softmax, top-p, min-p, then a draw from the request's
// own PRNG seeded with Seed, so equal requests give equal output. Like
// Hugging Face transformers and vLLM (and unlike llama.cpp's default chain),
// top-p and min-p see the probabilities after temperature.
type Sampling struct {
	Temperature   float32 // ≤ 0: greedy
	TopP          float32 // keep the smallest set with this much probability; 0 or ≥ 1: off
	MinP          float32 // drop tokens below MinP × the top probability; 0: off
	RepeatPenalty float32 // divide positive (multiply negative) logits of recent tokens; 0 or 1: off
	TopK          int     // keep the K most likely; 0: off
	RepeatLastN   int     // window of the repetition penalty (0: 64, -1: whole context)
	Seed          uint64
}

type candidate struct {
	id int32
	p  float32
}

type sampler struct {
	s     Sampling
	rng   *rand.Rand
	cands []candidate
	work  []float32
}

func newSampler(s Sampling) *sampler {
	return &sampler{s: s, rng: rand.New(rand.NewPCG(s.Seed, s.Seed^0x9e3779b97f4a7c15))}
}

// sample picks the next token from logits given the tokens so far
// (prompt and completion) for the repetition penalty. It does not modify
// logits.
func (sp *sampler) sample(logits []float32, history []int32) int32 {
	s := &sp.s
	l := logits
	if s.RepeatPenalty > 0 && s.RepeatPenalty != 1 && len(history) > 0 {
		sp.work = append(sp.work[:0], logits...)
		l = sp.work
		n := s.RepeatLastN
		if n == 0 {
			n = 64
		}
		recent := history
		if n > 0 && len(recent) > n {
			recent = recent[len(recent)-n:]
		}
		seen := make(map[int32]bool, len(recent))
		for _, id := range recent {
			if id < 0 || int(id) >= len(l) || seen[id] {
				continue
			}
			seen[id] = true
			if l[id] > 0 {
				l[id] /= s.RepeatPenalty
			} else {
				l[id] *= s.RepeatPenalty
			}
		}
	}
	if s.Temperature <= 0 {
		return argmax(l)
	}
	// Candidates: everything within exp(-30) of the top logit after
	// temperature (the rest cannot be drawn at float32 precision), then
	// the top-k cut.
	mx := l[argmax(l)]
	inv := 1 / s.Temperature
	cut := mx - 30*s.Temperature
	sp.cands = sp.cands[:0]
	for i, v := range l {
		if v >= cut {
			sp.cands = append(sp.cands, candidate{id: int32(i), p: v})
		}
	}
	c := sp.cands
	slices.SortFunc(c, func(a, b candidate) int {
		switch {
		case a.p > b.p:
			return -1
		case a.p < b.p:
			return 1
		}
		return int(a.id - b.id)
	})
	if s.TopK > 0 && len(c) > s.TopK {
		c = c[:s.TopK]
	}
	var sum float64
	for i := range c {
		e := math.Exp(float64((c[i].p - mx) * inv))
		c[i].p = float32(e)
		sum += e
	}
	for i := range c {
		c[i].p = float32(float64(c[i].p) / sum)
	}
	if s.TopP > 0 && s.TopP < 1 {
		var cum float32
		for i := range c {
			cum += c[i].p
			if cum >= s.TopP {
				c = c[:i+1]
				break
			}
		}
	}
	if s.MinP > 0 && len(c) > 0 {
		th := s.MinP * c[0].p
		k := 1
		for k < len(c) && c[k].p >= th {
			k++
		}
		c = c[:k]
	}
	var total float32
	for _, x := range c {
		total += x.p
	}
	r := sp.rng.Float32() * total
	for _, x := range c {
		r -= x.p
		if r < 0 {
			return x.id
		}
	}
	return c[len(c)-1].id
}

func argmax(x []float32) int32 {
	best := 0
	for i, v := range x {
		if v > x[best] {
			best = i
		}
	}
	return int32(best)
}
