package edge

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestPageHandler(t *testing.T) {
	h := NewPageHandler()
	get := func(path string) *http.Response {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		return rec.Result()
	}
	for _, tc := range []struct {
		path, status, ctype, contains string
	}{
		{"/", "200", "text/html", `src="/ui/app.js"`},
		{"/ui/app.js", "200", "text/javascript", "ChatClient"},
		{"/ui/chat.js", "200", "text/javascript", "tributary.key."},
		{"/ui/app.css", "200", "text/css", "prefers-color-scheme"},
		{"/ui/missing.js", "404", "", ""},
		{"/ui/../page.go", "404", "", ""},
	} {
		resp := get(tc.path)
		body, _ := io.ReadAll(resp.Body)
		if got := resp.Status[:3]; got != tc.status {
			t.Errorf("GET %s: %s, want %s", tc.path, resp.Status, tc.status)
			continue
		}
		if !strings.HasPrefix(resp.Header.Get("Content-Type"), tc.ctype) {
			t.Errorf("GET %s: Content-Type %q, want %s", tc.path, resp.Header.Get("Content-Type"), tc.ctype)
		}
		if !strings.Contains(string(body), tc.contains) {
			t.Errorf("GET %s: body lacks %q", tc.path, tc.contains)
		}
		csp := resp.Header.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'none'", "script-src 'self'", "frame-ancestors 'none'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("GET %s: CSP %q lacks %q", tc.path, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
			t.Errorf("GET %s: CSP %q allows inline code", tc.path, csp)
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: no X-Content-Type-Options: nosniff", tc.path)
		}
	}
}

// TestPageHasNoInlineCode keeps the page within its CSP: no inline
// scripts, styles or event handlers, and nothing loaded from elsewhere.
func TestPageHasNoInlineCode(t *testing.T) {
	b, err := web.ReadFile("web/index.html")
	if err != nil {
		t.Fatal(err)
	}
	page := string(b)
	for _, bad := range []string{"<style", " style=", " onclick=", " onload=", "javascript:", "http://", "https://", "//cdn"} {
		if strings.Contains(page, bad) {
			t.Errorf("index.html contains %q", bad)
		}
	}
	if strings.Count(page, "<script") != strings.Count(page, `<script type="module" src="/ui/`) {
		t.Errorf("index.html has a script that is not a module from /ui/")
	}
}

// BenchmarkPageHandler measures serving the page's HTML with its headers.
func BenchmarkPageHandler(b *testing.B) {
	h := NewPageHandler()
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatal(rec.Code)
		}
	}
}
