package chunking

import (
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/tmc/langchaingo/textsplitter"

	"github.com/tributary-rag/tributary/pkg/chunk"
)

const (
	size    = 500
	overlap = 50
	// corpusBytes is the size of each benchmark corpus.
	corpusBytes = 4 << 20
)

// separators gives langchaingo the same boundaries, strongest first, as
// Tributary's splitter uses.
var separators = []string{
	"\n\n", "\n",
	"。", "！", "？", "；", ". ", "! ", "? ", "; ",
	"，", "、", ",",
	" ", "",
}

func tributary(tb testing.TB) func(string) []string {
	s, err := chunk.New(chunk.Options{Size: size, Overlap: overlap})
	if err != nil {
		tb.Fatal(err)
	}
	return func(text string) []string {
		cs := s.Split(text)
		out := make([]string, len(cs))
		for i, c := range cs {
			out[i] = c.Text
		}
		return out
	}
}

// tributarySpans is the split alone, like langchaingo: chunk positions
// without hashes or metadata.
func tributarySpans(tb testing.TB) func(string) []string {
	s, err := chunk.New(chunk.Options{Size: size, Overlap: overlap})
	if err != nil {
		tb.Fatal(err)
	}
	return func(text string) []string {
		spans := s.Spans(text)
		out := make([]string, len(spans))
		for i, sp := range spans {
			out[i] = text[sp.ByteStart:sp.ByteEnd]
		}
		return out
	}
}

func langchaingo(tb testing.TB) func(string) []string {
	s := textsplitter.NewRecursiveCharacter(
		textsplitter.WithChunkSize(size),
		textsplitter.WithChunkOverlap(overlap),
		textsplitter.WithSeparators(separators),
		textsplitter.WithLenFunc(utf8.RuneCountInString),
	)
	return func(text string) []string {
		out, err := s.SplitText(text)
		if err != nil {
			tb.Fatal(err)
		}
		return out
	}
}

// cpuTime returns the CPU time this process has used, user and system.
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// stats returns the chunk count and the longest chunk in runes.
func stats(chunks []string) (n, maxRunes int) {
	for _, c := range chunks {
		maxRunes = max(maxRunes, utf8.RuneCountInString(c))
	}
	return len(chunks), maxRunes
}

var corpora = []struct {
	name string
	gen  func(int) string
}{
	{"english", English},
	{"chinese", Chinese},
}

var splitters = []struct {
	name string
	make func(testing.TB) func(string) []string
}{
	{"tributary", tributary},
	{"tributary-spans", tributarySpans},
	{"langchaingo", langchaingo},
}

// BenchmarkSplit measures MB/s of both splitters at 500/50 runes on each
// corpus and reports the chunk count and longest chunk (runes).
func BenchmarkSplit(b *testing.B) {
	for _, c := range corpora {
		text := c.gen(corpusBytes)
		for _, sp := range splitters {
			b.Run(c.name+"/"+sp.name, func(b *testing.B) {
				split := sp.make(b)
				b.SetBytes(int64(len(text)))
				b.ReportAllocs()
				var chunks []string
				cpu0 := cpuTime(b)
				for b.Loop() {
					chunks = split(text)
				}
				if cpu := cpuTime(b) - cpu0; cpu > 0 {
					// Process CPU time, garbage collection included, is
					// steadier than wall time on a shared machine.
					b.ReportMetric(float64(len(text))*float64(b.N)/1e6/cpu.Seconds(), "cpuMB/s")
				}
				n, m := stats(chunks)
				b.ReportMetric(float64(n), "chunks")
				b.ReportMetric(float64(m), "maxrunes")
			})
		}
	}
}

// TestCorpusLimits checks on smaller corpora that Tributary's chunks respect
// the size limit and reports both splitters' chunk counts.
func TestCorpusLimits(t *testing.T) {
	for _, c := range corpora {
		text := c.gen(256 << 10)
		if !utf8.ValidString(text) || len(text) < 256<<10 {
			t.Fatalf("%s corpus: %d bytes, valid UTF-8 %v", c.name, len(text), utf8.ValidString(text))
		}
		for _, sp := range splitters {
			n, m := stats(sp.make(t)(text))
			t.Logf("%s/%s: %d chunks, longest %d runes", c.name, sp.name, n, m)
			if sp.name != "langchaingo" && (m > size || n < len(text)/(4*size)) {
				t.Errorf("%s/%s: %d chunks, longest %d runes; want <= %d runes", c.name, sp.name, n, m, size)
			}
		}
	}
}
