package embed

import (
	"regexp"

	"github.com/tributary-rag/tributary/pkg/daemon"
	"github.com/tributary-rag/tributary/pkg/events"
	"github.com/tributary-rag/tributary/pkg/kafkatransport"
)

// NewRebuildSubscriber is NewChunkSubscriber in consumer group group: a
// second embed deployment with a new model replays the chunks topic from
// its first offset (a new group starts there) into chunks.embedded, while
// the running one keeps serving with the old model; retrieve indexes each
// model's events in a collection of its own and moves its alias once the
// new one has caught up (docs/retrieve.md, "Changing the embedding
// model"). The topic must keep every live chunk: unlimited retention.
func NewRebuildSubscriber(brokers []string, topics events.Topics, group string, producer kafkatransport.Producer, e Endpoints, v *events.Validator, opts ...kafkatransport.SubscriberOption) *kafkatransport.Subscriber {
	return chunkSubscriber(brokers, topics, group, producer, e, v, opts...)
}

var groupRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,200}$`)

// checkRebuild records a bad --rebuild-group in p.
func (s Settings) checkRebuild(p *daemon.Problems) {
	switch {
	case s.RebuildGroup == "":
	case s.RebuildGroup == KafkaGroup:
		p.Addf("rebuild-group", "must differ from the service's own group %q", KafkaGroup)
	case !groupRE.MatchString(s.RebuildGroup):
		p.Addf("rebuild-group", "must be 1-200 characters of [A-Za-z0-9._-]")
	}
}
