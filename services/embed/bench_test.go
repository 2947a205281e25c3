package embed

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tributary-rag/tributary/pkg/cputime"
	"github.com/tributary-rag/tributary/pkg/events"
	"github.com/tributary-rag/tributary/pkg/kafkatransport"
)

// benchChunks returns n chunks of about size runes of synthetic English or
// Chinese text from a fixed seed: words (or characters) drawn with a
// Zipf-like skew, sentence punctuation every dozen or so.
func benchChunks(lang string, n, size int) []string {
	r := rand.New(rand.NewPCG(1, 2))
	english := strings.Fields(`the of and to in is for that employees leave policy days month request manager
		approval annual sick paid unpaid carry over year balance holiday company office remote work hours
		overtime salary payroll benefits insurance health dental vision retirement plan contribution match
		training travel expense report receipt reimbursement deadline quarter review performance goal
		security password access badge laptop device network vpn incident support ticket escalation`)
	han := []rune(`的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本去把性好应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比或但质气第向道命此变条只没结解问意建月公无系军很情者最立代想已通并提直题党程展五果料象员革位入常文总次品式活设及管特件长求老头基资边流路级少图山统接知较将组见计别她手角期根论运农指几九区强放决西被干做必战先回则任取据处队南给色光门即保治北造百规热领七海口东导器压志世金增争济阶油思术极交受联什认六共权收证改清己美再采转更单风切打白教速花带安场身车例真务具万每目至达走积示议声报斗完类八离华名确才科张信马节话米整空元况今集温传土许步群广石记需段研界拉林律叫且究观越织装影算低持音众书布复容儿须际商非验连断深难近矿千周委素技备半办青省列习响约支般史感劳便团往酸历市克何除消构府称太准精值号率族维划选标写存候毛亲快效斯院查江型眼王按格养易置派层片始却专状育厂京识适属圆包火住调满县局照参红细引听该铁价严`)
	var sb strings.Builder
	out := make([]string, n)
	for i := range out {
		sb.Reset()
		runes := 0
		for runes < size {
			switch lang {
			case "en":
				w := english[int(float64(len(english))*r.Float64()*r.Float64())]
				sb.WriteString(w)
				runes += len(w)
				if r.IntN(12) == 0 {
					sb.WriteString(".")
					runes++
				}
				sb.WriteByte(' ')
				runes++
			default:
				sb.WriteRune(han[int(float64(len(han))*r.Float64()*r.Float64())])
				runes++
				if r.IntN(15) == 0 {
					sb.WriteString("，")
					runes++
				}
			}
		}
		out[i] = sb.String()
	}
	return out
}

// BenchmarkSparseDocument measures the sparse embedding of 500-rune
// chunks (the ingest default); ns/op is per chunk, MB/s over UTF-8 bytes.
func BenchmarkSparseDocument(b *testing.B) {
	s := newSparse(b)
	for _, lang := range []string{"en", "zh"} {
		chunks := benchChunks(lang, 256, 500)
		var bytes int64
		for _, c := range chunks {
			bytes += int64(len(c))
		}
		b.Run(lang, func(b *testing.B) {
			b.SetBytes(bytes / int64(len(chunks)))
			b.ReportAllocs()
			i := 0
			cpu := cputime.Process()
			for b.Loop() {
				s.Document(chunks[i%len(chunks)])
				i++
			}
			cpu = cputime.Process() - cpu
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "chunks/s")
			if cpu > 0 {
				// Per CPU-second: the machine may be shared, so wall time
				// can include waiting for a core.
				b.ReportMetric(float64(b.N)/cpu.Seconds(), "chunks/cpu-s")
			}
		})
	}
}

// BenchmarkSparseQuery measures the embedding of a short question.
func BenchmarkSparseQuery(b *testing.B) {
	s := newSparse(b)
	for _, q := range []struct{ name, text string }{
		{"en", "How many days of paid annual leave can employees carry over to next year?"},
		{"zh", "员工每年可以结转多少天带薪年假？"},
	} {
		b.Run(q.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				s.Query(q.text)
			}
		})
	}
}

// BenchmarkKafkaPipeline measures chunks/s through the whole service on
// the package's test broker: b.N chunk.created events (English, 500
// runes) are produced up front, then the clock runs from starting the
// subscriber until every chunk.embedded event is on the output topic. The
// sub-benchmarks vary the partitions of the topics (the subscriber handles
// partitions concurrently), the publisher's batch timeout (each produce
// waits up to it) and the subscriber's batch size (chunks=1: one message
// and one produce at a time, as before batching).
func BenchmarkKafkaPipeline(b *testing.B) {
	for _, tt := range []struct {
		partitions int
		batch      time.Duration
		chunks     int // chunk messages per subscriber batch; 1 = one at a time
	}{
		{3, 2 * time.Millisecond, 1},
		{3, kafkatransport.DefaultBatchTimeout, 1},
		{12, 2 * time.Millisecond, 1},
		{12, kafkatransport.DefaultBatchTimeout, 1},
		{3, kafkatransport.DefaultBatchTimeout, DefaultChunkBatch},
		{12, kafkatransport.DefaultBatchTimeout, DefaultChunkBatch},
	} {
		b.Run(fmt.Sprintf("partitions=%d/batch=%v/chunks=%d", tt.partitions, tt.batch, tt.chunks), func(b *testing.B) {
			benchPipeline(b, tt.partitions, tt.batch, tt.chunks)
		})
	}
}

func benchPipeline(b *testing.B, partitions int, batch time.Duration, chunks int) {
	n := max(b.N, 1)
	topics := cluster.CreatePrefixTopics(b, cluster.Prefix(b), partitions)
	texts := benchChunks("en", 256, 500)
	msgs := make([]kafka.Message, n)
	ctx := events.WithTenant(context.Background(), "acme")
	for i := range msgs {
		doc := fmt.Sprintf("doc-%d", i/20)
		c := events.ChunkCreated{ChunkID: events.ChunkID("acme", doc, 1, i%20), DocumentID: doc, TenantID: "acme",
			Version: 1, Index: i % 20, ChunkCount: 20, Text: texts[i%len(texts)], ContentHash: hashOf(texts[i%len(texts)])}
		m, err := events.Marshal(ctx, "bench", c)
		if err != nil {
			b.Fatal(err)
		}
		m.Topic = topics.Chunks
		msgs[i] = m
	}
	for i := 0; i < n; i += 1000 {
		cluster.Produce(b, msgs[i:min(i+1000, n)]...)
	}
	pub := kafkatransport.NewPublisher(cluster.Brokers(), kafkatransport.PublisherSource(EventSource),
		kafkatransport.PublisherBatchTimeout(batch))
	defer pub.Close()
	v, err := events.NewValidator()
	if err != nil {
		b.Fatal(err)
	}
	eps := MakeEndpoints(NewService(newSparse(b)))
	sub := NewChunkSubscriber(cluster.Brokers(), topics, pub, eps, v, kafkatransport.SubscriberBatch(chunks, 0),
		kafkatransport.SubscriberReaderConfig(func(c *kafka.ReaderConfig) { c.StartOffset = kafka.FirstOffset }))
	b.ResetTimer()
	start, cpu := time.Now(), cputime.Process()
	rctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sub.Run(rctx) }()
	got := cluster.ReadN(b, topics.ChunksEmbedded, n, 10*time.Minute)
	elapsed, cpu := time.Since(start), cputime.Process()-cpu
	b.StopTimer()
	cancel()
	if err := <-done; err != nil {
		b.Errorf("subscriber: %v", err)
	}
	if len(got) < n {
		b.Fatalf("%d of %d chunks embedded", len(got), n)
	}
	b.ReportMetric(float64(n)/elapsed.Seconds(), "chunks/s")
	if cpu > 0 {
		// Broker, consumer and producer share this process: CPU per
		// chunk of the whole path.
		b.ReportMetric(float64(cpu.Microseconds())/float64(n), "cpu-µs/chunk")
	}
}

// BenchmarkHandleChunk measures the service's own work per chunk message,
// without Kafka I/O: schema validation and decoding of the input event,
// the endpoint (sparse embedding) and encoding of the output event.
func BenchmarkHandleChunk(b *testing.B) {
	v, err := events.NewValidator()
	if err != nil {
		b.Fatal(err)
	}
	eps := MakeEndpoints(NewService(newSparse(b)))
	dec := validating(v, DecodeChunkCreated)
	enc := EncodeChunkEmbedded("out", time.Now)
	for _, lang := range []string{"en", "zh"} {
		text := benchChunks(lang, 1, 500)[0]
		c := events.ChunkCreated{ChunkID: events.ChunkID("acme", "d", 1, 0), DocumentID: "d", TenantID: "acme",
			Version: 1, ChunkCount: 1, Text: text, ContentHash: hashOf(text), Title: "Bench"}
		ctx := events.WithTenant(context.Background(), "acme")
		msg, err := events.Marshal(ctx, "bench", c)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(lang, func(b *testing.B) {
			b.SetBytes(int64(len(text)))
			b.ReportAllocs()
			cpu := cputime.Process()
			for b.Loop() {
				req, err := dec(ctx, msg)
				if err != nil {
					b.Fatal(err)
				}
				resp, err := eps.EmbedChunk(ctx, req)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := enc(ctx, resp); err != nil {
					b.Fatal(err)
				}
			}
			cpu = cputime.Process() - cpu
			if cpu > 0 {
				b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/chunk")
			}
		})
	}
}
