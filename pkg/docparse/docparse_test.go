package docparse

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"golang.org/x/text/encoding/simplifiedchinese"
	xunicode "golang.org/x/text/encoding/unicode"
	"golang.org/x/text/unicode/norm"
)

// blk is a compact expected block: text and heading path joined by " > ".
type blk struct {
	text, path string
	page       int
}

func blocksOf(d Document) []blk {
	out := make([]blk, len(d.Blocks))
	for i, b := range d.Blocks {
		out[i] = blk{b.Text, strings.Join(b.HeadingPath, " > "), b.Page}
	}
	return out
}

// checkDoc verifies what every parsed document must hold.
func checkDoc(t *testing.T, d Document) {
	t.Helper()
	for i, b := range d.Blocks {
		if b.Text == "" {
			t.Errorf("block %d is empty", i)
		}
		if !utf8.ValidString(b.Text) {
			t.Errorf("block %d is not valid UTF-8: %q", i, b.Text)
		}
		if !norm.NFC.IsNormalString(b.Text) {
			t.Errorf("block %d is not NFC: %q", i, b.Text)
		}
		if strings.TrimSpace(b.Text) != b.Text || strings.Contains(b.Text, "\r") || strings.Contains(b.Text, "\n\n\n") || strings.Contains(b.Text, "  ") {
			t.Errorf("block %d whitespace not normalized: %q", i, b.Text)
		}
	}
}

func parse(t *testing.T, in Input) Document {
	t.Helper()
	d, err := Parse(context.Background(), in, Limits{})
	if err != nil {
		t.Fatalf("Parse(%q, %q): %v", in.ContentType, in.FileName, err)
	}
	checkDoc(t, d)
	return d
}

func TestDetect(t *testing.T) {
	tests := []struct {
		name, ct, file string
		data           string
		want           Format
		wantErr        error
	}{
		{name: "content type wins", ct: "text/markdown; charset=utf-8", file: "a.txt", want: FormatMarkdown},
		{name: "html type", ct: "text/html", want: FormatHTML},
		{name: "pdf type", ct: "application/pdf", want: FormatPDF},
		{name: "docx type", ct: "application/vnd.openxmlformats-officedocument.wordprocessingml.document", want: FormatDOCX},
		{name: "csv type", ct: "text/csv", want: FormatCSV},
		{name: "ndjson type", ct: "application/x-ndjson", want: FormatJSONL},
		{name: "text/plain refined by extension", ct: "text/plain", file: "notes.MD", want: FormatMarkdown},
		{name: "octet-stream refined by extension", ct: "application/octet-stream", file: `C:\docs\report.docx`, want: FormatDOCX},
		{name: "extension only", file: "rows.jsonl", want: FormatJSONL},
		{name: "sniff pdf", ct: "application/octet-stream", data: "%PDF-1.7\n...", want: FormatPDF},
		{name: "sniff html", data: "<!DOCTYPE html><html><body>hi</body></html>", want: FormatHTML},
		{name: "sniff text", data: "just words\n", want: FormatText},
		{name: "sniff utf-16 text", data: "\xff\xfeh\x00i\x00", want: FormatText},
		{name: "unsupported type", ct: "image/png", file: "a.txt", wantErr: ErrUnsupportedType},
		{name: "unsupported extension", file: "slides.pptx", data: "PK\x03\x04ppt/slides/slide1.xml", wantErr: ErrUnsupportedType},
		{name: "unknown extension, text content", file: "README.Debian", data: "Notes for Debian\n\nThis package is built with apt-transport-https.\n", want: FormatText},
		{name: "unknown extension, Latin-1 text", file: "COPYRIGHT.source", data: "Copyright \xa9 1998 J\xfcrgen\n", want: FormatText},
		{name: "unknown extension, binary", file: "data.bin", data: "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", wantErr: ErrUnsupportedType},
		{name: "reStructuredText", file: "index.rst", data: "Title\n=====\n\nBody.\n", want: FormatText},
		{name: "AsciiDoc", file: "guide.adoc", data: "= Guide\n\nBody.\n", want: FormatText},
		{name: "Org", file: "notes.org", data: "* Heading\nBody.\n", want: FormatText},
		{name: "TeX", file: "paper.tex", data: "\\section{Intro}\nBody.\n", want: FormatText},
		{name: "binary content", data: "\x00\x01\x02\x03binary", wantErr: ErrUnsupportedType},
		{name: "zip that is not docx", data: "PK\x03\x04other", wantErr: ErrUnsupportedType},
		{name: "malformed content type", ct: "text/html; charset", want: FormatHTML},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Detect(Input{Data: []byte(tt.data), ContentType: tt.ct, FileName: tt.file})
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Detect = %q, %v; want error %v", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("Detect = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestEncodings(t *testing.T) {
	const zh = "第一章 总则\n为了规范公司的信息安全管理，制定本制度。"
	gbk, err := simplifiedchinese.GBK.NewEncoder().String(zh)
	if err != nil {
		t.Fatal(err)
	}
	utf16le, err := xunicode.UTF16(xunicode.LittleEndian, xunicode.UseBOM).NewEncoder().String(zh)
	if err != nil {
		t.Fatal(err)
	}
	utf16be, err := xunicode.UTF16(xunicode.BigEndian, xunicode.UseBOM).NewEncoder().String(zh)
	if err != nil {
		t.Fatal(err)
	}
	noBOM, err := xunicode.UTF16(xunicode.LittleEndian, xunicode.IgnoreBOM).NewEncoder().String("plain ascii text in utf-16")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, ct string
		data     string
		want     string
		wantEnc  string
	}{
		{name: "utf-8", data: zh, want: zh, wantEnc: "utf-8"},
		{name: "utf-8 bom", data: "\xef\xbb\xbf" + zh, want: zh, wantEnc: "utf-8"},
		{name: "utf-16le bom", data: utf16le, want: zh, wantEnc: "utf-16le"},
		{name: "utf-16be bom", data: utf16be, want: zh, wantEnc: "utf-16be"},
		{name: "utf-16le without bom", data: noBOM, want: "plain ascii text in utf-16", wantEnc: "utf-16le"},
		{name: "gbk detected", data: gbk, want: zh, wantEnc: "gb18030"},
		{name: "gbk declared", ct: "text/plain; charset=GBK", data: gbk, want: zh, wantEnc: "gb18030"},
		{name: "gb2312 declared", ct: "text/plain; charset=gb2312", data: gbk, want: zh, wantEnc: "gb18030"},
		{name: "latin-1 declared", ct: "text/plain; charset=iso-8859-1", data: "caf\xe9", want: "café", wantEnc: "windows-1252"},
		{name: "declared latin-1 but really utf-8", ct: "text/plain; charset=iso-8859-1", data: "café", want: "café", wantEnc: "utf-8"},
		{name: "latin-1 detected", data: "Copyright \xa9 1998 J\xfcrgen, caf\xe9 ok", want: "Copyright © 1998 Jürgen, café ok", wantEnc: "windows-1252"},
		{name: "undefined windows-1252 byte falls back to replacement", data: "caf\x81 ok", want: "caf\ufffd ok", wantEnc: "utf-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ct := tt.ct
			if ct == "" {
				ct = "text/plain"
			}
			d := parse(t, Input{Data: []byte(tt.data), ContentType: ct})
			if got := d.Text(); got != tt.want || d.Encoding != tt.wantEnc {
				t.Errorf("text %q encoding %q, want %q %q", got, d.Encoding, tt.want, tt.wantEnc)
			}
		})
	}
}

func TestNormalize(t *testing.T) {
	tests := []struct{ in, want string }{
		{"cafe\u0301", "café"},
		{"a\r\nb\rc", "a\nb\nc"},
		{"  lead and trail  ", "lead and trail"},
		{"tabs\tand\u00a0nbsp  and\u3000ideographic", "tabs and nbsp and ideographic"},
		{"p1\n\n\n\n\np2", "p1\n\np2"},
		{"line  \n  next", "line\nnext"},
		{"zero\u200bwidth\ufeff and soft\u00adhyphen", "zerowidth and softhyphen"},
		{"ctrl\x00\x07chars", "ctrlchars"},
		{"e\x01\u0301", "é"},
		{"\n\n\n", ""},
	}
	for _, tt := range tests {
		if got := normalize(tt.in); got != tt.want {
			t.Errorf("normalize(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParseText(t *testing.T) {
	d := parse(t, Input{Data: []byte("First paragraph\nwraps here.\n\n\nSecond  paragraph.\r\n\r\nThird."), FileName: "a.txt"})
	want := []blk{{"First paragraph\nwraps here.", "", 0}, {"Second paragraph.", "", 0}, {"Third.", "", 0}}
	if got := blocksOf(d); !reflect.DeepEqual(got, want) {
		t.Errorf("blocks = %+v, want %+v", got, want)
	}
	if d.Format != FormatText {
		t.Errorf("Format = %q", d.Format)
	}
}

func TestParseMarkdown(t *testing.T) {
	src := "# 用户手册\n\nIntro text.\n\n## Install\n\nStep one.\nStep two.\n\n### Linux ###\n\n```sh\n# not a heading\napt install x\n```\n\nSetext\n------\n\n- item one\n- item two\n\n# Appendix\n\n| a | b |\n|---|---|\n| 1 | 2 |\n"
	d := parse(t, Input{Data: []byte(src), ContentType: "text/markdown"})
	want := []blk{
		{"用户手册", "用户手册", 0},
		{"Intro text.", "用户手册", 0},
		{"Install", "用户手册 > Install", 0},
		{"Step one.\nStep two.", "用户手册 > Install", 0},
		{"Linux", "用户手册 > Install > Linux", 0},
		{"# not a heading\napt install x", "用户手册 > Install > Linux", 0},
		{"Setext", "用户手册 > Setext", 0},
		{"- item one\n- item two", "用户手册 > Setext", 0},
		{"Appendix", "Appendix", 0},
		{"| a | b |\n|---|---|\n| 1 | 2 |", "Appendix", 0},
	}
	if got := blocksOf(d); !reflect.DeepEqual(got, want) {
		t.Errorf("blocks =\n%+v\nwant\n%+v", got, want)
	}
	if d.Title != "用户手册" {
		t.Errorf("Title = %q", d.Title)
	}
	if !d.Blocks[0].Heading || d.Blocks[1].Heading {
		t.Errorf("Heading flags = %v %v, want true false", d.Blocks[0].Heading, d.Blocks[1].Heading)
	}
}

func TestParseHTML(t *testing.T) {
	src := `<!DOCTYPE html><html><head><meta charset="utf-8"><title>Handbook</title>
<script>var secret = "do not index";</script><style>body{color:red}</style></head>
<body><header>Site header</header><nav><a href="/">Home</a></nav>
<h1>Policies</h1><p>All staff <b>must</b> read this.</p>
<h2>Travel</h2><ul><li>Book early</li><li>Keep receipts<ul><li>Scan them</li></ul></li></ul>
<table><tr><th>Item</th><th>Limit</th></tr><tr><td>Hotel</td><td>200</td></tr></table>
<ol start="3"><li>three</li><li>four</li></ol>
<div>Line one<br>Line two</div>
<noscript>enable js</noscript><form><input value="x"><button>Search</button><label>Query</label></form>
<article><header><h2>Article title</h2></header><p>Article body.</p><footer>Posted today</footer></article>
<footer>Copyright</footer><script>track()</script></body></html>`
	d := parse(t, Input{Data: []byte(src), FileName: "page.html"})
	want := []blk{
		{"Policies", "Policies", 0},
		{"All staff must read this.", "Policies", 0},
		{"Travel", "Policies > Travel", 0},
		{"- Book early\n- Keep receipts\n- Scan them", "Policies > Travel", 0},
		{"Item | Limit\nHotel | 200", "Policies > Travel", 0},
		{"3. three\n4. four", "Policies > Travel", 0},
		{"Line one\nLine two", "Policies > Travel", 0},
		{"Article title", "Policies > Article title", 0},
		{"Article body.", "Policies > Article title", 0},
		{"Posted today", "Policies > Article title", 0},
	}
	if got := blocksOf(d); !reflect.DeepEqual(got, want) {
		t.Errorf("blocks =\n%+v\nwant\n%+v", got, want)
	}
	if d.Title != "Handbook" {
		t.Errorf("Title = %q", d.Title)
	}
	for _, noise := range []string{"secret", "color", "Site header", "Home", "Copyright", "track", "enable js", "Search", "Query"} {
		if strings.Contains(d.Text(), noise) {
			t.Errorf("text keeps noise %q", noise)
		}
	}
}

func TestParseHTMLCharset(t *testing.T) {
	body, err := simplifiedchinese.GBK.NewEncoder().String(`<html><head><meta charset="gbk"></head><body><h1>标题</h1><p>正文内容。</p></body></html>`)
	if err != nil {
		t.Fatal(err)
	}
	d := parse(t, Input{Data: []byte(body), ContentType: "text/html"})
	want := []blk{{"标题", "标题", 0}, {"正文内容。", "标题", 0}}
	if got := blocksOf(d); !reflect.DeepEqual(got, want) {
		t.Errorf("blocks = %+v, want %+v", got, want)
	}
}

func TestParsePDF(t *testing.T) {
	for _, compress := range []bool{false, true} {
		data := makePDF("Annual (2025) Report", compress,
			pdfPage{"Introduction to the report.", "It continues on this line.", "", "A second paragraph."},
			pdfPage{"Page two text."},
			pdfPage{},
			pdfPage{"Last page."},
		)
		d := parse(t, Input{Data: data, ContentType: "application/pdf"})
		want := []blk{
			{"Introduction to the report.\nIt continues on this line.", "", 1},
			{"A second paragraph.", "", 1},
			{"Page two text.", "", 2},
			{"Last page.", "", 4},
		}
		if got := blocksOf(d); !reflect.DeepEqual(got, want) {
			t.Errorf("compress=%v: blocks =\n%+v\nwant\n%+v", compress, got, want)
		}
		if d.Title != "Annual (2025) Report" || d.Pages != 4 {
			t.Errorf("compress=%v: Title %q Pages %d", compress, d.Title, d.Pages)
		}
	}
}

func TestParsePDFContentBomb(t *testing.T) {
	// Page 2's content inflates past the per-page limit: it is skipped, the
	// rest of the document still parses.
	data := makePDF("", true, pdfPage{"Normal page."}, pdfPage{"RAW:" + strings.Repeat(" ", maxPDFPageContent) + "(hidden) Tj"}, pdfPage{"Third page."})
	if len(data) > 1<<20 {
		t.Fatalf("bomb is %d bytes, want a small compressed file", len(data))
	}
	d := parse(t, Input{Data: data, FileName: "bomb.pdf"})
	want := []blk{{"Normal page.", "", 1}, {"Third page.", "", 3}}
	if got := blocksOf(d); !reflect.DeepEqual(got, want) {
		t.Errorf("blocks = %+v, want %+v", got, want)
	}
}

func TestParsePDFKerning(t *testing.T) {
	// TJ arrays move glyphs: a large negative adjustment is a word space, a
	// small one is kerning inside a word.
	data := makePDF("", false, pdfPage{"RAW:[(Hel) -20 (lo) -400 (World)] TJ", "RAW:(Line) Tj 0 -14 Td (below) Tj"})
	d := parse(t, Input{Data: data, FileName: "k.pdf"})
	if got, want := d.Text(), "Hello World\nLine\nbelow"; got != want {
		t.Errorf("text = %q, want %q", got, want)
	}
}

func TestParseDOCX(t *testing.T) {
	body := docxBodyXML(
		wp("a5", "Report Title"),
		wp("1", "概述"),
		wp("", "First |paragraph| text."),
		wp("2", "Details"),
		wp("Heading3", "Deep"),
		wp("", "Under deep."),
		wtbl([]string{"Name", "Value"}, []string{"A", "1"}),
		wp("Outline3", "Outlined"),
		`<w:p><w:pPr><w:numPr><w:ilvl w:val="0"/></w:numPr></w:pPr><w:r><w:t>listed</w:t></w:r></w:p>`,
		`<w:p><w:r><w:t>tab</w:t><w:tab/><w:t>and</w:t><w:br/><w:t>break</w:t><w:delText>deleted</w:delText><w:instrText>PAGE</w:instrText></w:r></w:p>`,
		`<w:p></w:p>`,
	)
	data := makeDOCX(t,
		docxPart{name: "word/document.xml", body: body},
		docxPart{name: "word/styles.xml", body: stylesXML},
		docxPart{name: "docProps/core.xml", body: coreXML},
	)
	d := parse(t, Input{Data: data, FileName: "report.docx"})
	want := []blk{
		{"Report Title", "Report Title", 0},
		{"概述", "概述", 0},
		{"First paragraph text.", "概述", 0},
		{"Details", "概述 > Details", 0},
		{"Deep", "概述 > Details > Deep", 0},
		{"Under deep.", "概述 > Details > Deep", 0},
		{"Name | Value\nA | 1", "概述 > Details > Deep", 0},
		{"Outlined", "概述 > Details > Outlined", 0},
		{"- listed", "概述 > Details > Outlined", 0},
		{"tab and\nbreak", "概述 > Details > Outlined", 0},
	}
	if got := blocksOf(d); !reflect.DeepEqual(got, want) {
		t.Errorf("blocks =\n%+v\nwant\n%+v", got, want)
	}
	if d.Title != "Quarterly Report" {
		t.Errorf("Title = %q, want the core properties title", d.Title)
	}
}

func TestParseDOCXDeclaredEncoding(t *testing.T) {
	body, err := simplifiedchinese.GBK.NewEncoder().String(strings.Replace(docxBodyXML(wp("", "国标编码的段落。")), `encoding="UTF-8"`, `encoding="GBK"`, 1))
	if err != nil {
		t.Fatal(err)
	}
	d := parse(t, Input{Data: makeDOCX(t, docxPart{name: "word/document.xml", body: body}), FileName: "gbk.docx"})
	if got := d.Text(); got != "国标编码的段落。" {
		t.Errorf("text = %q", got)
	}
}

func TestParseCSV(t *testing.T) {
	tests := []struct {
		name, src string
		want      []blk
	}{
		{
			name: "comma with quotes",
			src:  "name,city,note\nAlice,Paris,\"likes, commas\"\nBob,,\"multi\nline\"\n",
			want: []blk{{"name: Alice\ncity: Paris\nnote: likes, commas", "", 0}, {"name: Bob\nnote: multi\nline", "", 0}},
		},
		{
			name: "semicolon and extra column",
			src:  "a;b\r\n1;2;3\r\n",
			want: []blk{{"a: 1\nb: 2\ncolumn 3: 3", "", 0}},
		},
		{
			name: "tab separated chinese",
			src:  "姓名\t部门\n张三\t财务\n",
			want: []blk{{"姓名: 张三\n部门: 财务", "", 0}},
		},
		{
			name: "header only",
			src:  "x,y\n",
			want: []blk{{"x, y", "", 0}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := parse(t, Input{Data: []byte(tt.src), ContentType: "text/csv"})
			if got := blocksOf(d); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("blocks = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseJSONL(t *testing.T) {
	src := `{"title":"Refunds","body":"Refunds take 5 days.","tags":["billing","faq"],"meta":{"id":7,"ok":true,"none":null}}` + "\n\n" +
		`"just a string"` + "\n" + `[{"q":"a"},{"q":"b"}]` + "\n"
	d := parse(t, Input{Data: []byte(src), FileName: "faq.jsonl"})
	want := []blk{
		{"body: Refunds take 5 days.\nmeta.id: 7\nmeta.ok: true\ntags: billing, faq\ntitle: Refunds", "", 0},
		{"just a string", "", 0},
		{"0.q: a\n1.q: b", "", 0},
	}
	if got := blocksOf(d); !reflect.DeepEqual(got, want) {
		t.Errorf("blocks =\n%+v\nwant\n%+v", got, want)
	}
}

func TestParseErrors(t *testing.T) {
	validPDF := makePDF("t", false, pdfPage{"hello"})
	bomb := makeDOCX(t, docxPart{name: "word/document.xml", body: docxBodyXML(wp("", strings.Repeat("a", 4<<20)))})
	manyParts := []docxPart{{name: "word/document.xml", body: docxBodyXML(wp("", "x"))}}
	for i := 0; i < 30; i++ {
		manyParts = append(manyParts, docxPart{name: "word/media/" + strings.Repeat("m", i+1), body: "x", store: true})
	}
	many := makeDOCX(t, manyParts...)
	big := makeDOCX(t, docxPart{name: "word/document.xml", body: docxBodyXML(wp("", strings.Repeat("word ", 50000))), store: true})
	tests := []struct {
		name string
		in   Input
		lim  Limits
		want error
	}{
		{name: "over max bytes", in: Input{Data: []byte("0123456789"), ContentType: "text/plain"}, lim: Limits{MaxBytes: 5}, want: ErrTooLarge},
		{name: "unsupported", in: Input{Data: []byte("x"), ContentType: "application/msword"}, want: ErrUnsupportedType},
		{name: "truncated pdf", in: Input{Data: validPDF[:len(validPDF)/2], ContentType: "application/pdf"}, want: ErrUnreadable},
		{name: "garbage pdf", in: Input{Data: []byte("%PDF-1.4\n\x00\xff garbage trailer startxref 99999\n%%EOF"), ContentType: "application/pdf"}, want: ErrUnreadable},
		{name: "pdf without text", in: Input{Data: makePDF("scan", false, pdfPage{}), ContentType: "application/pdf"}, want: ErrNoText},
		{name: "not a zip", in: Input{Data: []byte("PK\x03\x04 broken"), FileName: "x.docx"}, want: ErrUnreadable},
		{name: "zip without document", in: Input{Data: makeDOCX(t, docxPart{name: "other.xml", body: "<a/>"}), FileName: "x.docx"}, want: ErrUnreadable},
		{name: "malformed document xml", in: Input{Data: makeDOCX(t, docxPart{name: "word/document.xml", body: "<w:document><w:body><w:p>"}), FileName: "x.docx"}, want: ErrUnreadable},
		{name: "zip bomb ratio", in: Input{Data: bomb, FileName: "x.docx"}, want: ErrZipBomb},
		{name: "zip bomb total size", in: Input{Data: big, FileName: "x.docx"}, lim: Limits{MaxDocxUncompressed: 100 << 10}, want: ErrZipBomb},
		{name: "too many entries", in: Input{Data: many, FileName: "x.docx"}, lim: Limits{MaxDocxEntries: 20}, want: ErrZipBomb},
		{name: "bad jsonl line", in: Input{Data: []byte("{\"a\":1}\n{broken\n"), FileName: "x.jsonl"}, want: ErrUnreadable},
		{name: "jsonl trailing data", in: Input{Data: []byte("{\"a\":1} {\"b\":2}\n"), FileName: "x.jsonl"}, want: ErrUnreadable},
		{name: "empty text", in: Input{Data: []byte(" \n\t\n"), ContentType: "text/plain"}, want: ErrNoText},
		{name: "html without text", in: Input{Data: []byte("<html><script>x()</script></html>"), ContentType: "text/html"}, want: ErrNoText},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Parse(context.Background(), tt.in, tt.lim)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Parse = %d blocks, %v; want %v", len(d.Blocks), err, tt.want)
			}
		})
	}
	if !errors.Is(ErrZipBomb, ErrTooLarge) || !errors.Is(ErrNoText, ErrUnreadable) || !errors.Is(ErrTimeout, ErrUnreadable) {
		t.Error("derived errors must match their status class")
	}
}

func TestParseTimeout(t *testing.T) {
	data := []byte(strings.Repeat("paragraph\n\n", 200000))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Parse(ctx, Input{Data: data, ContentType: "text/plain"}, Limits{}); !errors.Is(err, ErrTimeout) {
		t.Errorf("Parse with cancelled context: %v, want ErrTimeout", err)
	}
	start := time.Now()
	_, err := Parse(context.Background(), Input{Data: data, ContentType: "text/plain"}, Limits{Timeout: time.Nanosecond})
	if !errors.Is(err, ErrTimeout) {
		t.Errorf("Parse with 1ns limit: %v, want ErrTimeout", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("timeout took %v", d)
	}
}
