package docparse

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// htmlSkip is a read-only set of elements whose content is page chrome or
// code, not text. <header> and <footer> are skipped only outside <article>
// and <main>, where they hold the article's own title and notes. <form> is
// kept (ASP.NET pages wrap the whole body in one); its controls are not.
var htmlSkip = map[atom.Atom]bool{
	atom.Script: true, atom.Style: true, atom.Noscript: true, atom.Template: true,
	atom.Nav: true, atom.Aside: true, atom.Iframe: true, atom.Svg: true,
	atom.Math: true, atom.Canvas: true, atom.Button: true, atom.Select: true,
	atom.Textarea: true, atom.Head: true, atom.Object: true, atom.Embed: true,
	atom.Dialog: true, atom.Label: true,
}

// htmlBlock are elements that start and end a block of text.
var htmlBlock = map[atom.Atom]bool{
	atom.P: true, atom.Div: true, atom.Section: true, atom.Article: true,
	atom.Main: true, atom.Blockquote: true, atom.Pre: true, atom.Ul: true,
	atom.Ol: true, atom.Dl: true, atom.Table: true, atom.Figure: true,
	atom.Figcaption: true, atom.Hr: true, atom.Address: true, atom.Details: true,
	atom.Summary: true, atom.Body: true, atom.Li: true, atom.Dt: true,
	atom.Dd: true, atom.Tr: true, atom.Caption: true, atom.Fieldset: true,
}

// parseHTML extracts the readable text of an HTML page. Scripts, styles,
// navigation, headers, footers, asides and forms are dropped; h1–h6 set the
// heading path; lists keep "- " or "1. " markers; tables become one line per
// row with cells joined by " | ". The <title> (or the first h1) is the title.
func parseHTML(ctx context.Context, in Input) (Document, error) {
	charset := charsetParam(in.ContentType)
	if charset == "" {
		charset = metaCharset(in.Data)
	}
	s, enc := decodeText(in.Data, charset)
	root, err := html.Parse(strings.NewReader(s))
	if err != nil {
		return Document{}, fmt.Errorf("%w: html: %v", ErrUnreadable, err)
	}
	w := htmlWalker{ctx: ctx}
	w.b.doc.Encoding = enc
	w.walk(root)
	if w.err != nil {
		return Document{}, w.err
	}
	w.flush()
	if w.b.doc.Title == "" {
		w.b.doc.Title = w.firstH1
	}
	return w.b.doc, nil
}

// metaCharset finds <meta charset> or http-equiv content charset in the
// first 1024 bytes.
func metaCharset(data []byte) string {
	head := data
	if len(head) > 1024 {
		head = head[:1024]
	}
	low := bytes.ToLower(head)
	i := bytes.Index(low, []byte("charset="))
	if i < 0 {
		return ""
	}
	rest := low[i+len("charset="):]
	rest = bytes.TrimLeft(rest, `"' `)
	end := bytes.IndexAny(rest, `"' ;/>`)
	if end < 0 {
		return ""
	}
	return string(rest[:end])
}

type htmlWalker struct {
	ctx     context.Context
	err     error
	b       builder
	cur     bytes.Buffer // text of the block being built
	pre     int          // depth inside <pre>
	table   int          // depth inside <table>
	list    []int        // item counters of open lists; -1 for <ul>
	content int          // depth inside <article> or <main>
	firstH1 string
	steps   int
}

// flush ends the current block.
func (w *htmlWalker) flush() {
	if w.cur.Len() > 0 {
		w.b.text(w.cur.String(), 0)
		w.cur.Reset()
	}
}

// newline ends the current line inside a block, unless it is already ended.
func (w *htmlWalker) newline() {
	if b := w.cur.Bytes(); len(b) > 0 && b[len(b)-1] != '\n' {
		w.cur.WriteByte('\n')
	}
}

// inContainer reports whether block elements should break lines rather than
// blocks: inside a list or a table the whole structure is one block.
func (w *htmlWalker) inContainer() bool {
	return w.table > 0 || len(w.list) > 0
}

func (w *htmlWalker) walk(n *html.Node) {
	if w.err != nil {
		return
	}
	if w.steps++; w.steps%checkEvery == 0 && w.ctx.Err() != nil {
		w.err = w.ctx.Err()
		return
	}
	switch n.Type {
	case html.TextNode:
		if w.pre > 0 {
			w.cur.WriteString(n.Data)
		} else if t := strings.Join(strings.Fields(n.Data), " "); t != "" {
			if startsWithSpace(n.Data) {
				w.cur.WriteByte(' ')
			}
			w.cur.WriteString(t)
			if endsWithSpace(n.Data) {
				w.cur.WriteByte(' ')
			}
		}
		return
	case html.ElementNode:
	case html.DocumentNode:
		w.children(n)
		return
	default:
		return
	}
	a := n.DataAtom
	if a == atom.Head {
		// Only the title matters in <head>.
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			if c.Type == html.ElementNode && c.DataAtom == atom.Title && w.b.doc.Title == "" {
				w.b.doc.Title = cleanTitle(textOf(c))
			}
		}
		return
	}
	if htmlSkip[a] || (a == atom.Header || a == atom.Footer) && w.content == 0 {
		return
	}
	if a == atom.Article || a == atom.Main {
		w.content++
		defer func() { w.content-- }()
	}
	if level := headingLevel(a); level > 0 {
		text := strings.Join(strings.Fields(textOf(n)), " ")
		if w.inContainer() {
			w.newline()
			w.cur.WriteString(text)
			w.newline()
			return
		}
		w.flush()
		if h := w.b.heading(level, text); level == 1 && w.firstH1 == "" {
			w.firstH1 = h
		}
		return
	}
	switch a {
	case atom.Br:
		w.cur.WriteByte('\n')
		return
	case atom.Img:
		for _, at := range n.Attr {
			if at.Key == "alt" && strings.TrimSpace(at.Val) != "" {
				w.cur.WriteString(strings.TrimSpace(at.Val))
			}
		}
		return
	case atom.Ul, atom.Ol:
		if !w.inContainer() {
			w.flush()
		} else {
			w.newline()
		}
		c := -1
		if a == atom.Ol {
			c = 1
			for _, at := range n.Attr {
				if at.Key == "start" {
					if v, err := strconv.Atoi(at.Val); err == nil && v > -1000000 && v < 1000000 {
						c = v
					}
				}
			}
		}
		w.list = append(w.list, c)
		w.children(n)
		w.list = w.list[:len(w.list)-1]
		if !w.inContainer() {
			w.flush()
		} else {
			w.newline()
		}
		return
	case atom.Li:
		w.newline()
		if len(w.list) > 0 {
			w.cur.WriteString(strings.Repeat("  ", len(w.list)-1))
			if c := w.list[len(w.list)-1]; c >= 0 {
				w.cur.WriteString(strconv.Itoa(c))
				w.cur.WriteString(". ")
				w.list[len(w.list)-1]++
			} else {
				w.cur.WriteString("- ")
			}
		}
		w.children(n)
		w.newline()
		return
	case atom.Table:
		if !w.inContainer() {
			w.flush()
		} else {
			w.newline()
		}
		w.table++
		w.children(n)
		w.table--
		if !w.inContainer() {
			w.flush()
		} else {
			w.newline()
		}
		return
	case atom.Tr:
		w.newline()
		first := true
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			if c.Type == html.ElementNode && (c.DataAtom == atom.Td || c.DataAtom == atom.Th) {
				if !first {
					w.cur.WriteString(" | ")
				}
				first = false
				w.cur.WriteString(strings.Join(strings.Fields(textOf(c)), " "))
			}
		}
		w.newline()
		return
	case atom.Pre:
		w.pre++
		defer func() { w.pre-- }()
	}
	if htmlBlock[a] {
		if w.inContainer() {
			w.newline()
			w.children(n)
			w.newline()
			return
		}
		w.flush()
		w.children(n)
		w.flush()
		return
	}
	w.children(n)
}

func (w *htmlWalker) children(n *html.Node) {
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		w.walk(c)
	}
}

// headingLevel returns 1–6 for h1–h6 and 0 otherwise.
func headingLevel(a atom.Atom) int {
	switch a {
	case atom.H1:
		return 1
	case atom.H2:
		return 2
	case atom.H3:
		return 3
	case atom.H4:
		return 4
	case atom.H5:
		return 5
	case atom.H6:
		return 6
	}
	return 0
}

// textOf returns the visible text under n, skipping noise elements.
func textOf(n *html.Node) string {
	var sb strings.Builder
	var rec func(*html.Node, int)
	rec = func(n *html.Node, depth int) {
		if depth > 512 {
			return
		}
		switch n.Type {
		case html.TextNode:
			sb.WriteString(n.Data)
			return
		case html.ElementNode:
			if htmlSkip[n.DataAtom] && n.DataAtom != atom.Head {
				return
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			rec(c, depth+1)
		}
	}
	rec(n, 0)
	return sb.String()
}

func startsWithSpace(s string) bool {
	return s != "" && (s[0] == ' ' || s[0] == '\n' || s[0] == '\t' || s[0] == '\r')
}

func endsWithSpace(s string) bool {
	return s != "" && (s[len(s)-1] == ' ' || s[len(s)-1] == '\n' || s[len(s)-1] == '\t' || s[len(s)-1] == '\r')
}
