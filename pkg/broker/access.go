package broker

import (
	"fmt"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary-rag/tributary/pkg/events"
)

// Access is what one principal may do on the cluster: least privilege for
// one service. Read topics are consumed (their dead-letter topics are
// written too: a poison message goes there), Write topics are produced.
// Every topic named, dead letters included, may be described and created
// (services create what they use at start). Groups are consumer-group
// name prefixes.
type Access struct {
	Read, Write []string
	Groups      []string
}

// ServiceAccess returns the access of each service's principal (named
// after the service) to the topics of t: the table docs/kafka.md shows.
// A service writing a topic it does not own is refused by the broker.
func ServiceAccess(t events.Topics) map[string]Access {
	return map[string]Access{
		"ingest":   {Read: []string{t.IngestRequests, t.Documents}, Write: []string{t.Documents, t.Chunks, t.AuditEvents}, Groups: []string{"ingest"}},
		"embed":    {Read: []string{t.Chunks, t.QueriesApproved}, Write: []string{t.ChunksEmbedded, t.QueriesEmbedded}, Groups: []string{"embed"}},
		"retrieve": {Read: []string{t.ChunksEmbedded, t.Documents, t.QueriesEmbedded}, Write: []string{t.Documents, t.QueriesRetrieved}, Groups: []string{"retrieve."}},
		"generate": {Read: []string{t.QueriesRetrieved}, Write: []string{t.AnswersGenerated}, Groups: []string{"generate"}},
		"moderate": {Read: []string{t.QueriesReceived, t.AnswersGenerated, t.QueriesRetrieved}, Write: []string{t.QueriesApproved, t.QueriesRejected, t.AnswersModerated, t.SearchesModerated, t.AuditEvents}, Groups: []string{"moderate"}},
		"audit":    {Read: t.All(), Write: []string{t.AuditEvents}, Groups: []string{"audit"}},
		"edge":     {Read: []string{t.AnswersModerated, t.QueriesRejected, t.SearchesModerated}, Write: []string{t.QueriesReceived, t.AuditEvents}, Groups: []string{"edge-"}},
	}
}

// Covers returns an error naming each topic of consumes that a may not
// read and each of produces it may not write: a service wired to use more
// than its principal may is a table to update, found at start rather
// than as a stalled consumer.
func (a Access) Covers(consumes, produces []string) error {
	var missing []string
	for _, t := range consumes {
		if !slices.Contains(a.Read, t) {
			missing = append(missing, "read "+t)
		}
	}
	for _, t := range produces {
		if !slices.Contains(a.Write, t) {
			missing = append(missing, "write "+t)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("access misses %s", strings.Join(missing, ", "))
	}
	return nil
}

// acls turns a into kfake ACL entries.
func (a Access) acls() []kfake.ACL {
	var out []kfake.ACL
	topic := func(name string, op kmsg.ACLOperation) {
		out = append(out, kfake.ACL{Resource: kmsg.ACLResourceTypeTopic, Name: name,
			Pattern: kmsg.ACLResourcePatternTypeLiteral, Operation: op, Allow: true})
	}
	var all []string
	for _, name := range a.Read {
		topic(name, kmsg.ACLOperationRead)
		topic(events.DLQ(name), kmsg.ACLOperationWrite)
		all = append(all, name, events.DLQ(name))
	}
	for _, name := range a.Write {
		topic(name, kmsg.ACLOperationWrite)
		all = append(all, name)
	}
	slices.Sort(all)
	for _, name := range slices.Compact(all) {
		topic(name, kmsg.ACLOperationCreate)
	}
	for _, g := range a.Groups {
		out = append(out, kfake.ACL{Resource: kmsg.ACLResourceTypeGroup, Name: g,
			Pattern: kmsg.ACLResourcePatternTypePrefixed, Operation: kmsg.ACLOperationRead, Allow: true})
	}
	return out
}
