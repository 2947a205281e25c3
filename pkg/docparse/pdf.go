package docparse

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/ledongthuc/pdf"
)

// PDF structure limits: page trees and inheritance chains deeper than these
// are treated as corrupt (a cycle would otherwise loop forever).
const (
	maxPDFTreeDepth = 64
	maxPDFPages     = 100000
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
	r, err := pdf.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return Document{}, fmt.Errorf("%w: pdf: %v", ErrUnreadable, err)
	}
	var pages []pdf.Value
	if err := collectPages(r.Trailer().Key("Root").Key("Pages"), 0, &pages); err != nil {
		return Document{}, err
	}
	var b builder
	b.doc.Pages = len(pages)
	b.doc.Title = strings.Join(strings.Fields(r.Trailer().Key("Info").Key("Title").Text()), " ")
	var firstErr error
	for i, p := range pages {
		if err := ctx.Err(); err != nil {
			return Document{}, err
		}
		text, err := pageText(p)
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

// pageText rebuilds the text of one page from its positioned glyphs.
func pageText(v pdf.Value) (text string, err error) {
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
			return "", errors.New("parent chain too deep")
		}
	}
	page := pdf.Page{V: v}
	if v.Key("Contents").IsNull() {
		return "", nil
	}
	var sb strings.Builder
	var prev pdf.Text
	havePrev := false
	for _, t := range page.Content().Text {
		if t.S == "" {
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
	return sb.String(), nil
}
