package tokenizer

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// spaceMarker is SentencePiece's visible space, U+2581.
const spaceMarker = "\u2581"

// initSPM prepares a SentencePiece-style vocabulary: byte-fallback ids and
// the raw bytes of every piece.
func (t *Tokenizer) initSPM() {
	for b := range t.byteIDs {
		t.byteIDs[b] = t.ID(fmt.Sprintf("<0x%02X>", b))
	}
	t.pieces = make([][]byte, len(t.tokens))
	for i, tok := range t.tokens {
		switch t.types[i] {
		case TypeByte:
			if b, ok := parseByteToken(tok); ok {
				t.pieces[i] = []byte{b}
				continue
			}
			t.pieces[i] = []byte(tok)
		case TypeControl, TypeUserDefined, TypeUnknown:
			t.pieces[i] = []byte(tok)
		default:
			t.pieces[i] = []byte(strings.ReplaceAll(tok, spaceMarker, " "))
		}
	}
}

// parseByteToken parses "<0xNN>".
func parseByteToken(s string) (byte, bool) {
	if len(s) != 6 || s[:3] != "<0x" || s[5] != '>' {
		return 0, false
	}
	hi, ok1 := hexVal(s[3])
	lo, ok2 := hexVal(s[4])
	return hi<<4 | lo, ok1 && ok2
}

func hexVal(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// mergeable reports whether a merge may produce id: control, unknown and
// byte tokens only come from their own rules, never from merging text.
func (t *Tokenizer) mergeable(id int32) bool {
	switch t.types[id] {
	case TypeControl, TypeUnknown, TypeByte:
		return false
	}
	return true
}

// encodeSPM appends the SentencePiece BPE ids of text to out: spaces become
// '▁', an optional dummy '▁' goes first, every character starts as its own
// symbol, and the adjacent pair whose concatenation is the best-scoring
// vocabulary entry is merged until none is left. Characters outside the
// vocabulary fall back to their <0xNN> byte tokens.
func (t *Tokenizer) encodeSPM(out []int32, text string, addPrefix bool) []int32 {
	s := escapeSpaces(text, addPrefix)
	starts := make([]int, 0, len(s))
	for i := 0; i < len(s); {
		starts = append(starts, i)
		_, w := utf8.DecodeRuneInString(s[i:])
		i += w
	}
	syms := mergeSymbols(s, starts, func(merged string, _ int) (float64, bool) {
		id, ok := t.ids[merged]
		if !ok || !t.mergeable(id) {
			return 0, false
		}
		return float64(t.scores[id]), true
	})
	for _, sym := range syms {
		piece := s[sym.start : sym.start+sym.n]
		if id, ok := t.ids[piece]; ok && t.mergeable(id) {
			out = append(out, id)
			continue
		}
		for i := 0; i < len(piece); i++ {
			switch id := t.byteIDs[piece[i]]; {
			case id >= 0:
				out = append(out, id)
			case t.unk >= 0:
				out = append(out, t.unk)
			}
		}
	}
	return out
}

// escapeSpaces replaces ' ' with '▁' and leaves every other byte alone, so
// that invalid UTF-8 survives to byte fallback.
func escapeSpaces(text string, addPrefix bool) string {
	var b strings.Builder
	b.Grow(len(text) + 8)
	if addPrefix {
		b.WriteString(spaceMarker)
	}
	for i := 0; i < len(text); i++ {
		if text[i] == ' ' {
			b.WriteString(spaceMarker)
		} else {
			b.WriteByte(text[i])
		}
	}
	return b.String()
}
