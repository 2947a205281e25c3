package encoder

import (
	"fmt"
	"math"
)

// classifier is a sequence-classification head with one label, read over
// the first token's final state: dense, tanh, then the output projection.
// BertForSequenceClassification's dense is the pooler (pooler.dense, then
// classifier); XLM-RoBERTa's RobertaClassificationHead names them
// classifier.dense and classifier.out_proj (llama.cpp: cls, cls.output).
type classifier struct {
	dense, denseB []float32 // hidden×hidden, hidden
	out           []float32 // hidden
	outB          float32
}

// loadHead finds the head's tensors and checks that it has one label.
func (e *Encoder) loadHead(ws weights) error {
	h := e.cfg.Hidden
	dense, out := "classifier.dense", "classifier.out_proj"
	if _, ok := ws.lookup(out + ".weight"); !ok {
		dense, out = "pooler.dense", "classifier"
	}
	t, ok := ws.lookup(out + ".weight")
	if !ok {
		return fmt.Errorf("no classification head (classifier.out_proj or classifier with pooler.dense): not a cross-encoder")
	}
	if len(t.Shape) != 2 || t.Shape[0] != 1 || t.Shape[1] != h {
		return fmt.Errorf("tensor %s.weight has shape %v: a reranker needs one label, [1 %d]", out, t.Shape, h)
	}
	var errs []error
	get := func(name string, shape ...int) []float32 {
		v, err := ws.get(name, shape...)
		if err != nil {
			errs = append(errs, err)
		}
		return v
	}
	c := &classifier{dense: get(dense+".weight", h, h), denseB: get(dense+".bias", h), out: get(out+".weight", 1, h)}
	if b := get(out+".bias", 1); len(b) == 1 {
		c.outB = b[0]
	}
	if len(errs) > 0 {
		return errs[0]
	}
	e.head = c
	return nil
}

// score is the head's logit for the first token's state x.
func (c *classifier) score(x []float32) float32 {
	h := len(x)
	s := float64(c.outB)
	for o := range h {
		a := float64(c.denseB[o])
		for i, w := range c.dense[o*h : (o+1)*h] {
			a += float64(w) * float64(x[i])
		}
		s += math.Tanh(a) * float64(c.out[o])
	}
	return float32(s)
}
