package apikey

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseLookup(t *testing.T) {
	set, err := Parse(" k-alice-123:acme:eng|ops , k-bob-4567:acme:,k-eve-7890:globex:sales,")
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if set.Len() != 3 {
		t.Fatalf("Len() = %d, want 3", set.Len())
	}
	tests := []struct {
		key        string
		ok         bool
		tenant     string
		wantGroups []string
	}{
		{"k-alice-123", true, "acme", []string{"eng", "ops"}},
		{"k-bob-4567", true, "acme", nil},
		{"k-eve-7890", true, "globex", []string{"sales"}},
		{"k-alice-12", false, "", nil},
		{"k-alice-1234", false, "", nil},
		{"", false, "", nil},
	}
	for _, tt := range tests {
		p, ok := set.Lookup(tt.key)
		if ok != tt.ok || p.Tenant != tt.tenant || !reflect.DeepEqual(p.Groups, tt.wantGroups) {
			t.Errorf("Lookup(%q) = %+v, %v; want tenant %q groups %v ok %v", tt.key, p, ok, tt.tenant, tt.wantGroups, tt.ok)
		}
		if ok && (strings.Contains(p.Name, tt.key) || !strings.HasPrefix(p.Name, "key-") || len(p.Name) != 12) {
			t.Errorf("Name %q leaks or is malformed", p.Name)
		}
	}
	// Lookup returns copies: changing one does not change the set.
	p, _ := set.Lookup("k-alice-123")
	p.Groups[0] = "root"
	if p2, _ := set.Lookup("k-alice-123"); p2.Groups[0] != "eng" {
		t.Error("Lookup shares its groups slice")
	}
	var empty *Set
	if _, ok := empty.Lookup("anything"); ok || empty.Len() != 0 {
		t.Error("nil Set found a key")
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		in   string
		want string // in the message
	}{
		{"short:acme:eng", "at least 8"},
		{"k-0123456:acme", "fields"},
		{"k-0123456:acme:eng:x", "fields"},
		{"k-0123456::eng", "tenant"},
		{"k-0123456:ac me:eng", "tenant"},
		{"k-0123456:acme:eng||ops", "group"},
		{"k-0123456:acme:eng,k-0123456:other:", "duplicate"},
		{"k 0123456:acme:eng", "spaces"},
	}
	for _, tt := range tests {
		_, err := Parse(tt.in)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Parse(%q) = %v, want ErrInvalid mentioning %q", tt.in, err, tt.want)
			continue
		}
		if strings.Contains(err.Error(), "k-0123456") {
			t.Errorf("Parse(%q) error leaks the key: %v", tt.in, err)
		}
	}
	if set, err := Parse(""); err != nil || set.Len() != 0 {
		t.Errorf("Parse(\"\") = %v, %v", set, err)
	}
}

func TestBearerToken(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Bearer abc", "abc"},
		{"bearer   abc ", "abc"},
		{"Basic abc", ""},
		{"Bearer", ""},
		{"", ""},
	}
	for _, tt := range tests {
		if got := BearerToken(tt.in); got != tt.want {
			t.Errorf("BearerToken(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestContext(t *testing.T) {
	if _, ok := FromContext(context.Background()); ok {
		t.Error("empty context has a principal")
	}
	p := Principal{Tenant: "acme", Groups: []string{"eng"}}
	got, ok := FromContext(WithPrincipal(context.Background(), p))
	if !ok || !reflect.DeepEqual(got, p) {
		t.Errorf("FromContext = %+v, %v", got, ok)
	}
}

func FuzzParse(f *testing.F) {
	f.Add("k-alice-123:acme:eng|ops,k-bob-4567:acme:")
	f.Add(":::,,,|")
	f.Fuzz(func(t *testing.T, s string) {
		set, err := Parse(s)
		if err != nil {
			return
		}
		for _, e := range set.entries {
			if e.principal.Tenant == "" {
				t.Fatalf("Parse(%q) accepted an empty tenant", s)
			}
		}
	})
}
