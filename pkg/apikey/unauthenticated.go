package apikey

import (
	"encoding/json"
	"errors"
	"net/http"
)

// ErrUnauthenticated is a request without a known key. Every service
// answers it the same way (WriteUnauthenticated), so a client handles one
// shape whichever route it called.
var ErrUnauthenticated = errors.New("missing or unknown API key")

// UnauthenticatedCode is the error code of a 401.
const UnauthenticatedCode = "unauthenticated"

// WriteUnauthenticated answers 401 with a Bearer challenge and the body
// {"error":{"code":"unauthenticated","message":"missing or unknown API key"}}.
func WriteUnauthenticated(w http.ResponseWriter) {
	h := w.Header()
	h.Set("WWW-Authenticate", `Bearer realm="tributary"`)
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusUnauthorized)
	_ = json.NewEncoder(w).Encode(map[string]map[string]string{"error": {"code": UnauthenticatedCode, "message": ErrUnauthenticated.Error()}})
}
