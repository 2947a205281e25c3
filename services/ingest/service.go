// Package ingest is the document ingest service of Tributary: it accepts
// documents over HTTP and from the ingest.requests topic, parses and chunks
// them, and publishes document and chunk events keyed by document id.
package ingest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/tributary-rag/tributary/pkg/apikey"
	"github.com/tributary-rag/tributary/pkg/auditevent"
	"github.com/tributary-rag/tributary/pkg/events"
)

// Domain errors. The HTTP transport maps them to status codes; the Kafka
// transport dead-letters them, because retrying cannot help.
var (
	// ErrInvalid reports a malformed request (400).
	ErrInvalid = errors.New("invalid request")
	// ErrUnauthenticated reports a missing or unknown API key (401).
	ErrUnauthenticated = apikey.ErrUnauthenticated
	// ErrForbidden reports a key that may not act on the document (403).
	ErrForbidden = errors.New("forbidden")
	// ErrNotFound reports an unknown document, or one of another tenant (404).
	ErrNotFound = errors.New("document not found")
	// ErrTooLarge reports content over the size limit (413).
	ErrTooLarge = errors.New("document too large")
	// ErrBodyTimeout reports an upload whose body did not arrive within
	// the upload timeout (408).
	ErrBodyTimeout = errors.New("upload too slow")
	// ErrUnsupportedType reports a content type no parser reads (415).
	ErrUnsupportedType = errors.New("unsupported content type")
	// ErrUnreadable reports content that cannot be parsed (422).
	ErrUnreadable = errors.New("unreadable content")
	// ErrUnavailable reports that events could not be published; the
	// request may be retried (503).
	ErrUnavailable = errors.New("event broker unavailable")
)

// Statuses returned by Ingest and Delete.
const (
	ResultAccepted  = "accepted"
	ResultUnchanged = "unchanged"
	ResultDeleted   = "deleted"
)

// Statuses returned by MarkIndexed: what a document.indexed event changed.
const (
	// ResultIndexed: the version is recorded as the newest indexed one.
	ResultIndexed = "indexed"
	// ResultDuplicate: that version was already recorded (a replay).
	ResultDuplicate = "duplicate"
	// ResultStale: a newer indexed version is already recorded; the
	// event changes nothing.
	ResultStale = "stale"
	// ResultUnknown: this instance has no record of the document (or of
	// a version that far); nothing is recorded.
	ResultUnknown = "unknown"
)

// StatusIndexed is the status Get reports for a document whose current
// version the retrieve service has announced as fully indexed; before
// that, Get reports StatusActive.
const StatusIndexed = "indexed"

// DefaultMaxDocumentSize is the default limit on a document's raw size.
const DefaultMaxDocumentSize = 50 << 20

// Principal is who makes a request: the tenant that owns the documents and
// the groups the caller belongs to. A principal without groups acts for the
// whole tenant.
type Principal struct {
	Tenant string
	Groups []string
	// Name identifies the caller in logs (never a secret), e.g. the API
	// key's name.
	Name string
}

// Document is a document to ingest.
type Document struct {
	// ID is the document id; empty means derive one from the document's
	// identity (DeriveID of Source, else of Filename), never from its
	// bytes, so a changed file sent again becomes a new version.
	ID          string
	Title       string
	ContentType string
	// Filename is the uploaded file's name, used to detect the type when
	// ContentType is missing or generic.
	Filename string
	Content  []byte
	Source   string
	// Groups may see the document; empty means the caller's groups.
	Groups   []string
	Metadata map[string]string
}

// Result is the outcome of Ingest or Delete.
type Result struct {
	DocumentID string `json:"document_id"`
	Version    int    `json:"version"`
	Status     string `json:"status"`
}

// Info describes the current version of a document.
type Info struct {
	DocumentID string `json:"document_id"`
	Version    int    `json:"version"`
	// Status is StatusIndexed once the retrieve service has announced
	// Version as fully indexed, StatusActive before.
	Status      string            `json:"status"`
	Title       string            `json:"title,omitempty"`
	ContentType string            `json:"content_type,omitempty"`
	Source      string            `json:"source,omitempty"`
	Groups      []string          `json:"groups,omitempty"`
	Metadata    map[string]string `json:"metadata,omitempty"`
	ContentHash string            `json:"content_hash"`
	ChunkCount  int               `json:"chunk_count"`
	Size        int64             `json:"size"`
	CreatedAt   time.Time         `json:"created_at"`
	UpdatedAt   time.Time         `json:"updated_at"`
	// IndexedVersion is the newest version announced as indexed (omitted
	// while none is). Below Version, it is the older version whose chunks
	// searches find until Version is indexed.
	IndexedVersion int `json:"indexed_version,omitempty"`
	// IndexedAt is when IndexedVersion was recorded (omitted while none is).
	IndexedAt time.Time `json:"indexed_at,omitzero"`
}

// Service ingests, describes and deletes documents. Every method acts
// within the principal's tenant only.
//
// MarkIndexed records that the retrieve service has indexed a version of
// a document (a tributary.document.indexed event); it acts for the tenant
// the event names, as write access to the documents topic is the
// credential. It is idempotent: a replayed or older announcement changes
// nothing, and an announcement for a document or version this instance
// never published is ignored (ResultUnknown), never turned into a record.
type Service interface {
	Ingest(ctx context.Context, p Principal, d Document) (Result, error)
	Get(ctx context.Context, p Principal, id string) (Info, error)
	// List returns the principal's visible documents whose source starts
	// with a prefix, in document id order, a page at a time: what a sync
	// client compares its tree against.
	List(ctx context.Context, p Principal, q ListQuery) (ListResult, error)
	Delete(ctx context.Context, p Principal, id string) (Result, error)
	MarkIndexed(ctx context.Context, tenant, id string, version int) (Result, error)
}

// Piece is one chunk of a parsed document.
type Piece struct {
	Text string
	// Start and End are rune offsets of the chunk in the normalised text,
	// End exclusive.
	Start, End int
	// Page and PageEnd are the 1-based pages the chunk starts and ends on,
	// 0 when the format has no pages.
	Page, PageEnd int
	// HeadingPath is the chain of headings above the chunk.
	HeadingPath []string
}

// Chunked is a parsed document split into pieces.
type Chunked struct {
	// ContentType is the detected media type of the content.
	ContentType string
	// Title is the document's own title, if it declares one.
	Title string
	// Pages is the number of pages, 0 for formats without pages.
	Pages  int
	Pieces []Piece
}

// Chunker parses raw content and splits it into pieces. It returns errors
// that match ErrUnsupportedType, ErrUnreadable or ErrTooLarge for content
// it refuses.
type Chunker interface {
	Chunk(ctx context.Context, contentType, filename string, content []byte) (Chunked, error)
}

// Emitter publishes the service's events. It returns only when every event
// is durable on the broker (acknowledged by all in-sync replicas), or an
// error.
type Emitter interface {
	Accepted(ctx context.Context, v Version) error
	Rejected(ctx context.Context, tenant, documentID string, reason error) error
	Deleted(ctx context.Context, tenant, documentID string, version int) error
}

// Version is one accepted version of a document with its chunks.
type Version struct {
	Tenant        string
	DocumentID    string
	Version       int
	Title         string
	ContentType   string
	Source        string
	Groups        []string
	Metadata      map[string]string
	ContentHash   string
	Size          int64
	Pages         int
	CorrelationID string
	Pieces        []Piece
}

type service struct {
	store     *Store
	chunker   Chunker
	emit      Emitter
	maxSize   int64
	maxChunks int
	maxText   int64
	now       func() time.Time
	locks     keyedMutex
	audit     *auditevent.Recorder
	// crashAfterPublish, set by tests only, is a failpoint between
	// publishing a version and recording it: an error ends Ingest there,
	// as a kill -9 would.
	crashAfterPublish func() error
}

// Option configures the service.
type Option func(*service)

// WithAudit records deletes as tributary.audit.admin_action.
func WithAudit(r *auditevent.Recorder) Option {
	return func(s *service) { s.audit = r }
}

// WithExpansionLimits bounds what a document may become: at most
// maxChunks chunks and maxText bytes of extracted text (a small DOCX or a
// JSON file with long metadata can expand to tens of thousands of chunks).
// Over either, Ingest answers ErrTooLarge naming the limit. Zero: no limit.
func WithExpansionLimits(maxChunks int, maxText int64) Option {
	return func(s *service) { s.maxChunks, s.maxText = maxChunks, maxText }
}

// WithMaxDocumentSize sets the limit on a document's raw size in bytes
// (default DefaultMaxDocumentSize).
func WithMaxDocumentSize(n int64) Option {
	return func(s *service) {
		if n > 0 {
			s.maxSize = n
		}
	}
}

// WithClock sets the service's clock (default time.Now).
func WithClock(now func() time.Time) Option {
	return func(s *service) { s.now = now }
}

// NewService returns the ingest service over a document store, a chunker
// and an event emitter.
func NewService(store *Store, chunker Chunker, emit Emitter, opts ...Option) Service {
	s := &service{
		store:   store,
		chunker: chunker,
		emit:    emit,
		maxSize: DefaultMaxDocumentSize,
		now:     time.Now,
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

func (s *service) Ingest(ctx context.Context, p Principal, d Document) (Result, error) {
	if p.Tenant == "" {
		return Result{}, ErrUnauthenticated
	}
	if int64(len(d.Content)) > s.maxSize {
		return Result{}, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(d.Content), s.maxSize)
	}
	if d.ID == "" {
		identity := d.Source
		if identity == "" {
			identity = d.Filename
		}
		if identity == "" {
			return Result{}, fmt.Errorf("%w: give a document_id, a source or a file name: a document's id comes from its identity, not its bytes", ErrInvalid)
		}
		d.ID = DeriveID(p.Tenant, identity)
	}
	if err := validateDocument(&d); err != nil {
		return Result{}, err
	}
	if len(d.Groups) == 0 {
		d.Groups = slices.Clone(p.Groups)
	}
	if !mayPublishTo(p, d.Groups) {
		return Result{}, fmt.Errorf("%w: groups %v are not all groups of this key", ErrForbidden, d.Groups)
	}
	contentHash := hashContent(d.Content)
	// The fingerprint is taken from the request as given, so a repeat is
	// recognised without parsing the document again.
	fp := fingerprint(contentHash, d)

	unlock := s.locks.lock(p.Tenant + "\x00" + d.ID)
	defer unlock()

	prev, exists := s.store.Get(p.Tenant, d.ID)
	if exists && prev.Status == StatusActive {
		// A key that may not see the document gets what GET answers it:
		// neither its existence nor its groups leak through a POST.
		if !maySee(p, prev.Groups) {
			return Result{}, fmt.Errorf("%w: %s", ErrNotFound, d.ID)
		}
		if !mayChange(p, prev.Groups) {
			return Result{}, fmt.Errorf("%w: this key may not change the document", ErrForbidden)
		}
	}
	if exists && prev.Status == StatusActive && prev.Pending == nil && prev.Fingerprint == fp {
		return Result{DocumentID: d.ID, Version: prev.Version, Status: ResultUnchanged}, nil
	}

	chunked, err := s.chunker.Chunk(ctx, d.ContentType, d.Filename, d.Content)
	if err != nil {
		if !isContentError(err) {
			return Result{}, fmt.Errorf("chunk document: %w", err)
		}
		if eerr := s.emit.Rejected(ctx, p.Tenant, d.ID, err); eerr != nil {
			return Result{}, errors.Join(err, fmt.Errorf("%w: publish rejection: %w", ErrUnavailable, eerr))
		}
		return Result{}, err
	}
	if err := s.checkExpansion(chunked.Pieces, metadataBytes(d.Metadata)); err != nil {
		return Result{}, err
	}
	d.ContentType = chunked.ContentType
	for _, t := range []string{chunked.Title, d.Filename, d.ID} {
		if d.Title == "" {
			d.Title = truncateRunes(t, maxTitleLen)
		}
	}
	pieces := chunked.Pieces

	version := 1
	if exists {
		version = prev.Version + 1
		if pd := prev.Pending; pd != nil {
			if pd.Fingerprint == fp {
				// A crash or a broker error interrupted this very content:
				// publish the same version again; its ids are the same, so
				// consumers see duplicates only.
				version = pd.Version
			} else if pd.Version >= version {
				version = pd.Version + 1
			}
		}
	}

	now := s.now().UTC()
	rec := prev
	if !exists {
		rec = Record{Tenant: p.Tenant, DocumentID: d.ID, CreatedAt: now}
	}
	// Reserve the version before any event can leave, so a version number
	// that may be on the topics is never reused for other content.
	rec.Pending = &Pending{Version: version, Fingerprint: fp, Doc: &PendingDoc{
		Title: d.Title, ContentType: d.ContentType, Source: d.Source, Groups: d.Groups, Metadata: d.Metadata,
		ChunkCount: len(pieces), Size: int64(len(d.Content)),
	}}
	rec.UpdatedAt = now
	if err := s.store.Put(rec); err != nil {
		return Result{}, fmt.Errorf("reserve version: %w", err)
	}

	v := Version{
		Tenant:        p.Tenant,
		DocumentID:    d.ID,
		Version:       version,
		Title:         d.Title,
		ContentType:   d.ContentType,
		Source:        d.Source,
		Groups:        d.Groups,
		Metadata:      d.Metadata,
		ContentHash:   contentHash,
		Size:          int64(len(d.Content)),
		Pages:         chunked.Pages,
		CorrelationID: correlationFrom(ctx),
		Pieces:        pieces,
	}
	if err := s.emit.Accepted(ctx, v); err != nil {
		return Result{}, fmt.Errorf("%w: publish version %d: %w", ErrUnavailable, version, err)
	}
	if s.crashAfterPublish != nil {
		if err := s.crashAfterPublish(); err != nil {
			return Result{}, err
		}
	}

	// Only now, with every event acknowledged, is the version recorded.
	rec.Version = version
	rec.Status = StatusActive
	rec.ContentHash = contentHash
	rec.Fingerprint = fp
	rec.Title = d.Title
	rec.ContentType = d.ContentType
	rec.Source = d.Source
	rec.Groups = d.Groups
	rec.Metadata = d.Metadata
	rec.ChunkCount = len(pieces)
	rec.Size = int64(len(d.Content))
	rec.Pending = nil
	rec.UpdatedAt = s.now().UTC()
	if err := s.store.Put(rec); err != nil {
		return Result{}, fmt.Errorf("record version: %w", err)
	}
	return Result{DocumentID: d.ID, Version: version, Status: ResultAccepted}, nil
}

// checkExpansion refuses a document whose chunks pass the expansion
// limits, before any event leaves. Every chunk event carries the
// document's metadata, so its copies count towards the text limit.
func (s *service) checkExpansion(pieces []Piece, metadata int) error {
	if s.maxChunks > 0 && len(pieces) > s.maxChunks {
		return fmt.Errorf("%w: the document makes %d chunks, over the limit of %d (max-chunks)", ErrTooLarge, len(pieces), s.maxChunks)
	}
	text := int64(len(pieces)) * int64(metadata)
	for _, p := range pieces {
		text += int64(len(p.Text))
	}
	if s.maxText > 0 && text > s.maxText {
		return fmt.Errorf("%w: the document's chunks carry %d bytes of text and metadata, over the limit of %d (max-text-bytes)", ErrTooLarge, text, s.maxText)
	}
	return nil
}

// metadataBytes is the size of metadata's keys and values.
func metadataBytes(m map[string]string) int {
	n := 0
	for k, v := range m {
		n += len(k) + len(v)
	}
	return n
}

func (s *service) Get(ctx context.Context, p Principal, id string) (Info, error) {
	if p.Tenant == "" {
		return Info{}, ErrUnauthenticated
	}
	rec, ok := s.store.Get(p.Tenant, id)
	if !ok || rec.Status != StatusActive || !maySee(p, rec.Groups) {
		return Info{}, ErrNotFound
	}
	status := rec.Status
	if rec.Version > 0 && rec.IndexedVersion == rec.Version {
		status = StatusIndexed
	}
	return Info{
		DocumentID:     rec.DocumentID,
		Version:        rec.Version,
		Status:         status,
		IndexedVersion: rec.IndexedVersion,
		IndexedAt:      rec.IndexedAt,
		Title:          rec.Title,
		ContentType:    rec.ContentType,
		Source:         rec.Source,
		Groups:         rec.Groups,
		Metadata:       rec.Metadata,
		ContentHash:    rec.ContentHash,
		ChunkCount:     rec.ChunkCount,
		Size:           rec.Size,
		CreatedAt:      rec.CreatedAt,
		UpdatedAt:      rec.UpdatedAt,
	}, nil
}

func (s *service) Delete(ctx context.Context, p Principal, id string) (Result, error) {
	if p.Tenant == "" {
		return Result{}, ErrUnauthenticated
	}
	unlock := s.locks.lock(p.Tenant + "\x00" + id)
	defer unlock()

	rec, ok := s.store.Get(p.Tenant, id)
	if !ok || rec.Status != StatusActive || !maySee(p, rec.Groups) {
		return Result{}, ErrNotFound
	}
	if !mayChange(p, rec.Groups) {
		return Result{}, fmt.Errorf("%w: document belongs to groups %v", ErrForbidden, rec.Groups)
	}
	// A crash between the event and the record leaves the document active;
	// a retried DELETE publishes the same event (same id) again.
	if err := s.emit.Deleted(ctx, p.Tenant, id, rec.Version); err != nil {
		return Result{}, fmt.Errorf("%w: publish deletion: %w", ErrUnavailable, err)
	}
	rec.Status = StatusDeleted
	rec.UpdatedAt = s.now().UTC()
	if err := s.store.Put(rec); err != nil {
		return Result{}, fmt.Errorf("record deletion: %w", err)
	}
	_ = s.audit.Record(ctx, events.AuditEvent{
		Kind: events.AuditKindAdminAction, TenantID: p.Tenant, Actor: p.Name, Action: "document.delete", Outcome: "success",
		Resource: id, Details: map[string]string{"version": strconv.Itoa(rec.Version)},
	})
	return Result{DocumentID: id, Version: rec.Version, Status: ResultDeleted}, nil
}

// MarkIndexed records version as indexed when it is newer than the indexed
// version on record and not newer than the newest version this instance
// published or is publishing (the record's version or its pending one).
//
// It takes the document's lock, like Ingest and Delete: their
// read-modify-write of the record cannot lose the mark, and an
// announcement that overtakes its own Ingest call (retrieve can index a
// small version before Ingest records it) waits until that call has
// recorded the version or failed. A version that is still pending after
// that (a crash or broker error between publishing and recording) counts
// as known: if the same content is sent again, Ingest records that very
// version, and the retrieve service does not announce it twice.
func (s *service) MarkIndexed(ctx context.Context, tenant, id string, version int) (Result, error) {
	if tenant == "" {
		return Result{}, fmt.Errorf("%w: empty tenant", ErrInvalid)
	}
	if err := ValidateID(id); err != nil {
		return Result{}, err
	}
	if version < 1 {
		return Result{}, fmt.Errorf("%w: version %d", ErrInvalid, version)
	}
	unlock := s.locks.lock(tenant + "\x00" + id)
	defer unlock()

	rec, ok := s.store.Get(tenant, id)
	known := rec.Version
	if rec.Pending != nil {
		known = max(known, rec.Pending.Version)
	}
	res := Result{DocumentID: id, Version: version}
	switch {
	case !ok || version > known:
		res.Status = ResultUnknown
		return res, nil
	case version == rec.IndexedVersion:
		res.Status = ResultDuplicate
		return res, nil
	case version < rec.IndexedVersion:
		res.Status = ResultStale
		return res, nil
	}
	// Status, version and UpdatedAt stay as they are: being indexed does
	// not change the document, only what GET reports about it.
	rec.IndexedVersion = version
	rec.IndexedAt = s.now().UTC()
	if err := s.store.Put(rec); err != nil {
		return Result{}, fmt.Errorf("record indexed version: %w", err)
	}
	res.Status = ResultIndexed
	return res, nil
}

// DeriveID returns the document id used when a request names none: a hash
// of the tenant and the document's identity (its source, such as a path
// relative to an ingested root or a URL, else its file name). The same
// source always lands on the same document, so sending a changed file
// again makes a new version, and two files with the same bytes stay two
// documents. The tenant is part of the hash so that ids never hint at
// another tenant's sources.
func DeriveID(tenant, identity string) string {
	h := sha256.New()
	for _, part := range []string{tenant, identity} {
		fmt.Fprintf(h, "%d:%s", len(part), part)
	}
	return "src-" + hex.EncodeToString(h.Sum(nil)[:16])
}

func hashContent(b []byte) string {
	h := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(h[:])
}

// fingerprint identifies everything a version is made of: the content and
// every request attribute that reaches its chunk events (title, declared
// content type, file name, source, groups, metadata). Two requests with the
// same fingerprint produce the same events.
func fingerprint(contentHash string, d Document) string {
	b, _ := json.Marshal(struct {
		C  string            `json:"c"`
		T  string            `json:"t"`
		CT string            `json:"ct"`
		F  string            `json:"f"`
		S  string            `json:"s"`
		G  []string          `json:"g"`
		M  map[string]string `json:"m"`
	}{contentHash, d.Title, d.ContentType, d.Filename, d.Source, d.Groups, d.Metadata})
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// truncateRunes cuts s to at most max bytes on a rune boundary.
func truncateRunes(s string, max int) string {
	if len(s) <= max {
		return s
	}
	for max > 0 && !utf8.RuneStart(s[max]) {
		max--
	}
	return s[:max]
}

func isContentError(err error) bool {
	return errors.Is(err, ErrUnsupportedType) || errors.Is(err, ErrUnreadable) || errors.Is(err, ErrTooLarge)
}

// WithCorrelationID returns ctx carrying a correlation id for the events
// that a request causes.
func WithCorrelationID(ctx context.Context, id string) context.Context {
	return events.WithCorrelationID(ctx, id)
}

func correlationFrom(ctx context.Context) string {
	return events.CorrelationID(ctx)
}
