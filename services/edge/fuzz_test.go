package edge

import (
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
)

// FuzzKeyFromRequest feeds arbitrary Authorization and
// Sec-WebSocket-Protocol headers to the key extraction: it must not panic,
// must take a Bearer token before a protocol entry, must never return
// surrounding whitespace from a Bearer header, and must give back a key
// sent as a protocol entry unchanged.
func FuzzKeyFromRequest(f *testing.F) {
	f.Add("Bearer k1", "", "")
	f.Add("", "chat, tributary.key.a2V5", "")
	f.Add("bearer   ", "tributary.key.!!!, tributary.key.a2V5==", "key two")
	f.Add("Basic dXNlcjpwYXNz", "tributary.key.", "k\x00\xff")
	f.Fuzz(func(t *testing.T, authorization, protocols, key string) {
		r := &http.Request{Header: http.Header{}}
		if authorization != "" {
			r.Header.Set("Authorization", authorization)
		}
		if protocols != "" {
			r.Header.Set("Sec-WebSocket-Protocol", protocols)
		}
		got := KeyFromRequest(r)
		if got != "" && strings.HasPrefix(strings.TrimSpace(authorization), "Bearer ") && strings.TrimSpace(got) != got {
			t.Errorf("KeyFromRequest(Authorization %q) = %q with surrounding space", authorization, got)
		}
		if got == "" && strings.HasPrefix(authorization, "Bearer ") && strings.TrimSpace(authorization[len("Bearer "):]) != "" && !strings.ContainsAny(authorization, "\r\n") {
			t.Errorf("KeyFromRequest(Authorization %q) found no key", authorization)
		}

		// A key sent only as a protocol entry comes back as sent.
		r = &http.Request{Header: http.Header{}}
		r.Header.Set("Sec-WebSocket-Protocol", "chat.v1, "+KeyProtocolPrefix+base64.RawURLEncoding.EncodeToString([]byte(key)))
		if got := KeyFromRequest(r); key != "" && got != key {
			t.Errorf("KeyFromRequest(protocol of %q) = %q", key, got)
		}
	})
}
