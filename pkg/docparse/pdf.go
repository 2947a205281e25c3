package docparse

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"strings"

	"github.com/ledongthuc/pdf"
)

// PDF structure limits: page trees and inheritance chains deeper than these
// are treated as corrupt (a cycle would otherwise loop forever).
const (
	maxPDFTreeDepth    = 64
	maxPDFPages        = 100000
	maxPDFXrefSections = 10000
)

// PDF content limits. The library inflates a page's content streams and
// keeps every glyph in memory, so decoded content is measured before a page
// is interpreted: a page over maxPDFPageContent is skipped, and a document
// over maxPDFContent in total is too large (a Flate bomb).
const (
	maxPDFPageContent = 8 << 20
	maxPDFContent     = 256 << 20
)

// parsePDF extracts the text layer of a PDF page by page. Lines and words are
// rebuilt from glyph positions; a large vertical gap starts a new paragraph.
// Every block records its 1-based page. Pages whose content cannot be decoded
// are skipped; if no page yields text the document is unreadable (a scan
// without a text layer gives ErrNoText). The PDF library panics on some
// corrupt input: every call into it runs under recover.
func parsePDF(ctx context.Context, data []byte) (doc Document, err error) {
	defer func() {
		if p := recover(); p != nil {
			doc, err = Document{}, fmt.Errorf("%w: pdf: %v", ErrUnreadable, p)
		}
	}()
	if err := checkXrefChain(data); err != nil {
		return Document{}, err
	}
	r, err := pdf.NewReader(ctxReaderAt{ctx, bytes.NewReader(data)}, int64(len(data)))
	if err != nil {
		return Document{}, fmt.Errorf("%w: pdf: %v", ErrUnreadable, err)
	}
	var pages []pdf.Value
	if err := collectPages(r.Trailer().Key("Root").Key("Pages"), 0, &pages); err != nil {
		return Document{}, err
	}
	var b builder
	b.doc.Pages = len(pages)
	b.doc.Title = cleanTitle(r.Trailer().Key("Info").Key("Title").Text())
	var firstErr error
	budget := int64(maxPDFContent)
	for i, p := range pages {
		if err := ctx.Err(); err != nil {
			return Document{}, err
		}
		text, used, err := pageText(p, budget)
		if budget -= used; budget < 0 {
			return Document{}, fmt.Errorf("%w: pdf content inflates past %d bytes", ErrTooLarge, maxPDFContent)
		}
		if err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("page %d: %w", i+1, err)
			}
			continue
		}
		_ = paragraphs(ctx, text, func(s string) { b.text(s, i+1) })
	}
	if len(b.doc.Blocks) == 0 && firstErr != nil {
		return Document{}, fmt.Errorf("%w: pdf: %v", ErrUnreadable, firstErr)
	}
	return b.doc, nil
}

// collectPages appends the leaf pages under node in document order.
func collectPages(node pdf.Value, depth int, out *[]pdf.Value) error {
	if depth > maxPDFTreeDepth {
		return fmt.Errorf("%w: pdf: page tree deeper than %d", ErrUnreadable, maxPDFTreeDepth)
	}
	switch node.Key("Type").Name() {
	case "Page":
		if len(*out) >= maxPDFPages {
			return fmt.Errorf("%w: pdf: more than %d pages", ErrTooLarge, maxPDFPages)
		}
		*out = append(*out, node)
		return nil
	case "Pages":
		kids := node.Key("Kids")
		for i := 0; i < kids.Len(); i++ {
			if err := collectPages(kids.Index(i), depth+1, out); err != nil {
				return err
			}
		}
		return nil
	}
	if depth == 0 {
		return fmt.Errorf("%w: pdf: no page tree", ErrUnreadable)
	}
	return nil // tolerate a stray non-page kid
}

// pageText rebuilds the text of one page from its positioned glyphs. It
// returns how many bytes of decoded content the page has (at most budget+1).
func pageText(v pdf.Value, budget int64) (text string, used int64, err error) {
	defer func() {
		if p := recover(); p != nil {
			text, err = "", fmt.Errorf("content: %v", p)
		}
	}()
	// Resources are inherited through /Parent; the library follows that chain
	// without a bound, so check it first.
	depth := 0
	for p := v; !p.IsNull(); p = p.Key("Parent") {
		if depth++; depth > maxPDFTreeDepth {
			return "", 0, errors.New("parent chain too deep")
		}
	}
	page := pdf.Page{V: v}
	contents := v.Key("Contents")
	if contents.IsNull() {
		return "", 0, nil
	}
	used, err = contentSize(contents, min(budget, maxPDFPageContent))
	if err != nil {
		return "", used, err
	}
	if used > maxPDFPageContent || used > budget {
		return "", used, fmt.Errorf("content inflates past %d bytes", min(budget, maxPDFPageContent))
	}
	var sb strings.Builder
	var prev pdf.Text
	havePrev := false
	for _, t := range page.Content().Text {
		if strings.TrimSpace(t.S) == "" {
			// The library emits line breaks of its own; positions decide.
			if strings.Contains(t.S, " ") && havePrev {
				sb.WriteByte(' ')
			}
			continue
		}
		if havePrev {
			fs := math.Max(math.Abs(prev.FontSize), math.Abs(t.FontSize))
			if fs < 1 || math.IsNaN(fs) || math.IsInf(fs, 0) {
				fs = 10
			}
			dy := prev.Y - t.Y
			gap := t.X - (prev.X + prev.W)
			switch {
			case math.Abs(dy) > fs*0.5 && dy > fs*2:
				sb.WriteString("\n\n")
			case math.Abs(dy) > fs*0.5:
				sb.WriteByte('\n')
			case gap > fs*0.15 || gap < -fs:
				sb.WriteByte(' ')
			}
		}
		sb.WriteString(t.S)
		prev, havePrev = t, true
	}
	return sb.String(), used, nil
}

// contentSize returns the decoded size of a page's content stream or array
// of streams, reading at most limit+1 bytes.
func contentSize(v pdf.Value, limit int64) (int64, error) {
	var total int64
	streams := []pdf.Value{v}
	if v.Kind() == pdf.Array {
		streams = streams[:0]
		for i := 0; i < v.Len() && i < 10000; i++ {
			streams = append(streams, v.Index(i))
		}
	}
	for _, s := range streams {
		if s.Kind() != pdf.Stream {
			continue
		}
		rc := s.Reader()
		n, err := io.Copy(io.Discard, io.LimitReader(rc, limit-total+1))
		_ = rc.Close()
		total += n
		if err != nil {
			return total, fmt.Errorf("content stream: %w", err)
		}
		if total > limit {
			return total, nil
		}
	}
	return total, nil
}

// ctxReaderAt fails every read once ctx is done. The PDF library checks no
// context, but its loops that read the file (the xref /Prev chain, object
// and stream reads) end on a read error, so an in-process parse stops soon
// after its deadline. Loops over data already read do not; a Pool's kill
// covers those.
type ctxReaderAt struct {
	ctx context.Context
	r   io.ReaderAt
}

func (c ctxReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.ReadAt(p, off)
}

var (
	startxrefKeyword = []byte("startxref")
	prevEntry        = regexp.MustCompile(`/Prev\s+(\d{1,15})\b`)
)

// checkXrefChain follows the cross-reference sections from the last
// startxref through their /Prev entries, as the PDF library does, and
// rejects a chain that returns to a section it has seen: the library would
// follow it forever. A section it cannot make sense of ends the walk; the
// library judges the rest.
func checkXrefChain(data []byte) error {
	i := bytes.LastIndex(data, startxrefKeyword)
	if i < 0 {
		return nil
	}
	off, ok := leadingInt(data[i+len(startxrefKeyword):])
	seen := make(map[int64]bool)
	for ok {
		if seen[off] {
			return fmt.Errorf("%w: pdf: xref /Prev chain loops back to offset %d", ErrUnreadable, off)
		}
		if len(seen) >= maxPDFXrefSections {
			return fmt.Errorf("%w: pdf: more than %d xref sections", ErrUnreadable, maxPDFXrefSections)
		}
		seen[off] = true
		off, ok = prevOffset(data, off)
	}
	return nil
}

// prevOffset returns the /Prev entry of the xref section at off: from the
// trailer after an xref table, or from the dictionary of an xref stream.
func prevOffset(data []byte, off int64) (int64, bool) {
	if off < 0 || off >= int64(len(data)) {
		return 0, false
	}
	sec := data[off:]
	var dict []byte
	if bytes.HasPrefix(bytes.TrimLeft(sec, " \t\r\n\f\x00"), []byte("xref")) {
		t := bytes.Index(sec, []byte("trailer"))
		if t < 0 {
			return 0, false
		}
		dict = sec[t:]
		if e := bytes.Index(dict, startxrefKeyword); e >= 0 {
			dict = dict[:e]
		}
	} else {
		e := bytes.Index(sec, []byte("stream"))
		if e < 0 {
			return 0, false
		}
		dict = sec[:e]
	}
	m := prevEntry.FindSubmatch(dict)
	if m == nil {
		return 0, false
	}
	return leadingInt(m[1])
}

// leadingInt parses the decimal integer at the start of b after white space.
func leadingInt(b []byte) (int64, bool) {
	b = bytes.TrimLeft(b, " \t\r\n\f\x00")
	n, digits := int64(0), 0
	for _, c := range b {
		if c < '0' || c > '9' || digits == 15 {
			break
		}
		n = n*10 + int64(c-'0')
		digits++
	}
	return n, digits > 0
}
