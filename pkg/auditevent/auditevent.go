// Package auditevent publishes what the audit log must hold but no
// pipeline event says: refused requests (tributary.audit.auth_failed) and
// admin actions (tributary.audit.admin_action), on the audit.events
// topic, from whichever service saw them.
package auditevent

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/tributary-rag/tributary/pkg/events"
	"github.com/tributary-rag/tributary/pkg/kafkatransport"
	"github.com/tributary-rag/tributary/pkg/keylimit"
)

// Recorder publishes audit events. A nil *Recorder records nothing, so a
// service wired without one (tests) needs no checks. Safe for concurrent
// use.
type Recorder struct {
	pub    *kafkatransport.Publisher
	topic  string
	logger *slog.Logger
	// failures bounds the auth failures recorded per remote host: an
	// attacker guessing keys must not turn each guess into a write.
	failures *keylimit.Rate
	// sending bounds the auth-failure events being published: a refused
	// request does not wait for Kafka, and a broker outage cannot pile up
	// goroutines behind refused requests.
	sending chan struct{}
	source  string
}

// New returns a Recorder publishing with pub to topic (audit.events).
// source names the service in the events' actor details.
func New(pub *kafkatransport.Publisher, topic, source string, logger *slog.Logger) *Recorder {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Recorder{pub: pub, topic: topic, source: source, logger: logger, failures: keylimit.NewRate(5, 20), sending: make(chan struct{}, 64)}
}

// Record publishes ev, stamping its time when unset. A failure is logged
// and returned; callers on a request path usually go on regardless.
func (r *Recorder) Record(ctx context.Context, ev events.AuditEvent) error {
	if r == nil {
		return nil
	}
	if ev.At.IsZero() {
		ev.At = time.Now().UTC()
	}
	if ev.TenantID == "" {
		ev.TenantID = events.SystemTenant
	}
	ctx = events.WithTenant(ctx, ev.TenantID)
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	err := r.pub.Publish(pctx, r.topic, ev)
	if err != nil {
		r.logger.Error("publish audit event", "kind", ev.Kind, "action", ev.Action, "error", err.Error())
	}
	return err
}

// AuthFailed records a request refused for its key: action names what
// was attempted (e.g. "chat.connect", "document.upload"). At most a few
// a second per remote host are recorded, and at most 64 at a time are
// being published (in the background: the refusal is not delayed); the
// rest are dropped.
func (r *Recorder) AuthFailed(req *http.Request, action string) {
	if r == nil {
		return
	}
	host, _, err := net.SplitHostPort(req.RemoteAddr)
	if err != nil {
		host = req.RemoteAddr
	}
	if ok, _ := r.failures.Allow(host); !ok {
		return
	}
	select {
	case r.sending <- struct{}{}:
	default:
		return
	}
	ctx := req.Context() // Record detaches it from the request's end
	ev := events.AuditEvent{
		Kind: events.AuditKindAuthFailed, Actor: "unknown api key", Action: action, Outcome: "failure", At: time.Now().UTC(),
		Reason: "missing or unknown API key", Details: map[string]string{"service": r.source, "remote": host, "path": req.URL.Path},
	}
	go func() {
		defer func() { <-r.sending }()
		_ = r.Record(ctx, ev)
	}()
}
