package docparse

import (
	"archive/zip"
	"bytes"
	"compress/zlib"
	"fmt"
	"strings"
	"testing"
)

// pdfPage is one page of a generated PDF: lines of text, where an empty
// line leaves a paragraph gap and a line starting with "RAW:" is written as
// text-showing operators verbatim.
type pdfPage []string

// makePDF writes a minimal valid PDF 1.4 with a Helvetica text layer, an
// Info title, a correct xref table and, when compress is set, Flate-encoded
// content streams.
func makePDF(title string, compress bool, pages ...pdfPage) []byte {
	var b bytes.Buffer
	var offsets []int
	obj := func(body string) {
		offsets = append(offsets, b.Len())
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", len(offsets), body)
	}
	b.WriteString("%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
	var kids []string
	for i := range pages {
		kids = append(kids, fmt.Sprintf("%d 0 R", 5+2*i))
	}
	obj("<< /Type /Catalog /Pages 2 0 R >>")
	obj(fmt.Sprintf("<< /Type /Pages /Kids [%s] /Count %d >>", strings.Join(kids, " "), len(pages)))
	obj("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
	obj(fmt.Sprintf("<< /Title (%s) /Producer (docparse test) >>", pdfEscape(title)))
	for i, lines := range pages {
		obj(fmt.Sprintf("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>", 6+2*i))
		var cs bytes.Buffer
		y := 740
		for _, l := range lines {
			if l == "" {
				y -= 30
				continue
			}
			if raw, ok := strings.CutPrefix(l, "RAW:"); ok {
				fmt.Fprintf(&cs, "BT /F1 12 Tf 72 %d Td %s ET\n", y, raw)
			} else {
				fmt.Fprintf(&cs, "BT /F1 12 Tf 72 %d Td (%s) Tj ET\n", y, pdfEscape(l))
			}
			y -= 14
		}
		if compress {
			var z bytes.Buffer
			zw := zlib.NewWriter(&z)
			zw.Write(cs.Bytes())
			zw.Close()
			obj(fmt.Sprintf("<< /Length %d /Filter /FlateDecode >>\nstream\n%s\nendstream", z.Len(), z.String()))
		} else {
			obj(fmt.Sprintf("<< /Length %d >>\nstream\n%s\nendstream", cs.Len(), cs.String()))
		}
	}
	xref := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(offsets)+1)
	for _, o := range offsets {
		fmt.Fprintf(&b, "%010d 00000 n \n", o)
	}
	fmt.Fprintf(&b, "trailer\n<< /Size %d /Root 1 0 R /Info 4 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(offsets)+1, xref)
	return b.Bytes()
}

func pdfEscape(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `(`, `\(`, `)`, `\)`)
	return r.Replace(s)
}

// docxPart is one archive entry of a generated DOCX.
type docxPart struct {
	name, body string
	store      bool // stored instead of deflated
}

// makeDOCX zips parts into a DOCX. Missing standard parts are added.
func makeDOCX(t testing.TB, parts ...docxPart) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	have := map[string]bool{}
	for _, p := range parts {
		have[p.name] = true
	}
	if !have["[Content_Types].xml"] {
		parts = append([]docxPart{{name: "[Content_Types].xml", body: `<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>`}}, parts...)
	}
	for _, p := range parts {
		method := zip.Deflate
		if p.store {
			method = zip.Store
		}
		w, err := zw.CreateHeader(&zip.FileHeader{Name: p.name, Method: method})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(p.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

const wordNS = `xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"`

// docxBodyXML wraps body elements into word/document.xml.
func docxBodyXML(elems ...string) string {
	return `<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:document ` + wordNS + `><w:body>` +
		strings.Join(elems, "") + `</w:body></w:document>`
}

// wp is a paragraph with an optional style id; runs are split on "|" to
// make several <w:r> runs.
func wp(style, text string) string {
	var b strings.Builder
	b.WriteString("<w:p>")
	if style != "" {
		fmt.Fprintf(&b, `<w:pPr><w:pStyle w:val="%s"/></w:pPr>`, style)
	}
	for _, run := range strings.Split(text, "|") {
		fmt.Fprintf(&b, `<w:r><w:t xml:space="preserve">%s</w:t></w:r>`, xmlEscape(run))
	}
	b.WriteString("</w:p>")
	return b.String()
}

// wtbl is a table of plain paragraphs.
func wtbl(rows ...[]string) string {
	var b strings.Builder
	b.WriteString("<w:tbl>")
	for _, r := range rows {
		b.WriteString("<w:tr>")
		for _, c := range r {
			b.WriteString("<w:tc>" + wp("", c) + "</w:tc>")
		}
		b.WriteString("</w:tr>")
	}
	b.WriteString("</w:tbl>")
	return b.String()
}

func xmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// stylesXML declares heading styles the way localized Word does: ids that
// say nothing ("1", "2") and names that do.
const stylesXML = `<?xml version="1.0" encoding="UTF-8"?><w:styles ` + wordNS + `>` +
	`<w:style w:type="paragraph" w:styleId="1"><w:name w:val="heading 1"/></w:style>` +
	`<w:style w:type="paragraph" w:styleId="2"><w:name w:val="heading 2"/></w:style>` +
	`<w:style w:type="paragraph" w:styleId="Outline3"><w:name w:val="My Outline"/><w:pPr><w:outlineLvl w:val="2"/></w:pPr></w:style>` +
	`<w:style w:type="paragraph" w:styleId="a5"><w:name w:val="Title"/></w:style>` +
	`</w:styles>`

const coreXML = `<?xml version="1.0" encoding="UTF-8"?><cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>Quarterly Report</dc:title></cp:coreProperties>`
