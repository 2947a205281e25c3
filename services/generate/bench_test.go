package generate

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/tributary-rag/tributary/pkg/events"
	"github.com/tributary-rag/tributary/pkg/kafkatransport"
)

// benchChunks are eight retrieved chunks of about 600 characters, one of
// which holds the asked fact.
func benchChunks() []events.RetrievedChunk {
	filler := strings.Repeat("The quarterly report covers revenue, hiring and the new office in Lisbon. ", 8)
	var out []events.RetrievedChunk
	for i := range 8 {
		text := filler
		if i == 5 {
			text += "Customers may request a refund within 30 days of delivery."
		}
		out = append(out, chunk(i, "Doc "+strconv.Itoa(i), text, float32(8-i)))
	}
	return out
}

// BenchmarkExtractive measures prompt building plus extractive answering
// of one question over eight sources, without publishing.
func BenchmarkExtractive(b *testing.B) {
	chunks := benchChunks()
	for b.Loop() {
		p := BuildPrompt("How many days do I have to request a refund?", chunks, PromptOptions{})
		if _, err := (Extractive{}).Generate(context.Background(), Request{Prompt: p}, func(string) error { return nil }); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAnswerKafka measures a whole extractive answer published to a
// kfake broker (every delta and the completed event acknowledged), and
// reports the time to the first delta handed to the publisher.
func BenchmarkAnswerKafka(b *testing.B) {
	prefix := cluster.Name(b, "p")
	topics := events.NewTopics(prefix)
	cluster.CreateTopics(b, 3, topics.AnswersGenerated)
	pub := kafkatransport.NewPublisher(cluster.Brokers(), kafkatransport.PublisherSource(EventSource))
	defer pub.Close()
	svc := NewService(Extractive{}, NewKafkaEmitter(pub, topics.AnswersGenerated), Config{})
	chunks := benchChunks()
	var first, deltas float64
	i := 0
	for b.Loop() {
		a, err := svc.Answer(context.Background(), Question{RequestID: "bench-" + strconv.Itoa(i), TenantID: "acme",
			Question: "How many days do I have to request a refund?", Chunks: chunks})
		if err != nil {
			b.Fatal(err)
		}
		first += a.Timings.FirstTokenMs
		deltas += float64(a.Deltas)
		i++
	}
	b.ReportMetric(first/float64(i), "first-delta-ms")
	b.ReportMetric(deltas/float64(i), "deltas/answer")
}
