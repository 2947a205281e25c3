package tokenizer

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// byteLevel is GPT-2's reversible map from bytes to printable characters:
// printable Latin-1 bytes map to themselves, the rest to U+0100 onwards.
type byteLevel struct {
	toRune [256]rune
	toByte map[rune]byte
}

func newByteLevel() *byteLevel {
	bl := &byteLevel{toByte: make(map[rune]byte, 256)}
	n := 0
	for b := 0; b < 256; b++ {
		if (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF) {
			bl.toRune[b] = rune(b)
		} else {
			bl.toRune[b] = rune(256 + n)
			n++
		}
		bl.toByte[bl.toRune[b]] = byte(b)
	}
	return bl
}

// encode maps raw bytes to their byte-level characters.
func (bl *byteLevel) encode(s string) string {
	var b strings.Builder
	b.Grow(len(s) * 2)
	for i := 0; i < len(s); i++ {
		b.WriteRune(bl.toRune[s[i]])
	}
	return b.String()
}

// decode maps byte-level characters back to bytes; characters outside the
// map (a vocabulary written without the byte-level encoding) stay as UTF-8.
func (bl *byteLevel) decode(s string) []byte {
	out := make([]byte, 0, len(s))
	for _, r := range s {
		if b, ok := bl.toByte[r]; ok {
			out = append(out, b)
		} else {
			out = utf8.AppendRune(out, r)
		}
	}
	return out
}

// initBPE prepares a GPT-2 byte-level vocabulary: merge ranks, byte ids and
// the raw bytes of every piece.
func (t *Tokenizer) initBPE(merges []string) error {
	if len(merges) == 0 {
		return fmt.Errorf("%w: gpt2 tokenizer without merges", ErrInvalidConfig)
	}
	t.bl = newByteLevel()
	t.ranks = make(map[mergeKey]int32, len(merges))
	for i, m := range merges {
		// A merge is "left right"; search from 1 so that a left part that
		// is itself a space (not byte-level encoded) still parses.
		sp := strings.IndexByte(m[min(1, len(m)):], ' ')
		if sp < 0 {
			return fmt.Errorf("%w: merge %d %q has no space", ErrInvalidConfig, i, m)
		}
		sp += min(1, len(m))
		k := mergeKey{m[:sp], m[sp+1:]}
		if _, dup := t.ranks[k]; !dup {
			t.ranks[k] = int32(i)
		}
	}
	for b := range t.byteIDs {
		t.byteIDs[b] = t.ID(string(t.bl.toRune[b]))
	}
	t.pieces = make([][]byte, len(t.tokens))
	for i, tok := range t.tokens {
		switch t.types[i] {
		case TypeControl, TypeUserDefined, TypeUnknown:
			t.pieces[i] = []byte(tok)
		default:
			t.pieces[i] = t.bl.decode(tok)
		}
	}
	return nil
}

// encodeBPE appends the byte-level BPE ids of text to out: the
// pre-tokenizer splits text into words, each word's bytes become byte-level
// characters, and ranked merges join adjacent symbols, lowest rank first.
func (t *Tokenizer) encodeBPE(out []int32, text string) []int32 {
	var starts []int
	var sc mergeScratch
	for _, word := range t.pre.split(text) {
		enc := t.bl.encode(word)
		if t.pre.ignoreMerges {
			if id, ok := t.ids[enc]; ok && t.mergeable(id) {
				out = append(out, id)
				continue
			}
		}
		starts = starts[:0]
		for i := 0; i < len(enc); {
			starts = append(starts, i)
			_, w := utf8.DecodeRuneInString(enc[i:])
			i += w
		}
		syms := sc.merge(enc, starts, func(merged string, split int) (float64, bool) {
			rank, ok := t.ranks[mergeKey{merged[:split], merged[split:]}]
			return -float64(rank), ok
		})
		for _, sym := range syms {
			piece := enc[sym.start : sym.start+sym.n]
			if id, ok := t.ids[piece]; ok {
				out = append(out, id)
				continue
			}
			// A merge result missing from the vocabulary: fall back to
			// one token per byte-level character.
			for _, r := range piece {
				id, ok := t.ids[string(r)]
				switch {
				case ok:
					out = append(out, id)
				case t.unk >= 0:
					out = append(out, t.unk)
				}
			}
		}
	}
	return out
}
