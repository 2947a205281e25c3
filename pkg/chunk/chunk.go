// Package chunk splits normalized document text into overlapping chunks sized
// in runes, for embedding and retrieval.
//
// The splitter is a recursive character splitter: it cuts at the strongest
// boundary that makes pieces fit — paragraphs ("\n\n"), lines ("\n"),
// sentence ends ("。！？；" and ". ! ? ; " with the punctuation kept on the
// sentence), clause marks ("，、,"), spaces, and last a hard cut between runes —
// then packs consecutive pieces greedily into chunks of at most Size runes,
// starting each chunk with the trailing pieces of the previous one that fit in
// Overlap runes. It works on byte offsets over the original string and never
// copies text: Chunk.Text is a substring of the input.
//
// SplitDocument is heading-aware: it splits each run of blocks that share a
// heading path on its own, records the path on every chunk, and records the
// PDF page range each chunk comes from.
package chunk

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
	"unsafe"

	"github.com/tributary-rag/tributary/pkg/docparse"
)

// Defaults of Options.
const (
	DefaultSize    = 500
	DefaultOverlap = 50
)

// Options configure a Splitter. The zero value gives 500-rune chunks with a
// 50-rune overlap.
type Options struct {
	// Size is the largest chunk, in runes. 0 means DefaultSize.
	Size int
	// Overlap is the most runes a chunk repeats from the end of the previous
	// one. Overlap is made of whole pieces (sentences, clauses or words), so
	// the actual overlap is often shorter, and 0 when the last piece alone is
	// longer than Overlap. 0 means Size/10 (50 for the default size); a
	// negative value means no overlap. It must be smaller than Size.
	Overlap int
}

// Chunk is one piece of a document.
type Chunk struct {
	// Index is the chunk's position in the document, from 0 without gaps.
	Index int
	// Text is the chunk's text, trimmed of surrounding whitespace. It is a
	// substring of the text that was split.
	Text string
	// Start and End are rune offsets of Text in the text that was split
	// (for SplitDocument, in docparse.Document.Text()): Text equals
	// string([]rune(text)[Start:End]).
	Start, End int
	// Page and PageEnd are the first and last 1-based PDF pages the chunk
	// draws from; 0 for unpaged documents.
	Page, PageEnd int
	// HeadingPath is the chain of headings the chunk sits under, outermost
	// first; nil when there are none. Chunks share path slices: treat them as
	// read-only.
	HeadingPath []string
	// Hash is the hex-encoded SHA-256 of Text.
	Hash string
}

// Splitter splits text into chunks. It is immutable and safe for concurrent
// use.
type Splitter struct {
	size, overlap int
}

// New returns a Splitter for opts, or an error when the options are invalid.
func New(opts Options) (*Splitter, error) {
	size, overlap := opts.Size, opts.Overlap
	if size == 0 {
		size = DefaultSize
	}
	if size < 0 {
		return nil, fmt.Errorf("chunk size %d: must be positive", size)
	}
	switch {
	case overlap == 0:
		overlap = size / 10
	case overlap < 0:
		overlap = 0
	}
	if overlap >= size {
		return nil, fmt.Errorf("chunk overlap %d: must be smaller than size %d", overlap, size)
	}
	return &Splitter{size: size, overlap: overlap}, nil
}

// Size returns the largest chunk, in runes.
func (s *Splitter) Size() int { return s.size }

// Overlap returns the largest overlap between consecutive chunks, in runes.
func (s *Splitter) Overlap() int { return s.overlap }

// Span locates one chunk in the text that was split: runes [Start, End) and
// bytes [ByteStart, ByteEnd).
type Span struct {
	Start, End         int
	ByteStart, ByteEnd int
}

// Spans splits text and returns only where the chunks are, without copying
// or hashing anything: it is Split without the Chunk metadata. text must be
// valid UTF-8 for the byte offsets to apply to it (Split handles any input).
func (s *Splitter) Spans(text string) []Span {
	r := s.newRun(validUTF8(text))
	r.section(0, len(r.text), 0)
	return r.spans
}

// Split splits text into chunks. Every chunk has at most Size runes and at
// least one non-whitespace rune; together the chunks cover every
// non-whitespace rune of text. Chunks have no heading path and no page.
//
// Text that is not valid UTF-8 is split as if each invalid byte were U+FFFD:
// offsets count it as one rune, and chunk texts carry U+FFFD in its place.
func (s *Splitter) Split(text string) []Chunk {
	text = validUTF8(text)
	r := s.newRun(text)
	r.section(0, len(text), 0)
	return chunks(text, r.spans)
}

// chunks turns spans of text into hashed chunks. The hex hashes share one
// allocation.
func chunks(text string, spans []Span) []Chunk {
	out := make([]Chunk, len(spans))
	if len(spans) == 0 {
		return out
	}
	hexes := make([]byte, 64*len(spans))
	for i, sp := range spans {
		t := text[sp.ByteStart:sp.ByteEnd]
		// Sum256 only reads its input: hashing the string's bytes in place
		// saves a copy per chunk.
		sum := sha256.Sum256(unsafe.Slice(unsafe.StringData(t), len(t)))
		hex.Encode(hexes[i*64:], sum[:])
		out[i] = Chunk{Index: i, Text: t, Start: sp.Start, End: sp.End}
	}
	all := unsafe.String(&hexes[0], len(hexes)) // hexes is never written again
	for i := range out {
		out[i].Hash = all[i*64 : (i+1)*64]
	}
	return out
}

// SplitDocument splits a parsed document heading by heading: each run of
// consecutive blocks with the same heading path is split on its own (a chunk
// never spans two sections), every chunk records that heading path, and
// chunks of paged documents record the pages of the blocks they overlap.
// Offsets refer to doc.Text().
func (s *Splitter) SplitDocument(doc docparse.Document) []Chunk {
	if len(doc.Blocks) == 0 {
		return nil
	}
	text := doc.Text()
	if !isValidUTF8(text) {
		// Block offsets must agree with the repaired text.
		blocks := make([]docparse.Block, len(doc.Blocks))
		for i, b := range doc.Blocks {
			b.Text = validUTF8(b.Text)
			blocks[i] = b
		}
		doc.Blocks = blocks
		text = doc.Text()
	}
	r := s.newRun(text)
	// Offsets of every block in text.
	type blockSpan struct{ b0, r0, r1 int }
	blocks := make([]blockSpan, len(doc.Blocks))
	bpos, rpos := 0, 0
	sepRunes := utf8.RuneCountInString(docparse.BlockSeparator)
	for i, b := range doc.Blocks {
		n := runeCount(b.Text, len(b.Text)) // valid UTF-8 by now
		blocks[i] = blockSpan{bpos, rpos, rpos + n}
		bpos += len(b.Text) + len(docparse.BlockSeparator)
		rpos += n + sepRunes
	}
	type section struct{ first, last, chunks int } // block range, chunks made so far
	var sections []section
	for i := 0; i < len(doc.Blocks); {
		j := i + 1
		for j < len(doc.Blocks) && samePath(doc.Blocks[i].HeadingPath, doc.Blocks[j].HeadingPath) {
			j++
		}
		r.section(blocks[i].b0, blocks[j-1].b0+len(doc.Blocks[j-1].Text), blocks[i].r0)
		sections = append(sections, section{i, j, len(r.spans)})
		i = j
	}
	out := chunks(text, r.spans)
	c := 0
	for _, sec := range sections {
		path := doc.Blocks[sec.first].HeadingPath
		// Blocks and chunks are both in rune order.
		k := sec.first
		for ; c < sec.chunks; c++ {
			ch := &out[c]
			ch.HeadingPath = path
			for k < sec.last-1 && blocks[k].r1 <= ch.Start {
				k++
			}
			for m := k; m < sec.last && blocks[m].r0 < ch.End; m++ {
				if p := doc.Blocks[m].Page; p > 0 {
					if ch.Page == 0 || p < ch.Page {
						ch.Page = p
					}
					ch.PageEnd = max(ch.PageEnd, p)
				}
			}
		}
	}
	return out
}

// validUTF8 returns s with every invalid byte replaced by U+FFFD, which
// keeps rune offsets identical to those of []rune(s).
func validUTF8(s string) string {
	if isValidUTF8(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	for _, r := range s {
		b.WriteRune(r)
	}
	return b.String()
}

// samePath reports whether two heading paths are equal.
func samePath(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	if len(a) == 0 || &a[0] == &b[0] {
		return true
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// piece is a run of text that fits in a chunk: bytes [b0, b1) of the text,
// starting at rune offset r0 and n runes long, of which the first lw and
// the last tw are whitespace (tw is usually the separator). Whitespace at
// either end of a chunk does not count against the size, because it is
// trimmed. A whitespace-only piece has lw == tw == n.
type piece struct {
	b0, b1, r0, n, lw, tw int
}

// run holds the state of one Split or SplitDocument call.
type run struct {
	text          string
	size, overlap int
	win           []piece // pieces of the chunk being built
	winRunes      int
	pending       bool // win holds a piece that no emitted chunk covers yet
	runePos       int  // rune offset of the next piece
	lastEnd       int  // byte end of the last emitted chunk
	spans         []Span
}

func (s *Splitter) newRun(text string) *run {
	return &run{
		text:    text,
		size:    s.size,
		overlap: s.overlap,
		win:     make([]piece, 0, 64),
		spans:   make([]Span, 0, len(text)/s.size+1),
	}
}

// section splits text[b0:b1], which starts at rune offset r0.
func (r *run) section(b0, b1, r0 int) {
	r.runePos = r0
	r.win = r.win[:0]
	r.winRunes = 0
	r.pending = false
	r.segment(b0, b1, levelParagraph, false)
	r.flush()
}

// Separator levels, strongest first.
const (
	levelParagraph = iota // "\n\n"
	levelLine             // "\n"
	levelSentence         // 。！？； and ". ", "! ", "? ", "; "
	levelClause           // ，、,
	levelSpace            // space, tab, U+3000
	levelRune             // hard cut between runes
)

// segment adds text[b0:b1] as one piece when it fits, or splits it at
// separators of the given level or weaker. ascii reports that the text is
// known to be ASCII, so its rune count is its length.
func (r *run) segment(b0, b1, level int, ascii bool) {
	if b1 <= b0 {
		return
	}
	tw := trailingSpace(r.text[b0:b1])
	lw := leadingSpace(r.text[b0:b1])
	limit := r.size + tw + lw
	// A rune is at most 4 bytes, so a long byte run cannot fit: skip counting.
	if ascii && b1-b0 <= limit || !ascii && b1-b0 <= 4*limit {
		n := b1 - b0
		if !ascii {
			n = runeCount(r.text[b0:b1], limit)
		}
		if n <= limit {
			if lw >= n || lw+tw > n { // whitespace only
				lw, tw = n, n
			}
			r.add(piece{b0, b1, r.runePos, n, lw, tw})
			r.runePos += n
			return
		}
	}
	r.split(b0, b1, level, ascii)
}

// split cuts text[b0:b1], which does not fit, at separators of level, and
// hands each part to segment at the next level. With no separator of level
// present it moves straight to the next level.
func (r *run) split(b0, b1, level int, ascii bool) {
	if level >= levelRune {
		r.hardCut(b0, b1)
		return
	}
	if !ascii && level >= levelSentence {
		// Below the line level segments are short: one fast pass tells
		// whether the multi-byte separators need looking for at all and
		// whether runes need counting.
		ascii = isASCII(r.text[b0:b1])
	}
	start := b0
	var sc scanner
	sc.init(level, b0, ascii)
	for start < b1 {
		e := sc.next(r.text, start, b1)
		if e < 0 {
			break
		}
		if start == b0 && leadingSpace(r.text[e:b1]) == b1-e {
			// Only whitespace follows the separator (a paragraph's own
			// trailing "\n"): the part is the whole text, which is known not
			// to fit, so skip counting it again.
			r.split(start, e, level+1, ascii)
		} else {
			r.segment(start, e, level+1, ascii)
		}
		start = e
	}
	if start == b0 {
		r.split(b0, b1, level+1, ascii)
		return
	}
	r.segment(start, b1, level+1, ascii)
}

// levelLeads lists, per level, the bytes that can start one of its
// separators; in ASCII text only the ASCII ones.
func levelLeads(level int, ascii bool) string {
	var leads, multibyte string
	switch level {
	case levelParagraph, levelLine:
		leads = "\n"
	case levelSentence:
		leads, multibyte = ".!?;", "\xE3\xEF" // 。 and ！？；
	case levelClause:
		leads, multibyte = ",", "\xEF\xE3" // ， and 、
	case levelSpace:
		leads, multibyte = " \t", "\xE3" // U+3000
	}
	if ascii {
		return leads
	}
	return leads + multibyte
}

// scanner finds the separators of one level in order. For each byte that
// can start a separator it caches the next occurrence, found with
// strings.IndexByte (vectorized), so the text is scanned once per lead byte
// instead of byte by byte.
type scanner struct {
	level int
	leads string
	pos   [6]int // next occurrence of leads[i] at or after from[i]; -1 when none
	from  [6]int
}

func (sc *scanner) init(level, b0 int, ascii bool) {
	sc.level = level
	sc.leads = levelLeads(level, ascii)
	for i := range sc.leads {
		sc.pos[i], sc.from[i] = -2, b0 // -2: not searched yet
	}
}

// next returns the byte offset just past the first separator in
// text[start:end], or -1.
func (sc *scanner) next(text string, start, end int) int {
	for {
		// Earliest candidate lead byte at or after start.
		best, bi := -1, -1
		for i := 0; i < len(sc.leads); i++ {
			p := sc.pos[i]
			if p == -1 {
				continue
			}
			if p < start {
				from := max(start, sc.from[i])
				if j := strings.IndexByte(text[from:end], sc.leads[i]); j >= 0 {
					p = from + j
				} else {
					p = -1
				}
				sc.pos[i], sc.from[i] = p, from
				if p < 0 {
					continue
				}
			}
			if best < 0 || p < best {
				best, bi = p, i
			}
		}
		if best < 0 {
			return -1
		}
		if e := sepEnd(sc.level, text[:end], best); e > 0 {
			return e
		}
		// Not a separator: look past this byte.
		sc.from[bi] = best + 1
		sc.pos[bi] = -2
	}
}

// sepEnd returns the offset just past the separator of level that starts
// at s[i], or 0 when none starts there.
func sepEnd(level int, s string, i int) int {
	c := s[i]
	switch level {
	case levelParagraph:
		if i+1 < len(s) && s[i+1] == '\n' {
			return i + 2
		}
	case levelLine:
		return i + 1
	case levelSentence:
		switch c {
		case '.', '!', '?', ';':
			if i+1 < len(s) && (s[i+1] == ' ' || s[i+1] == '\t') {
				return i + 2
			}
		case 0xE3: // 。 U+3002
			if i+2 < len(s) && s[i+1] == 0x80 && s[i+2] == 0x82 {
				return i + 3
			}
		case 0xEF: // ！ U+FF01, ？ U+FF1F, ； U+FF1B
			if i+2 < len(s) && s[i+1] == 0xBC && (s[i+2] == 0x81 || s[i+2] == 0x9F || s[i+2] == 0x9B) {
				return i + 3
			}
		}
	case levelClause:
		switch c {
		case ',':
			if i+1 < len(s) && s[i+1] == ' ' {
				return i + 2
			}
			return i + 1
		case 0xEF: // ， U+FF0C
			if i+2 < len(s) && s[i+1] == 0xBC && s[i+2] == 0x8C {
				return i + 3
			}
		case 0xE3: // 、 U+3001
			if i+2 < len(s) && s[i+1] == 0x80 && s[i+2] == 0x81 {
				return i + 3
			}
		}
	case levelSpace:
		switch c {
		case ' ', '\t':
			return i + 1
		case 0xE3: // U+3000 ideographic space
			if i+2 < len(s) && s[i+1] == 0x80 && s[i+2] == 0x80 {
				return i + 3
			}
		}
	}
	return 0
}

// hardCut cuts text[b0:b1] into pieces of Size runes.
func (r *run) hardCut(b0, b1 int) {
	s := r.text[b0:b1]
	start, n := 0, 0
	for i := range s {
		if n == r.size {
			r.addCut(b0+start, b0+i, n)
			start, n = i, 0
		}
		n++
	}
	r.addCut(b0+start, b1, n)
}

// addCut adds bytes [b0, b1), n runes, as a piece.
func (r *run) addCut(b0, b1, n int) {
	s := r.text[b0:b1]
	lw := leadingSpace(s)
	tw := lw
	if lw < n {
		tw = trailingSpace(s)
	}
	r.add(piece{b0, b1, r.runePos, n, lw, tw})
	r.runePos += n
}

// trailingSpace returns the number of trailing whitespace runes of s.
func trailingSpace(s string) int {
	n := 0
	for len(s) > 0 {
		c := s[len(s)-1]
		if c < utf8.RuneSelf {
			if asciiSpace[c] == 0 {
				return n
			}
			s = s[:len(s)-1]
		} else {
			r, w := utf8.DecodeLastRuneInString(s)
			if !unicode.IsSpace(r) {
				return n
			}
			s = s[:len(s)-w]
		}
		n++
	}
	return n
}

// leadingSpace returns the number of leading whitespace runes of s.
func leadingSpace(s string) int {
	n := 0
	for len(s) > 0 {
		c := s[0]
		if c < utf8.RuneSelf {
			if asciiSpace[c] == 0 {
				return n
			}
			s = s[1:]
		} else {
			r, w := utf8.DecodeRuneInString(s)
			if !unicode.IsSpace(r) {
				return n
			}
			s = s[w:]
		}
		n++
	}
	return n
}

// asciiSpace is a read-only table of the ASCII bytes unicode.IsSpace accepts.
var asciiSpace = [utf8.RuneSelf]uint8{'\t': 1, '\n': 1, '\v': 1, '\f': 1, '\r': 1, ' ': 1}

// add appends a piece to the chunk being built, first emitting the chunk and
// keeping only its overlap tail when the piece does not fit.
func (r *run) add(p piece) {
	if p.lw == p.n { // whitespace only
		if len(r.win) == 0 {
			return // it would be trimmed from the chunk's start
		}
		// Grow the last piece instead of appending, so that long runs of
		// whitespace cannot grow the window without bound. Whitespace alone
		// never needs a new chunk.
		last := &r.win[len(r.win)-1]
		if last.lw == last.n {
			last.lw += p.n
		}
		last.b1 = p.b1
		last.n += p.n
		last.tw += p.n
		r.winRunes += p.n
		return
	}
	need := p.n - p.tw // runes p adds when it ends the chunk
	if len(r.win) > 0 && r.winRunes-r.win[0].lw+need > r.size {
		r.flush()
		keep, drop := r.winRunes, 0
		for drop < len(r.win) && (keep > r.overlap || keep-r.win[drop].lw+need > r.size || r.win[drop].lw == r.win[drop].n) {
			keep -= r.win[drop].n
			drop++
		}
		r.win = append(r.win[:0], r.win[drop:]...)
		r.winRunes = keep
		if len(r.win) == 0 && p.lw == p.n {
			return
		}
	}
	r.win = append(r.win, p)
	r.winRunes += p.n
	r.pending = true
}

// flush emits the chunk being built, trimmed of surrounding whitespace,
// unless it is empty or adds nothing to the previous chunk.
func (r *run) flush() {
	if !r.pending || len(r.win) == 0 {
		return
	}
	r.pending = false
	first, last := r.win[0], r.win[len(r.win)-1]
	b0, b1 := first.b0, last.b1
	r0, r1 := first.r0, last.r0+last.n
	t := r.text
	for b0 < b1 {
		c, w := utf8.DecodeRuneInString(t[b0:b1])
		if !unicode.IsSpace(c) {
			break
		}
		b0 += w
		r0++
	}
	for b1 > b0 {
		c, w := utf8.DecodeLastRuneInString(t[b0:b1])
		if !unicode.IsSpace(c) {
			break
		}
		b1 -= w
		r1--
	}
	if b0 == b1 || b1 <= r.lastEnd {
		return
	}
	r.lastEnd = b1
	r.spans = append(r.spans, Span{Start: r0, End: r1, ByteStart: b0, ByteEnd: b1})
}
