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

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
)

// Rego queries the service evaluates. A replacement bundle must define
// both documents (see docs/moderate.md).
const (
	InputQuery  = "data.tributary.input.decision"
	OutputQuery = "data.tributary.output.decision"
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
	input    rego.PreparedEvalQuery
	output   rego.PreparedEvalQuery
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
	p := &Policy{limits: limits, revision: bundle.Revision()}
	var err error
	if p.input, err = prepare(InputQuery); err != nil {
		return nil, err
	}
	if p.output, err = prepare(OutputQuery); err != nil {
		return nil, err
	}
	if _, err := p.DecideInput(ctx, "probe"); err != nil {
		return nil, fmt.Errorf("policy bundle %s: %w", p.revision, err)
	}
	if _, err := p.DecideOutput(ctx, "probe", 0); err != nil {
		return nil, fmt.Errorf("policy bundle %s: %w", p.revision, err)
	}
	return p, nil
}

// Revision names the bundle and its content hash (see Bundle.Revision).
func (p *Policy) Revision() string { return p.revision }

// DecideInput evaluates the input policy on a question.
func (p *Policy) DecideInput(ctx context.Context, question string) (InputDecision, error) {
	normalized, compact := Normalize(question)
	in, err := ast.InterfaceToValue(map[string]any{
		"question":   strings.ToValidUTF8(question, "\uFFFD"),
		"normalized": normalized,
		"compact":    compact,
		"runes":      len([]rune(question)),
		"limits":     map[string]any{"max_question_runes": p.limits.MaxQuestionRunes},
	})
	if err != nil {
		return InputDecision{}, fmt.Errorf("input policy input: %w", err)
	}
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
	if !d.Allow && d.Code == "" {
		d.Code = "policy"
	}
	return d, nil
}

// DecideOutput evaluates the output policy on one sentence of an answer
// that already needed redactionsBefore redactions.
func (p *Policy) DecideOutput(ctx context.Context, sentence string, redactionsBefore int) (OutputDecision, error) {
	in, err := ast.InterfaceToValue(map[string]any{
		"text":              strings.ToValidUTF8(sentence, "\uFFFD"),
		"redactions_before": redactionsBefore,
		"limits":            map[string]any{"max_redactions": p.limits.MaxRedactions},
	})
	if err != nil {
		return OutputDecision{}, fmt.Errorf("output policy input: %w", err)
	}
	m, err := evalObject(ctx, p.output, in)
	if err != nil {
		return OutputDecision{}, fmt.Errorf("output policy: %w", err)
	}
	d := OutputDecision{}
	var ok bool
	if d.Block, ok = m["block"].(bool); !ok {
		return OutputDecision{}, errors.New("output policy: decision.block is not a boolean")
	}
	if d.Text, ok = m["text"].(string); !ok {
		return OutputDecision{}, errors.New("output policy: decision.text is not a string")
	}
	if d.Block {
		d.Text = ""
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
	return d, nil
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
