package docparse

import (
	"bytes"
	"fmt"
	"mime"
	"net/http"
	"path"
	"strings"
)

// mediaTypes maps declared media types to formats.
var mediaTypes = map[string]Format{
	"text/plain":            FormatText,
	"text/markdown":         FormatMarkdown,
	"text/x-markdown":       FormatMarkdown,
	"text/html":             FormatHTML,
	"application/xhtml+xml": FormatHTML,
	"application/pdf":       FormatPDF,
	"application/x-pdf":     FormatPDF,
	"application/vnd.openxmlformats-officedocument.wordprocessingml.document": FormatDOCX,
	"text/csv":                  FormatCSV,
	"text/tab-separated-values": FormatCSV,
	"application/csv":           FormatCSV,
	"application/jsonl":         FormatJSONL,
	"application/x-jsonlines":   FormatJSONL,
	"application/jsonlines":     FormatJSONL,
	"application/json-lines":    FormatJSONL,
	"application/x-ndjson":      FormatJSONL,
	"application/ndjson":        FormatJSONL,
	"application/jsonl+json":    FormatJSONL,
	"application/x-json-lines":  FormatJSONL,
}

// extensions maps lower-case file extensions to formats.
var extensions = map[string]Format{
	".txt":      FormatText,
	".text":     FormatText,
	".log":      FormatText,
	".md":       FormatMarkdown,
	".markdown": FormatMarkdown,
	".mdown":    FormatMarkdown,
	".html":     FormatHTML,
	".htm":      FormatHTML,
	".xhtml":    FormatHTML,
	".pdf":      FormatPDF,
	".docx":     FormatDOCX,
	".csv":      FormatCSV,
	".tsv":      FormatCSV,
	".jsonl":    FormatJSONL,
	".ndjson":   FormatJSONL,
	// Lightly marked-up text: the markup is a few punctuation lines that
	// the lexical index ignores, so it is read as plain text.
	".rst":  FormatText,
	".adoc": FormatText,
	".asc":  FormatText,
	".org":  FormatText,
	".tex":  FormatText,
}

// genericTypes are declared media types that say nothing about the format;
// the file extension or the content decides instead.
var genericTypes = map[string]bool{
	"":                         true,
	"application/octet-stream": true,
	"binary/octet-stream":      true,
	"application/binary":       true,
	"application/unknown":      true,
	"text/plain":               true, // browsers send it for .md, .csv, .jsonl
}

// Detect returns the format of in: from its declared content type, then its
// file name's extension, then by sniffing the content. It returns an error
// matching ErrUnsupportedType when the format is not one docparse parses.
func Detect(in Input) (Format, error) {
	mt := mediaType(in.ContentType)
	if !genericTypes[mt] {
		if f, ok := mediaTypes[mt]; ok {
			return f, nil
		}
		return "", fmt.Errorf("%w: content type %q", ErrUnsupportedType, mt)
	}
	if ext := strings.ToLower(path.Ext(strings.ReplaceAll(in.FileName, `\`, "/"))); ext != "" {
		if f, ok := extensions[ext]; ok {
			return f, nil
		}
		// An unknown extension (README.Debian, .source, changelog.Debian)
		// says nothing: a documentation tree is full of text files named
		// so. The content decides.
	}
	f, ok := sniff(in.Data)
	if !ok {
		if mt == "text/plain" {
			return "", fmt.Errorf("%w: declared text/plain but content is binary", ErrUnsupportedType)
		}
		return "", fmt.Errorf("%w: unrecognized content", ErrUnsupportedType)
	}
	return f, nil
}

// mediaType returns the lower-case media type of a Content-Type value without
// parameters, tolerating malformed parameters.
func mediaType(ct string) string {
	if ct == "" {
		return ""
	}
	if mt, _, err := mime.ParseMediaType(ct); err == nil {
		return mt
	}
	mt, _, _ := strings.Cut(ct, ";")
	return strings.ToLower(strings.TrimSpace(mt))
}

// charsetParam returns the charset parameter of a Content-Type value, if any.
func charsetParam(ct string) string {
	_, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return ""
	}
	return strings.ToLower(params["charset"])
}

// sniff guesses a format from content.
func sniff(data []byte) (Format, bool) {
	head := data
	if len(head) > 1024 {
		head = head[:1024]
	}
	switch {
	case bytes.Contains(head, []byte("%PDF-")):
		return FormatPDF, true
	case bytes.HasPrefix(data, []byte("PK\x03\x04")):
		if bytes.Contains(data, []byte("word/document.xml")) {
			return FormatDOCX, true
		}
		return "", false
	}
	if len(data) == 0 {
		return FormatText, true
	}
	if strings.HasPrefix(http.DetectContentType(data), "text/html") {
		return FormatHTML, true
	}
	if looksLikeText(head) {
		return FormatText, true
	}
	return "", false
}

// looksLikeText reports whether head is text in some encoding docparse
// decodes: it has a Unicode byte order mark, or it has no NUL bytes and few
// control characters.
func looksLikeText(head []byte) bool {
	if hasBOM(head) {
		return true
	}
	if le, be := utf16Shape(head[:len(head)&^1]); le || be {
		return true
	}
	ctl := 0
	for _, c := range head {
		if c == 0 {
			return false
		}
		if c < 0x20 && c != '\n' && c != '\r' && c != '\t' && c != '\f' && c != 0x1b {
			ctl++
		}
	}
	return ctl*20 < len(head)+1
}
