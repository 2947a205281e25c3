package ingest

import (
	"context"
	"errors"
	"fmt"

	"github.com/tributary-rag/tributary/pkg/chunk"
	"github.com/tributary-rag/tributary/pkg/docparse"
)

// Parser parses one document under limits. The service's is a
// *docparse.Pool, which parses in child processes that are killed at the
// deadline, so no parse outlives its request.
type Parser interface {
	Parse(ctx context.Context, in docparse.Input, lim docparse.Limits) (docparse.Document, error)
}

// DocChunker is the Chunker of the service: its Parser parses the content
// under its limits (size, DOCX expansion, time), and the heading-aware
// splitter of package chunk cuts the text into chunks that record their
// heading path and pages. DocChunker is safe for concurrent use.
type DocChunker struct {
	parser   Parser
	splitter *chunk.Splitter
	limits   docparse.Limits
}

// NewDocChunker returns a DocChunker with chunks sized by opts and parsing
// done by p, bounded by lim (zero fields take docparse's defaults).
func NewDocChunker(opts chunk.Options, lim docparse.Limits, p Parser) (*DocChunker, error) {
	s, err := chunk.New(opts)
	if err != nil {
		return nil, fmt.Errorf("new chunker: %w", err)
	}
	return &DocChunker{parser: p, splitter: s, limits: lim}, nil
}

// Chunk implements Chunker.
func (c *DocChunker) Chunk(ctx context.Context, contentType, filename string, content []byte) (Chunked, error) {
	doc, err := c.parser.Parse(ctx, docparse.Input{Data: content, ContentType: contentType, FileName: filename}, c.limits)
	if err != nil {
		return Chunked{}, classifyParseError(err)
	}
	chunks := c.splitter.SplitDocument(doc)
	if len(chunks) == 0 {
		return Chunked{}, contentError{kind: ErrUnreadable, err: errors.New("document holds no text")}
	}
	out := Chunked{
		ContentType: MediaType(doc.Format),
		Title:       doc.Title,
		Pages:       doc.Pages,
		Pieces:      make([]Piece, len(chunks)),
	}
	for i, ch := range chunks {
		out.Pieces[i] = Piece{
			Text:        ch.Text,
			Start:       ch.Start,
			End:         ch.End,
			Page:        ch.Page,
			PageEnd:     ch.PageEnd,
			HeadingPath: ch.HeadingPath,
		}
	}
	return out, nil
}

// MediaType returns the canonical media type of a parsed format.
func MediaType(f docparse.Format) string {
	switch f {
	case docparse.FormatText:
		return "text/plain"
	case docparse.FormatMarkdown:
		return "text/markdown"
	case docparse.FormatHTML:
		return "text/html"
	case docparse.FormatPDF:
		return "application/pdf"
	case docparse.FormatDOCX:
		return "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
	case docparse.FormatCSV:
		return "text/csv"
	case docparse.FormatJSONL:
		return "application/jsonl"
	}
	return "application/octet-stream"
}

// classifyParseError makes docparse's errors match the service's errors
// while keeping their message.
func classifyParseError(err error) error {
	switch {
	case errors.Is(err, docparse.ErrTooLarge):
		return contentError{kind: ErrTooLarge, err: err}
	case errors.Is(err, docparse.ErrUnsupportedType):
		return contentError{kind: ErrUnsupportedType, err: err}
	case errors.Is(err, docparse.ErrUnreadable):
		return contentError{kind: ErrUnreadable, err: err}
	}
	return err
}

// contentError is a refusal of content: it matches kind and the cause.
type contentError struct {
	kind error
	err  error
}

func (e contentError) Error() string   { return e.err.Error() }
func (e contentError) Unwrap() []error { return []error{e.kind, e.err} }
