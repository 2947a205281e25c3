package audit

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// FuzzDecodeExportRequest feeds arbitrary query strings to the export
// API's decoder: it must not panic, must refuse with ErrInvalidFilter
// only, and must keep the caller's principal and the filter it was given.
func FuzzDecodeExportRequest(f *testing.F) {
	f.Add("since=2026-01-02&until=2026-01-03T04:05:06.789Z&tenant=acme&type=a,b&type=c")
	f.Add("since=yesterday")
	f.Add("type=%2C%2C+x+&tenant=%00&until=2026-13-40")
	f.Add("since=2026-01-02T00:00:00%2B25:00;type=;=&&")
	ctx := context.WithValue(context.Background(), principalKey{}, Principal{Tenant: "acme", Name: "fuzz"})
	f.Fuzz(func(t *testing.T, rawQuery string) {
		r := &http.Request{Method: http.MethodGet, URL: &url.URL{Path: "/v1/audit/export", RawQuery: rawQuery}}
		req, err := decodeExportRequest(ctx, r)
		if err != nil {
			if !errors.Is(err, ErrInvalidFilter) {
				t.Fatalf("decodeExportRequest(%q) = %v, want ErrInvalidFilter", rawQuery, err)
			}
			return
		}
		er := req.(ExportRequest)
		if er.Principal.Tenant != "acme" || er.Principal.Name != "fuzz" {
			t.Errorf("decodeExportRequest(%q) principal = %+v", rawQuery, er.Principal)
		}
		q := r.URL.Query()
		if er.Filter.Tenant != q.Get("tenant") {
			t.Errorf("decodeExportRequest(%q) tenant = %q, want %q", rawQuery, er.Filter.Tenant, q.Get("tenant"))
		}
		for _, typ := range er.Filter.Types {
			if typ == "" || strings.Contains(typ, ",") || strings.TrimSpace(typ) != typ {
				t.Errorf("decodeExportRequest(%q) type %q is not one trimmed name", rawQuery, typ)
			}
		}
		if q.Get("since") == "" && !er.Filter.Since.IsZero() || q.Get("until") == "" && !er.Filter.Until.IsZero() {
			t.Errorf("decodeExportRequest(%q) = %+v: a bound set without a parameter", rawQuery, er.Filter)
		}
	})
}
