package tokenizer

import (
	"strings"
	"unicode/utf8"
)

// StreamDecoder turns a stream of generated ids into text deltas that are
// always valid UTF-8: bytes of a character split across tokens (byte
// fallback, byte-level BPE) are held back until the character is complete.
// Control tokens produce no text. A StreamDecoder is not safe for concurrent
// use; use one per stream.
type StreamDecoder struct {
	t       *Tokenizer
	pending []byte
	prev    int32
}

// NewStreamDecoder returns a decoder for text that follows the token prev
// (the last prompt token, or -1). As in llama2.c, the leading space of the
// first piece after BOS is dropped for SentencePiece vocabularies with a
// dummy prefix, so that generation from BOS alone starts without a space.
func (t *Tokenizer) NewStreamDecoder(prev int32) *StreamDecoder {
	return &StreamDecoder{t: t, prev: prev}
}

// Add appends the piece of id and returns the text that is now complete
// (possibly "").
func (d *StreamDecoder) Add(id int32) string {
	t := d.t
	prev := d.prev
	d.prev = id
	if id < 0 || int(id) >= len(t.tokens) || t.types[id] == TypeControl {
		return ""
	}
	p := t.pieces[id]
	if prev >= 0 && prev == t.bos && t.model == "llama" && t.addSpacePrefix && len(p) > 0 && p[0] == ' ' {
		p = p[1:]
	}
	d.pending = append(d.pending, p...)
	return d.take(false)
}

// Flush returns whatever is held back, with incomplete characters replaced
// by U+FFFD, and resets the decoder's buffer.
func (d *StreamDecoder) Flush() string {
	return d.take(true)
}

// take returns the longest prefix of pending that is valid UTF-8, except
// for an incomplete character at the end. Bytes that can never start a valid
// character are replaced by U+FFFD right away.
func (d *StreamDecoder) take(all bool) string {
	if len(d.pending) == 0 {
		return ""
	}
	// Fast path: everything but a possibly incomplete last character is
	// valid UTF-8.
	if n := completePrefix(d.pending); utf8.Valid(d.pending[:n]) && (n == len(d.pending) || !all) {
		out := string(d.pending[:n])
		d.pending = append(d.pending[:0], d.pending[n:]...)
		return out
	}
	var b strings.Builder
	i := 0
	for i < len(d.pending) {
		rest := d.pending[i:]
		r, w := utf8.DecodeRune(rest)
		if r == utf8.RuneError && w <= 1 {
			if !all && !utf8.FullRune(rest) {
				break // an incomplete character: wait for more bytes
			}
			b.WriteRune(utf8.RuneError)
			i++
			continue
		}
		b.Write(rest[:w])
		i += w
	}
	d.pending = append(d.pending[:0], d.pending[i:]...)
	return b.String()
}

// completePrefix returns the length of p without a trailing incomplete (but
// so far valid) multi-byte character.
func completePrefix(p []byte) int {
	for i := len(p) - 1; i >= 0 && i >= len(p)-utf8.UTFMax; i-- {
		c := p[i]
		if c < utf8.RuneSelf {
			return len(p) // ASCII: nothing pending after it
		}
		if utf8.RuneStart(c) {
			if utf8.FullRune(p[i:]) {
				return len(p)
			}
			return i
		}
	}
	return len(p)
}
