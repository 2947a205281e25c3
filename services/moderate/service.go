// Package moderate is Tributary's moderation service. Embedded OPA
// evaluates two policies from one Rego bundle: the input policy decides
// whether a question enters the pipeline (queries.received →
// queries.approved or queries.rejected); the output policy redacts personal
// data from streamed answers sentence by sentence (answers.generated →
// answers.moderated) and may withhold an answer. Every decision is also an
// audit event.
package moderate

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/tributary-rag/tributary/pkg/events"
)

// Business errors.
var (
	// ErrInvalid marks an event that can never be moderated (missing
	// request id, wrong tenant): it is dead-lettered without retry.
	ErrInvalid = errors.New("invalid event")
)

// Reasons and actions in audit events and rejections.
const (
	// FinishModerated is the finish_reason of an answer the output policy
	// withheld.
	FinishModerated = "moderated"
	// AuditActor names the service in audit events.
	AuditActor = "moderate"
	// ActionQuery and ActionAnswer are the audit actions of the input and
	// output policies.
	ActionQuery  = "query.moderate"
	ActionAnswer = "answer.moderate"
	// ActionContext is the audit action of screening retrieved chunks.
	ActionContext = "context.screen"
	// ActionSearch is the audit action of moderating search results.
	ActionSearch = "search.moderate"
)

// Sink says where an Emission goes.
type Sink int

// Sinks.
const (
	SinkApproved  Sink = iota // queries.approved
	SinkRejected              // queries.rejected
	SinkModerated             // answers.moderated
	SinkAudit                 // audit.events
	SinkSearch                // searches.moderated
)

// Emission is one event the service wants published, with its
// deterministic ce_id.
type Emission struct {
	Sink    Sink
	ID      string
	Payload events.Payload
}

// AnswerEvent is one event of answers.generated: a delta or a completed
// event.
type AnswerEvent struct {
	RequestID string
	TenantID  string
	// Delta is set for tributary.answer.delta.
	Delta *events.AnswerDelta
	// Completed is set for tributary.answer.completed.
	Completed *Completed
}

// Service moderates questions and answers. Its methods return the events
// to publish; they publish nothing themselves.
type Service interface {
	// ModerateQuery applies the input policy to a received question.
	ModerateQuery(ctx context.Context, q events.Query) ([]Emission, error)
	// ModerateAnswer feeds one generated answer event through the output
	// policy. Events of one request must come in order, one at a time.
	ModerateAnswer(ctx context.Context, ev AnswerEvent) ([]Emission, error)
	// ScreenContext screens the chunks retrieved for a question for
	// injected instructions and keeps the verdict for the answer. For a
	// search it also returns the results with their titles, snippets and
	// heading paths through the output policy, for the edge.
	ScreenContext(ctx context.Context, q events.QueryRetrieved) ([]Emission, error)
}

// Decider is the policy engine; *Policy implements it.
type Decider interface {
	DecideInput(ctx context.Context, question string) (InputDecision, error)
	DecideOutput(ctx context.Context, sentence string, redactionsBefore int) (OutputDecision, error)
	// DecideText moderates a unit of text on any channel (a citation's
	// title or snippet).
	DecideText(ctx context.Context, u Unit) (OutputDecision, error)
	// ScreenChunk assesses a retrieved chunk for injected instructions.
	ScreenChunk(ctx context.Context, text string) (Screening, error)
	Revision() string
}

// Config tunes the output stream.
type Config struct {
	// MaxSentenceRunes cuts a run of text without a sentence boundary into
	// units of at most this many characters (default
	// DefaultMaxSentenceRunes).
	MaxSentenceRunes int
	// StateTTL drops the buffer of a request with no event for this long
	// (default 10 minutes).
	StateTTL time.Duration
	// SnippetRunes is the longest citation snippet shown, in characters
	// (default DefaultSnippetRunes). Generate sends the whole source text;
	// it is cut here, after redaction, where no entity can straddle the
	// cut.
	SnippetRunes int
}

// DefaultSnippetRunes is the default Config.SnippetRunes.
const DefaultSnippetRunes = 200

// QueryID, DeltaID, CompletedID and AuditID are the deterministic ce_ids of
// what the service publishes, so that a redelivered input produces events
// that consumers recognise as duplicates.
func QueryID(tenant, requestID, typ string) string {
	return events.DeterministicID(tenant, requestID, "moderate", typ)
}

// DeltaID returns the ce_id of moderated delta seq of a request.
func DeltaID(tenant, requestID string, seq int) string {
	return events.DeterministicID(tenant, requestID, "moderate", events.TypeAnswerDelta, strconv.Itoa(seq))
}

// CompletedID returns the ce_id of a request's moderated completed event.
func CompletedID(tenant, requestID string) string {
	return events.DeterministicID(tenant, requestID, "moderate", events.TypeAnswerCompleted)
}

// AuditID returns the ce_id of an audit event of a request; step names
// the decision ("input", "output/3", "output/block", "output/completed").
func AuditID(tenant, requestID, step string) string {
	return events.DeterministicID(tenant, requestID, "moderate", events.AuditTypePrefix+events.AuditKindPolicyDecision, step)
}

type service struct {
	policy Decider
	cfg    Config
	now    func() time.Time

	mu        sync.Mutex
	states    map[string]*answerState     // by tenant + request id
	contexts  map[string]*screenedContext // by tenant + request id
	lastSweep time.Time
}

// screenedContext is the screening verdict on a request's retrieved chunks,
// kept for StateTTL after the retrieval (not dropped at completion, so a
// redelivered completed event is moderated the same way).
type screenedContext struct {
	summary ContextSummary
	flagged map[string]bool // chunk ids
	touched time.Time
}

// NewService returns the moderation service over policy.
func NewService(policy Decider, cfg Config) Service {
	if cfg.MaxSentenceRunes <= 0 {
		cfg.MaxSentenceRunes = DefaultMaxSentenceRunes
	}
	if cfg.StateTTL <= 0 {
		cfg.StateTTL = 10 * time.Minute
	}
	if cfg.SnippetRunes <= 0 {
		cfg.SnippetRunes = DefaultSnippetRunes
	}
	return &service{policy: policy, cfg: cfg, now: time.Now, states: map[string]*answerState{}, contexts: map[string]*screenedContext{}}
}

func (s *service) ModerateQuery(ctx context.Context, q events.Query) ([]Emission, error) {
	if q.RequestID == "" || q.TenantID == "" {
		return nil, fmt.Errorf("%w: query without request_id or tenant", ErrInvalid)
	}
	d, err := s.policy.DecideInput(ctx, q.Question)
	if err != nil {
		return nil, err
	}
	rev := s.policy.Revision()
	audit := &events.AuditEvent{
		Kind:      events.AuditKindPolicyDecision,
		TenantID:  q.TenantID,
		Actor:     AuditActor,
		Action:    ActionQuery,
		Outcome:   "allow",
		Resource:  "query",
		RequestID: q.RequestID,
		At:        s.now().UTC(),
		Details:   map[string]string{"stage": "input", "policy": rev},
	}
	if q.Principal != "" {
		audit.Details["principal"] = q.Principal
	}
	out := make([]Emission, 0, 2)
	if d.Allow {
		out = append(out, Emission{SinkApproved, QueryID(q.TenantID, q.RequestID, events.TypeQueryApproved),
			&events.QueryApproved{Query: q, Policy: rev}})
	} else {
		audit.Outcome, audit.Reason = "deny", d.Code
		audit.Details["rules"] = strings.Join(d.Rules, ",")
		out = append(out, Emission{SinkRejected, QueryID(q.TenantID, q.RequestID, events.TypeQueryRejected),
			&events.QueryRejected{RequestID: q.RequestID, TenantID: q.TenantID, Code: d.Code,
				Message: d.Message, Policy: rev, Rules: d.Rules}})
	}
	out = append(out, Emission{SinkAudit, AuditID(q.TenantID, q.RequestID, "input"), audit})
	return out, nil
}

// answerState is the moderation state of one request's answer. It is
// replaced, never changed in place, so a failed step leaves it as it was.
type answerState struct {
	tenant, requestID string
	// nextIn is the next generated seq expected; gap says one was missed
	// (a restart or an expired buffer): the answer is then moderated from
	// the completed event's full text.
	nextIn int
	gap    bool
	// buf holds generated text not yet moderated.
	buf string
	// nextOut is the seq of the next moderated delta; text is the
	// moderated text emitted so far.
	nextOut int
	text    string
	// counts sums the rules fired over the answer; redactions their
	// matches.
	counts     map[string]int
	redactions int
	blocked    bool
	blockRules []string
	// lastSeq and lastOut repeat the emissions of the last delta when it
	// is handled again after its publishing failed.
	lastSeq int
	lastOut []Emission
	touched time.Time
}

func stateKey(tenant, requestID string) string { return tenant + "\x00" + requestID }

func (st *answerState) clone() *answerState {
	c := *st
	c.counts = maps.Clone(st.counts)
	return &c
}

func (s *service) ModerateAnswer(ctx context.Context, ev AnswerEvent) ([]Emission, error) {
	if ev.RequestID == "" || ev.TenantID == "" {
		return nil, fmt.Errorf("%w: answer event without request_id or tenant", ErrInvalid)
	}
	key := stateKey(ev.TenantID, ev.RequestID)
	now := s.now()
	s.mu.Lock()
	s.sweepLocked(now)
	st := s.states[key]
	s.mu.Unlock()

	switch {
	case ev.Delta != nil:
		next, out, err := s.delta(ctx, st, ev, now)
		if err != nil {
			return nil, err
		}
		s.mu.Lock()
		s.states[key] = next
		s.mu.Unlock()
		return out, nil
	case ev.Completed != nil:
		out, err := s.complete(ctx, st, ev)
		if err != nil {
			return nil, err
		}
		s.mu.Lock()
		delete(s.states, key)
		s.mu.Unlock()
		return out, nil
	}
	return nil, fmt.Errorf("%w: answer event is neither delta nor completed", ErrInvalid)
}

// OpenAnswers returns the number of answers with a buffer in memory.
func (s *service) OpenAnswers() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.states)
}

func (s *service) sweepLocked(now time.Time) {
	if now.Sub(s.lastSweep) < s.cfg.StateTTL/4 {
		return
	}
	s.lastSweep = now
	for k, st := range s.states {
		if now.Sub(st.touched) > s.cfg.StateTTL {
			delete(s.states, k)
		}
	}
	for k, c := range s.contexts {
		if now.Sub(c.touched) > s.cfg.StateTTL {
			delete(s.contexts, k)
		}
	}
}

func (s *service) ScreenContext(ctx context.Context, q events.QueryRetrieved) ([]Emission, error) {
	if q.RequestID == "" || q.TenantID == "" {
		return nil, fmt.Errorf("%w: retrieval without request_id or tenant", ErrInvalid)
	}
	c := &screenedContext{summary: ContextSummary{Chunks: len(q.Results)}, flagged: map[string]bool{}, touched: s.now()}
	var signals []string
	for _, r := range q.Results {
		sc, err := s.policy.ScreenChunk(ctx, r.Title+"\n"+r.Text)
		if err != nil {
			return nil, err
		}
		c.summary.MaxScore = max(c.summary.MaxScore, sc.Score)
		if sc.Flagged {
			c.summary.Flagged++
			c.flagged[r.ChunkID] = true
			signals = append(signals, sc.Signals...)
		}
	}
	var out []Emission
	if q.Mode == events.ModeSearch {
		// Nothing answers a search: its results are what the client sees.
		em, err := s.moderateSearch(ctx, q, c)
		if err != nil {
			return nil, err
		}
		out = em
	} else {
		key := stateKey(q.TenantID, q.RequestID)
		s.mu.Lock()
		s.sweepLocked(c.touched)
		s.contexts[key] = c
		s.mu.Unlock()
	}
	if c.summary.Flagged == 0 {
		return out, nil
	}
	sort.Strings(signals)
	a := s.audit(&answerState{tenant: q.TenantID, requestID: q.RequestID}, "allow", "context_flagged",
		dedupe(signals), map[string]int{"injection.context": c.summary.Flagged})
	a.Action, a.Details["stage"] = ActionContext, "context"
	a.Details["chunks"] = strconv.Itoa(c.summary.Chunks)
	return append(out, Emission{SinkAudit, AuditID(q.TenantID, q.RequestID, "context"), a}), nil
}

// moderateSearch passes every text of a search's results a client will
// see — title, snippet (the chunk's text, whole) and heading path —
// through the output policy, like citations: personal data is redacted and
// the texts of a flagged chunk are removed. Titles and headings repeat
// across the chunks of a document, so each distinct one is decided once.
func (s *service) moderateSearch(ctx context.Context, q events.QueryRetrieved, c *screenedContext) ([]Emission, error) {
	units := newUnitDecider(ctx, s.policy, &c.summary)
	res := events.QueryRetrieved{Query: q.Query, Results: make([]events.RetrievedChunk, len(q.Results))}
	for i, r := range q.Results {
		flagged := c.flagged[r.ChunkID]
		var err error
		if r.Title, err = units.decide(ChannelSearchTitle, r.Title, flagged); err != nil {
			return nil, err
		}
		if r.Text, err = units.decide(ChannelSearchSnippet, r.Text, flagged); err != nil {
			return nil, err
		}
		if r.HeadingPath != nil {
			path := make([]string, len(r.HeadingPath))
			for j, h := range r.HeadingPath {
				if path[j], err = units.decide(ChannelSearchTitle, h, flagged); err != nil {
					return nil, err
				}
			}
			r.HeadingPath = path
		}
		// Metadata is not moderated, so it is not passed on.
		r.Metadata = nil
		res.Results[i] = r
	}
	out := []Emission{{SinkSearch, QueryID(q.TenantID, q.RequestID, events.TypeQueryRetrieved), res}}
	if len(units.counts) > 0 {
		a := s.audit(&answerState{tenant: q.TenantID, requestID: q.RequestID}, "allow", "redacted", sortedKeys(units.counts), units.counts)
		a.Action, a.Resource, a.Details["stage"] = ActionSearch, "search", "search"
		a.Details["redactions"] = strconv.Itoa(units.redactions)
		out = append(out, Emission{SinkAudit, AuditID(q.TenantID, q.RequestID, "search"), a})
	}
	return out, nil
}

// context returns the screening of a request's retrieved chunks, or nil.
func (s *service) context(tenant, requestID string) *screenedContext {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.contexts[stateKey(tenant, requestID)]
}

func (s *service) delta(ctx context.Context, cur *answerState, ev AnswerEvent, now time.Time) (*answerState, []Emission, error) {
	d := ev.Delta
	var st *answerState
	switch {
	case cur == nil:
		st = &answerState{tenant: ev.TenantID, requestID: ev.RequestID, lastSeq: -1}
		if d.Seq != 0 {
			st.gap = true
		}
	default:
		st = cur.clone()
	}
	st.touched = now
	switch {
	case st.gap:
		st.buf = ""
		return st, nil, nil
	case st.blocked:
		// The rest of a withheld answer is dropped, but counted, so the
		// completed event finds the stream whole.
		if d.Seq == st.nextIn {
			st.nextIn++
		}
		return st, nil, nil
	case d.Seq == st.lastSeq:
		return st, st.lastOut, nil // the same delta again: publish the same events
	case d.Seq < st.nextIn:
		return st, nil, nil // an older duplicate: already moderated
	case d.Seq > st.nextIn:
		st.gap, st.buf = true, ""
		return st, nil, nil
	}
	st.nextIn++
	st.buf += d.Text
	out, err := s.drain(ctx, st, false)
	if err != nil {
		return nil, nil, err
	}
	st.lastSeq, st.lastOut = d.Seq, out
	return st, out, nil
}

// drain moderates every complete sentence in st.buf (everything when
// final).
func (s *service) drain(ctx context.Context, st *answerState, final bool) ([]Emission, error) {
	var out []Emission
	for !st.blocked && st.buf != "" {
		n, ok := NextCut(st.buf, s.cfg.MaxSentenceRunes, final)
		if !ok {
			break
		}
		sentence := st.buf[:n]
		st.buf = st.buf[n:]
		em, err := s.sentence(ctx, st, sentence)
		if err != nil {
			return nil, err
		}
		out = append(out, em...)
	}
	if st.blocked {
		st.buf = ""
	}
	return out, nil
}

func (s *service) sentence(ctx context.Context, st *answerState, sentence string) ([]Emission, error) {
	d, err := s.policy.DecideOutput(ctx, sentence, st.redactions)
	if err != nil {
		return nil, err
	}
	if d.Block {
		st.blocked, st.blockRules = true, d.Rules
		a := s.audit(st, "deny", "blocked", d.Rules, d.Counts)
		a.Details["seq"] = strconv.Itoa(st.nextOut)
		return []Emission{{SinkAudit, AuditID(st.tenant, st.requestID, "output/block"), a}}, nil
	}
	if len(d.Counts) > 0 && st.counts == nil {
		st.counts = map[string]int{}
	}
	for k, v := range d.Counts {
		st.counts[k] += v
	}
	st.redactions += d.Redactions()
	seq := st.nextOut
	st.nextOut++
	st.text += d.Text
	out := []Emission{{SinkModerated, DeltaID(st.tenant, st.requestID, seq),
		&events.AnswerDelta{RequestID: st.requestID, TenantID: st.tenant, Seq: seq, Text: d.Text}}}
	if len(d.Rules) > 0 {
		a := s.audit(st, "allow", "redacted", d.Rules, d.Counts)
		a.Details["seq"] = strconv.Itoa(seq)
		out = append(out, Emission{SinkAudit, AuditID(st.tenant, st.requestID, "output/"+strconv.Itoa(seq)), a})
	}
	return out, nil
}

func (s *service) complete(ctx context.Context, cur *answerState, ev AnswerEvent) ([]Emission, error) {
	c := ev.Completed
	var st *answerState
	var out []Emission
	if cur == nil || cur.gap || (c.Deltas > 0 && cur.nextIn < c.Deltas) {
		// Part of the stream was not seen by this process: moderate the
		// whole answer again from its full text. The segmentation and the
		// policy are deterministic, so the deltas already published are
		// published again identically, under the same ids.
		st = &answerState{tenant: ev.TenantID, requestID: ev.RequestID, buf: c.Text}
	} else {
		st = cur.clone()
	}
	em, err := s.drain(ctx, st, true)
	if err != nil {
		return nil, err
	}
	out = append(out, em...)

	// Citation titles and snippets quote the sources, which may hold
	// personal data or injected instructions: both pass the output policy.
	screened := s.context(ev.TenantID, ev.RequestID)
	var summary *ContextSummary
	if screened != nil {
		summary = &screened.summary
	}
	cites := append([]events.Citation(nil), c.Citations...)
	units := newUnitDecider(ctx, s.policy, summary)
	for i := range cites {
		flagged := screened != nil && screened.flagged[cites[i].ChunkID]
		if cites[i].Title, err = units.decide(ChannelTitle, cites[i].Title, flagged); err != nil {
			return nil, err
		}
		if cites[i].Snippet, err = units.decide(ChannelSnippet, cites[i].Snippet, flagged); err != nil {
			return nil, err
		}
		if cites[i].Snippet != "" {
			cites[i].Snippet = cutSnippet(trimCutEntity(cites[i].Snippet), s.cfg.SnippetRunes)
		}
	}

	done := &Completed{AnswerCompleted: c.AnswerCompleted, fields: maps.Clone(c.fields)}
	done.TenantID = ev.TenantID
	set := func(name string, v any) {
		if err == nil {
			err = done.Set(name, v)
		}
	}
	set("request_id", ev.RequestID)
	set("tenant_id", ev.TenantID)
	set("text", st.text)
	set("deltas", st.nextOut)
	if c.Citations != nil {
		set("citations", cites)
	}
	outcome, reason := "allow", "clean"
	rules := sortedKeys(st.counts)
	if st.redactions > 0 {
		reason = "redacted"
	}
	if st.blocked {
		set("finish_reason", FinishModerated)
		outcome, reason = "deny", "blocked"
		rules = append(rules, st.blockRules...)
		sort.Strings(rules)
		rules = dedupe(rules)
	}
	mod := map[string]any{
		"policy":     s.policy.Revision(),
		"rules":      rules,
		"redactions": st.redactions,
		"blocked":    st.blocked,
	}
	if summary != nil {
		mod["context"] = summary
	}
	set("moderation", mod)
	if err != nil {
		return nil, err
	}
	out = append(out, Emission{SinkModerated, CompletedID(ev.TenantID, ev.RequestID), done})
	a := s.audit(st, outcome, reason, rules, st.counts)
	a.Details["deltas"] = strconv.Itoa(st.nextOut)
	a.Details["redactions"] = strconv.Itoa(st.redactions)
	a.Details["finish_reason"] = done.FinishReason
	out = append(out, Emission{SinkAudit, AuditID(ev.TenantID, ev.RequestID, "output/completed"), a})
	return out, nil
}

func (s *service) audit(st *answerState, outcome, reason string, rules []string, counts map[string]int) *events.AuditEvent {
	a := &events.AuditEvent{
		Kind:      events.AuditKindPolicyDecision,
		TenantID:  st.tenant,
		Actor:     AuditActor,
		Action:    ActionAnswer,
		Outcome:   outcome,
		Resource:  "answer",
		RequestID: st.requestID,
		Reason:    reason,
		At:        s.now().UTC(),
		Details:   map[string]string{"stage": "output", "policy": s.policy.Revision()},
	}
	if len(rules) > 0 {
		a.Details["rules"] = strings.Join(rules, ",")
	}
	for k, v := range counts {
		a.Details["count."+k] = strconv.Itoa(v)
	}
	return a
}

func sortedKeys(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func dedupe(sorted []string) []string {
	out := sorted[:0]
	for i, s := range sorted {
		if i == 0 || s != sorted[i-1] {
			out = append(out, s)
		}
	}
	return out
}

// unitDecider passes the units of one event (a completed answer's
// citations, a search's results) through the output policy, each distinct
// one once: titles and headings repeat across the chunks of a document.
type unitDecider struct {
	ctx        context.Context
	policy     Decider
	context    *ContextSummary
	decided    map[unitKey]string
	counts     map[string]int
	redactions int
}

type unitKey struct {
	channel, text string
	flagged       bool
}

func newUnitDecider(ctx context.Context, policy Decider, context *ContextSummary) *unitDecider {
	return &unitDecider{ctx: ctx, policy: policy, context: context, decided: map[unitKey]string{}, counts: map[string]int{}}
}

// decide returns text as the policy lets it through on channel; flagged
// says its chunk was flagged by screening.
func (u *unitDecider) decide(channel, text string, flagged bool) (string, error) {
	if text == "" {
		return "", nil
	}
	k := unitKey{channel, text, flagged}
	if t, ok := u.decided[k]; ok {
		return t, nil
	}
	d, err := u.policy.DecideText(u.ctx, Unit{Channel: channel, Text: text, Context: u.context, SourceFlagged: flagged})
	if err != nil {
		return "", err
	}
	for r, n := range d.Counts {
		u.counts[r] += n
	}
	u.redactions += d.Redactions()
	u.decided[k] = d.Text
	return d.Text, nil
}

// cutSnippet shortens a snippet that was already redacted to at most
// maxRunes characters and "…", cutting as a
// forced sentence cut does (see forcedCut): after whitespace or between
// two CJK characters, never after a word with digits or "@", so that
// whatever the policy left unredacted is not cut into a fragment either.
func cutSnippet(s string, maxRunes int) string {
	i, half := 0, 0
	for n := 0; n < maxRunes; n++ {
		if i == len(s) {
			return s
		}
		if n == maxRunes/2 {
			half = i
		}
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
	}
	if i == len(s) || s[i:] == "…" {
		return s
	}
	next, _ := utf8.DecodeRuneInString(s[i:])
	k := forcedCut(s[:i], next, half)
	return strings.TrimRightFunc(s[:k], unicode.IsSpace) + "…"
}

// cutTail is what may remain of an entity where a producer cut a snippet
// ("…" appended): trailing groups of digits, or a word with "@" or digits.
var cutTail = regexp.MustCompile(`(?:[\p{L}\p{N}._%+\-]*@[\p{L}\p{N}._\-]*|(?:[+(]?\p{Nd}[\p{Nd}()]*[ \-.]?)*\p{Nd}|[A-Za-z\p{Nd}]*\p{Nd}[A-Za-z\p{Nd}]*)$`)

// trimCutEntity removes from a snippet that was cut short the tail that
// could be the beginning of personal data the recognizers could not see
// whole ("4111 1111 1111…" of a card): producers cut snippets before this
// service sees them.
func trimCutEntity(s string) string {
	body, ok := strings.CutSuffix(s, "…")
	if !ok {
		return s
	}
	loc := cutTail.FindStringIndex(body)
	if loc == nil || loc[0] == loc[1] {
		return s
	}
	return strings.TrimRightFunc(body[:loc[0]], unicode.IsSpace) + "…"
}
