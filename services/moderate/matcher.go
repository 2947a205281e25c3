package moderate

import (
	"context"
	"fmt"
	"regexp"
	"regexp/syntax"
	"sort"
	"strings"

	"github.com/open-policy-agent/opa/v1/rego"
)

// InjectionData is where a bundle keeps its injection signals: objects
// en_patterns and zh_patterns ({id: regular expression}) and the patterns
// benign_en and benign_zh. A bundle without them gets no Go-side matching;
// its Rego then matches on its own.
const InjectionData = "data.tributary.injection"

// matcher finds the injection signals of a view pair in Go with the
// bundle's own patterns, compiled once and each guarded by a literal
// prefilter: most text contains none of a pattern's required words, and
// strings.Contains is far cheaper than an unanchored regular expression.
// The policy receives the result as views.matches. A matcher is immutable
// and safe for concurrent use.
type matcher struct {
	en, zh             []signal
	benignEn, benignZh *signal
}

type signal struct {
	id string
	re *regexp.Regexp
	// anyOf holds literals one of which every match contains; empty means
	// no prefilter.
	anyOf []string
}

func (s *signal) match(text string) bool {
	if len(s.anyOf) > 0 && !containsAny(text, s.anyOf) {
		return false
	}
	return s.re.MatchString(text)
}

func containsAny(text string, lits []string) bool {
	for _, l := range lits {
		if strings.Contains(text, l) {
			return true
		}
	}
	return false
}

// loadMatcher reads the signal patterns of the bundle's modules; nil when
// the bundle defines none.
func loadMatcher(ctx context.Context, modules map[string]string) (*matcher, error) {
	opts := []func(*rego.Rego){rego.Query("x = " + InjectionData)}
	for name, src := range modules {
		opts = append(opts, rego.Module(name, src))
	}
	rs, err := rego.New(opts...).Eval(ctx)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", InjectionData, err)
	}
	if len(rs) == 0 {
		return nil, nil
	}
	data, _ := rs[0].Bindings["x"].(map[string]any)
	m := &matcher{}
	for _, set := range []struct {
		name string
		into *[]signal
	}{{"en_patterns", &m.en}, {"zh_patterns", &m.zh}} {
		sigs, _ := data[set.name].(map[string]any)
		if sigs == nil {
			return nil, nil
		}
		for id, v := range sigs {
			re, _ := v.(string)
			s, err := compileSignal(id, re)
			if err != nil {
				return nil, err
			}
			*set.into = append(*set.into, s)
		}
		sort.Slice(*set.into, func(i, j int) bool { return (*set.into)[i].id < (*set.into)[j].id })
	}
	for _, b := range []struct {
		name string
		into **signal
	}{{"benign_en", &m.benignEn}, {"benign_zh", &m.benignZh}} {
		re, _ := data[b.name].(string)
		if re == "" {
			return nil, nil
		}
		s, err := compileSignal(b.name, re)
		if err != nil {
			return nil, err
		}
		*b.into = &s
	}
	return m, nil
}

func compileSignal(id, pattern string) (signal, error) {
	re, err := regexp.Compile(pattern)
	if err != nil {
		return signal{}, fmt.Errorf("injection signal %s: %w", id, err)
	}
	s := signal{id: id, re: re}
	if parsed, err := syntax.Parse(pattern, syntax.Perl); err == nil {
		if lits, ok := requiredLiterals(parsed.Simplify()); ok {
			s.anyOf = lits
		}
	}
	return s, nil
}

// requiredLiterals returns literals one of which every match of re
// contains, if re says so plainly: a literal, an alternation of such, or a
// concatenation with such a part (the one whose shortest literal is
// longest). Case-folded literals are lowered (the views are lower case).
func requiredLiterals(re *syntax.Regexp) ([]string, bool) {
	switch re.Op {
	case syntax.OpLiteral:
		s := string(re.Rune)
		if re.Flags&syntax.FoldCase != 0 {
			s = strings.ToLower(s)
		}
		return []string{s}, s != ""
	case syntax.OpCapture, syntax.OpPlus:
		return requiredLiterals(re.Sub[0])
	case syntax.OpRepeat:
		if re.Min >= 1 {
			return requiredLiterals(re.Sub[0])
		}
	case syntax.OpAlternate:
		var all []string
		for _, sub := range re.Sub {
			lits, ok := requiredLiterals(sub)
			if !ok {
				return nil, false
			}
			all = append(all, lits...)
		}
		return all, true
	case syntax.OpConcat:
		var best []string
		bestLen := 0
		for _, sub := range re.Sub {
			lits, ok := requiredLiterals(sub)
			if !ok {
				continue
			}
			shortest := len(lits[0])
			for _, l := range lits {
				shortest = min(shortest, len(l))
			}
			if shortest > bestLen {
				best, bestLen = lits, shortest
			}
		}
		return best, best != nil
	}
	return nil, false
}

// matches computes views.matches: per view pair ([text, compact], then
// [joined, compact] when it differs, then each decoded text), the signals
// found and whether the text is about a technical object. It mirrors
// matches(v) in injection.rego.
func (m *matcher) matches(v Views) []any {
	type pair struct{ text, compact string }
	pairs := []pair{{v.Text, v.Compact}}
	if v.Joined != v.Text {
		pairs = append(pairs, pair{v.Joined, v.Compact})
	}
	for _, d := range v.Decoded {
		pairs = append(pairs, pair{d, nonLetters.ReplaceAllString(d, "")})
	}
	out := make([]any, len(pairs))
	for i, p := range pairs {
		hits := []any{}
		if hasASCIILetter(p.text) {
			for j := range m.en {
				if m.en[j].match(p.text) {
					hits = append(hits, m.en[j].id)
				}
			}
		}
		if hasHan(p.compact) {
			for j := range m.zh {
				if m.zh[j].match(p.compact) {
					hits = append(hits, m.zh[j].id)
				}
			}
		}
		benign := len(hits) > 0 && (m.benignEn.match(p.text) || m.benignZh.match(p.compact))
		out[i] = map[string]any{"hits": hits, "benign": benign}
	}
	return out
}

var (
	nonLetters = regexp.MustCompile(`[^\p{L}\p{N}]+`)
	hanRe      = regexp.MustCompile(`\p{Han}`)
)

func hasASCIILetter(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return r >= 'a' && r <= 'z' })
}

func hasHan(s string) bool { return hanRe.MatchString(s) }
