package edge

import (
	"embed"
	"io/fs"
	"net/http"
)

// web holds the chat page: plain HTML, CSS and JavaScript modules, served
// as they are (no build step), so the binary is the whole frontend.
//
//go:embed web
var web embed.FS

// PagePrefix is the path under which the page's assets are served.
const PagePrefix = "/ui/"

// pageCSP allows only the page's own files and connections to its own
// origin (fetch and WebSocket): no inline script or style, no framing.
const pageCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'"

// NewPageHandler serves the chat page at / and its assets under
// PagePrefix, with a strict Content-Security-Policy. The page holds no
// secret: the user types an API key, which it keeps in sessionStorage.
func NewPageHandler() http.Handler {
	sub, err := fs.Sub(web, "web")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	files := http.StripPrefix(PagePrefix, http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", pageCSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		if r.URL.Path == "/" || r.URL.Path == "" {
			http.ServeFileFS(w, r, sub, "index.html")
			return
		}
		if r.URL.Path == PagePrefix || r.URL.Path == PagePrefix+"index.html" {
			http.Redirect(w, r, "/", http.StatusMovedPermanently)
			return
		}
		files.ServeHTTP(w, r)
	})
}
