// Package docparse turns an uploaded document (plain text, Markdown, HTML, PDF,
// DOCX, CSV or JSON Lines) into a normalized, structured Document: UTF-8 text in
// Unicode NFC with normalized whitespace, split into blocks that remember their
// heading path and, for PDF, their page.
//
// Every input is treated as hostile: parsers never panic on any byte sequence,
// enforce size, zip-bomb and time limits, and report failures as errors that
// match ErrUnsupportedType, ErrUnreadable or ErrTooLarge with errors.Is.
package docparse

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Errors returned by Parse. Use errors.Is: the returned errors wrap these with
// detail. A service maps them to HTTP status codes: ErrUnsupportedType → 415,
// ErrUnreadable → 422, ErrTooLarge → 413.
var (
	// ErrUnsupportedType means the format could not be detected or is not one
	// that docparse parses.
	ErrUnsupportedType = errors.New("unsupported document type")
	// ErrUnreadable means the content is corrupt, malformed or holds no text.
	ErrUnreadable = errors.New("unreadable document")
	// ErrTooLarge means the input, or what it expands to, exceeds a Limit.
	ErrTooLarge = errors.New("document too large")

	// ErrTimeout means parsing took longer than Limits.Timeout or the context
	// was cancelled. It matches ErrUnreadable.
	ErrTimeout = fmt.Errorf("%w: parse time limit exceeded", ErrUnreadable)
	// ErrNoText means the document parsed but holds no text (for example a
	// scanned PDF without a text layer). It matches ErrUnreadable.
	ErrNoText = fmt.Errorf("%w: no text found", ErrUnreadable)
	// ErrZipBomb means a DOCX archive exceeds the entry count, total
	// uncompressed size or compression ratio limits. It matches ErrTooLarge.
	ErrZipBomb = fmt.Errorf("%w: archive exceeds expansion limits", ErrTooLarge)
)

// Format names a document format that docparse parses.
type Format string

// Formats that docparse parses.
const (
	FormatText     Format = "text"
	FormatMarkdown Format = "markdown"
	FormatHTML     Format = "html"
	FormatPDF      Format = "pdf"
	FormatDOCX     Format = "docx"
	FormatCSV      Format = "csv"
	FormatJSONL    Format = "jsonl"
)

// BlockSeparator joins the blocks of a Document in Document.Text. Chunk rune
// offsets (package chunk) refer to that joined text.
const BlockSeparator = "\n\n"

// Document is a parsed, normalized document.
type Document struct {
	// Title is the document's own title when it declares one (HTML <title>,
	// DOCX core properties or Title style, PDF Info dictionary, first Markdown
	// H1); empty otherwise.
	Title string
	// Format is the detected format.
	Format Format
	// Encoding is the character encoding the text was decoded from
	// ("utf-8", "utf-16le", "utf-16be", "gb18030"); empty for binary formats.
	Encoding string
	// Pages is the number of pages of a PDF; 0 for other formats.
	Pages int
	// Blocks are the text blocks in reading order. Block texts are never
	// empty.
	Blocks []Block
}

// Block is one run of text: a heading, a paragraph, a list, a table, a CSV
// row or a JSON Lines record.
type Block struct {
	// Text is NFC-normalized UTF-8 with normalized whitespace: no carriage
	// returns, no trailing spaces on lines, no more than one empty line in a
	// row, no leading or trailing blank lines.
	Text string
	// HeadingPath is the chain of headings this block sits under, outermost
	// first. A heading block's path ends with the heading itself. Blocks share
	// path slices: treat them as read-only.
	HeadingPath []string
	// Heading reports whether the block is itself a heading.
	Heading bool
	// Page is the 1-based PDF page the block comes from; 0 for unpaged formats.
	Page int
}

// Text returns the document's text: its blocks joined by BlockSeparator.
func (d Document) Text() string {
	n := 0
	for _, b := range d.Blocks {
		n += len(b.Text) + len(BlockSeparator)
	}
	var sb strings.Builder
	sb.Grow(n)
	for i, b := range d.Blocks {
		if i > 0 {
			sb.WriteString(BlockSeparator)
		}
		sb.WriteString(b.Text)
	}
	return sb.String()
}

// Input is a document to parse.
type Input struct {
	// Data is the raw content.
	Data []byte
	// ContentType is the declared media type, for example "text/markdown;
	// charset=utf-8". Optional. A charset parameter is honoured for text
	// formats.
	ContentType string
	// FileName is the uploaded file's name. Optional; its extension is used
	// when the content type is missing or generic.
	FileName string
}

// Limits bound the work Parse does on one input. Zero fields take the
// documented defaults.
type Limits struct {
	// MaxBytes is the largest accepted input. Default 50 MiB.
	MaxBytes int64
	// MaxDocxUncompressed is the largest total uncompressed size of the DOCX
	// archive entries that are read. Default 256 MiB.
	MaxDocxUncompressed int64
	// MaxDocxRatio is the largest accepted uncompressed/compressed ratio of any
	// DOCX archive entry that is read (and of the total). Default 200.
	MaxDocxRatio float64
	// MaxDocxEntries is the largest number of entries in a DOCX archive.
	// Default 10000.
	MaxDocxEntries int
	// Timeout bounds the parse time. Default 30s.
	Timeout time.Duration
}

// Defaults of Limits.
const (
	DefaultMaxBytes            = 50 << 20
	DefaultMaxDocxUncompressed = 256 << 20
	DefaultMaxDocxRatio        = 200
	DefaultMaxDocxEntries      = 10000
	DefaultTimeout             = 30 * time.Second
)

// withDefaults returns l with zero fields replaced by defaults.
func (l Limits) withDefaults() Limits {
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultMaxBytes
	}
	if l.MaxDocxUncompressed <= 0 {
		l.MaxDocxUncompressed = DefaultMaxDocxUncompressed
	}
	if l.MaxDocxRatio <= 0 {
		l.MaxDocxRatio = DefaultMaxDocxRatio
	}
	if l.MaxDocxEntries <= 0 {
		l.MaxDocxEntries = DefaultMaxDocxEntries
	}
	if l.Timeout <= 0 {
		l.Timeout = DefaultTimeout
	}
	return l
}

// Parse detects the format of in and parses it into a Document in this
// process.
//
// Parsing runs under lim.Timeout (and ctx). Third-party parsing code (PDF)
// does not check the context, so on timeout Parse returns ErrTimeout at once
// but the abandoned parse goes on in the background, possibly forever: a
// server parsing untrusted input must use a Pool, whose children are killed.
// Parse is safe for concurrent use.
func Parse(ctx context.Context, in Input, lim Limits) (Document, error) {
	lim = lim.withDefaults()
	if int64(len(in.Data)) > lim.MaxBytes {
		return Document{}, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(in.Data), lim.MaxBytes)
	}
	f, err := Detect(in)
	if err != nil {
		return Document{}, err
	}
	return parseAs(ctx, f, in, lim)
}

// parseAs parses in as format f under lim.Timeout, recovering panics.
func parseAs(ctx context.Context, f Format, in Input, lim Limits) (Document, error) {
	ctx, cancel := context.WithTimeout(ctx, lim.Timeout)
	defer cancel()

	type result struct {
		doc Document
		err error
	}
	done := make(chan result, 1)
	go func() {
		var r result
		defer func() {
			if p := recover(); p != nil {
				r = result{err: fmt.Errorf("%w: %s parser failed: %v", ErrUnreadable, f, p)}
			}
			done <- r
		}()
		r.doc, r.err = parseFormat(ctx, f, in, lim)
	}()
	select {
	case r := <-done:
		if r.err != nil {
			if ctx.Err() != nil && !errors.Is(r.err, ErrTooLarge) && !errors.Is(r.err, ErrUnsupportedType) {
				return Document{}, fmt.Errorf("parse %s: %w", f, ErrTimeout)
			}
			return Document{}, fmt.Errorf("parse %s: %w", f, r.err)
		}
		r.doc.Format = f
		if len(r.doc.Blocks) == 0 {
			return Document{}, fmt.Errorf("parse %s: %w", f, ErrNoText)
		}
		return r.doc, nil
	case <-ctx.Done():
		return Document{}, fmt.Errorf("parse %s: %w", f, ErrTimeout)
	}
}

// parseFormat dispatches to the parser of f.
func parseFormat(ctx context.Context, f Format, in Input, lim Limits) (Document, error) {
	switch f {
	case FormatText:
		return parseText(ctx, in)
	case FormatMarkdown:
		return parseMarkdown(ctx, in)
	case FormatHTML:
		return parseHTML(ctx, in)
	case FormatPDF:
		return parsePDF(ctx, in.Data)
	case FormatDOCX:
		return parseDOCX(ctx, in.Data, lim)
	case FormatCSV:
		return parseCSV(ctx, in)
	case FormatJSONL:
		return parseJSONL(ctx, in)
	}
	return Document{}, fmt.Errorf("%w: %q", ErrUnsupportedType, f)
}
