package ingest

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"mime"
	"mime/multipart"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/go-kit/kit/endpoint"
	kithttp "github.com/go-kit/kit/transport/http"

	"github.com/tributary-rag/tributary/pkg/apikey"
	"github.com/tributary-rag/tributary/pkg/auditevent"
	"github.com/tributary-rag/tributary/pkg/keylimit"
	"github.com/tributary-rag/tributary/pkg/tracecontext"
)

// Authenticator resolves an API key to the principal it stands for.
type Authenticator interface {
	Authenticate(key string) (Principal, bool)
}

// AuthenticatorFunc adapts a function to Authenticator.
type AuthenticatorFunc func(key string) (Principal, bool)

// Authenticate calls f.
func (f AuthenticatorFunc) Authenticate(key string) (Principal, bool) { return f(key) }

// HTTPOption configures the HTTP handler.
type HTTPOption func(*httpConfig)

type httpConfig struct {
	maxSize       int64
	maxUploads    int
	perKey        *keylimit.Slots
	rate          *keylimit.Rate
	uploadTimeout time.Duration
	audit         *auditevent.Recorder
}

// WithHTTPAudit records refused requests as tributary.audit.auth_failed.
func WithHTTPAudit(r *auditevent.Recorder) HTTPOption {
	return func(c *httpConfig) { c.audit = r }
}

// WithHTTPUploadLimits keeps one key from taking every upload slot: it
// may hold perKey uploads at once (more get 429 at once rather than
// queueing behind it) and start perSecond (bursts of burst) a second
// (more get 429 with Retry-After), and each upload's body must arrive
// within timeout (408 otherwise), so a slow client holds its slot for a
// bounded time. Zero values turn a limit off.
func WithHTTPUploadLimits(perKey int, perSecond float64, burst int, timeout time.Duration) HTTPOption {
	return func(c *httpConfig) {
		c.perKey = keylimit.NewSlots(perKey, 0)
		c.rate = keylimit.NewRate(perSecond, burst)
		c.uploadTimeout = timeout
	}
}

// DefaultMaxUploads is the default number of POST requests served at once.
const DefaultMaxUploads = 4

// WithHTTPMaxUploads bounds how many POST /v1/documents requests are read
// and processed at once (default DefaultMaxUploads); others wait for a
// slot before their body is read, which bounds memory to about
// n × (size limit + parsed text).
func WithHTTPMaxUploads(n int) HTTPOption {
	return func(c *httpConfig) {
		if n > 0 {
			c.maxUploads = n
		}
	}
}

// WithHTTPMaxDocumentSize sets the limit on a document's size in bytes
// (default DefaultMaxDocumentSize). Request bodies are cut off a little
// above it (multipart framing, base64), and decoded content above it is
// refused with 413.
func WithHTTPMaxDocumentSize(n int64) HTTPOption {
	return func(c *httpConfig) {
		if n > 0 {
			c.maxSize = n
		}
	}
}

// Limits on the parts of a request that are not the document.
const (
	maxFieldSize    = 64 << 10
	framingOverhead = 1 << 20
)

// MakeHTTPHandler returns the HTTP API of the service:
// POST /v1/documents, GET /v1/documents/{id} and DELETE /v1/documents/{id}.
// Every route needs an `Authorization: Bearer <key>` header that auth
// accepts.
func MakeHTTPHandler(e Endpoints, auth Authenticator, logger *slog.Logger, opts ...HTTPOption) http.Handler {
	cfg := httpConfig{maxSize: DefaultMaxDocumentSize, maxUploads: DefaultMaxUploads}
	for _, o := range opts {
		o(&cfg)
	}
	options := []kithttp.ServerOption{
		kithttp.ServerErrorEncoder(encodeError),
		kithttp.ServerErrorHandler(errorLogger{logger}),
		kithttp.ServerBefore(correlationFromHTTP, traceFromHTTP),
	}
	mux := http.NewServeMux()
	mux.Handle("POST /v1/documents", authenticate(auth, cfg.audit, limitUploads(cfg, kithttp.NewServer(
		e.Ingest, decodeIngestRequest(cfg.maxSize), encodeResponse(http.StatusAccepted), options...))))
	mux.Handle("GET /v1/documents/{id}", authenticate(auth, cfg.audit, kithttp.NewServer(
		e.Get, decodeGetRequest, encodeResponse(http.StatusOK), options...)))
	mux.Handle("GET /v1/documents", authenticate(auth, cfg.audit, kithttp.NewServer(
		e.List, decodeListRequest, encodeResponse(http.StatusOK), options...)))
	mux.Handle("DELETE /v1/documents/{id}", authenticate(auth, cfg.audit, kithttp.NewServer(
		e.Delete, decodeDeleteRequest, encodeResponse(http.StatusOK), options...)))
	mux.Handle("/v1/documents", methodNotAllowed("GET, POST"))
	mux.Handle("/v1/documents/{id}", methodNotAllowed("GET, DELETE"))
	mux.HandleFunc("/v1/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "no such route")
	})
	return mux
}

// limitInFlight lets at most n requests through next at once; the others
// wait (before their body is read) until a slot frees or they give up.
func limitInFlight(n int, next http.Handler) http.Handler {
	slots := make(chan struct{}, n)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case slots <- struct{}{}:
		case <-r.Context().Done():
			writeError(w, http.StatusServiceUnavailable, "unavailable", "too many uploads in progress")
			return
		}
		defer func() { <-slots }()
		next.ServeHTTP(w, r)
	})
}

// limitUploads applies cfg's per-key rate and slots, then the global
// slots (limitInFlight), and bounds the time the body may take. It runs
// after authenticate, which put the principal in the context.
func limitUploads(cfg httpConfig, next http.Handler) http.Handler {
	global := limitInFlight(cfg.maxUploads, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if cfg.uploadTimeout > 0 {
			// Counted from the slot, not the request: waiting for a slot
			// does not spend the client's time to send.
			_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(cfg.uploadTimeout))
		}
		next.ServeHTTP(w, r)
	}))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := r.Context().Value(principalKey{}).(Principal)
		key := p.Tenant + "\x00" + p.Name
		if ok, wait := cfg.rate.Allow(key); !ok {
			w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
			writeError(w, http.StatusTooManyRequests, "rate_limited", "too many uploads for this API key; retry after "+wait.Round(time.Millisecond).String())
			return
		}
		release, ok := cfg.perKey.Acquire(key)
		if !ok {
			w.Header().Set("Retry-After", "5")
			writeError(w, http.StatusTooManyRequests, "too_many_uploads", "this API key has as many uploads in progress as it may")
			return
		}
		defer release()
		global.ServeHTTP(w, r)
	})
}

func methodNotAllowed(allow string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "use "+allow)
	})
}

type principalKey struct{}

// authenticate rejects requests without a valid bearer key before their
// body is read, and puts the key's principal into the request context.
func authenticate(auth Authenticator, audit *auditevent.Recorder, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, ok := bearerKey(r.Header.Get("Authorization"))
		var p Principal
		if ok {
			p, ok = auth.Authenticate(key)
		}
		if !ok || p.Tenant == "" {
			audit.AuthFailed(r, "documents."+strings.ToLower(r.Method))
			apikey.WriteUnauthenticated(w)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
	})
}

func bearerKey(h string) (string, bool) {
	const prefix = "bearer "
	if len(h) <= len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return "", false
	}
	key := strings.TrimSpace(h[len(prefix):])
	return key, key != ""
}

func principalFrom(ctx context.Context) (Principal, error) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	if !ok || p.Tenant == "" {
		return Principal{}, ErrUnauthenticated
	}
	return p, nil
}

// correlationFromHTTP takes the caller's X-Correlation-ID, or makes one.
func correlationFromHTTP(ctx context.Context, r *http.Request) context.Context {
	id := r.Header.Get("X-Correlation-ID")
	if id == "" || len(id) > 128 || checkText("correlation id", id, 128) != nil {
		var b [16]byte
		_, _ = rand.Read(b[:])
		id = hex.EncodeToString(b[:])
	}
	return WithCorrelationID(ctx, id)
}

// traceFromHTTP continues the caller's W3C trace (traceparent header), or
// starts one, so that every event of the request belongs to one trace.
func traceFromHTTP(ctx context.Context, r *http.Request) context.Context {
	if tp, err := tracecontext.Parse(r.Header.Get("traceparent")); err == nil {
		return tracecontext.WithContext(ctx, tp)
	}
	ctx, _ = tracecontext.Ensure(ctx)
	return ctx
}

// jsonDocument is the JSON form of POST /v1/documents.
type jsonDocument struct {
	DocumentID    string            `json:"document_id"`
	Title         string            `json:"title"`
	ContentType   string            `json:"content_type"`
	Content       *string           `json:"content"`
	ContentBase64 *string           `json:"content_base64"`
	Source        string            `json:"source"`
	Groups        []string          `json:"groups"`
	Metadata      map[string]string `json:"metadata"`
}

func decodeIngestRequest(maxSize int64) kithttp.DecodeRequestFunc {
	return func(ctx context.Context, r *http.Request) (any, error) {
		p, err := principalFrom(ctx)
		if err != nil {
			return nil, err
		}
		mediaType, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil {
			return nil, fmt.Errorf("%w: request Content-Type must be multipart/form-data or application/json", ErrUnsupportedType)
		}
		var d Document
		switch mediaType {
		case "multipart/form-data":
			limit := maxSize + framingOverhead
			if r.ContentLength > limit {
				return nil, fmt.Errorf("%w: request body of %d bytes", ErrTooLarge, r.ContentLength)
			}
			if params["boundary"] == "" {
				return nil, fmt.Errorf("%w: multipart request without boundary", ErrInvalid)
			}
			body := http.MaxBytesReader(nil, r.Body, limit)
			d, err = decodeMultipart(multipart.NewReader(body, params["boundary"]), maxSize)
		case "application/json":
			// base64 needs 4 bytes for 3; JSON escapes are not counted.
			limit := maxSize/3*4 + framingOverhead
			if r.ContentLength > limit {
				return nil, fmt.Errorf("%w: request body of %d bytes", ErrTooLarge, r.ContentLength)
			}
			d, err = decodeJSONDocument(http.MaxBytesReader(nil, r.Body, limit))
		default:
			return nil, fmt.Errorf("%w: request Content-Type %q, want multipart/form-data or application/json", ErrUnsupportedType, mediaType)
		}
		if err != nil {
			return nil, err
		}
		if int64(len(d.Content)) > maxSize {
			return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(d.Content), maxSize)
		}
		return IngestRequest{Principal: p, Document: d}, nil
	}
}

func decodeJSONDocument(body io.Reader) (Document, error) {
	var jd jsonDocument
	dec := json.NewDecoder(body)
	if err := dec.Decode(&jd); err != nil {
		return Document{}, bodyError("decode JSON body", err)
	}
	if dec.More() {
		return Document{}, fmt.Errorf("%w: trailing data after the JSON body", ErrInvalid)
	}
	d := Document{
		ID:          jd.DocumentID,
		Title:       jd.Title,
		ContentType: jd.ContentType,
		Source:      jd.Source,
		Groups:      jd.Groups,
		Metadata:    jd.Metadata,
	}
	switch {
	case jd.Content != nil && jd.ContentBase64 != nil:
		return Document{}, fmt.Errorf("%w: give content or content_base64, not both", ErrInvalid)
	case jd.Content != nil:
		d.Content = []byte(*jd.Content)
		if d.ContentType == "" {
			d.ContentType = "text/plain"
		}
	case jd.ContentBase64 != nil:
		b, err := base64.StdEncoding.DecodeString(*jd.ContentBase64)
		if err != nil {
			return Document{}, fmt.Errorf("%w: content_base64: %v", ErrInvalid, err)
		}
		d.Content = b
	default:
		return Document{}, fmt.Errorf("%w: content or content_base64 is required", ErrInvalid)
	}
	return d, nil
}

func decodeMultipart(mr *multipart.Reader, maxSize int64) (Document, error) {
	var d Document
	seenFile := false
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return Document{}, bodyError("read multipart body", err)
		}
		name := part.FormName()
		if name == "file" {
			if seenFile {
				return Document{}, fmt.Errorf("%w: more than one file part", ErrInvalid)
			}
			seenFile = true
			b, err := io.ReadAll(io.LimitReader(part, maxSize+1))
			if err != nil {
				return Document{}, bodyError("read file part", err)
			}
			if int64(len(b)) > maxSize {
				return Document{}, fmt.Errorf("%w: file over the limit of %d bytes", ErrTooLarge, maxSize)
			}
			d.Content = b
			d.Filename = part.FileName()
			if ct := part.Header.Get("Content-Type"); ct != "" && d.ContentType == "" {
				d.ContentType = ct
			}
			continue
		}
		b, err := io.ReadAll(io.LimitReader(part, maxFieldSize+1))
		if err != nil {
			return Document{}, bodyError("read form field", err)
		}
		if len(b) > maxFieldSize {
			return Document{}, fmt.Errorf("%w: form field %q over %d bytes", ErrInvalid, name, maxFieldSize)
		}
		v := string(b)
		switch name {
		case "document_id":
			d.ID = v
		case "title":
			d.Title = v
		case "source":
			d.Source = v
		case "content_type":
			// An explicit field wins over the part's header.
			d.ContentType = v
		case "groups":
			d.Groups = append(d.Groups, strings.Split(v, ",")...)
		case "metadata":
			if err := json.Unmarshal(b, &d.Metadata); err != nil {
				return Document{}, fmt.Errorf("%w: metadata must be a JSON object of strings: %v", ErrInvalid, err)
			}
		}
	}
	if !seenFile {
		return Document{}, fmt.Errorf("%w: multipart body has no file part", ErrInvalid)
	}
	if d.ContentType == "application/octet-stream" {
		// Browsers and curl send this for unknown files: let the parser
		// detect the type from the name and bytes.
		d.ContentType = ""
	}
	return d, nil
}

// bodyError classifies an error from reading the body: over the size limit
// is 413, past the upload timeout 408, anything else a malformed request.
func bodyError(what string, err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return fmt.Errorf("%w: request body over %d bytes", ErrTooLarge, mbe.Limit)
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("%w: %s: the body did not arrive within the upload timeout", ErrBodyTimeout, what)
	}
	return fmt.Errorf("%w: %s: %v", ErrInvalid, what, err)
}

func decodeGetRequest(ctx context.Context, r *http.Request) (any, error) {
	p, id, err := documentRef(ctx, r)
	if err != nil {
		return nil, err
	}
	return GetRequest{Principal: p, DocumentID: id}, nil
}

func decodeListRequest(ctx context.Context, r *http.Request) (any, error) {
	p, err := principalFrom(ctx)
	if err != nil {
		return nil, err
	}
	q := r.URL.Query()
	lq := ListQuery{SourcePrefix: q.Get("source_prefix"), After: q.Get("after")}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil {
			return nil, fmt.Errorf("%w: limit %q is not a number", ErrInvalid, l)
		}
		lq.Limit = n
	}
	return ListRequest{Principal: p, Query: lq}, nil
}

func decodeDeleteRequest(ctx context.Context, r *http.Request) (any, error) {
	p, id, err := documentRef(ctx, r)
	if err != nil {
		return nil, err
	}
	return DeleteRequest{Principal: p, DocumentID: id}, nil
}

// documentRef returns the caller and the validated {id} of a
// /v1/documents/{id} request.
func documentRef(ctx context.Context, r *http.Request) (Principal, string, error) {
	p, err := principalFrom(ctx)
	if err != nil {
		return Principal{}, "", err
	}
	id := r.PathValue("id")
	if err := ValidateID(id); err != nil {
		return Principal{}, "", err
	}
	return p, id, nil
}

func encodeResponse(status int) kithttp.EncodeResponseFunc {
	return func(ctx context.Context, w http.ResponseWriter, response any) error {
		if f, ok := response.(endpoint.Failer); ok && f.Failed() != nil {
			// Business errors ride in the response; go-kit's server does
			// not look at them.
			encodeError(ctx, f.Failed(), w)
			return nil
		}
		if id := correlationFrom(ctx); id != "" {
			w.Header().Set("X-Correlation-ID", id)
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(status)
		return json.NewEncoder(w).Encode(response)
	}
}

// errorBody is the JSON error document of every failed request.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// HTTPStatus maps an error of the service to its HTTP status and error code.
func HTTPStatus(err error) (status int, code string) {
	switch {
	case errors.Is(err, ErrUnauthenticated):
		return http.StatusUnauthorized, "unauthenticated"
	case errors.Is(err, ErrTooLarge):
		return http.StatusRequestEntityTooLarge, "too_large"
	case errors.Is(err, ErrBodyTimeout):
		return http.StatusRequestTimeout, "timeout"
	case errors.Is(err, ErrUnsupportedType):
		return http.StatusUnsupportedMediaType, "unsupported_type"
	case errors.Is(err, ErrUnreadable):
		return http.StatusUnprocessableEntity, "unreadable"
	case errors.Is(err, ErrInvalid):
		return http.StatusBadRequest, "invalid_request"
	case errors.Is(err, ErrForbidden):
		return http.StatusForbidden, "forbidden"
	case errors.Is(err, ErrNotFound):
		return http.StatusNotFound, "not_found"
	case errors.Is(err, ErrUnavailable):
		return http.StatusServiceUnavailable, "unavailable"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return http.StatusServiceUnavailable, "unavailable"
	default:
		return http.StatusInternalServerError, "internal"
	}
}

func encodeError(ctx context.Context, err error, w http.ResponseWriter) {
	status, code := HTTPStatus(err)
	msg := err.Error()
	if status == http.StatusInternalServerError {
		// Internal details (paths, addresses) stay in the log.
		msg = "internal error"
	}
	if id := correlationFrom(ctx); id != "" {
		w.Header().Set("X-Correlation-ID", id)
	}
	writeError(w, status, code, msg)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(errorBody{Error: errorDetail{Code: code, Message: msg}})
}

// errorLogger logs transport errors (decoding, encoding) that end a
// request with a 5xx status; refusals of bad requests are the caller's
// business and not logged.
type errorLogger struct{ logger *slog.Logger }

func (l errorLogger) Handle(ctx context.Context, err error) {
	if status, _ := HTTPStatus(err); status < http.StatusInternalServerError {
		return
	}
	l.logger.ErrorContext(ctx, "request failed", "correlation_id", correlationFrom(ctx), "error", err.Error())
}
