package audit

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-kit/kit/endpoint"
	kithttp "github.com/go-kit/kit/transport/http"

	"github.com/tributary-rag/tributary/pkg/events"
)

// Trailers of an export response. A client must check TrailerStatus after
// reading the body: "ok" means the stream is complete; anything else is
// the error that cut it short (the status line was sent before).
const (
	TrailerStatus  = "Audit-Status"
	TrailerRecords = "Audit-Records"
	// TrailerShredded is a JSON array of ShredRange: per tenant, the
	// count and seq range of selected records whose key was shredded
	// ("[]" when none).
	TrailerShredded = "Audit-Shredded"
)

// ExportSummary is the last line of an export asked with summary=1:
// {"summary":{"status","records","shredded"}}, what the trailers say, for
// clients that cannot read trailers (a browser's fetch). Records never
// have a top-level "summary" key.
type ExportSummary struct {
	Status   string       `json:"status"`
	Records  int          `json:"records"`
	Shredded []ShredRange `json:"shredded"`
}

// Authenticator resolves an API key to the principal it stands for.
type Authenticator interface {
	Authenticate(key string) (Principal, bool)
}

// AuthenticatorFunc adapts a function to Authenticator.
type AuthenticatorFunc func(key string) (Principal, bool)

// Authenticate calls f.
func (f AuthenticatorFunc) Authenticate(key string) (Principal, bool) { return f(key) }

// MakeHTTPHandler returns the HTTP API: GET /v1/audit/export with query
// parameters since and until (RFC 3339), tenant, and type (repeatable or
// comma-separated; exact or a prefix ending in '*'). It answers 401
// without a known key, 403 without the compliance group or for another
// tenant, 400 for a bad filter, and otherwise 200 with NDJSON, one
// canonical record per line, and the trailers TrailerStatus and
// TrailerRecords.
//
// POST /v1/audit/keys/{rotate|rewrap|shred} runs a key operation for a
// key with the compliance-admin group (Service.Admin). A request with an
// unknown API key is reported to actions (may be nil) as an auth_failed
// event.
func MakeHTTPHandler(e Endpoints, auth Authenticator, logger *slog.Logger, actions ActionRecorder) http.Handler {
	opts := []kithttp.ServerOption{
		kithttp.ServerBefore(func(ctx context.Context, r *http.Request) context.Context {
			if p, ok := auth.Authenticate(bearer(r.Header.Get("Authorization"))); ok {
				return context.WithValue(ctx, principalKey{}, p)
			}
			return ctx
		}),
		kithttp.ServerErrorEncoder(encodeError),
		kithttp.ServerErrorHandler(errorLogger{logger, actions}),
	}
	mux := http.NewServeMux()
	mux.Handle("GET /v1/audit/export", kithttp.NewServer(failing(e.Export), decodeExportRequest, encodeExport(logger), opts...))
	mux.Handle("POST /v1/audit/keys/{action}", kithttp.NewServer(failing(e.Admin), decodeAdminRequest, encodeJSON, opts...))
	mux.HandleFunc("/v1/audit/export", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", "GET")
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "use GET")
	})
	return mux
}

// failing turns a response's business error into the endpoint's error so
// that go-kit's error encoder maps it before any byte is streamed.
func failing(e endpoint.Endpoint) endpoint.Endpoint {
	return func(ctx context.Context, req any) (any, error) {
		resp, err := e(ctx, req)
		if err != nil {
			return nil, err
		}
		if f, ok := resp.(endpoint.Failer); ok && f.Failed() != nil {
			return nil, f.Failed()
		}
		return resp, nil
	}
}

type principalKey struct{}

func bearer(h string) string {
	scheme, token, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}

// decodeAdminRequest reads POST /v1/audit/keys/{rotate|rewrap|shred} with
// the query parameters tenant (shred) and raise_min_decryption=true
// (rewrap).
func decodeAdminRequest(ctx context.Context, r *http.Request) (any, error) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	if !ok {
		return nil, ErrUnauthenticated
	}
	q := r.URL.Query()
	raise, err := strconv.ParseBool(cmpOr(q.Get("raise_min_decryption"), "false"))
	if err != nil {
		return nil, fmt.Errorf("%w: raise_min_decryption: want true or false", ErrBadAction)
	}
	return AdminEndpointRequest{Principal: p, AdminRequest: AdminRequest{Action: r.PathValue("action"), Tenant: q.Get("tenant"), RaiseMinDecryption: raise}}, nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func encodeJSON(_ context.Context, w http.ResponseWriter, response any) error {
	w.Header().Set("Content-Type", "application/json")
	return json.NewEncoder(w).Encode(response.(AdminResponse).AdminResult)
}

func decodeExportRequest(ctx context.Context, r *http.Request) (any, error) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	if !ok {
		return nil, ErrUnauthenticated
	}
	q := r.URL.Query()
	var f Filter
	var err error
	if f.Since, err = parseTime(q.Get("since")); err != nil {
		return nil, fmt.Errorf("%w: since: %v", ErrInvalidFilter, err)
	}
	if f.Until, err = parseTime(q.Get("until")); err != nil {
		return nil, fmt.Errorf("%w: until: %v", ErrInvalidFilter, err)
	}
	f.Tenant = q.Get("tenant")
	summary := q.Get("summary") == "1" || q.Get("summary") == "true"
	for _, v := range q["type"] {
		for _, t := range strings.Split(v, ",") {
			if t = strings.TrimSpace(t); t != "" {
				f.Types = append(f.Types, t)
			}
		}
	}
	return ExportRequest{Principal: p, Filter: f, Summary: summary}, nil
}

// parseTime accepts RFC 3339 with or without fractional seconds, or a
// date (midnight UTC); "" is the zero time.
func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("want RFC 3339 or YYYY-MM-DD, got %q", s)
	}
	return t, nil
}

func encodeExport(logger *slog.Logger) kithttp.EncodeResponseFunc {
	return func(ctx context.Context, w http.ResponseWriter, response any) error {
		resp := response.(ExportResponse)
		h := w.Header()
		h.Set("Content-Type", "application/x-ndjson; charset=utf-8")
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Trailer", TrailerStatus+", "+TrailerRecords+", "+TrailerShredded)
		w.WriteHeader(http.StatusOK)
		rc := http.NewResponseController(w)
		bw := bufio.NewWriterSize(w, 64<<10)
		n := 0
		status := "ok"
		var shred shredTally
		for e, err := range resp.Records {
			if err != nil {
				status = "error: " + err.Error()
				logger.Error("export stopped", "error", err.Error(), "records", n)
				break
			}
			if e.Shredded {
				shred.add(e.Tenant, e.Seq)
				continue
			}
			line, err := e.Bytes()
			if err == nil {
				line = append(line, '\n')
				_, err = bw.Write(line)
			}
			if err != nil {
				status = "error: " + err.Error()
				break
			}
			n++
			if n%256 == 0 {
				if err := bw.Flush(); err != nil {
					return nil // the client went away
				}
				_ = rc.Flush()
			}
		}
		shredded := append([]ShredRange{}, shred.ranges...)
		if resp.Summary {
			line, _ := json.Marshal(map[string]ExportSummary{"summary": {Status: status, Records: n, Shredded: shredded}})
			_, _ = bw.Write(append(line, '\n'))
		}
		if err := bw.Flush(); err != nil {
			return nil
		}
		h.Set(TrailerStatus, strings.ReplaceAll(status, "\n", " "))
		h.Set(TrailerRecords, strconv.Itoa(n))
		sj, _ := json.Marshal(shredded)
		h.Set(TrailerShredded, string(sj))
		return nil
	}
}

// HTTPStatus maps an error to its status code and error code.
func HTTPStatus(err error) (int, string) {
	switch {
	case errors.Is(err, ErrUnauthenticated):
		return http.StatusUnauthorized, "unauthenticated"
	case errors.Is(err, ErrForbidden):
		return http.StatusForbidden, "forbidden"
	case errors.Is(err, ErrInvalidFilter):
		return http.StatusBadRequest, "invalid_filter"
	case errors.Is(err, ErrBadAction):
		return http.StatusBadRequest, "invalid_action"
	case errors.Is(err, ErrNotSupported):
		return http.StatusNotImplemented, "not_supported"
	case errors.Is(err, ErrKeyDestroyed):
		return http.StatusNotFound, "key_destroyed"
	case errors.Is(err, ErrKeysUnavailable):
		return http.StatusServiceUnavailable, "keys_unavailable"
	default:
		return http.StatusInternalServerError, "internal"
	}
}

func encodeError(_ context.Context, err error, w http.ResponseWriter) {
	status, code := HTTPStatus(err)
	msg := err.Error()
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "5")
	}
	if status == http.StatusInternalServerError {
		msg = "internal error"
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="tributary"`)
	}
	writeError(w, status, code, msg)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": code, "message": msg}})
}

type errorLogger struct {
	logger  *slog.Logger
	actions ActionRecorder
}

func (l errorLogger) Handle(ctx context.Context, err error) {
	status, _ := HTTPStatus(err)
	if status == http.StatusUnauthorized && l.actions != nil {
		path, _ := ctx.Value(kithttp.ContextKeyRequestPath).(string)
		_ = l.actions.Record(ctx, events.AuditEvent{Kind: events.AuditKindAuthFailed, Actor: "unknown api key",
			Action: "audit.api " + path, Outcome: "deny", Reason: "missing or unknown api key", At: time.Now().UTC()})
	}
	if status >= 500 {
		l.logger.ErrorContext(ctx, "export", "error", err.Error())
	}
}
