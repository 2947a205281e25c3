package docparse

import (
	"context"
	"errors"
	"testing"
)

// fuzzFormat runs the parser of one format on arbitrary bytes. It calls the
// parser directly, not through Parse, so a panic is not hidden by Parse's
// recover. Errors must be typed; documents must be normalized.
func fuzzFormat(f *testing.F, format Format, seeds ...[]byte) {
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		lim := Limits{MaxDocxUncompressed: 4 << 20}.withDefaults()
		d, err := parseFormat(context.Background(), format, Input{Data: data}, lim)
		if err != nil {
			if !errors.Is(err, ErrUnreadable) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("untyped error: %v", err)
			}
			return
		}
		checkDoc(t, d)
	})
}

func FuzzParseText(f *testing.F) {
	fuzzFormat(f, FormatText,
		[]byte("First paragraph\nwraps.\n\n\nSecond.\r\n"),
		[]byte("\xff\xfeh\x00i\x00"),
		[]byte("\xb5\xda\xd2\xbb\xd5\xc2"), // GBK
		[]byte("caf\xe9 e\u0301\u200b\x00"),
	)
}

func FuzzParseMarkdown(f *testing.F) {
	fuzzFormat(f, FormatMarkdown,
		[]byte("# T\n\nIntro.\n\n## A ##\n\n```\n# code\n```\n\nSetext\n===\n\n- a\n- b\n"),
		[]byte("~~~~\nunclosed fence\n#######\n# \n"),
	)
}

func FuzzParseHTML(f *testing.F) {
	fuzzFormat(f, FormatHTML,
		[]byte(`<html><head><title>T</title><script>x()</script></head><body><nav>n</nav><h1>H</h1><p>a<b>b</b></p><ul><li>x<ol start="9"><li>y</li></ol></li></ul><table><tr><td>1</td><td>2</td></tr></table><pre>  keep
  this</pre></body></html>`),
		[]byte(`<meta charset="gbk"><h2>\xb5\xda</h2>`),
		[]byte(`<div><h3>in<table><tr><th>h</th></tr></table></h3></div><br><img alt="pic">`),
	)
}

func FuzzParsePDF(f *testing.F) {
	fuzzFormat(f, FormatPDF,
		makePDF("T", false, pdfPage{"Hello world.", "", "Next paragraph."}, pdfPage{"Two"}),
		makePDF("T", true, pdfPage{"Compressed (text)."}),
		[]byte("%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 1 0 R >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF"),
	)
}

func FuzzParseDOCX(f *testing.F) {
	f.Helper()
	fuzzFormat(f, FormatDOCX,
		makeDOCX(f,
			docxPart{name: "word/document.xml", body: docxBodyXML(wp("1", "Head"), wp("", "Body |text"), wtbl([]string{"a", "b"}))},
			docxPart{name: "word/styles.xml", body: stylesXML},
			docxPart{name: "docProps/core.xml", body: coreXML},
		),
		makeDOCX(f, docxPart{name: "word/document.xml", body: docxBodyXML(wp("Title", "T"), wp("", "x")), store: true}),
	)
}

func FuzzParseCSV(f *testing.F) {
	fuzzFormat(f, FormatCSV,
		[]byte("name,city\nAlice,\"Paris, FR\"\nBob\n"),
		[]byte("a;b\r\n1;2;3\r\n\"unterminated\n"),
		[]byte("\t\t\n\t\n"),
	)
}

func FuzzParseJSONL(f *testing.F) {
	fuzzFormat(f, FormatJSONL,
		[]byte(`{"a":"x","b":[1,2,{"c":null}],"d":{"e":true}}`+"\n\"s\"\n"),
		[]byte("[[[[[[[[[[1]]]]]]]]]]\n"),
		[]byte("{broken\n"),
	)
}
