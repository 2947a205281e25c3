package events

import (
	"fmt"
	"regexp"
)

// DefaultPrefix is the topic prefix used when none is configured.
const DefaultPrefix = "tributary"

// Topic names without prefix: "<name>.v<major>". A breaking change to a
// payload is a new major version and so a new topic.
const (
	TopicIngestRequests   = "ingest.requests.v1"
	TopicDocuments        = "documents.v1"
	TopicChunks           = "chunks.v1"
	TopicChunksEmbedded   = "chunks.embedded.v1"
	TopicQueriesReceived  = "queries.received.v1"
	TopicQueriesApproved  = "queries.approved.v1"
	TopicQueriesRejected  = "queries.rejected.v1"
	TopicQueriesEmbedded  = "queries.embedded.v1"
	TopicQueriesRetrieved = "queries.retrieved.v1"
	TopicAnswersGenerated = "answers.generated.v1"
	TopicAnswersModerated = "answers.moderated.v1"
	TopicAuditEvents      = "audit.events.v1"
	// TopicSearchesModerated carries the results of searches (query.retrieved
	// of mode "search") after the output policy redacted their titles and
	// snippets: what the edge returns to the client.
	TopicSearchesModerated = "searches.moderated.v1"
)

// DLQSuffix is appended to a topic's full name to name its dead-letter topic.
const DLQSuffix = ".dlq"

// DLQ returns the dead-letter topic of the full topic name topic.
func DLQ(topic string) string { return topic + DLQSuffix }

var prefixRE = regexp.MustCompile(`^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$`)

// ValidatePrefix checks that prefix can start a Kafka topic name: letters,
// digits, '_', '-' and inner dots, at most 180 characters so that the longest
// dead-letter topic stays within Kafka's 249.
func ValidatePrefix(prefix string) error {
	if len(prefix) == 0 || len(prefix) > 180 || !prefixRE.MatchString(prefix) {
		return fmt.Errorf("invalid topic prefix %q: want 1-180 characters of [A-Za-z0-9._-] without leading, trailing or double dots", prefix)
	}
	return nil
}

// TopicName returns the full topic name "<prefix>.<topic>"; an empty prefix
// means DefaultPrefix. topic is one of the Topic* constants.
func TopicName(prefix, topic string) string {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	return prefix + "." + topic
}

// Topics holds the full names of all topics for one prefix.
type Topics struct {
	Prefix           string
	IngestRequests   string
	Documents        string
	Chunks           string
	ChunksEmbedded   string
	QueriesReceived  string
	QueriesApproved  string
	QueriesRejected  string
	QueriesEmbedded  string
	QueriesRetrieved string
	AnswersGenerated string
	AnswersModerated string
	AuditEvents      string
	// SearchesModerated: see TopicSearchesModerated.
	SearchesModerated string
}

// NewTopics returns the full topic names for prefix; an empty prefix means
// DefaultPrefix.
func NewTopics(prefix string) Topics {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	n := func(t string) string { return TopicName(prefix, t) }
	return Topics{
		Prefix:            prefix,
		IngestRequests:    n(TopicIngestRequests),
		Documents:         n(TopicDocuments),
		Chunks:            n(TopicChunks),
		ChunksEmbedded:    n(TopicChunksEmbedded),
		QueriesReceived:   n(TopicQueriesReceived),
		QueriesApproved:   n(TopicQueriesApproved),
		QueriesRejected:   n(TopicQueriesRejected),
		QueriesEmbedded:   n(TopicQueriesEmbedded),
		QueriesRetrieved:  n(TopicQueriesRetrieved),
		AnswersGenerated:  n(TopicAnswersGenerated),
		AnswersModerated:  n(TopicAnswersModerated),
		AuditEvents:       n(TopicAuditEvents),
		SearchesModerated: n(TopicSearchesModerated),
	}
}

// All returns every full topic name (without dead-letter topics), in the
// order of the catalog.
func (t Topics) All() []string {
	return []string{
		t.IngestRequests, t.Documents, t.Chunks, t.ChunksEmbedded,
		t.QueriesReceived, t.QueriesApproved, t.QueriesRejected,
		t.QueriesEmbedded, t.QueriesRetrieved, t.AnswersGenerated,
		t.AnswersModerated, t.AuditEvents, t.SearchesModerated,
	}
}

// TopicInfo describes one topic of the catalog.
type TopicInfo struct {
	// Topic is the name without prefix, e.g. "chunks.v1".
	Topic string
	// Key names the payload field used as the Kafka key.
	Key string
	// Types lists the event types the topic carries; "tributary.audit.*"
	// stands for every audit type.
	Types []string
}

// Catalog returns the topic table of the public contract.
func Catalog() []TopicInfo {
	return []TopicInfo{
		{TopicIngestRequests, "document_id", []string{TypeIngestRequested}},
		{TopicDocuments, "document_id", []string{TypeDocumentAccepted, TypeDocumentRejected, TypeDocumentDeleted, TypeDocumentIndexed}},
		{TopicChunks, "document_id", []string{TypeChunkCreated}},
		{TopicChunksEmbedded, "document_id", []string{TypeChunkEmbedded}},
		{TopicQueriesReceived, "request_id", []string{TypeQueryReceived}},
		{TopicQueriesApproved, "request_id", []string{TypeQueryApproved}},
		{TopicQueriesRejected, "request_id", []string{TypeQueryRejected}},
		{TopicQueriesEmbedded, "request_id", []string{TypeQueryEmbedded}},
		{TopicQueriesRetrieved, "request_id", []string{TypeQueryRetrieved}},
		{TopicAnswersGenerated, "request_id", []string{TypeAnswerDelta, TypeAnswerCompleted}},
		{TopicAnswersModerated, "request_id", []string{TypeAnswerDelta, TypeAnswerCompleted}},
		{TopicAuditEvents, "tenant_id", []string{AuditTypePrefix + "*"}},
		{TopicSearchesModerated, "request_id", []string{TypeQueryRetrieved}},
	}
}
