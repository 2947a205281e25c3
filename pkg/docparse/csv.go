package docparse

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
)

// parseCSV parses delimited rows (comma, semicolon or tab, guessed from the
// first line). The first row is the header; every later row becomes a block
// of "header: value" lines, skipping empty values.
func parseCSV(ctx context.Context, in Input) (Document, error) {
	s, enc := decodeInput(in)
	s = unixLines(s)
	var b builder
	b.doc.Encoding = enc
	r := csv.NewReader(strings.NewReader(s))
	r.Comma = guessDelimiter(s)
	r.FieldsPerRecord = -1
	r.LazyQuotes = true
	r.ReuseRecord = true
	var header []string
	var row strings.Builder
	for n := 0; ; n++ {
		if n%checkEvery == 0 && ctx.Err() != nil {
			return Document{}, ctx.Err()
		}
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return Document{}, fmt.Errorf("%w: csv: %v", ErrUnreadable, err)
		}
		if header == nil {
			header = make([]string, len(rec))
			for i, h := range rec {
				header[i] = strings.Join(strings.Fields(h), " ")
			}
			continue
		}
		row.Reset()
		for i, v := range rec {
			v = strings.TrimSpace(v)
			if v == "" {
				continue
			}
			name := ""
			if i < len(header) {
				name = header[i]
			}
			if name == "" {
				name = fmt.Sprintf("column %d", i+1)
			}
			if row.Len() > 0 {
				row.WriteByte('\n')
			}
			row.WriteString(name)
			row.WriteString(": ")
			row.WriteString(v)
		}
		b.text(row.String(), 0)
	}
	if header != nil && len(b.doc.Blocks) == 0 {
		// A header-only file still says something.
		b.text(strings.Join(header, ", "), 0)
	}
	return b.doc, nil
}

// guessDelimiter picks the most frequent of ',', ';' and '\t' on the first
// line, defaulting to ','.
func guessDelimiter(s string) rune {
	line, _, _ := strings.Cut(s, "\n")
	best, bestN := ',', strings.Count(line, ",")
	for _, c := range []rune{';', '\t'} {
		if n := strings.Count(line, string(c)); n > bestN {
			best, bestN = c, n
		}
	}
	return best
}
