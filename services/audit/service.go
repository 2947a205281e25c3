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
	ErrUnauthenticated = errors.New("missing or unknown api key")
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
	// order. The sequence stops at the first error, which it yields.
	Export(ctx context.Context, p Principal, f Filter) (iter.Seq2[Record, error], error)
}

// Store is the audit log the service writes; *Log implements it.
type Store interface {
	Append(ctx context.Context, msgs []kafka.Message) (int, error)
	Scan(ctx context.Context, fn func(Record) error) error
}

type service struct {
	store Store
}

// NewService returns the audit service over store.
func NewService(store Store) Service {
	return &service{store: store}
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

func (s *service) Export(ctx context.Context, p Principal, f Filter) (iter.Seq2[Record, error], error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	f, err := Authorize(p, f)
	if err != nil {
		return nil, err
	}
	return func(yield func(Record, error) bool) {
		err := s.store.Scan(ctx, func(r Record) error {
			if !f.Match(r) {
				return nil
			}
			if !yield(r, nil) {
				return stopScan{}
			}
			return nil
		})
		if err != nil && !errors.As(err, new(stopScan)) {
			yield(Record{}, err)
		}
	}, nil
}
