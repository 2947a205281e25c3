package moderate

import (
	"context"
	"fmt"
	"regexp"
	"regexp/syntax"
	"slices"
	"sort"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
)

// InjectionData is where a bundle keeps its injection signals: objects
// en_patterns and zh_patterns ({id: regular expression}) and the patterns
// benign_en and benign_zh. A bundle without them gets no Go-side matching;
// its Rego then matches on its own.
const InjectionData = "data.tributary.injection"

// matcher finds the injection signals of a view pair in Go with the
// bundle's own patterns, compiled once and each guarded by literal
// prefilters: most text contains none of a pattern's required words, and
// strings.Contains is far cheaper than an unanchored regular expression.
// A pattern with a small finite language is matched by substring checks
// alone, and one whose matches begin with known strings is tried only
// where they occur (an unanchored search over a long text is what made
// the slowest decisions slow). The policy receives the result as
// views.matches. A matcher is immutable and safe for concurrent use.
type matcher struct {
	en, zh             []signal
	benignEn, benignZh *signal
}

type signal struct {
	id   string
	term *ast.Term // id as a string term, made once
	re   *regexp.Regexp
	// allOf holds sets of literals: every match contains one literal of
	// each set ("reveal|show …" and "prompt|instructions …"). Empty means
	// no prefilter.
	allOf [][]string
	// exact, when not nil, is every string the pattern matches (a finite
	// language: "jailbreak|developer mode|越狱…"): the text matches if it
	// contains one of them, and the regular expression need not run.
	exact []string
	// starts, when not nil, holds strings one of which every match
	// begins with, and anchored is the pattern anchored at the start: it
	// is tried only where one of them occurs, instead of searching the
	// whole text.
	starts   []string
	anchored *regexp.Regexp
}

func (s *signal) match(text string) bool {
	if s.exact != nil {
		return containsAny(text, s.exact)
	}
	for _, set := range s.allOf {
		if !containsAny(text, set) {
			return false
		}
	}
	if s.anchored == nil {
		return s.re.MatchString(text)
	}
	for _, st := range s.starts {
		for off := 0; ; {
			i := strings.Index(text[off:], st)
			if i < 0 {
				break
			}
			if s.anchored.MatchString(text[off+i:]) {
				return true
			}
			off += i + 1
		}
	}
	return false
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
	s := signal{id: id, term: ast.StringTerm(id), re: re}
	if parsed, err := syntax.Parse(pattern, syntax.Perl); err == nil {
		simple := parsed.Simplify()
		s.allOf = requiredSets(simple)
		s.exact, _ = language(simple, maxLanguage)
		if starts, ok := startStrings(simple); ok && s.exact == nil && !lookBehind(simple) {
			s.starts = starts
			s.anchored = regexp.MustCompile(`^(?:` + pattern + `)`)
		}
	}
	return s, nil
}

// startStrings returns strings one of which every match of re begins
// with: the language of its first part where that is finite and has no
// empty string, else that part's own start strings.
func startStrings(re *syntax.Regexp) ([]string, bool) {
	if l, ok := language(re, maxLanguage); ok && !slices.Contains(l, "") {
		return l, true
	}
	switch re.Op {
	case syntax.OpCapture, syntax.OpPlus:
		return startStrings(re.Sub[0])
	case syntax.OpConcat:
		return startStrings(re.Sub[0])
	case syntax.OpAlternate:
		var out []string
		for _, sub := range re.Sub {
			l, ok := startStrings(sub)
			if !ok {
				return nil, false
			}
			out = append(out, l...)
		}
		return out, true
	}
	return nil, false
}

// lookBehind says whether re has an assertion about what precedes a
// position (^, \b, \B): anchored at an offset, such a pattern would not see
// the text before it, so it is not tried that way.
func lookBehind(re *syntax.Regexp) bool {
	switch re.Op {
	case syntax.OpBeginLine, syntax.OpBeginText, syntax.OpWordBoundary, syntax.OpNoWordBoundary:
		return true
	}
	for _, sub := range re.Sub {
		if lookBehind(sub) {
			return true
		}
	}
	return false
}

// maxLanguage bounds the strings a pattern is expanded into: beyond it,
// checking them one by one costs more than the regular expression.
const maxLanguage = 256

// language returns every string re matches, if they are at most limit:
// literals, small character classes, alternations, concatenations and
// optional parts. Anything that depends on context (\b, ^, case folding)
// or repeats without bound gives false.
func language(re *syntax.Regexp, limit int) ([]string, bool) {
	switch re.Op {
	case syntax.OpEmptyMatch:
		return []string{""}, true
	case syntax.OpLiteral:
		if re.Flags&syntax.FoldCase != 0 {
			return nil, false
		}
		return []string{string(re.Rune)}, true
	case syntax.OpCharClass:
		var out []string
		for i := 0; i+1 < len(re.Rune); i += 2 {
			for r := re.Rune[i]; r <= re.Rune[i+1]; r++ {
				if len(out) == 8 {
					return nil, false
				}
				out = append(out, string(r))
			}
		}
		return out, len(out) > 0
	case syntax.OpCapture:
		return language(re.Sub[0], limit)
	case syntax.OpQuest:
		sub, ok := language(re.Sub[0], limit-1)
		return append(sub, ""), ok
	case syntax.OpAlternate:
		var out []string
		for _, sub := range re.Sub {
			l, ok := language(sub, limit-len(out))
			if !ok {
				return nil, false
			}
			out = append(out, l...)
		}
		return out, len(out) <= limit
	case syntax.OpConcat:
		out := []string{""}
		for _, sub := range re.Sub {
			l, ok := language(sub, limit)
			if !ok || len(out)*len(l) > limit {
				return nil, false
			}
			next := make([]string, 0, len(out)*len(l))
			for _, a := range out {
				for _, b := range l {
					next = append(next, a+b)
				}
			}
			out = next
		}
		return out, true
	}
	return nil, false
}

// requiredSets returns sets of literals such that every match of re
// contains one literal of each set: the required literals of each part of
// a top-level concatenation. Checking all of them, not just one, rules out
// most benign text before the regular expression runs (a sentence with
// "show" but no "prompt" cannot ask for the system prompt).
func requiredSets(re *syntax.Regexp) [][]string {
	if re.Op == syntax.OpCapture {
		return requiredSets(re.Sub[0])
	}
	if re.Op != syntax.OpConcat {
		if lits, ok := requiredLiterals(re); ok {
			return [][]string{lits}
		}
		return nil
	}
	var sets [][]string
	for _, sub := range re.Sub {
		sets = append(sets, requiredSets(sub)...)
	}
	return sets
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
func (m *matcher) matches(v Views) *ast.Term {
	type pair struct{ text, compact string }
	pairs := []pair{{v.Text, v.Compact}}
	if v.Joined != v.Text {
		pairs = append(pairs, pair{v.Joined, v.Compact})
	}
	for _, d := range v.Decoded {
		pairs = append(pairs, pair{d, nonLetters.ReplaceAllString(d, "")})
	}
	out := make([]*ast.Term, len(pairs))
	for i, p := range pairs {
		var hits []*ast.Term
		if hasASCIILetter(p.text) {
			for j := range m.en {
				if m.en[j].match(p.text) {
					hits = append(hits, m.en[j].term)
				}
			}
		}
		if hasHan(p.compact) {
			for j := range m.zh {
				if m.zh[j].match(p.compact) {
					hits = append(hits, m.zh[j].term)
				}
			}
		}
		benign := len(hits) > 0 && (m.benignEn.match(p.text) || m.benignZh.match(p.compact))
		out[i] = ast.ObjectTerm(
			ast.Item(ast.InternedTerm("hits"), ast.ArrayTerm(hits...)),
			ast.Item(ast.InternedTerm("benign"), ast.InternedTerm(benign)),
		)
	}
	return ast.ArrayTerm(out...)
}

var (
	nonLetters = regexp.MustCompile(`[^\p{L}\p{N}]+`)
	hanRe      = regexp.MustCompile(`\p{Han}`)
)

func hasASCIILetter(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return r >= 'a' && r <= 'z' })
}

func hasHan(s string) bool { return hanRe.MatchString(s) }
