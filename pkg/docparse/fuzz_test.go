package docparse

import (
	"context"
	"errors"
	"testing"
	"time"
)

// fuzzLimits bound each fuzz input. A parse that needs the whole timeout
// is a hang and fails the target.
var fuzzLimits = Limits{MaxDocxUncompressed: 4 << 20, Timeout: 10 * time.Second}

// newFuzzPool returns a Pool whose children do not recover parser panics,
// so fuzzing goes through the same process boundary and limits as serving,
// and a hang or a panic is a failure.
func newFuzzPool(f *testing.F) *Pool {
	f.Helper()
	p, err := NewPool(context.Background(), PoolOptions{Workers: 1})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { p.Close() })
	p.strict = true
	return p
}

// checkFuzzResult fails on a hang, a crash or an untyped error, and checks
// that a document is normalized.
func checkFuzzResult(t *testing.T, d Document, err error) {
	t.Helper()
	switch {
	case errors.Is(err, ErrTimeout):
		t.Fatalf("parse hung: %v", err)
	case errors.Is(err, errChildCrashed):
		t.Fatalf("parser crashed: %v", err)
	case err != nil:
		if !errors.Is(err, ErrUnreadable) && !errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrUnsupportedType) {
			t.Fatalf("untyped error: %v", err)
		}
	default:
		checkDoc(t, d)
	}
}

// fuzzFormat runs the parser of one format on arbitrary bytes in a strict
// Pool child.
func fuzzFormat(f *testing.F, format Format, seeds ...[]byte) {
	for _, s := range seeds {
		f.Add(s)
	}
	p := newFuzzPool(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := p.parse(context.Background(), format, Input{Data: data}, fuzzLimits.withDefaults())
		if errors.Is(err, ErrUnsupportedType) {
			t.Fatalf("parser of %s returned %v", format, err)
		}
		checkFuzzResult(t, d, err)
	})
}

// FuzzParse parses arbitrary input end to end: detection, then the parser,
// in a Pool child.
func FuzzParse(f *testing.F) {
	f.Add([]byte("# T\n\nBody."), "", "a.md")
	f.Add([]byte("%PDF-1.4\n1 0 obj\n<< >>\nendobj\ntrailer\n<< /Root 1 0 R /Prev 9 >>\n%%EOF"), "application/octet-stream", "")
	f.Add([]byte("<p>hi</p>"), "text/html; charset=gbk", "x.htm")
	f.Add([]byte("a,b\n1,2\n"), "text/plain", "x.csv")
	p := newFuzzPool(f)
	f.Fuzz(func(t *testing.T, data []byte, contentType, fileName string) {
		d, err := p.Parse(context.Background(), Input{Data: data, ContentType: contentType, FileName: fileName}, fuzzLimits)
		checkFuzzResult(t, d, err)
		if err == nil {
			if want, _ := Detect(Input{Data: data, ContentType: contentType, FileName: fileName}); d.Format != want {
				t.Fatalf("parsed as %q, detected %q", d.Format, want)
			}
		}
	})
}

// FuzzDetect checks that detection never panics, names a known format or
// fails with ErrUnsupportedType, and honours a specific declared type.
func FuzzDetect(f *testing.F) {
	f.Add([]byte("%PDF-1.7"), "", "")
	f.Add([]byte("PK\x03\x04word/document.xml"), "application/octet-stream", "X.DOCX")
	f.Add([]byte("<html>"), "text/plain; charset=\"", `dir\file.md`)
	f.Add([]byte("\xff\xfeh\x00"), "text/markdown;;", "a.b.c")
	known := map[Format]bool{FormatText: true, FormatMarkdown: true, FormatHTML: true, FormatPDF: true, FormatDOCX: true, FormatCSV: true, FormatJSONL: true}
	f.Fuzz(func(t *testing.T, data []byte, contentType, fileName string) {
		in := Input{Data: data, ContentType: contentType, FileName: fileName}
		got, err := Detect(in)
		if err != nil {
			if !errors.Is(err, ErrUnsupportedType) || got != "" {
				t.Fatalf("Detect = %q, %v; want ErrUnsupportedType", got, err)
			}
			return
		}
		if !known[got] {
			t.Fatalf("Detect = unknown format %q", got)
		}
		if f, ok := mediaTypes[mediaType(contentType)]; ok && !genericTypes[mediaType(contentType)] && got != f {
			t.Fatalf("Detect(%q) = %q, want %q", contentType, got, f)
		}
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
