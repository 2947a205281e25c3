// Package apikey parses Tributary's API keys and looks keys up in constant
// time.
//
// TRIBUTARY_API_KEYS holds comma-separated entries "key:tenant:groups",
// where groups is a '|'-separated list that may be empty:
//
//	TRIBUTARY_API_KEYS="k-alice-123:acme:eng|ops,k-bob-456:acme:,k-eve-789:globex:sales"
//
// A service parses the value once at start and authenticates each request:
//
//	keys, err := apikey.Parse(os.Getenv("TRIBUTARY_API_KEYS"))
//	...
//	p, ok := keys.Lookup(apikey.BearerToken(r.Header.Get("Authorization")))
//	if !ok { /* 401 */ }
//	ctx = apikey.WithPrincipal(ctx, p)
package apikey

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// Principal is who a key speaks for.
type Principal struct {
	// Tenant owns every document and question sent with the key.
	Tenant string
	// Groups the key's holder belongs to; retrieval returns only chunks
	// shared with one of them (or with no group).
	Groups []string
	// Name identifies the key in logs and audit records without revealing
	// it: "key-" and the first 8 hex digits of its SHA-256.
	Name string
}

// ErrInvalid reports a malformed TRIBUTARY_API_KEYS value.
var ErrInvalid = errors.New("invalid api keys")

type entry struct {
	sum       [sha256.Size]byte
	principal Principal
}

// Set is a parsed set of API keys. The zero Set has no keys. A Set is
// immutable and safe for concurrent use.
type Set struct {
	entries []entry
}

var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// Parse parses "key:tenant:g1|g2,...". Keys must be at least 8 characters
// without ':' ',' or spaces and unique; tenants and groups are 1-128 of
// [A-Za-z0-9._-] starting with a letter or digit. Error messages never
// contain a key.
func Parse(s string) (*Set, error) {
	set := &Set{}
	seen := map[[sha256.Size]byte]bool{}
	for i, raw := range strings.Split(s, ",") {
		raw = strings.TrimSpace(raw)
		if raw == "" {
			continue
		}
		parts := strings.Split(raw, ":")
		if len(parts) != 3 {
			return nil, fmt.Errorf("%w: entry %d: want key:tenant:group1|group2, got %d fields", ErrInvalid, i+1, len(parts))
		}
		key, tenant, groups := parts[0], parts[1], parts[2]
		if len(key) < 8 || strings.ContainsAny(key, " \t|") {
			return nil, fmt.Errorf("%w: entry %d: key must be at least 8 characters without spaces or '|'", ErrInvalid, i+1)
		}
		if !namePattern.MatchString(tenant) {
			return nil, fmt.Errorf("%w: entry %d: tenant %q must be 1-128 characters of [A-Za-z0-9._-]", ErrInvalid, i+1, tenant)
		}
		p := Principal{Tenant: tenant}
		if groups != "" {
			for _, g := range strings.Split(groups, "|") {
				if !namePattern.MatchString(g) {
					return nil, fmt.Errorf("%w: entry %d: group %q must be 1-128 characters of [A-Za-z0-9._-]", ErrInvalid, i+1, g)
				}
				p.Groups = append(p.Groups, g)
			}
		}
		sum := sha256.Sum256([]byte(key))
		if seen[sum] {
			return nil, fmt.Errorf("%w: entry %d: duplicate key", ErrInvalid, i+1)
		}
		seen[sum] = true
		p.Name = fmt.Sprintf("key-%x", sum[:4])
		set.entries = append(set.entries, entry{sum: sum, principal: p})
	}
	return set, nil
}

// Len returns the number of keys.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return len(s.entries)
}

// Lookup returns the principal of key. It compares SHA-256 digests in
// constant time and always scans every entry, so timing reveals neither
// which key matched nor how much of a key was right.
func (s *Set) Lookup(key string) (Principal, bool) {
	if s == nil || key == "" {
		return Principal{}, false
	}
	sum := sha256.Sum256([]byte(key))
	found := -1
	for i := range s.entries {
		if subtle.ConstantTimeCompare(sum[:], s.entries[i].sum[:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return Principal{}, false
	}
	p := s.entries[found].principal
	p.Groups = append([]string(nil), p.Groups...)
	return p, true
}

// BearerToken returns the token of an "Authorization: Bearer <token>"
// header value, or "" if it has another form.
func BearerToken(authorization string) string {
	scheme, token, ok := strings.Cut(strings.TrimSpace(authorization), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}

type ctxKey struct{}

// WithPrincipal returns a copy of ctx carrying p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, ctxKey{}, p)
}

// FromContext returns the principal carried by ctx, if any.
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(ctxKey{}).(Principal)
	return p, ok
}
