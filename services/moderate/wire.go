package moderate

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/tributary-rag/tributary/pkg/daemon"
)

// Settings are the moderate service's own settings, next to the shared
// daemon.Config. Its main and tributary dev both register them (Register),
// check them (Check) and wire the service with them (Wire).
type Settings struct {
	// PolicyDir holds a Rego bundle replacing the embedded default.
	PolicyDir string
	Limits    Limits
	Service   Config
}

// DefaultSettings returns the defaults of every setting.
func DefaultSettings() Settings {
	return Settings{
		Limits:  Limits{MaxQuestionRunes: 2000, MaxRedactions: 20},
		Service: Config{MaxSentenceRunes: DefaultMaxSentenceRunes, StateTTL: 10 * time.Minute},
	}
}

// Register registers a flag for every setting on fs, with s's values as
// the defaults.
func (s *Settings) Register(fs *flag.FlagSet) {
	fs.StringVar(&s.PolicyDir, "policy-dir", s.PolicyDir, "directory of a Rego policy bundle replacing the embedded default")
	fs.IntVar(&s.Limits.MaxQuestionRunes, "max-question-runes", s.Limits.MaxQuestionRunes, "longest question, in characters")
	fs.IntVar(&s.Limits.MaxRedactions, "max-redactions", s.Limits.MaxRedactions, "redactions one answer may need before it is withheld")
	fs.IntVar(&s.Service.MaxSentenceRunes, "max-sentence-runes", s.Service.MaxSentenceRunes, "longest text moderated as one unit when no sentence boundary comes")
	fs.DurationVar(&s.Service.StateTTL, "answer-ttl", s.Service.StateTTL, "drop the buffer of an answer idle this long")
}

// Check records in p each setting out of range.
func (s Settings) Check(p *daemon.Problems) {
	if s.Limits.MaxQuestionRunes <= 0 {
		p.Addf("max-question-runes", "must be positive")
	}
	if s.Limits.MaxRedactions <= 0 {
		p.Addf("max-redactions", "must be positive")
	}
	if s.Service.MaxSentenceRunes < 16 {
		p.Addf("max-sentence-runes", "must be at least 16")
	}
	if s.Service.StateTTL < time.Second {
		p.Addf("answer-ttl", "must be at least 1s")
	}
}

// Wire prepares the policy and adds the service, its onion and its query
// and answer subscribers to w.
func (s Settings) Wire(ctx context.Context, w *daemon.Wiring, d daemon.Deps) error {
	bundle, err := DefaultBundle()
	if s.PolicyDir != "" {
		bundle, err = LoadBundleDir(s.PolicyDir)
	}
	if err != nil {
		return err
	}
	policy, err := NewPolicy(ctx, bundle, s.Limits)
	if err != nil {
		return err
	}
	metrics, err := NewMetrics(d.Registry)
	if err != nil {
		return fmt.Errorf("moderate metrics: %w", err)
	}
	pub := d.Publisher(w, EventSource)
	var svc Service
	svc = NewService(policy, s.Service)
	svc = LoggingMiddleware(d.Logger)(svc)
	svc = InstrumentingMiddleware(metrics)(svc)
	endpoints := MakeEndpoints(svc)

	w.Group.Add("queries-received", NewQuerySubscriber(d.Brokers, KafkaGroup, d.Topics, pub, endpoints, d.SubscriberOptions()...).Run)
	w.Group.Add("answers-generated", NewAnswerSubscriber(d.Brokers, KafkaGroup, d.Topics, pub, endpoints, d.SubscriberOptions()...).Run)
	w.Group.Add("queries-retrieved", NewContextSubscriber(d.Brokers, KafkaGroup, d.Topics, pub, endpoints, d.SubscriberOptions()...).Run)
	t := d.Topics
	w.Topics([]string{t.QueriesReceived, t.AnswersGenerated, t.QueriesRetrieved}, t.QueriesApproved, t.QueriesRejected, t.AnswersModerated, t.SearchesModerated, t.AuditEvents)
	w.Describe("policy", policy.Revision(), "max_question_runes", s.Limits.MaxQuestionRunes, "max_redactions", s.Limits.MaxRedactions)
	return nil
}
