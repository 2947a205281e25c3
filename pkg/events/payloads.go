package events

import (
	"fmt"
	"strings"
	"time"
)

// Event types (ce_type).
const (
	TypeIngestRequested  = "tributary.ingest.requested"
	TypeDocumentAccepted = "tributary.document.accepted"
	TypeDocumentRejected = "tributary.document.rejected"
	TypeDocumentDeleted  = "tributary.document.deleted"
	TypeDocumentIndexed  = "tributary.document.indexed"
	TypeChunkCreated     = "tributary.chunk.created"
	TypeChunkEmbedded    = "tributary.chunk.embedded"
	TypeQueryReceived    = "tributary.query.received"
	TypeQueryApproved    = "tributary.query.approved"
	TypeQueryRejected    = "tributary.query.rejected"
	TypeQueryEmbedded    = "tributary.query.embedded"
	TypeQueryRetrieved   = "tributary.query.retrieved"
	TypeAnswerDelta      = "tributary.answer.delta"
	TypeAnswerCompleted  = "tributary.answer.completed"

	// AuditTypePrefix starts every audit event type; the rest is the
	// AuditEvent's Kind.
	AuditTypePrefix = "tributary.audit."
	// Well-known audit kinds.
	AuditKindAuthFailed     = "auth_failed"
	AuditKindAdminAction    = "admin_action"
	AuditKindPolicyDecision = "policy_decision"
)

// Types returns every event type with a fixed name, in catalog order, plus
// the three well-known audit types.
func Types() []string {
	return []string{
		TypeIngestRequested, TypeDocumentAccepted, TypeDocumentRejected,
		TypeDocumentDeleted, TypeDocumentIndexed, TypeChunkCreated,
		TypeChunkEmbedded, TypeQueryReceived, TypeQueryApproved,
		TypeQueryRejected, TypeQueryEmbedded, TypeQueryRetrieved,
		TypeAnswerDelta, TypeAnswerCompleted,
		AuditTypePrefix + AuditKindAuthFailed,
		AuditTypePrefix + AuditKindAdminAction,
		AuditTypePrefix + AuditKindPolicyDecision,
	}
}

// NewPayload returns a pointer to a new zero payload for the event type
// typ, e.g. *ChunkCreated for "tributary.chunk.created". Every
// "tributary.audit.*" type gives *AuditEvent.
func NewPayload(typ string) (Payload, error) {
	switch typ {
	case TypeIngestRequested:
		return &IngestRequested{}, nil
	case TypeDocumentAccepted:
		return &DocumentAccepted{}, nil
	case TypeDocumentRejected:
		return &DocumentRejected{}, nil
	case TypeDocumentDeleted:
		return &DocumentDeleted{}, nil
	case TypeDocumentIndexed:
		return &DocumentIndexed{}, nil
	case TypeChunkCreated:
		return &ChunkCreated{}, nil
	case TypeChunkEmbedded:
		return &ChunkEmbedded{}, nil
	case TypeQueryReceived:
		return &QueryReceived{}, nil
	case TypeQueryApproved:
		return &QueryApproved{}, nil
	case TypeQueryRejected:
		return &QueryRejected{}, nil
	case TypeQueryEmbedded:
		return &QueryEmbedded{}, nil
	case TypeQueryRetrieved:
		return &QueryRetrieved{}, nil
	case TypeAnswerDelta:
		return &AnswerDelta{}, nil
	case TypeAnswerCompleted:
		return &AnswerCompleted{}, nil
	}
	if kind, ok := strings.CutPrefix(typ, AuditTypePrefix); ok && kind != "" {
		return &AuditEvent{Kind: kind}, nil
	}
	return nil, fmt.Errorf("%w: %q", ErrUnknownType, typ)
}

// IngestRequested asks the ingest service to ingest one document; it is the
// Kafka twin of POST /v1/documents. Topic ingest.requests.v1, key
// document_id.
type IngestRequested struct {
	// DocumentID is the caller's document id; empty lets ingest choose one.
	// The Kafka key is then the request id.
	DocumentID string `json:"document_id,omitempty"`
	// RequestID identifies this request (and is the key when DocumentID is
	// empty).
	RequestID   string `json:"request_id"`
	TenantID    string `json:"tenant_id"`
	Title       string `json:"title,omitempty"`
	ContentType string `json:"content_type"`
	// Content is the document's bytes (base64 in JSON).
	Content  []byte            `json:"content"`
	Source   string            `json:"source,omitempty"`
	Groups   []string          `json:"groups,omitempty"`
	Metadata map[string]string `json:"metadata,omitempty"`
}

// EventType implements Payload.
func (IngestRequested) EventType() string { return TypeIngestRequested }

// PartitionKey implements Payload.
func (p IngestRequested) PartitionKey() string {
	if p.DocumentID != "" {
		return p.DocumentID
	}
	return p.RequestID
}

// DocumentAccepted says that a version of a document was parsed and chunked;
// its ChunkCount chunk.created events follow on chunks.v1. Topic
// documents.v1, key document_id.
type DocumentAccepted struct {
	DocumentID  string `json:"document_id"`
	TenantID    string `json:"tenant_id"`
	Version     int    `json:"version"`
	Title       string `json:"title,omitempty"`
	Source      string `json:"source,omitempty"`
	ContentType string `json:"content_type"`
	// ContentHash is "sha256:<hex>" of the original bytes.
	ContentHash string            `json:"content_hash"`
	SizeBytes   int64             `json:"size_bytes"`
	ChunkCount  int               `json:"chunk_count"`
	Pages       int               `json:"pages,omitempty"`
	Groups      []string          `json:"groups,omitempty"`
	Metadata    map[string]string `json:"metadata,omitempty"`
}

// EventType implements Payload.
func (DocumentAccepted) EventType() string { return TypeDocumentAccepted }

// PartitionKey implements Payload.
func (p DocumentAccepted) PartitionKey() string { return p.DocumentID }

// DocumentRejected says that a document could not be ingested. Topic
// documents.v1, key document_id.
type DocumentRejected struct {
	DocumentID string `json:"document_id"`
	TenantID   string `json:"tenant_id"`
	// Version is the version the document would have had, 0 if unknown.
	Version int `json:"version,omitempty"`
	// Code is a stable reason: "unsupported_type", "too_large",
	// "unreadable", "invalid".
	Code    string `json:"code"`
	Message string `json:"message"`
}

// EventType implements Payload.
func (DocumentRejected) EventType() string { return TypeDocumentRejected }

// PartitionKey implements Payload.
func (p DocumentRejected) PartitionKey() string { return p.DocumentID }

// DocumentDeleted says that a document and all its versions are gone;
// consumers remove its chunks and points. Topic documents.v1, key
// document_id.
type DocumentDeleted struct {
	DocumentID string `json:"document_id"`
	TenantID   string `json:"tenant_id"`
	// Version is the last version the document had.
	Version int `json:"version"`
}

// EventType implements Payload.
func (DocumentDeleted) EventType() string { return TypeDocumentDeleted }

// PartitionKey implements Payload.
func (p DocumentDeleted) PartitionKey() string { return p.DocumentID }

// DocumentIndexed says that every chunk of a document version is searchable
// and the points of older versions are gone. Topic documents.v1, key
// document_id.
type DocumentIndexed struct {
	DocumentID string `json:"document_id"`
	TenantID   string `json:"tenant_id"`
	Version    int    `json:"version"`
	ChunkCount int    `json:"chunk_count"`
	Collection string `json:"collection,omitempty"`
}

// EventType implements Payload.
func (DocumentIndexed) EventType() string { return TypeDocumentIndexed }

// PartitionKey implements Payload.
func (p DocumentIndexed) PartitionKey() string { return p.DocumentID }

// ChunkCreated carries one chunk of a document version. Topic chunks.v1,
// key document_id.
type ChunkCreated struct {
	// ChunkID is ChunkID(tenant_id, document_id, version, index), a UUID.
	ChunkID    string `json:"chunk_id"`
	DocumentID string `json:"document_id"`
	TenantID   string `json:"tenant_id"`
	Version    int    `json:"version"`
	// Index is the chunk's position in the document, from 0.
	Index int `json:"index"`
	// ChunkCount is the number of chunks of this version.
	ChunkCount int    `json:"chunk_count"`
	Text       string `json:"text"`
	// Start and End are rune offsets of Text in the normalized document
	// text, End exclusive.
	Start int `json:"start"`
	End   int `json:"end"`
	// Page is the 1-based page where the chunk starts, PageEnd where it
	// ends; both 0 when the format has no pages.
	Page        int      `json:"page,omitempty"`
	PageEnd     int      `json:"page_end,omitempty"`
	HeadingPath []string `json:"heading_path,omitempty"`
	// ContentHash is "sha256:<hex>" of Text.
	ContentHash string            `json:"content_hash"`
	Title       string            `json:"title,omitempty"`
	Source      string            `json:"source,omitempty"`
	ContentType string            `json:"content_type,omitempty"`
	Groups      []string          `json:"groups,omitempty"`
	Metadata    map[string]string `json:"metadata,omitempty"`
}

// EventType implements Payload.
func (ChunkCreated) EventType() string { return TypeChunkCreated }

// PartitionKey implements Payload.
func (p ChunkCreated) PartitionKey() string { return p.DocumentID }

// SparseVector is a sparse embedding: parallel index and value lists.
type SparseVector struct {
	Indices []uint32  `json:"indices"`
	Values  []float32 `json:"values"`
}

// ChunkEmbedded is a chunk with its embedding. It repeats every field of
// ChunkCreated so the indexer needs no other topic. Topic
// chunks.embedded.v1, key document_id.
type ChunkEmbedded struct {
	ChunkCreated
	// Model names the embedding model, e.g. "bm25" or "bge-small-en-v1.5".
	Model  string        `json:"model"`
	Dense  []float32     `json:"dense,omitempty"`
	Sparse *SparseVector `json:"sparse,omitempty"`
}

// EventType implements Payload.
func (ChunkEmbedded) EventType() string { return TypeChunkEmbedded }

// PartitionKey implements Payload.
func (p ChunkEmbedded) PartitionKey() string { return p.DocumentID }

// Query is a question and who asks it; the query events build on it.
type Query struct {
	RequestID      string   `json:"request_id"`
	TenantID       string   `json:"tenant_id"`
	Groups         []string `json:"groups,omitempty"`
	Question       string   `json:"question"`
	ConversationID string   `json:"conversation_id,omitempty"`
	TopK           int      `json:"top_k,omitempty"`
	// Principal names the API key holder or user who asked, never the key.
	Principal string `json:"principal,omitempty"`
	// Mode is ModeSearch for a search (the edge's POST /v1/search):
	// moderated, embedded and retrieved like a question, answered by its
	// query.retrieved event, and never generated. Empty for a question.
	Mode string `json:"mode,omitempty"`
	// Filter narrows retrieval beyond the tenant and groups.
	Filter *QueryFilter `json:"filter,omitempty"`
}

// ModeSearch is the Query.Mode of a search: retrieval only.
const ModeSearch = "search"

// QueryFilter narrows a retrieval: every given condition must hold.
type QueryFilter struct {
	// DocumentIDs keeps chunks of these documents only.
	DocumentIDs []string `json:"document_ids,omitempty"`
	// SourcePrefix keeps chunks whose document source starts with it.
	SourcePrefix string `json:"source_prefix,omitempty"`
}

// QueryReceived is a question as the edge received it. Topic
// queries.received.v1, key request_id.
type QueryReceived struct {
	Query
}

// EventType implements Payload.
func (QueryReceived) EventType() string { return TypeQueryReceived }

// PartitionKey implements Payload.
func (p QueryReceived) PartitionKey() string { return p.RequestID }

// QueryApproved is a question that passed the input policy. Topic
// queries.approved.v1, key request_id.
type QueryApproved struct {
	Query
	// Policy names the policy (bundle and revision) that approved it.
	Policy string `json:"policy,omitempty"`
}

// EventType implements Payload.
func (QueryApproved) EventType() string { return TypeQueryApproved }

// PartitionKey implements Payload.
func (p QueryApproved) PartitionKey() string { return p.RequestID }

// QueryRejected is a question refused by the input policy. Topic
// queries.rejected.v1, key request_id.
type QueryRejected struct {
	RequestID string `json:"request_id"`
	TenantID  string `json:"tenant_id"`
	// Code is a stable reason code, e.g. "prompt_injection", "pii".
	Code    string   `json:"code"`
	Message string   `json:"message"`
	Policy  string   `json:"policy,omitempty"`
	Rules   []string `json:"rules,omitempty"`
}

// EventType implements Payload.
func (QueryRejected) EventType() string { return TypeQueryRejected }

// PartitionKey implements Payload.
func (p QueryRejected) PartitionKey() string { return p.RequestID }

// QueryEmbedded is an approved question with its embedding. Topic
// queries.embedded.v1, key request_id.
type QueryEmbedded struct {
	Query
	Model  string        `json:"model"`
	Dense  []float32     `json:"dense,omitempty"`
	Sparse *SparseVector `json:"sparse,omitempty"`
}

// EventType implements Payload.
func (QueryEmbedded) EventType() string { return TypeQueryEmbedded }

// PartitionKey implements Payload.
func (p QueryEmbedded) PartitionKey() string { return p.RequestID }

// RetrievedChunk is one search hit.
type RetrievedChunk struct {
	ChunkID     string            `json:"chunk_id"`
	DocumentID  string            `json:"document_id"`
	Version     int               `json:"version"`
	Index       int               `json:"index"`
	Score       float32           `json:"score"`
	Text        string            `json:"text"`
	Title       string            `json:"title,omitempty"`
	Source      string            `json:"source,omitempty"`
	Page        int               `json:"page,omitempty"`
	PageEnd     int               `json:"page_end,omitempty"`
	HeadingPath []string          `json:"heading_path,omitempty"`
	Metadata    map[string]string `json:"metadata,omitempty"`
}

// QueryRetrieved is a question with the chunks found for it, best first,
// already filtered by tenant and groups. Topic queries.retrieved.v1, key
// request_id.
type QueryRetrieved struct {
	Query
	Results []RetrievedChunk `json:"results"`
}

// EventType implements Payload.
func (QueryRetrieved) EventType() string { return TypeQueryRetrieved }

// PartitionKey implements Payload.
func (p QueryRetrieved) PartitionKey() string { return p.RequestID }

// AnswerDelta is one piece of a streamed answer. Seq counts from 0 without
// gaps per request. Topics answers.generated.v1 and answers.moderated.v1,
// key request_id.
type AnswerDelta struct {
	RequestID string `json:"request_id"`
	TenantID  string `json:"tenant_id"`
	Seq       int    `json:"seq"`
	Text      string `json:"text"`
}

// EventType implements Payload.
func (AnswerDelta) EventType() string { return TypeAnswerDelta }

// PartitionKey implements Payload.
func (p AnswerDelta) PartitionKey() string { return p.RequestID }

// Citation points an answer at a source chunk.
type Citation struct {
	// N is the number the answer text's [n] markers give this source: the
	// source's rank among those the answer was generated from, so it need
	// not follow the citations' order. Zero (left out) from producers
	// before it was added.
	N          int     `json:"n,omitempty"`
	DocumentID string  `json:"document_id"`
	ChunkID    string  `json:"chunk_id"`
	Title      string  `json:"title,omitempty"`
	Score      float32 `json:"score"`
	Snippet    string  `json:"snippet,omitempty"`
	Page       int     `json:"page,omitempty"`
}

// Usage counts tokens.
type Usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
}

// AnswerCompleted ends a streamed answer: the full text, citations and why
// it stopped. Deltas counts the AnswerDelta events sent before it.
type AnswerCompleted struct {
	RequestID string `json:"request_id"`
	TenantID  string `json:"tenant_id"`
	// FinishReason is one of "stop", "length", "refused", "moderated",
	// "cancelled", "error".
	FinishReason string     `json:"finish_reason"`
	Text         string     `json:"text"`
	Deltas       int        `json:"deltas"`
	Citations    []Citation `json:"citations,omitempty"`
	Model        string     `json:"model,omitempty"`
	Usage        *Usage     `json:"usage,omitempty"`
	// Mode says how the answer was made, e.g. "openai", "engine",
	// "extractive" or "no_context"; empty when the producer does not say.
	Mode string `json:"mode,omitempty"`
	// PromptVersion names the prompt template, e.g. "prompt.v1".
	PromptVersion string `json:"prompt_version,omitempty"`
	// Timings are the producer's measurements in milliseconds, by name
	// (e.g. "first_token_ms", "generate_ms", "total_ms").
	Timings map[string]float64 `json:"timings,omitempty"`
}

// EventType implements Payload.
func (AnswerCompleted) EventType() string { return TypeAnswerCompleted }

// PartitionKey implements Payload.
func (p AnswerCompleted) PartitionKey() string { return p.RequestID }

// AuditEvent is one audit record: an authentication failure, an admin
// action or a policy decision. Its ce_type is AuditTypePrefix + Kind. Topic
// audit.events.v1, key tenant_id.
type AuditEvent struct {
	// Kind completes the event type, e.g. AuditKindAuthFailed.
	Kind     string `json:"kind"`
	TenantID string `json:"tenant_id"`
	// Actor names who acted (principal, service); never a secret.
	Actor string `json:"actor,omitempty"`
	// Action is what was attempted, e.g. "document.delete", "query".
	Action string `json:"action"`
	// Outcome is "success", "failure", "allow" or "deny".
	Outcome string `json:"outcome"`
	// Resource names the object acted on, e.g. a document id.
	Resource  string            `json:"resource,omitempty"`
	RequestID string            `json:"request_id,omitempty"`
	Reason    string            `json:"reason,omitempty"`
	At        time.Time         `json:"at"`
	Details   map[string]string `json:"details,omitempty"`
}

// SystemTenant is the tenant of audit events that belong to no tenant: a
// request refused because its key named none. Tenant names start with a
// letter or digit, so it is no tenant's.
const SystemTenant = "_system"

// EventType implements Payload.
func (p AuditEvent) EventType() string { return AuditTypePrefix + p.Kind }

// PartitionKey implements Payload.
func (p AuditEvent) PartitionKey() string { return p.TenantID }

// Tenant returns the payload's tenant id.
func (p IngestRequested) Tenant() string { return p.TenantID }

// Tenant returns the payload's tenant id.
func (p DocumentAccepted) Tenant() string { return p.TenantID }

// Tenant returns the payload's tenant id.
func (p DocumentRejected) Tenant() string { return p.TenantID }

// Tenant returns the payload's tenant id.
func (p DocumentDeleted) Tenant() string { return p.TenantID }

// Tenant returns the payload's tenant id.
func (p DocumentIndexed) Tenant() string { return p.TenantID }

// Tenant returns the payload's tenant id.
func (p ChunkCreated) Tenant() string { return p.TenantID }

// Tenant returns the payload's tenant id.
func (p Query) Tenant() string { return p.TenantID }

// Tenant returns the payload's tenant id.
func (p QueryRejected) Tenant() string { return p.TenantID }

// Tenant returns the payload's tenant id.
func (p AnswerDelta) Tenant() string { return p.TenantID }

// Tenant returns the payload's tenant id.
func (p AnswerCompleted) Tenant() string { return p.TenantID }

// Tenant returns the payload's tenant id.
func (p AuditEvent) Tenant() string { return p.TenantID }
