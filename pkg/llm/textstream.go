package llm

import (
	"bytes"
	"strings"
	"unicode/utf8"
)

// textStream turns token pieces into text deltas: it emits only complete
// UTF-8, holds back text that might be the start of a stop sequence, and
// cuts the output where a stop sequence appears (the stop itself is not
// emitted).
type textStream struct {
	stops [][]byte
	buf   []byte // decoded but not yet emitted
}

func newTextStream(stops []string) *textStream {
	t := &textStream{}
	for _, s := range stops {
		if s != "" {
			t.stops = append(t.stops, []byte(s))
		}
	}
	return t
}

// push adds a piece and returns the text that is now safe to emit, and
// whether a stop sequence was found (then the stream is finished).
func (t *textStream) push(piece []byte) (string, bool) {
	t.buf = append(t.buf, piece...)
	cut := -1
	for _, s := range t.stops {
		if i := bytes.Index(t.buf, s); i >= 0 && (cut < 0 || i < cut) {
			cut = i
		}
	}
	if cut >= 0 {
		out := validText(t.buf[:cut])
		t.buf = t.buf[:0]
		return out, true
	}
	keep := 0
	for _, s := range t.stops {
		for k := min(len(s)-1, len(t.buf)); k > keep; k-- {
			if bytes.HasSuffix(t.buf, s[:k]) {
				keep = k
				break
			}
		}
	}
	end := len(t.buf) - keep
	end -= incompleteTail(t.buf[:end])
	out := validText(t.buf[:end])
	t.buf = append(t.buf[:0], t.buf[end:]...)
	return out, false
}

// flush returns whatever is still held back at the end of generation.
func (t *textStream) flush() string {
	out := validText(t.buf)
	t.buf = t.buf[:0]
	return out
}

// incompleteTail is the length of a trailing UTF-8 sequence that has a
// valid start but is missing continuation bytes (0 if none).
func incompleteTail(b []byte) int {
	for k := 1; k <= 3 && k <= len(b); k++ {
		c := b[len(b)-k]
		if c&0xC0 == 0x80 {
			continue // continuation byte: look further back
		}
		if c >= 0xC0 {
			need := 2
			switch {
			case c >= 0xF0:
				need = 4
			case c >= 0xE0:
				need = 3
			}
			if k < need && !utf8.FullRune(b[len(b)-k:]) {
				return k
			}
		}
		return 0
	}
	return 0
}

func validText(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}
