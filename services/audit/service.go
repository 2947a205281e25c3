// Package audit is Tributary's audit service: it consumes every tributary
// topic and audit.events, appends each message as a canonical JSON record
// to an append-only log of AES-256-GCM encrypted, SHA-256 hash-chained
// segment files, syncs them before the Kafka offsets are committed, and
// streams decrypted records to compliance officers over
// GET /v1/audit/export. Verify checks a log for tampering offline.
//
// See docs/audit.md for the file format, the crypto design and the
// configuration.
package audit

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tributary-rag/tributary/pkg/apikey"
	"github.com/tributary-rag/tributary/pkg/events"
)

// Groups that grant access to the export.
const (
	// GroupCompliance lets a key export its own tenant's records.
	GroupCompliance = "compliance"
	// GroupComplianceAdmin, held together with GroupCompliance, lets a key
	// export every tenant's records (and records without a tenant).
	GroupComplianceAdmin = "compliance-admin"
)

// Business errors.
var (
	ErrUnauthenticated = apikey.ErrUnauthenticated
	ErrForbidden       = errors.New("api key may not read this audit data")
	ErrInvalidFilter   = errors.New("invalid export filter")
)

// Principal is the caller of the export, as its API key says.
type Principal struct {
	Tenant string
	Groups []string
	// Name identifies the key in logs without revealing it.
	Name string
}

// Has reports whether p belongs to group.
func (p Principal) Has(group string) bool { return slices.Contains(p.Groups, group) }

// Filter selects records to export. The zero Filter selects everything
// the caller may see.
type Filter struct {
	// Since and Until bound the record's time: Since <= time < Until; a
	// zero bound is open.
	Since, Until time.Time
	// Tenant selects one tenant; "" means the caller's own tenant, or
	// every tenant for a compliance admin.
	Tenant string
	// Types selects event types: each is an exact ce_type or a prefix
	// ending in '*' ("tributary.audit.*"); none selects all.
	Types []string
}

// Validate checks the filter's shape.
func (f Filter) Validate() error {
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Until.After(f.Since) {
		return fmt.Errorf("%w: until must be after since", ErrInvalidFilter)
	}
	for _, t := range f.Types {
		if t == "" || strings.Contains(strings.TrimSuffix(t, "*"), "*") {
			return fmt.Errorf("%w: type %q: want an event type or a prefix ending in '*'", ErrInvalidFilter, t)
		}
	}
	return nil
}

// Match reports whether r passes the filter; an empty Tenant matches any.
func (f Filter) Match(r Record) bool {
	if !f.Since.IsZero() && r.Time.Before(f.Since) {
		return false
	}
	if !f.Until.IsZero() && !r.Time.Before(f.Until) {
		return false
	}
	if f.Tenant != "" && r.Tenant != f.Tenant {
		return false
	}
	if len(f.Types) == 0 {
		return true
	}
	for _, t := range f.Types {
		if p, ok := strings.CutSuffix(t, "*"); ok {
			if strings.HasPrefix(r.Type, p) {
				return true
			}
		} else if r.Type == t {
			return true
		}
	}
	return false
}

// Service records Kafka messages and exports the records.
type Service interface {
	// Record appends msgs to the audit log, skipping redeliveries, and
	// returns once they are durable; it returns how many it appended.
	Record(ctx context.Context, msgs []kafka.Message) (int, error)
	// Export authorizes p for f and returns the matching records in log
	// order; records of the selected tenants whose key was shredded come
	// as Entries with Shredded set (the time and type filters cannot see
	// into them). The sequence stops at the first error, which it yields.
	Export(ctx context.Context, p Principal, f Filter) (iter.Seq2[Entry, error], error)
	// Admin runs a key operation for a compliance admin.
	Admin(ctx context.Context, p Principal, req AdminRequest) (AdminResult, error)
}

// Store is the audit log the service writes; *Log implements it.
type Store interface {
	Append(ctx context.Context, msgs []kafka.Message) (int, error)
	Scan(ctx context.Context, only func(tenant string) bool, fn func(Entry) error) error
	Roll() error
	Rewrap(ctx context.Context, r Rewrapper) (int, error)
	Forget(tenant string)
}

// Admin actions.
const (
	ActionRotate = "rotate"
	ActionRewrap = "rewrap"
	ActionShred  = "shred"
)

// AdminRequest is a key operation.
type AdminRequest struct {
	// Action is ActionRotate, ActionRewrap or ActionShred.
	Action string `json:"action"`
	// Tenant is the tenant to shred.
	Tenant string `json:"tenant,omitempty"`
	// RaiseMinDecryption, with ActionRewrap, then refuses older KEK
	// versions (min_decryption_version).
	RaiseMinDecryption bool `json:"raise_min_decryption,omitempty"`
}

// AdminResult says what an admin action did.
type AdminResult struct {
	Action string `json:"action"`
	// Keys are the KEKs rotated or raised.
	Keys []string `json:"keys,omitempty"`
	// Rewrapped counts the data keys rewrapped.
	Rewrapped int    `json:"rewrapped,omitempty"`
	Tenant    string `json:"tenant,omitempty"`
}

// ActionRecorder reports admin actions and refused requests as audit
// events (tributary.audit.admin_action, tributary.audit.auth_failed).
type ActionRecorder interface {
	Record(ctx context.Context, ev events.AuditEvent) error
}

// ErrBadAction is a bad admin request.
var ErrBadAction = errors.New("invalid admin action")

type service struct {
	store   Store
	admin   KeyProvider // for the KeyAdmin or Rewrapper it may be
	actions ActionRecorder
}

// NewService returns the audit service over store; keys (may be nil) is
// the provider whose KeyAdmin or Rewrapper methods Admin uses, actions
// (may be nil) records admin actions.
func NewService(store Store, keys KeyProvider, actions ActionRecorder) Service {
	return &service{store: store, admin: keys, actions: actions}
}

func (s *service) Admin(ctx context.Context, p Principal, req AdminRequest) (AdminResult, error) {
	res := AdminResult{Action: req.Action, Tenant: req.Tenant}
	if p.Tenant == "" && p.Name == "" {
		return res, ErrUnauthenticated
	}
	if !p.Has(GroupCompliance) || !p.Has(GroupComplianceAdmin) {
		s.record(ctx, p, events.AuditKindAuthFailed, "audit."+req.Action, "deny", req.Tenant, "needs the compliance-admin group")
		return res, fmt.Errorf("%w: key operations need the %q and %q groups", ErrForbidden, GroupCompliance, GroupComplianceAdmin)
	}
	var err error
	switch req.Action {
	case ActionRotate:
		ka, ok := s.admin.(KeyAdmin)
		if !ok {
			return res, fmt.Errorf("rotate: %w (add a new first line to the key file and restart instead)", ErrNotSupported)
		}
		if res.Keys, err = ka.Rotate(ctx); err == nil {
			// New data keys for new records now: they are wrapped with
			// the new KEK versions.
			err = s.store.Roll()
		}
	case ActionRewrap:
		rw, ok := s.admin.(Rewrapper)
		if !ok {
			return res, fmt.Errorf("rewrap: %w", ErrNotSupported)
		}
		if res.Rewrapped, err = s.store.Rewrap(ctx, rw); err == nil && req.RaiseMinDecryption {
			ka, ok := s.admin.(KeyAdmin)
			if !ok {
				return res, fmt.Errorf("raise min decryption version: %w", ErrNotSupported)
			}
			res.Keys, err = ka.RaiseMinDecryption(ctx)
		}
	case ActionShred:
		if req.Tenant == "" {
			return res, fmt.Errorf("%w: shred needs a tenant", ErrBadAction)
		}
		ka, ok := s.admin.(KeyAdmin)
		if !ok {
			return res, fmt.Errorf("shred: %w (it needs a key per tenant: Vault)", ErrNotSupported)
		}
		if err = ka.Shred(ctx, req.Tenant); err == nil || errors.Is(err, ErrKeyDestroyed) {
			s.store.Forget(req.Tenant)
		}
	default:
		return res, fmt.Errorf("%w %q: want %s, %s or %s", ErrBadAction, req.Action, ActionRotate, ActionRewrap, ActionShred)
	}
	outcome, reason := "success", ""
	if err != nil {
		outcome, reason = "failure", err.Error()
	}
	s.record(ctx, p, events.AuditKindAdminAction, "audit."+req.Action, outcome, req.Tenant, reason)
	return res, err
}

// record reports an action; a failure to report is logged by the
// recorder, not returned: the action itself already happened.
func (s *service) record(ctx context.Context, p Principal, kind, action, outcome, tenant, reason string) {
	if s.actions == nil {
		return
	}
	ev := events.AuditEvent{Kind: kind, TenantID: p.Tenant, Actor: p.Name, Action: action, Outcome: outcome, Reason: reason, At: time.Now().UTC()}
	if tenant != "" {
		ev.Resource = "tenant:" + tenant
	}
	_ = s.actions.Record(ctx, ev)
}

func (s *service) Record(ctx context.Context, msgs []kafka.Message) (int, error) {
	if len(msgs) == 0 {
		return 0, nil
	}
	return s.store.Append(ctx, msgs)
}

// Authorize returns the filter p may run for f: it needs GroupCompliance;
// without GroupComplianceAdmin the tenant is forced to p's own, and asking
// for another tenant is forbidden.
func Authorize(p Principal, f Filter) (Filter, error) {
	if p.Tenant == "" && p.Name == "" {
		return f, ErrUnauthenticated
	}
	if !p.Has(GroupCompliance) {
		return f, fmt.Errorf("%w: the key needs the %q group", ErrForbidden, GroupCompliance)
	}
	if p.Has(GroupComplianceAdmin) {
		return f, nil
	}
	if f.Tenant != "" && f.Tenant != p.Tenant {
		return f, fmt.Errorf("%w: tenant %q is not the key's tenant", ErrForbidden, f.Tenant)
	}
	f.Tenant = p.Tenant
	return f, nil
}

type stopScan struct{}

func (stopScan) Error() string { return "stop" }

func (s *service) Export(ctx context.Context, p Principal, f Filter) (iter.Seq2[Entry, error], error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	f, err := Authorize(p, f)
	if err != nil {
		if errors.Is(err, ErrForbidden) {
			s.record(ctx, p, events.AuditKindAuthFailed, "audit.export", "deny", f.Tenant, err.Error())
		}
		return nil, err
	}
	s.record(ctx, p, events.AuditKindAdminAction, "audit.export", "success", f.Tenant, "")
	var only func(string) bool
	if f.Tenant != "" {
		// Other tenants' records are chain-checked, never decrypted.
		only = func(t string) bool { return t == f.Tenant }
	}
	return func(yield func(Entry, error) bool) {
		err := s.store.Scan(ctx, only, func(e Entry) error {
			if !e.Shredded && !f.Match(e.Record) {
				return nil
			}
			if !yield(e, nil) {
				return stopScan{}
			}
			return nil
		})
		if err != nil && !errors.As(err, new(stopScan)) {
			yield(Entry{}, err)
		}
	}, nil
}
