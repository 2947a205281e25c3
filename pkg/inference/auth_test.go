package inference

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestAPIKeys checks the Bearer keys the way vLLM's --api-key clients use
// them: /v1/ routes want a key, health and metrics do not.
func TestAPIKeys(t *testing.T) {
	env := newEnv(t, true, nil, WithAPIKeys("sk-first-key", "sk-second-key"))
	do := func(method, path, auth, body string) *http.Response {
		t.Helper()
		req, err := http.NewRequest(method, env.http.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	completion := `{"prompt":"Once","max_tokens":2}`
	tests := []struct {
		name, method, path, auth, body string
		want                           int
	}{
		{"no key", "POST", "/v1/completions", "", completion, http.StatusUnauthorized},
		{"wrong key", "POST", "/v1/completions", "Bearer sk-nope", completion, http.StatusUnauthorized},
		{"key without Bearer", "POST", "/v1/completions", "sk-first-key", completion, http.StatusUnauthorized},
		{"a prefix of a key", "GET", "/v1/models", "Bearer sk-first", "", http.StatusUnauthorized},
		{"first key", "POST", "/v1/completions", "Bearer sk-first-key", completion, http.StatusOK},
		{"second key", "GET", "/v1/models", "Bearer sk-second-key", "", http.StatusOK},
		{"models without key", "GET", "/v1/models", "", "", http.StatusUnauthorized},
		{"health stays open", "GET", "/healthz", "", "", http.StatusOK},
		{"metrics stay open", "GET", "/metrics", "", "", http.StatusOK},
	}
	for _, tt := range tests {
		resp := do(tt.method, tt.path, tt.auth, tt.body)
		if resp.StatusCode != tt.want {
			t.Errorf("%s: %s %s = %d, want %d", tt.name, tt.method, tt.path, resp.StatusCode, tt.want)
			continue
		}
		if tt.want == http.StatusUnauthorized {
			var e struct {
				Error struct{ Code, Type string } `json:"error"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&e); err != nil || e.Error.Code != "invalid_api_key" {
				t.Errorf("%s: 401 body code %q (%v), want invalid_api_key in OpenAI's error shape", tt.name, e.Error.Code, err)
			}
		}
	}
}
