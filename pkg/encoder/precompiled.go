package encoder

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
	"unicode/utf8"
)

// precompiled is SentencePiece's precompiled character map (the
// normalizer_spec.precompiled_charsmap of a model, Hugging Face's
// Precompiled normalizer, llama.cpp's tokenizer.ggml.precompiled_charsmap):
// a Darts-clone double-array trie whose keys are UTF-8 strings to replace
// and whose values are offsets of their NUL-terminated replacements.
// XLM-RoBERTa's, multilingual-e5's and bge-m3's hold the nmt_nfkc rule.
//
// A precompiled is immutable and safe for concurrent use.
type precompiled struct {
	units      []uint32
	normalized []byte
}

// The layout of a double-array unit (darts.h, DoubleArrayUnit).
func dartsHasLeaf(u uint32) bool  { return u>>8&1 == 1 }
func dartsValue(u uint32) uint32  { return u & (1<<31 - 1) }
func dartsLabel(u uint32) uint32  { return u & (1<<31 | 0xFF) }
func dartsOffset(u uint32) uint32 { return u >> 10 << (u & (1 << 9) >> 6) }

// parsePrecompiled decodes a charsmap: a little-endian uint32 trie size in
// bytes, the trie's uint32 units, then the replacement strings. It checks
// every key the trie holds, so that a map it accepts cannot send a lookup
// out of range: a broken map is an error here, never a panic later.
func parsePrecompiled(blob []byte) (*precompiled, error) {
	if len(blob) < 4 {
		return nil, fmt.Errorf("%d bytes, too short for the 4-byte trie size", len(blob))
	}
	size := uint64(binary.LittleEndian.Uint32(blob))
	switch {
	case size == 0:
		return nil, fmt.Errorf("empty trie")
	case size%4 != 0:
		return nil, fmt.Errorf("trie of %d bytes is not whole uint32 units", size)
	case 4+size > uint64(len(blob)):
		return nil, fmt.Errorf("trie of %d bytes runs past the end of the %d-byte map", size, len(blob))
	}
	p := &precompiled{units: make([]uint32, size/4), normalized: blob[4+size:]}
	for i := range p.units {
		p.units[i] = binary.LittleEndian.Uint32(blob[4+4*i:])
	}
	if err := p.check(); err != nil {
		return nil, err
	}
	return p, nil
}

// check walks every node reachable from the root (each node once: a
// hostile trie may loop) and checks that each key's replacement starts
// inside the strings and ends with a NUL.
func (p *precompiled) check() error {
	n := uint32(len(p.units))
	// A node whose id shares no high bits with an index below n has no
	// children in range, so ids up to span are all that can be visited.
	span := (n - 1) | 0xFF
	seen := make([]bool, span+1)
	stack := []uint32{dartsOffset(p.units[0])}
	for len(stack) > 0 {
		id := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if id > span || seen[id] {
			continue
		}
		seen[id] = true
		for c := uint32(1); c <= 0xFF; c++ {
			child := id ^ c
			if child >= n || dartsLabel(p.units[child]) != c {
				continue
			}
			next := child ^ dartsOffset(p.units[child])
			if dartsHasLeaf(p.units[child]) {
				if next >= n {
					return fmt.Errorf("leaf unit %d outside the trie of %d units", next, n)
				}
				v := dartsValue(p.units[next])
				if uint64(v) >= uint64(len(p.normalized)) {
					return fmt.Errorf("replacement offset %d outside the %d bytes of strings", v, len(p.normalized))
				}
				if bytes.IndexByte(p.normalized[v:], 0) < 0 {
					return fmt.Errorf("replacement at offset %d has no NUL terminator", v)
				}
			}
			stack = append(stack, next)
		}
	}
	return nil
}

// match returns the length of the longest key that s starts with and its
// replacement; n is 0 when no key matches. A NUL byte ends the search, as
// no key holds one.
func (p *precompiled) match(s string) (n int, repl []byte) {
	units := p.units
	id := dartsOffset(units[0])
	for i := 0; i < len(s) && s[i] != 0; i++ {
		c := uint32(s[i])
		id ^= c
		if id >= uint32(len(units)) || dartsLabel(units[id]) != c {
			break
		}
		u := units[id]
		id ^= dartsOffset(u)
		if dartsHasLeaf(u) {
			// parsePrecompiled checked every leaf; the guards only keep a
			// map built some other way from panicking.
			if id >= uint32(len(units)) || dartsValue(units[id]) >= uint32(len(p.normalized)) {
				break
			}
			n, repl = i+1, p.normalized[dartsValue(units[id]):]
		}
	}
	if end := bytes.IndexByte(repl, 0); end >= 0 {
		repl = repl[:end]
	}
	return n, repl
}

// normalizePrefix returns what the start of s becomes and how many bytes
// of s that consumes, as SentencePiece's Normalizer::NormalizePrefix: the
// longest key's replacement, else one character unchanged, else (a byte
// that starts no valid UTF-8 character) U+FFFD for that one byte. A nil
// map replaces nothing.
func (p *precompiled) normalizePrefix(s string) (out string, n int) {
	if p != nil {
		if n, repl := p.match(s); n > 0 {
			return string(repl), n
		}
	}
	r, size := utf8.DecodeRuneInString(s)
	if r == utf8.RuneError && size == 1 {
		return "\uFFFD", 1
	}
	return s[:size], size
}

// normalize applies the map to all of s, left to right.
func (p *precompiled) normalize(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for len(s) > 0 {
		out, n := p.normalizePrefix(s)
		b.WriteString(out)
		s = s[n:]
	}
	return b.String()
}

// sentencePieceNormalize returns SentencePiece's Normalizer::Normalize
// with map p (nil: none) and the normalizer spec's add_dummy_prefix and
// remove_extra_whitespaces, spaces escaped as "▁": with removeExtra,
// spaces at the start are dropped, a run of spaces becomes one and
// trailing "▁" are dropped (a "▁" the text held too, as SentencePiece
// does); with addPrefix, a "▁" starts any text that is not empty.
func sentencePieceNormalize(p *precompiled, addPrefix, removeExtra bool) func(string) string {
	return func(s string) string {
		if removeExtra {
			for len(s) > 0 {
				out, n := p.normalizePrefix(s)
				if out != " " {
					break
				}
				s = s[n:]
			}
		}
		if s == "" {
			return ""
		}
		var b strings.Builder
		b.Grow(len(s) + 3)
		if addPrefix {
			b.WriteString("▁")
		}
		prevSpace := removeExtra
		for len(s) > 0 {
			out, n := p.normalizePrefix(s)
			s = s[n:]
			if prevSpace {
				out = strings.TrimLeft(out, " ")
			}
			if out == "" {
				continue
			}
			b.WriteString(strings.ReplaceAll(out, " ", "▁"))
			prevSpace = removeExtra && strings.HasSuffix(out, " ")
		}
		out := b.String()
		if removeExtra {
			for strings.HasSuffix(out, "▁") {
				out = out[:len(out)-len("▁")]
			}
		}
		return out
	}
}
