package docparse

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"golang.org/x/text/encoding/htmlindex"
)

// docxReader reads DOCX archive entries within the zip-bomb limits.
type docxReader struct {
	files map[string]*zip.File
	lim   Limits
	used  int64 // uncompressed bytes read so far
}

// open returns the content of the named entry, or nil when it is absent.
func (r *docxReader) read(name string) ([]byte, error) {
	f := r.files[name]
	if f == nil {
		return nil, nil
	}
	budget := r.lim.MaxDocxUncompressed - r.used
	if f.UncompressedSize64 > uint64(budget) {
		return nil, fmt.Errorf("%w: %s declares %d bytes", ErrZipBomb, name, f.UncompressedSize64)
	}
	if ratio(f.UncompressedSize64, f.CompressedSize64) > r.lim.MaxDocxRatio {
		return nil, fmt.Errorf("%w: %s compression ratio over %.0f", ErrZipBomb, name, r.lim.MaxDocxRatio)
	}
	rc, err := f.Open()
	if err != nil {
		return nil, fmt.Errorf("%w: docx: open %s: %v", ErrUnreadable, name, err)
	}
	defer rc.Close()
	// Declared sizes can lie: count what is actually inflated.
	data, err := io.ReadAll(io.LimitReader(rc, budget+1))
	if err != nil {
		return nil, fmt.Errorf("%w: docx: read %s: %v", ErrUnreadable, name, err)
	}
	n := int64(len(data))
	if n > budget {
		return nil, fmt.Errorf("%w: %s inflates past %d bytes", ErrZipBomb, name, r.lim.MaxDocxUncompressed)
	}
	if ratio(uint64(n), f.CompressedSize64) > r.lim.MaxDocxRatio {
		return nil, fmt.Errorf("%w: %s compression ratio over %.0f", ErrZipBomb, name, r.lim.MaxDocxRatio)
	}
	r.used += n
	return data, nil
}

// ratio returns uncompressed/compressed, treating small entries as harmless.
func ratio(uncompressed, compressed uint64) float64 {
	if uncompressed < 1<<16 {
		return 0
	}
	if compressed == 0 {
		compressed = 1
	}
	return float64(uncompressed) / float64(compressed)
}

// parseDOCX parses a Word (Office Open XML) document: paragraphs of
// word/document.xml in order, headings from paragraph styles (resolved
// through word/styles.xml: "heading N" names or outline levels), tables as one
// line per row with cells joined by " | ", and the title from
// docProps/core.xml or the Title style.
func parseDOCX(ctx context.Context, data []byte, lim Limits) (Document, error) {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return Document{}, fmt.Errorf("%w: docx: %v", ErrUnreadable, err)
	}
	if len(zr.File) > lim.MaxDocxEntries {
		return Document{}, fmt.Errorf("%w: %d entries, limit %d", ErrZipBomb, len(zr.File), lim.MaxDocxEntries)
	}
	r := &docxReader{files: make(map[string]*zip.File, len(zr.File)), lim: lim}
	for _, f := range zr.File {
		r.files[f.Name] = f
	}
	body, err := r.read("word/document.xml")
	if err != nil {
		return Document{}, err
	}
	if body == nil {
		return Document{}, fmt.Errorf("%w: docx: no word/document.xml", ErrUnreadable)
	}
	stylesXML, err := r.read("word/styles.xml")
	if err != nil {
		return Document{}, err
	}
	styles := docxStyles(stylesXML)
	core, err := r.read("docProps/core.xml")
	if err != nil {
		return Document{}, err
	}
	doc, err := docxBody(ctx, body, styles)
	if err != nil {
		return Document{}, err
	}
	if t := cleanTitle(docxCoreTitle(core)); t != "" {
		doc.Title = t
	}
	return doc, nil
}

// docxStyle is what a paragraph style says about headings.
type docxStyle struct {
	level int // 1-based heading level; 0 for body text
	title bool
}

// docxStyles maps style ids to heading levels from styles.xml. Errors in an
// optional part are ignored: built-in style ids still work.
func docxStyles(data []byte) map[string]docxStyle {
	styles := map[string]docxStyle{}
	if data == nil {
		return styles
	}
	d := newXMLDecoder(data)
	var id string
	var st docxStyle
	for {
		tok, err := d.Token()
		if err != nil {
			return styles
		}
		switch t := tok.(type) {
		case xml.StartElement:
			switch t.Name.Local {
			case "style":
				id, st = attr(t, "styleId"), docxStyle{}
			case "name":
				if id != "" {
					st = styleFromName(attr(t, "val"), st)
				}
			case "outlineLvl":
				if id != "" && st.level == 0 {
					if v, err := strconv.Atoi(attr(t, "val")); err == nil && v >= 0 && v < 9 {
						st.level = v + 1
					}
				}
			}
		case xml.EndElement:
			if t.Name.Local == "style" && id != "" {
				styles[id] = st
				id = ""
			}
		}
	}
}

// styleFromName reads a heading level from a style name or id such as
// "heading 2", "Heading2" or "Title".
func styleFromName(name string, st docxStyle) docxStyle {
	n := strings.ToLower(strings.ReplaceAll(name, " ", ""))
	if n == "title" {
		st.title = true
		return st
	}
	if rest, ok := strings.CutPrefix(n, "heading"); ok {
		if v, err := strconv.Atoi(rest); err == nil && v >= 1 && v <= 9 {
			st.level = v
		}
	}
	return st
}

// attr returns the value of the attribute with the given local name.
func attr(t xml.StartElement, local string) string {
	for _, a := range t.Attr {
		if a.Name.Local == local {
			return a.Value
		}
	}
	return ""
}

// docxBody walks word/document.xml.
func docxBody(ctx context.Context, data []byte, styles map[string]docxStyle) (Document, error) {
	var b builder
	d := newXMLDecoder(data)
	var (
		para      strings.Builder // text of the current paragraph
		style     string          // style id of the current paragraph
		inText    bool            // inside <w:t>
		list      bool            // current paragraph is a list item
		tableRows []string        // rows of the outermost open table
		row       []string        // cells of the current row
		cell      []string        // paragraphs of the current cell
		tables    int             // table nesting depth
		steps     int
	)
	for {
		if steps++; steps%checkEvery == 0 && ctx.Err() != nil {
			return Document{}, ctx.Err()
		}
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return Document{}, fmt.Errorf("%w: docx: document.xml: %v", ErrUnreadable, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			switch t.Name.Local {
			case "p":
				para.Reset()
				style, list = "", false
			case "pStyle":
				style = attr(t, "val")
			case "numPr":
				list = true
			case "t":
				inText = true
			case "tab":
				para.WriteByte('\t')
			case "br", "cr":
				para.WriteByte('\n')
			case "noBreakHyphen":
				para.WriteByte('-')
			case "tbl":
				tables++
			case "tr":
				if tables == 1 {
					row = row[:0]
				}
			case "tc":
				if tables == 1 {
					cell = cell[:0]
				}
			}
		case xml.EndElement:
			switch t.Name.Local {
			case "t":
				inText = false
			case "p":
				text := strings.TrimSpace(para.String())
				para.Reset()
				if text == "" {
					continue
				}
				if tables > 0 {
					cell = append(cell, text)
					continue
				}
				st, ok := styles[style]
				if !ok {
					st = styleFromName(style, docxStyle{})
				}
				switch {
				case st.title:
					if h := b.heading(1, text); b.doc.Title == "" {
						b.doc.Title = h
					}
				case st.level > 0:
					b.heading(st.level, text)
				case list:
					b.text("- "+text, 0)
				default:
					b.text(text, 0)
				}
			case "tc":
				if tables == 1 {
					row = append(row, strings.Join(strings.Fields(strings.Join(cell, " ")), " "))
				}
			case "tr":
				if tables == 1 {
					tableRows = append(tableRows, strings.Join(row, " | "))
				}
			case "tbl":
				tables--
				if tables == 0 {
					b.text(strings.Join(tableRows, "\n"), 0)
					tableRows = tableRows[:0]
				}
				if tables < 0 {
					tables = 0
				}
			}
		case xml.CharData:
			if inText {
				para.Write(t)
			}
		}
	}
	return b.doc, nil
}

// newXMLDecoder returns a decoder for an archive part, able to read parts
// that declare an encoding other than UTF-8.
func newXMLDecoder(data []byte) *xml.Decoder {
	d := xml.NewDecoder(bytes.NewReader(data))
	d.CharsetReader = func(label string, input io.Reader) (io.Reader, error) {
		enc, err := htmlindex.Get(label)
		if err != nil {
			return nil, err
		}
		return enc.NewDecoder().Reader(input), nil
	}
	return d
}

// docxCoreTitle returns dc:title from docProps/core.xml.
func docxCoreTitle(data []byte) string {
	if data == nil {
		return ""
	}
	d := newXMLDecoder(data)
	in := false
	var sb strings.Builder
	for {
		tok, err := d.Token()
		if err != nil {
			break
		}
		switch t := tok.(type) {
		case xml.StartElement:
			in = t.Name.Local == "title"
		case xml.EndElement:
			if in {
				return strings.Join(strings.Fields(sb.String()), " ")
			}
		case xml.CharData:
			if in {
				sb.Write(t)
			}
		}
	}
	return ""
}
