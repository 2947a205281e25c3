package moderate

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
)

// Rego queries the service evaluates. A replacement bundle must define
// both documents (see docs/moderate.md).
const (
	InputQuery  = "data.tributary.input.decision"
	OutputQuery = "data.tributary.output.decision"
	// ContextQuery screens one retrieved chunk; a bundle may leave it
	// undefined, and then no chunk is flagged.
	ContextQuery = "data.tributary.output.context_decision"
)

// defaultPolicy is the bundle shipped with the service: policy/*.rego,
// including the Rego unit tests, which Load leaves out of evaluation.
//
//go:embed policy/*.rego
var defaultPolicy embed.FS

// Bundle is a set of Rego modules by file name. Files ending in
// "_test.rego" are unit tests: they are run by TestPolicyBundle but never
// evaluated by the service.
type Bundle struct {
	// Name says where the bundle came from: "default" or a directory.
	Name  string
	Files map[string]string
}

// DefaultBundle returns the policy bundle embedded in the service.
func DefaultBundle() (Bundle, error) {
	b, err := bundleFromFS("default", defaultPolicy, "policy")
	if err != nil {
		return Bundle{}, fmt.Errorf("default policy bundle: %w", err)
	}
	return b, nil
}

// LoadBundleDir reads every *.rego file under dir (recursively).
func LoadBundleDir(dir string) (Bundle, error) {
	b, err := bundleFromFS(filepath.Base(filepath.Clean(dir)), os.DirFS(dir), ".")
	if err != nil {
		return Bundle{}, fmt.Errorf("policy bundle %s: %w", dir, err)
	}
	return b, nil
}

func bundleFromFS(name string, fsys fs.FS, root string) (Bundle, error) {
	b := Bundle{Name: name, Files: map[string]string{}}
	err := fs.WalkDir(fsys, root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || path.Ext(p) != ".rego" {
			return nil
		}
		src, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		b.Files[p] = string(src)
		return nil
	})
	if err != nil {
		return Bundle{}, err
	}
	if len(b.Modules()) == 0 {
		return Bundle{}, errors.New("no .rego policy files")
	}
	return b, nil
}

// Modules returns the bundle's policy modules (without unit tests) by file
// name.
func (b Bundle) Modules() map[string]string {
	m := map[string]string{}
	for name, src := range b.Files {
		if !strings.HasSuffix(name, "_test.rego") {
			m[name] = src
		}
	}
	return m
}

// Revision returns "<name>@<first 12 hex digits of the SHA-256 of the
// policy modules>": it changes whenever a policy changes, and is recorded
// with every decision.
func (b Bundle) Revision() string {
	mods := b.Modules()
	names := make([]string, 0, len(mods))
	for n := range mods {
		names = append(names, n)
	}
	sort.Strings(names)
	h := sha256.New()
	for _, n := range names {
		fmt.Fprintf(h, "%d:%s%d:%s", len(n), n, len(mods[n]), mods[n])
	}
	return b.Name + "@" + hex.EncodeToString(h.Sum(nil))[:12]
}

// Limits are the numeric settings passed to the policies as input.limits.
type Limits struct {
	// MaxQuestionRunes is the longest question in characters; 0 means
	// the policy's default (2000).
	MaxQuestionRunes int
	// MaxRedactions is how many redactions one answer may need before the
	// output policy withholds it; 0 means the policy's default (20).
	MaxRedactions int
}

// InputDecision is the input policy's verdict on a question.
type InputDecision struct {
	Allow   bool
	Code    string
	Message string
	Rules   []string
	// Score is the injection evidence the policy added up.
	Score float64
}

// OutputDecision is the output policy's verdict on one sentence.
type OutputDecision struct {
	// Text is the sentence with its personal data replaced by
	// placeholders; empty when Block.
	Text  string
	Block bool
	// Rules lists the rule ids that fired, sorted.
	Rules []string
	// Counts is the number of matches per redaction rule.
	Counts map[string]int
}

// Redactions returns the number of redactions made.
func (d OutputDecision) Redactions() int {
	n := 0
	for _, c := range d.Counts {
		n += c
	}
	return n
}

// Policy evaluates the input and output policies of one bundle with
// embedded OPA. Queries are prepared once; Policy is safe for concurrent
// use.
type Policy struct {
	norm     *Normalizer
	match    *matcher // nil: the bundle's Rego matches on its own
	input    rego.PreparedEvalQuery
	output   rego.PreparedEvalQuery
	context  rego.PreparedEvalQuery
	limits   Limits
	revision string
}

// NewPolicy compiles bundle and prepares both queries, then evaluates each
// once on a harmless probe so that a bundle lacking a decision fails here,
// not on the first question.
func NewPolicy(ctx context.Context, bundle Bundle, limits Limits) (*Policy, error) {
	prepare := func(query string) (rego.PreparedEvalQuery, error) {
		opts := []func(*rego.Rego){rego.Query(query)}
		for name, src := range bundle.Modules() {
			opts = append(opts, rego.Module(name, src))
		}
		pq, err := rego.New(opts...).PrepareForEval(ctx)
		if err != nil {
			return rego.PreparedEvalQuery{}, fmt.Errorf("prepare %s: %w", query, err)
		}
		return pq, nil
	}
	p := &Policy{norm: NewNormalizer(), limits: limits, revision: bundle.Revision()}
	var err error
	if p.match, err = loadMatcher(ctx, bundle.Modules()); err != nil {
		return nil, fmt.Errorf("policy bundle %s: %w", p.revision, err)
	}
	if p.input, err = prepare(InputQuery); err != nil {
		return nil, err
	}
	if p.output, err = prepare(OutputQuery); err != nil {
		return nil, err
	}
	if p.context, err = prepare(ContextQuery); err != nil {
		return nil, err
	}
	if _, err := p.DecideInput(ctx, "probe"); err != nil {
		return nil, fmt.Errorf("policy bundle %s: %w", p.revision, err)
	}
	if _, err := p.DecideOutput(ctx, "probe", 0); err != nil {
		return nil, fmt.Errorf("policy bundle %s: %w", p.revision, err)
	}
	if _, err := p.ScreenChunk(ctx, "probe"); err != nil {
		return nil, fmt.Errorf("policy bundle %s: %w", p.revision, err)
	}
	return p, nil
}

// Revision names the bundle and its content hash (see Bundle.Revision).
func (p *Policy) Revision() string { return p.revision }

// DecideInput evaluates the input policy on a question.
func (p *Policy) DecideInput(ctx context.Context, question string) (InputDecision, error) {
	in := ast.NewObject(
		ast.Item(ast.InternedTerm("question"), ast.StringTerm(strings.ToValidUTF8(question, "\uFFFD"))),
		ast.Item(ast.InternedTerm("views"), p.views(question)),
		ast.Item(ast.InternedTerm("runes"), ast.InternedTerm(utf8.RuneCountInString(question))),
		ast.Item(ast.InternedTerm("limits"), ast.ObjectTerm(
			ast.Item(ast.InternedTerm("max_question_runes"), ast.InternedTerm(p.limits.MaxQuestionRunes)))),
	)
	m, err := evalObject(ctx, p.input, in)
	if err != nil {
		return InputDecision{}, fmt.Errorf("input policy: %w", err)
	}
	d := InputDecision{}
	var ok bool
	if d.Allow, ok = m["allow"].(bool); !ok {
		return InputDecision{}, errors.New("input policy: decision.allow is not a boolean")
	}
	d.Code, _ = m["code"].(string)
	d.Message, _ = m["message"].(string)
	d.Rules = stringList(m["rules"])
	if n, ok := m["score"].(json.Number); ok {
		d.Score, _ = n.Float64()
	}
	if !d.Allow && d.Code == "" {
		d.Code = "policy"
	}
	return d, nil
}

// Channels of text a client sees, passed to the output policy as
// input.channel.
const (
	ChannelAnswer  = "answer"
	ChannelTitle   = "citation_title"
	ChannelSnippet = "citation_snippet"
	// ChannelSearchTitle is a search result's title or one of its
	// headings; ChannelSearchSnippet its text.
	ChannelSearchTitle   = "search_title"
	ChannelSearchSnippet = "search_snippet"
	removedSentence      = "[REMOVED:instructions]"
)

// Unit is one piece of text a client will see, with what the output
// policy knows about where it comes from.
type Unit struct {
	// Channel is ChannelAnswer, ChannelTitle or ChannelSnippet.
	Channel string
	Text    string
	// RedactionsBefore counts the redactions made earlier in the answer.
	RedactionsBefore int
	// Context summarizes the screening of the answer's retrieved chunks;
	// nil when it is not known (not screened, or not yet).
	Context *ContextSummary
	// SourceFlagged says the citation's chunk was flagged by screening.
	SourceFlagged bool
}

// ContextSummary is what the output policy sees of an answer's retrieved
// context (input.context).
type ContextSummary struct {
	Chunks   int     `json:"chunks"`
	Flagged  int     `json:"flagged"`
	MaxScore float64 `json:"max_score"`
}

// DecideOutput evaluates the output policy on one sentence of an answer
// that already needed redactionsBefore redactions.
func (p *Policy) DecideOutput(ctx context.Context, sentence string, redactionsBefore int) (OutputDecision, error) {
	return p.DecideText(ctx, Unit{Channel: ChannelAnswer, Text: sentence, RedactionsBefore: redactionsBefore})
}

// Screening is the verdict on one retrieved chunk.
type Screening struct {
	Flagged bool
	Score   float64
	Signals []string
}

// ScreenChunk assesses a retrieved chunk for injected instructions
// (indirect prompt injection).
func (p *Policy) ScreenChunk(ctx context.Context, text string) (Screening, error) {
	in := ast.NewObject(
		ast.Item(ast.InternedTerm("text"), ast.StringTerm(strings.ToValidUTF8(text, "\uFFFD"))),
		ast.Item(ast.InternedTerm("views"), p.views(text)),
	)
	rs, err := p.context.Eval(ctx, rego.EvalParsedInput(in))
	if err != nil {
		return Screening{}, fmt.Errorf("context policy: %w", err)
	}
	if len(rs) == 0 || len(rs[0].Expressions) == 0 {
		return Screening{}, nil // the bundle does not screen context
	}
	m, ok := rs[0].Expressions[0].Value.(map[string]any)
	if !ok {
		return Screening{}, fmt.Errorf("context policy: decision is %T, not an object", rs[0].Expressions[0].Value)
	}
	sc := Screening{Signals: stringList(m["signals"])}
	sc.Flagged, _ = m["flagged"].(bool)
	if n, ok := m["score"].(json.Number); ok {
		sc.Score, _ = n.Float64()
	}
	return sc, nil
}

// DecideText evaluates the output policy on a unit of text: the
// recognizers' entities and the injection views go in, the redactions the
// policy chose are applied here.
func (p *Policy) DecideText(ctx context.Context, u Unit) (OutputDecision, error) {
	text := strings.ToValidUTF8(u.Text, "\uFFFD")
	ents := Recognize(text)
	m, err := evalObject(ctx, p.output, p.outputInput(u, text, ents))
	if err != nil {
		return OutputDecision{}, fmt.Errorf("output policy: %w", err)
	}
	d := OutputDecision{}
	var ok bool
	if d.Block, ok = m["block"].(bool); !ok {
		return OutputDecision{}, errors.New("output policy: decision.block is not a boolean")
	}
	d.Rules = stringList(m["rules"])
	if counts, ok := m["counts"].(map[string]any); ok && len(counts) > 0 {
		d.Counts = make(map[string]int, len(counts))
		for k, v := range counts {
			if n, ok := v.(json.Number); ok {
				if i, err := n.Int64(); err == nil {
					d.Counts[k] = int(i)
				}
			}
		}
	}
	switch drop, _ := m["drop"].(bool); {
	case d.Block:
	case drop:
		d.Text = removedSentence + trailingSpace(text)
	default:
		var spans []span
		chosen := map[int]bool{}
		for _, id := range numberList(m["redact"]) {
			chosen[id] = true
		}
		for _, e := range ents {
			if chosen[e.ID] {
				spans = append(spans, span{e.Start, e.End, e.Kind})
			}
		}
		if ms, ok := m["matches"].(map[string]any); ok {
			for kind, list := range ms {
				for _, lit := range stringList(list) {
					for off := 0; lit != ""; {
						i := strings.Index(text[off:], lit)
						if i < 0 {
							break
						}
						spans = append(spans, span{off + i, off + i + len(lit), kind})
						off += i + len(lit)
					}
				}
			}
		}
		d.Text = applySpans(text, spans)
	}
	return d, nil
}

// outputInput is the output policy's input for unit u with text (valid
// UTF-8) and the entities found in it, built as an AST value: no JSON or
// reflection round trip per decision.
func (p *Policy) outputInput(u Unit, text string, ents []Entity) ast.Value {
	list := make([]*ast.Term, len(ents))
	for i, e := range ents {
		list[i] = ast.ObjectTerm(
			ast.Item(ast.InternedTerm("id"), ast.InternedTerm(e.ID)),
			ast.Item(ast.InternedTerm("kind"), ast.StringTerm(e.Kind)),
			ast.Item(ast.InternedTerm("score"), ast.FloatNumberTerm(e.Score)),
			ast.Item(ast.InternedTerm("positive"), ast.InternedTerm(e.Positive)),
			ast.Item(ast.InternedTerm("negative"), ast.InternedTerm(e.Negative)),
			ast.Item(ast.InternedTerm("negative_by"), ast.StringTerm(e.NegativeBy)),
		)
	}
	in := ast.NewObject(
		ast.Item(ast.InternedTerm("text"), ast.StringTerm(text)),
		ast.Item(ast.InternedTerm("channel"), ast.StringTerm(u.Channel)),
		ast.Item(ast.InternedTerm("entities"), ast.ArrayTerm(list...)),
		ast.Item(ast.InternedTerm("views"), p.views(text)),
		ast.Item(ast.InternedTerm("redactions_before"), ast.InternedTerm(u.RedactionsBefore)),
		ast.Item(ast.InternedTerm("source_flagged"), ast.InternedTerm(u.SourceFlagged)),
		ast.Item(ast.InternedTerm("limits"), ast.ObjectTerm(
			ast.Item(ast.InternedTerm("max_redactions"), ast.InternedTerm(p.limits.MaxRedactions)))),
	)
	if c := u.Context; c != nil {
		in.Insert(ast.InternedTerm("context"), ast.ObjectTerm(
			ast.Item(ast.InternedTerm("chunks"), ast.InternedTerm(c.Chunks)),
			ast.Item(ast.InternedTerm("flagged"), ast.InternedTerm(c.Flagged)),
			ast.Item(ast.InternedTerm("max_score"), ast.FloatNumberTerm(c.MaxScore)),
		))
	}
	return in
}

// views folds text for the injection rules.
func (p *Policy) views(text string) *ast.Term {
	return viewsTerm(p.norm.Views(text), p.match)
}

// viewsTerm is input.views of v, with the signals m finds (none when m is
// nil: the bundle's Rego then matches on its own).
func viewsTerm(v Views, m *matcher) *ast.Term {
	obj := ast.NewObject(
		ast.Item(ast.InternedTerm("text"), ast.StringTerm(v.Text)),
		ast.Item(ast.InternedTerm("joined"), ast.StringTerm(v.Joined)),
		ast.Item(ast.InternedTerm("compact"), ast.StringTerm(v.Compact)),
		ast.Item(ast.InternedTerm("decoded"), stringsTerm(v.Decoded)),
		ast.Item(ast.InternedTerm("evasion"), stringsTerm(v.Evasion)),
	)
	if m != nil {
		obj.Insert(ast.InternedTerm("matches"), m.matches(v))
	}
	return ast.NewTerm(obj)
}

func stringsTerm(list []string) *ast.Term {
	terms := make([]*ast.Term, len(list))
	for i, s := range list {
		terms[i] = ast.StringTerm(s)
	}
	return ast.ArrayTerm(terms...)
}

type span struct {
	start, end int
	kind       string
}

// applySpans replaces each span of text by its placeholder; overlapping
// spans merge and keep the first kind.
func applySpans(text string, spans []span) string {
	if len(spans) == 0 {
		return text
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].start < spans[j].start })
	var b strings.Builder
	last := 0
	for i := 0; i < len(spans); i++ {
		sp := spans[i]
		if sp.start < last {
			continue
		}
		end := sp.end
		for i+1 < len(spans) && spans[i+1].start < end {
			i++
			end = max(end, spans[i].end)
		}
		b.WriteString(text[last:sp.start])
		b.WriteString("[REDACTED:" + sp.kind + "]")
		last = end
	}
	b.WriteString(text[last:])
	return b.String()
}

// trailingSpace keeps a removed sentence's separator, so the next one does
// not glue to the placeholder.
func trailingSpace(s string) string {
	t := strings.TrimRightFunc(s, unicode.IsSpace)
	return s[len(t):]
}

func numberList(v any) []int {
	list, _ := v.([]any)
	out := make([]int, 0, len(list))
	for _, e := range list {
		if n, ok := e.(json.Number); ok {
			if i, err := n.Int64(); err == nil {
				out = append(out, int(i))
			}
		}
	}
	return out
}

func evalObject(ctx context.Context, pq rego.PreparedEvalQuery, in ast.Value) (map[string]any, error) {
	rs, err := pq.Eval(ctx, rego.EvalParsedInput(in))
	if err != nil {
		return nil, err
	}
	if len(rs) == 0 || len(rs[0].Expressions) == 0 {
		return nil, errors.New("no decision (is the decision rule defined?)")
	}
	m, ok := rs[0].Expressions[0].Value.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("decision is %T, not an object", rs[0].Expressions[0].Value)
	}
	return m, nil
}

func stringList(v any) []string {
	list, _ := v.([]any)
	out := make([]string, 0, len(list))
	for _, e := range list {
		if s, ok := e.(string); ok {
			out = append(out, s)
		}
	}
	return out
}
