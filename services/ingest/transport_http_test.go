package ingest

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// testKeys is the key table of the HTTP tests.
func testKeys() Authenticator {
	keys := map[string]Principal{
		"acme-admin":  {Tenant: "acme"},
		"acme-hr":     {Tenant: "acme", Groups: []string{"hr"}},
		"globex-root": {Tenant: "globex"},
	}
	return AuthenticatorFunc(func(key string) (Principal, bool) {
		p, ok := keys[key]
		return p, ok
	})
}

func newHTTPTestServer(t *testing.T, maxSize int64) (*httptest.Server, *recordingEmitter) {
	t.Helper()
	svc, em, _ := newTestService(t, t.TempDir(), WithMaxDocumentSize(maxSize))
	h := MakeHTTPHandler(MakeEndpoints(svc), testKeys(), slog.New(slog.DiscardHandler), WithHTTPMaxDocumentSize(maxSize))
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, em
}

type multipartField struct {
	name, filename, contentType, value string
}

func multipartBody(t testing.TB, fields ...multipartField) (string, []byte) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, f := range fields {
		h := textproto.MIMEHeader{}
		disp := `form-data; name="` + f.name + `"`
		if f.filename != "" {
			disp += `; filename="` + f.filename + `"`
		}
		h.Set("Content-Disposition", disp)
		if f.contentType != "" {
			h.Set("Content-Type", f.contentType)
		}
		w, err := mw.CreatePart(h)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, f.value)
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	return mw.FormDataContentType(), buf.Bytes()
}

// zipBomb returns a DOCX whose document.xml expands far beyond the
// compression ratio limit.
func zipBomb(t testing.TB) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.Create("[Content_Types].xml")
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, `<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"></Types>`)
	w, err = zw.Create("word/document.xml")
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, `<?xml version="1.0"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body><w:p><w:r><w:t>`)
	w.Write(bytes.Repeat([]byte("a"), 8<<20))
	io.WriteString(w, `</w:t></w:r></w:p></w:body></w:document>`)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

type httpCase struct {
	name        string
	method      string
	path        string
	key         string
	contentType string
	body        []byte
	header      map[string]string
	chunked     bool
	wantStatus  int
	wantCode    string
}

func (tt httpCase) do(t *testing.T, srv *httptest.Server) (*http.Response, []byte) {
	t.Helper()
	var body io.Reader = bytes.NewReader(tt.body)
	if tt.chunked {
		// Hide the length so the server meets the limit while reading.
		body = io.MultiReader(body)
	}
	req, err := http.NewRequest(tt.method, srv.URL+tt.path, body)
	if err != nil {
		t.Fatal(err)
	}
	if tt.key != "" {
		req.Header.Set("Authorization", "Bearer "+tt.key)
	}
	if tt.contentType != "" {
		req.Header.Set("Content-Type", tt.contentType)
	}
	for k, v := range tt.header {
		req.Header.Set(k, v)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", tt.method, tt.path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func jsonBody(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

func TestHTTPRefusals(t *testing.T) {
	const maxSize = 64 << 10
	srv, em := newHTTPTestServer(t, maxSize)
	mpFile := func(name, ct, content string) (string, []byte) {
		return multipartBody(t, multipartField{name: "file", filename: name, contentType: ct, value: content})
	}
	bigCT, big := mpFile("big.txt", "text/plain", strings.Repeat("a", maxSize+1))
	pdfCT, pdf := mpFile("broken.pdf", "application/pdf", "%PDF-1.4\n1 0 obj <<\n")
	pngCT, png := mpFile("pic.png", "image/png", "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
	bomb := zipBomb(t)
	if len(bomb) > maxSize {
		t.Fatalf("zip bomb is %d bytes, want it under the size limit", len(bomb))
	}
	bombCT, bombBody := multipartBody(t, multipartField{name: "file", filename: "bomb.docx",
		contentType: "application/vnd.openxmlformats-officedocument.wordprocessingml.document", value: string(bomb)})
	noFileCT, noFile := multipartBody(t, multipartField{name: "title", value: "x"})
	badMetaCT, badMeta := multipartBody(t,
		multipartField{name: "metadata", value: `{"n": 1}`},
		multipartField{name: "file", filename: "a.txt", contentType: "text/plain", value: "text"})

	tests := []httpCase{
		{name: "no key", method: "POST", path: "/v1/documents", contentType: "application/json",
			body: jsonBody(map[string]string{"content": "x"}), wantStatus: 401, wantCode: "unauthenticated"},
		{name: "unknown key", method: "POST", path: "/v1/documents", key: "nope", contentType: "application/json",
			body: jsonBody(map[string]string{"content": "x"}), wantStatus: 401, wantCode: "unauthenticated"},
		{name: "no key on get", method: "GET", path: "/v1/documents/x", wantStatus: 401, wantCode: "unauthenticated"},
		{name: "too large multipart", method: "POST", path: "/v1/documents", key: "acme-admin", contentType: bigCT,
			body: big, wantStatus: 413, wantCode: "too_large"},
		{name: "too large without length", method: "POST", path: "/v1/documents", key: "acme-admin", contentType: "application/json",
			body: jsonBody(map[string]string{"content": strings.Repeat("b", 4*maxSize)}), chunked: true, wantStatus: 413, wantCode: "too_large"},
		{name: "too large declared length", method: "POST", path: "/v1/documents", key: "acme-admin", contentType: "application/json",
			body: jsonBody(map[string]string{"content": strings.Repeat("b", 4*maxSize)}), wantStatus: 413, wantCode: "too_large"},
		{name: "too large after base64", method: "POST", path: "/v1/documents", key: "acme-admin", contentType: "application/json",
			body:       jsonBody(map[string]string{"content_type": "text/plain", "content_base64": base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("c"), maxSize+10))}),
			wantStatus: 413, wantCode: "too_large"},
		{name: "zip bomb", method: "POST", path: "/v1/documents", key: "acme-admin", contentType: bombCT,
			body: bombBody, wantStatus: 413, wantCode: "too_large"},
		{name: "unsupported request type", method: "POST", path: "/v1/documents", key: "acme-admin", contentType: "text/plain",
			body: []byte("hello"), wantStatus: 415, wantCode: "unsupported_type"},
		{name: "unsupported document type", method: "POST", path: "/v1/documents", key: "acme-admin", contentType: pngCT,
			body: png, wantStatus: 415, wantCode: "unsupported_type"},
		{name: "broken pdf", method: "POST", path: "/v1/documents", key: "acme-admin", contentType: pdfCT,
			body: pdf, wantStatus: 422, wantCode: "unreadable"},
		{name: "malformed json", method: "POST", path: "/v1/documents", key: "acme-admin", contentType: "application/json",
			body: []byte(`{"content": `), wantStatus: 400, wantCode: "invalid_request"},
		{name: "json without content", method: "POST", path: "/v1/documents", key: "acme-admin", contentType: "application/json",
			body: []byte(`{"title": "t"}`), wantStatus: 400, wantCode: "invalid_request"},
		{name: "both contents", method: "POST", path: "/v1/documents", key: "acme-admin", contentType: "application/json",
			body: []byte(`{"content": "a", "content_base64": "YQ=="}`), wantStatus: 400, wantCode: "invalid_request"},
		{name: "bad base64", method: "POST", path: "/v1/documents", key: "acme-admin", contentType: "application/json",
			body: []byte(`{"content_type": "text/plain", "content_base64": "!!!"}`), wantStatus: 400, wantCode: "invalid_request"},
		{name: "bad document id", method: "POST", path: "/v1/documents", key: "acme-admin", contentType: "application/json",
			body: []byte(`{"document_id": "a b", "content": "a"}`), wantStatus: 400, wantCode: "invalid_request"},
		{name: "multipart without file", method: "POST", path: "/v1/documents", key: "acme-admin", contentType: noFileCT,
			body: noFile, wantStatus: 400, wantCode: "invalid_request"},
		{name: "multipart without boundary", method: "POST", path: "/v1/documents", key: "acme-admin", contentType: "multipart/form-data",
			body: []byte("--x--"), wantStatus: 400, wantCode: "invalid_request"},
		{name: "metadata not strings", method: "POST", path: "/v1/documents", key: "acme-admin", contentType: badMetaCT,
			body: badMeta, wantStatus: 400, wantCode: "invalid_request"},
		{name: "foreign group", method: "POST", path: "/v1/documents", key: "acme-hr", contentType: "application/json",
			body: []byte(`{"content": "a", "source": "a.txt", "groups": ["finance"]}`), wantStatus: 403, wantCode: "forbidden"},
		{name: "no identity", method: "POST", path: "/v1/documents", key: "acme-admin", contentType: "application/json",
			body: []byte(`{"content": "a"}`), wantStatus: 400, wantCode: "invalid_request"},
		{name: "bad list limit", method: "GET", path: "/v1/documents?limit=x", key: "acme-admin", wantStatus: 400, wantCode: "invalid_request"},
		{name: "list limit too large", method: "GET", path: "/v1/documents?limit=100000", key: "acme-admin", wantStatus: 400, wantCode: "invalid_request"},
		{name: "unknown document", method: "GET", path: "/v1/documents/nope", key: "acme-admin", wantStatus: 404, wantCode: "not_found"},
		{name: "bad id on get", method: "GET", path: "/v1/documents/a%20b", key: "acme-admin", wantStatus: 400, wantCode: "invalid_request"},
		{name: "bad id on delete", method: "DELETE", path: "/v1/documents/a%20b", key: "acme-admin", wantStatus: 400, wantCode: "invalid_request"},
		{name: "no key on delete", method: "DELETE", path: "/v1/documents/x", wantStatus: 401, wantCode: "unauthenticated"},
		{name: "unknown route", method: "GET", path: "/v1/nothing", key: "acme-admin", wantStatus: 404, wantCode: "not_found"},
		{name: "no key on list", method: "GET", path: "/v1/documents", wantStatus: 401, wantCode: "unauthenticated"},
		{name: "wrong method", method: "PUT", path: "/v1/documents/x", key: "acme-admin", wantStatus: 405, wantCode: "method_not_allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := tt.do(t, srv)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", resp.StatusCode, tt.wantStatus, body)
			}
			var eb errorBody
			if err := json.Unmarshal(body, &eb); err != nil {
				t.Fatalf("error body %q is not JSON: %v", body, err)
			}
			if eb.Error.Code != tt.wantCode || eb.Error.Message == "" {
				t.Errorf("error = %+v, want code %q and a message", eb.Error, tt.wantCode)
			}
		})
	}
	if a, _, _ := em.counts(); a != 0 {
		t.Errorf("%d versions emitted by refused requests, want 0", a)
	}
}

func TestHTTPLifecycle(t *testing.T) {
	srv, _ := newHTTPTestServer(t, DefaultMaxDocumentSize)
	ct, body := multipartBody(t,
		multipartField{name: "document_id", value: "handbook"},
		multipartField{name: "title", value: "员工手册"},
		multipartField{name: "groups", value: "hr,staff"},
		multipartField{name: "metadata", value: `{"lang":"zh"}`},
		multipartField{name: "file", filename: "handbook.md", contentType: "application/octet-stream",
			value: "# 总则\n\n第一条 本手册适用于全体员工。\n\n## 休假\n\n员工每年享有带薪年假。"})
	post := httpCase{method: "POST", path: "/v1/documents", key: "acme-admin", contentType: ct, body: body}

	tests := []struct {
		name       string
		req        httpCase
		wantStatus int
		want       map[string]any
	}{
		{"create", post, 202, map[string]any{"document_id": "handbook", "version": 1.0, "status": "accepted"}},
		{"same again", post, 202, map[string]any{"document_id": "handbook", "version": 1.0, "status": "unchanged"}},
		{"get", httpCase{method: "GET", path: "/v1/documents/handbook", key: "acme-admin"}, 200,
			map[string]any{"document_id": "handbook", "version": 1.0, "status": "active", "title": "员工手册", "content_type": "text/markdown"}},
		{"hr key sees it", httpCase{method: "GET", path: "/v1/documents/handbook", key: "acme-hr"}, 200,
			map[string]any{"document_id": "handbook"}},
		{"other tenant", httpCase{method: "GET", path: "/v1/documents/handbook", key: "globex-root"}, 404, nil},
		{"other tenant delete", httpCase{method: "DELETE", path: "/v1/documents/handbook", key: "globex-root"}, 404, nil},
		{"hr key may not delete a staff document", httpCase{method: "DELETE", path: "/v1/documents/handbook", key: "acme-hr"}, 403, nil},
		{"json new version", httpCase{method: "POST", path: "/v1/documents", key: "acme-admin", contentType: "application/json",
			body: []byte(`{"document_id":"handbook","title":"员工手册","content_type":"text/markdown","content":"# 总则\n\n第二版。","groups":["hr","staff"],"metadata":{"lang":"zh"}}`)},
			202, map[string]any{"document_id": "handbook", "version": 2.0, "status": "accepted"}},
		{"delete", httpCase{method: "DELETE", path: "/v1/documents/handbook", key: "acme-admin"}, 200,
			map[string]any{"document_id": "handbook", "version": 2.0, "status": "deleted"}},
		{"get deleted", httpCase{method: "GET", path: "/v1/documents/handbook", key: "acme-admin"}, 404, nil},
	}
	for _, tt := range tests {
		resp, body := tt.req.do(t, srv)
		if resp.StatusCode != tt.wantStatus {
			t.Fatalf("%s: status = %d, want %d; body %s", tt.name, resp.StatusCode, tt.wantStatus, body)
		}
		if resp.Header.Get("X-Correlation-ID") == "" && resp.StatusCode != 401 {
			t.Errorf("%s: no X-Correlation-ID header", tt.name)
		}
		var got map[string]any
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatalf("%s: body %q: %v", tt.name, body, err)
		}
		for k, v := range tt.want {
			if got[k] != v {
				t.Errorf("%s: %s = %v, want %v (body %s)", tt.name, k, got[k], v, body)
			}
		}
	}
}

func FuzzDecodeIngestRequest(f *testing.F) {
	ct, body := multipartBody(f,
		multipartField{name: "document_id", value: "d"},
		multipartField{name: "groups", value: "a,b"},
		multipartField{name: "metadata", value: `{"k":"v"}`},
		multipartField{name: "file", filename: "a.txt", contentType: "text/plain", value: "hello"})
	f.Add(ct, body)
	f.Add("application/json", []byte(`{"document_id":"d","content":"x","groups":["g"],"metadata":{"a":"b"}}`))
	f.Add("application/json", []byte(`{"content_base64":"aGVsbG8=","content_type":"text/plain"}`))
	f.Add("multipart/form-data; boundary=x", []byte("--x\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nabc\r\n--x--\r\n"))
	decode := decodeIngestRequest(1 << 20)
	ctx := context.WithValue(context.Background(), principalKey{}, Principal{Tenant: "t"})
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		r := httptest.NewRequest("POST", "/v1/documents", bytes.NewReader(body))
		r.Header.Set("Content-Type", contentType)
		req, err := decode(ctx, r)
		if err != nil {
			if status, _ := HTTPStatus(err); status == http.StatusInternalServerError {
				t.Fatalf("decode error %v maps to 500, want a 4xx", err)
			}
			return
		}
		d := req.(IngestRequest).Document
		if int64(len(d.Content)) > 1<<20 {
			t.Fatalf("decoded %d bytes over the limit", len(d.Content))
		}
	})
}

func TestLimitInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		entered := make(chan struct{})
		release := make(chan struct{})
		h := limitInFlight(1, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			entered <- struct{}{}
			<-release
			w.WriteHeader(http.StatusAccepted)
		}))
		first := make(chan int, 1)
		go func() {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("POST", "/", nil))
			first <- rec.Code
		}()
		<-entered

		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("POST", "/", nil).WithContext(ctx))
		if rec.Code != http.StatusServiceUnavailable {
			t.Fatalf("second request while the slot is taken: status %d, want 503", rec.Code)
		}
		close(release)
		if code := <-first; code != http.StatusAccepted {
			t.Fatalf("first request: status %d, want 202", code)
		}
		// The slot is free again.
		go func() { <-entered }()
		rec = httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("POST", "/", nil))
		if rec.Code != http.StatusAccepted {
			t.Fatalf("request after release: status %d, want 202", rec.Code)
		}
	})
}
